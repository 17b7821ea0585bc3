package ike_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

func newCA(t testing.TB, name string, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name, Organization: []string{"bitw test"}},
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	signer, issuer := crypto.Signer(key), tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// issue makes an end-entity certificate for key with the given names.
func (ca *testCA) issue(t testing.TB, cn string, key crypto.Signer, dns []string, ips []netip.Addr, emails []string) *x509.Certificate {
	t.Helper()
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"bitw test"}, Country: []string{"CH"}},
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, DNSNames: dns, EmailAddresses: emails,
	}
	for _, a := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

var (
	keysOnce sync.Once
	keys     map[string]crypto.Signer
)

// testKeys are generated once per test binary: RSA is slow.
func testKeys(t testing.TB) map[string]crypto.Signer {
	keysOnce.Do(func() {
		keys = map[string]crypto.Signer{}
		for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
			for _, side := range []string{"a", "b"} {
				k, _ := ecdsa.GenerateKey(c, rand.Reader)
				keys[name+side] = k
			}
		}
		for _, side := range []string{"a", "b"} {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			keys["rsa"+side] = k
			_, e, _ := ed25519.GenerateKey(rand.Reader)
			keys["ed25519"+side] = e
		}
		big, _ := rsa.GenerateKey(rand.Reader, 4096)
		keys["rsa4096a"] = big
	})
	return keys
}
