package message

import (
	"crypto/sha1"
	"fmt"
)

// Certificate payload, RFC 7296 §3.6:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                       Certificate Data                        ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Certificate Request payload, §3.7:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                    Certification Authority                    ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	certEncoding = 0
	certData     = 1
)

// CertEncoding is the Cert Encoding of CERT and CERTREQ payloads (§3.6).
type CertEncoding uint8

const (
	CertPKCS7             CertEncoding = 1
	CertPGP               CertEncoding = 2
	CertDNSSignedKey      CertEncoding = 3
	CertX509Signature     CertEncoding = 4
	CertKerberos          CertEncoding = 6
	CertCRL               CertEncoding = 7
	CertARL               CertEncoding = 8
	CertSPKI              CertEncoding = 9
	CertX509Attribute     CertEncoding = 10
	CertRawRSAKey         CertEncoding = 11
	CertHashURLX509       CertEncoding = 12
	CertHashURLX509Bundle CertEncoding = 13
	CertOCSPContent       CertEncoding = 14 // RFC 4806
	CertRawPublicKey      CertEncoding = 15 // RFC 7670
)

var certEncodingNames = map[CertEncoding]string{
	CertPKCS7: "PKCS7_WRAPPED_X509", CertPGP: "PGP", CertDNSSignedKey: "DNS_SIGNED_KEY",
	CertX509Signature: "X509_SIGNATURE", CertKerberos: "KERBEROS_TOKEN", CertCRL: "CRL",
	CertARL: "ARL", CertSPKI: "SPKI", CertX509Attribute: "X509_ATTRIBUTE",
	CertRawRSAKey: "RAW_RSA_KEY", CertHashURLX509: "HASH_URL_X509",
	CertHashURLX509Bundle: "HASH_URL_X509_BUNDLE", CertOCSPContent: "OCSP_CONTENT",
	CertRawPublicKey: "RAW_PUBLIC_KEY",
}

func (e CertEncoding) String() string {
	if n, ok := certEncodingNames[e]; ok {
		return n
	}
	return fmt.Sprintf("CERT_ENCODING(%d)", uint8(e))
}

// Cert is the Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

func (*Cert) PayloadType() PayloadType { return PayloadCert }

func (c *Cert) appendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(c.Encoding)), c.Data...), nil
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7). For
// CertX509Signature, Data is a concatenation of SHA-1 hashes of trusted CA
// public keys (SubjectPublicKeyInfo), possibly empty.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

func (*CertReq) PayloadType() PayloadType { return PayloadCertReq }

// Authorities splits an X.509 Signature request into its CA key hashes.
func (c *CertReq) Authorities() [][]byte {
	if c.Encoding != CertX509Signature {
		return nil
	}
	var out [][]byte
	for d := c.Data; len(d) >= sha1.Size; d = d[sha1.Size:] {
		out = append(out, d[:sha1.Size:sha1.Size])
	}
	return out
}

func certReqValid(c *CertReq) error {
	if c.Encoding == CertX509Signature && len(c.Data)%sha1.Size != 0 {
		return fmt.Errorf("X.509 authorities of %d octets, not a multiple of %d", len(c.Data), sha1.Size)
	}
	return nil
}

func parseCertReq(body []byte) (*CertReq, error) {
	c := &CertReq{Encoding: CertEncoding(body[certEncoding]), Data: orNil(body[certData:])}
	return c, certReqValid(c)
}

func (c *CertReq) appendBody(b []byte) ([]byte, error) {
	if err := certReqValid(c); err != nil {
		return nil, fmt.Errorf("ike/message: %w", err)
	}
	return append(append(b, byte(c.Encoding)), c.Data...), nil
}
