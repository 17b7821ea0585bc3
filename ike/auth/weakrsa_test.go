package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

// weakRSAKey is a 1024-bit RSA key, generated once: below MinRSABits.
var weakRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
})

// TestVerifyRefusesWeakRSA: a peer's RSA key below MinRSABits is refused
// whatever the method and however well it signs, with an error that names
// its size; a key of MinRSABits verifies.
func TestVerifyRefusesWeakRSA(t *testing.T) {
	weak := weakRSAKey()
	allow := Policy{AllowSHA1: true}
	for _, c := range []struct {
		name string
		m    message.AuthMethod
		h    HashAlgorithm
		pol  Policy
	}{
		{"method 1", message.AuthRSASignature, HashSHA1, allow},
		{"RSASSA-PSS", message.AuthDigitalSignature, HashSHA256, Policy{}},
		{"RSASSA-PKCS1-v1_5", message.AuthDigitalSignature, HashSHA384, Policy{RSAPKCS1v15: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := Sign(rand.Reader, weak, c.m, c.h, octets, c.pol)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(weak.Public(), c.m, data, octets, c.pol)
			if err == nil {
				t.Fatal("a 1024-bit RSA key verified the AUTH payload")
			}
			if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "1024 bits") || !strings.Contains(err.Error(), "2048") {
				t.Errorf("error %q should be ErrNotAllowed and name 1024 bits and the 2048 required", err)
			}
			strong := testKeys()["rsa"]
			data, err = Sign(rand.Reader, strong, c.m, c.h, octets, c.pol)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(strong.Public(), c.m, data, octets, c.pol); err != nil {
				t.Errorf("2048-bit key: %v", err)
			}
		})
	}
}

// TestVerifyPeerCertificatesWeakRSA: a chain whose end entity or
// intermediate has an RSA key below MinRSABits is refused, naming the
// certificate and the key size.
func TestVerifyPeerCertificatesWeakRSA(t *testing.T) {
	p := newPKI(t)
	roots := pool(p.root)
	fqdn := message.FQDNID("gw-b.example")
	weak := weakRSAKey()

	weakLeaf := issue(t, leafTemplate(), p.inter, weak.Public(), nil)
	_, err := VerifyPeerCertificates([][]byte{weakLeaf.Raw, p.inter.cert.Raw}, roots, now, fqdn)
	if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "1024 bits") {
		t.Errorf("1024-bit end entity: %v", err)
	}

	// An intermediate with a 1024-bit key signing a good end entity.
	serial++
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "weak intermediate"},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, interTmpl, p.root.cert, weak.Public(), p.root.key)
	if err != nil {
		t.Fatal(err)
	}
	weakInter, _ := x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := leafTemplate()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = interTmpl.NotBefore, interTmpl.NotAfter
	der, err = x509.CreateCertificate(rand.Reader, tmpl, weakInter, leafKey.Public(), weak)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyPeerCertificates([][]byte{der, weakInter.Raw}, roots, now, fqdn)
	if !errors.Is(err, ErrCertificate) || !strings.Contains(err.Error(), "1024 bits") || !strings.Contains(err.Error(), "weak intermediate") {
		t.Errorf("1024-bit intermediate: %v", err)
	}
}
