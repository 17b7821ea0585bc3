package auth

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

// MaxPeerCertificates bounds the CERT payloads one peer may present, and
// so the work one unauthenticated message can cause.
const MaxPeerCertificates = 16

// ErrCertificate wraps every reason a peer's certificates are refused.
var ErrCertificate = errors.New("auth: peer certificate refused")

// VerifyPeerCertificates checks the certificates of a peer's CERT payloads
// (X.509 Certificate - Signature, DER; end entity first, then any
// intermediates) against the configured CAs at time now, with the
// RFC 4945 §5 profile:
//
//   - the chain must reach a root in roots; intermediates come only from
//     the payloads;
//   - an end-entity KeyUsage, when present, must allow digitalSignature or
//     nonRepudiation (RFC 4945 §5.1.3.2);
//   - ExtendedKeyUsage is not required (RFC 4945 §5.1.3.12 leaves it to
//     the peer's CA), so serverAuth-only certificates work;
//   - the peer's ID must name the end entity (MatchID);
//   - no RSA key in the chain may be below MinRSABits: a chain is as
//     strong as its weakest signature.
//
// It returns the end-entity certificate, whose key verifies the AUTH
// payload. Revocation (CRL, OCSP) is not checked here.
func VerifyPeerCertificates(certs [][]byte, roots *x509.CertPool, now time.Time, id message.ID) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrCertificate)
	}
	if len(certs) > MaxPeerCertificates {
		return nil, fmt.Errorf("%w: %d certificates, at most %d", ErrCertificate, len(certs), MaxPeerCertificates)
	}
	if roots == nil {
		return nil, fmt.Errorf("%w: no CA certificates configured", ErrCertificate)
	}
	parsed := make([]*x509.Certificate, len(certs))
	for i, der := range certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: CERT payload %d: %v", ErrCertificate, i+1, err)
		}
		parsed[i] = c
	}
	ee := parsed[0]
	inter := x509.NewCertPool()
	for _, c := range parsed[1:] {
		inter.AddCert(c)
	}
	chains, err := ee.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrCertificate, ee.Subject.String(), err)
	}
	if err := strongChain(chains); err != nil {
		return nil, err
	}
	if ee.KeyUsage != 0 && ee.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("%w: %q: KeyUsage allows neither digitalSignature nor nonRepudiation", ErrCertificate, ee.Subject.String())
	}
	if err := MatchID(ee, id); err != nil {
		return nil, err
	}
	return ee, nil
}

// strongChain requires one of the verified chains to hold no RSA key
// below MinRSABits, and otherwise names the first weak certificate.
func strongChain(chains [][]*x509.Certificate) error {
	var weak error
	for _, chain := range chains {
		weak = nil
		for _, c := range chain {
			if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < MinRSABits {
				weak = fmt.Errorf("%w: %q has an RSA key of %d bits; at least %d are required",
					ErrCertificate, c.Subject.String(), k.N.BitLen(), MinRSABits)
				break
			}
		}
		if weak == nil {
			return nil
		}
	}
	return weak
}

// MatchID checks that an IKE identity names the certificate (RFC 4945
// §3.1): an address, FQDN or RFC 822 address must appear as a
// subjectAltName of that type (names compare without case; no
// wildcards), and ID_DER_ASN1_DN must equal the subject. Other ID types
// cannot be bound to a certificate and are refused.
func MatchID(cert *x509.Certificate, id message.ID) error {
	switch id.Type {
	case message.IDIPv4Addr, message.IDIPv6Addr:
		a, ok := id.Addr()
		if !ok {
			return fmt.Errorf("%w: malformed %s ID", ErrCertificate, id.Type)
		}
		for _, ip := range cert.IPAddresses {
			if c, ok := netip.AddrFromSlice(ip); ok && c.Unmap() == a.Unmap() {
				return nil
			}
		}
	case message.IDFQDN:
		for _, n := range cert.DNSNames {
			if strings.EqualFold(n, string(id.Data)) {
				return nil
			}
		}
	case message.IDRFC822:
		for _, e := range cert.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return nil
			}
		}
	case message.IDDERASN1DN:
		if sameDN(cert.RawSubject, id.Data) {
			return nil
		}
	default:
		return fmt.Errorf("%w: an ID of type %s cannot be matched to a certificate", ErrCertificate, id.Type)
	}
	return fmt.Errorf("%w: ID %s does not name certificate %q", ErrCertificate, id, cert.Subject.String())
}

// sameDN compares two DER distinguished names: equal octets, or the same
// attributes in the same order with the same values, whatever string
// type encodes them (PrintableString and UTF8String both occur).
func sameDN(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	if bytes.Equal(a, b) {
		return true
	}
	var ra, rb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &ra); err != nil || len(rest) != 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &rb); err != nil || len(rest) != 0 {
		return false
	}
	if len(ra) == 0 || len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if len(ra[i]) != len(rb[i]) {
			return false
		}
		for j := range ra[i] {
			x, y := ra[i][j], rb[i][j]
			if !x.Type.Equal(y.Type) || fmt.Sprint(x.Value) != fmt.Sprint(y.Value) {
				return false
			}
		}
	}
	return true
}

// CAKeyHash is the SHA-1 hash of a CA's SubjectPublicKeyInfo: how CERTREQ
// payloads name a trusted CA (RFC 7296 §3.7).
func CAKeyHash(ca *x509.Certificate) [sha1.Size]byte {
	return sha1.Sum(ca.RawSubjectPublicKeyInfo)
}

// CertReqData is the data of our CERTREQ payload (X.509 Certificate -
// Signature encoding): the CAKeyHash of each CA we trust.
func CertReqData(cas []*x509.Certificate) []byte {
	out := make([]byte, 0, len(cas)*sha1.Size)
	for _, ca := range cas {
		h := CAKeyHash(ca)
		out = append(out, h[:]...)
	}
	return out
}

// CertReqNames reports whether a peer's CERTREQ data asks for a chain to
// ca. Empty data asks for none in particular (RFC 7296 §3.7 allows it),
// which any CA satisfies; data that is not a list of SHA-1 hashes names
// nothing.
func CertReqNames(data []byte, ca *x509.Certificate) bool {
	if len(data) == 0 {
		return true
	}
	if len(data)%sha1.Size != 0 {
		return false
	}
	h := CAKeyHash(ca)
	for ; len(data) > 0; data = data[sha1.Size:] {
		if bytes.Equal(data[:sha1.Size], h[:]) {
			return true
		}
	}
	return false
}

// CheckKeyPair reports whether key is the private half of cert's public
// key, so a mismatched certificate and key file fail at load time.
func CheckKeyPair(cert *x509.Certificate, key Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("auth: the private key does not belong to certificate %q", cert.Subject.String())
	}
	return nil
}
