package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// authKeys holds the OpenSSL-made test keys of ike/auth, which loads keys
// for both packages.
const authKeys = "../../ike/auth/testdata/keys"

// testCreds writes a small PKI into dir: a CA, certificates for gw-a and
// gw-b signed by it, their keys, and odd files for the error cases.
func testCreds(t testing.TB, dir string) {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKey := func(name string, k crypto.Signer) {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name, "PRIVATE KEY", der)
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bitw test CA", Organization: []string{"bitw"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, notAfter time.Time, ip string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"bitw"}, CommonName: name + ".example"},
			DNSNames:              []string{name + ".example"},
			IPAddresses:           []net.IP{net.ParseIP(ip)},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              notAfter,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		writeKey(name+".key", k)
		pub, _ := x509.MarshalPKIXPublicKey(k.Public())
		write(name+".pub", "PUBLIC KEY", pub)
	}
	leaf("gw-a", 2, now.Add(24*time.Hour), "203.0.113.1")
	leaf("gw-b", 3, now.Add(24*time.Hour), "203.0.113.2")
	leaf("old", 4, now.Add(-time.Minute), "203.0.113.1")
	writeKey("other.key", newKey())
	for _, f := range []string{"rsa1024-pkcs1.pem", "ec-aes256-sha256.pem", "ec-legacy-pem.pem", "ed25519.pem", "ec.pub"} {
		data, err := os.ReadFile(filepath.Join(authKeys, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
