package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

func issue(t *testing.T, tmpl *x509.Certificate, parent *testCA, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-24 * time.Hour)
		tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	issuer, issuerKey := tmpl, signer
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T, name string, parent *testCA) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bitw test"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return &testCA{cert: issue(t, tmpl, parent, k.Public(), k), key: k}
}

type pki struct {
	root, inter, otherRoot *testCA
	leafKey                *ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	p := &pki{root: newCA(t, "bitw test root", nil), otherRoot: newCA(t, "someone else's root", nil)}
	p.inter = newCA(t, "bitw test intermediate", p.root)
	p.leafKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return p
}

func leafTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:        pkix.Name{CommonName: "gw-b.example", Country: []string{"CH"}},
		DNSNames:       []string{"gw-b.example"},
		IPAddresses:    []net.IP{net.ParseIP("203.0.113.2"), net.ParseIP("2001:db8::2")},
		EmailAddresses: []string{"ops@gw-b.example"},
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func (p *pki) leaf(t *testing.T, edit func(*x509.Certificate)) *x509.Certificate {
	tmpl := leafTemplate()
	if edit != nil {
		edit(tmpl)
	}
	return issue(t, tmpl, p.inter, p.leafKey.Public(), nil)
}

func pool(cs ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c.cert)
	}
	return p
}

func TestVerifyPeerCertificates(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	chain := [][]byte{leaf.Raw, p.inter.cert.Raw}
	roots := pool(p.root)
	fqdn := message.FQDNID("GW-B.example")

	for name, id := range map[string]message.ID{
		"FQDN":                  fqdn,
		"IPv4":                  message.AddrID(netip.MustParseAddr("203.0.113.2")),
		"IPv6":                  message.AddrID(netip.MustParseAddr("2001:db8::2")),
		"email":                 message.RFC822ID("OPS@gw-b.example"),
		"DN":                    {Type: message.IDDERASN1DN, Data: leaf.RawSubject},
		"DN, other string type": {Type: message.IDDERASN1DN, Data: utf8DN(t, leaf)},
	} {
		got, err := VerifyPeerCertificates(chain, roots, now, id)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != nil && !bytes.Equal(got.Raw, leaf.Raw) {
			t.Errorf("%s: returned a certificate other than the end entity", name)
		}
	}

	// The key of the returned certificate verifies the peer's AUTH.
	ee, _ := VerifyPeerCertificates(chain, roots, now, fqdn)
	data, _ := Sign(rand.Reader, p.leafKey, message.AuthDigitalSignature, HashSHA256, octets, Policy{})
	if err := Verify(ee.PublicKey, message.AuthDigitalSignature, data, octets, Policy{}); err != nil {
		t.Errorf("AUTH with the certificate's key: %v", err)
	}

	refuse := func(name string, certs [][]byte, roots *x509.CertPool, at time.Time, id message.ID) {
		t.Helper()
		if _, err := VerifyPeerCertificates(certs, roots, at, id); !errors.Is(err, ErrCertificate) {
			t.Errorf("%s: %v", name, err)
		}
	}
	refuse("wrong CA", chain, pool(p.otherRoot), now, fqdn)
	refuse("no CA configured", chain, nil, now, fqdn)
	refuse("intermediate missing", chain[:1], roots, now, fqdn)
	refuse("expired", chain, roots, now.Add(400*24*time.Hour), fqdn)
	refuse("not yet valid", chain, roots, now.Add(-48*time.Hour), fqdn)
	refuse("other FQDN", chain, roots, now, message.FQDNID("gw-c.example"))
	refuse("wildcard-looking FQDN", chain, roots, now, message.FQDNID("*.example"))
	refuse("other address", chain, roots, now, message.AddrID(netip.MustParseAddr("203.0.113.3")))
	refuse("other email", chain, roots, now, message.RFC822ID("root@gw-b.example"))
	refuse("other DN", chain, roots, now, message.ID{Type: message.IDDERASN1DN, Data: p.inter.cert.RawSubject})
	refuse("KEY_ID", chain, roots, now, message.ID{Type: message.IDKeyID, Data: []byte("gw-b")})
	refuse("no certificates", nil, roots, now, fqdn)
	refuse("garbage", [][]byte{[]byte("not DER")}, roots, now, fqdn)
	refuse("too many", bytes.Split(bytes.Repeat([]byte{'x', 0}, MaxPeerCertificates+1), []byte{0}), roots, now, fqdn)
	refuse("leaf signed by the root it claims not", [][]byte{p.inter.cert.Raw, leaf.Raw}, roots, now, fqdn)

	// RFC 4945 §5.1.3.2: a present KeyUsage must allow signing.
	encOnly := p.leaf(t, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	refuse("keyEncipherment only", [][]byte{encOnly.Raw, p.inter.cert.Raw}, roots, now, fqdn)
	for name, ku := range map[string]x509.KeyUsage{"no KeyUsage": 0, "nonRepudiation": x509.KeyUsageContentCommitment} {
		c := p.leaf(t, func(c *x509.Certificate) { c.KeyUsage = ku })
		if _, err := VerifyPeerCertificates([][]byte{c.Raw, p.inter.cert.Raw}, roots, now, fqdn); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// utf8DN re-encodes a certificate's subject with UTF8String values.
func utf8DN(t *testing.T, c *x509.Certificate) []byte {
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		t.Fatal(err)
	}
	for i := range rdns {
		for j := range rdns[i] {
			rdns[i][j].Value = asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(rdns[i][j].Value.(string))}
		}
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(der, c.RawSubject) {
		t.Fatal("re-encoding did not change the string types")
	}
	return der
}

func TestCertReq(t *testing.T) {
	p := newPKI(t)
	data := CertReqData([]*x509.Certificate{p.root.cert, p.otherRoot.cert})
	if len(data) != 40 {
		t.Fatalf("%d octets", len(data))
	}
	h := sha1.Sum(p.root.cert.RawSubjectPublicKeyInfo)
	if !bytes.Equal(data[:20], h[:]) {
		t.Error("CERTREQ entry is not SHA-1 of the SubjectPublicKeyInfo")
	}
	if !CertReqNames(data, p.otherRoot.cert) || CertReqNames(data, p.inter.cert) {
		t.Error("CertReqNames")
	}
	if !CertReqNames(nil, p.inter.cert) {
		t.Error("an empty CERTREQ names any CA")
	}
	if CertReqNames(data[:39], p.root.cert) {
		t.Error("malformed CERTREQ matched")
	}
	// The codec splits the same data into the same hashes.
	if a := (&message.CertReq{Encoding: message.CertX509Signature, Data: data}).Authorities(); len(a) != 2 || !bytes.Equal(a[0], h[:]) {
		t.Errorf("message.CertReq.Authorities: %x", a)
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseCertificatesPEMAndKeyPair(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	bundle := append(pemOf("CERTIFICATE", leaf.Raw), pemOf("CERTIFICATE", p.inter.cert.Raw)...)
	cs, err := ParseCertificatesPEM(bundle)
	if err != nil || len(cs) != 2 || !bytes.Equal(cs[1].Raw, p.inter.cert.Raw) {
		t.Fatalf("bundle: %v", err)
	}
	if _, err := ParseCertificatesPEM(append(bundle, pemOf("PRIVATE KEY", []byte{0})...)); err == nil {
		t.Error("a key block in a certificate file passed silently")
	}
	if _, err := ParseCertificatesPEM(nil); err == nil {
		t.Error("empty file")
	}
	if _, err := ParseCertificatesPEM(pemOf("CERTIFICATE", []byte("junk"))); err == nil {
		t.Error("junk certificate")
	}
	if err := CheckKeyPair(leaf, p.leafKey); err != nil {
		t.Error(err)
	}
	if err := CheckKeyPair(leaf, p.inter.key); err == nil {
		t.Error("mismatched key accepted")
	}
}
