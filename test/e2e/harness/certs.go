package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// KeyType selects an end-entity key.
type KeyType int

const (
	ECDSAP256 KeyType = iota + 1
	ECDSAP384
	RSA2048
	RSA3072
)

func (k KeyType) String() string {
	switch k {
	case ECDSAP256:
		return "ecdsa-p256"
	case ECDSAP384:
		return "ecdsa-p384"
	case RSA2048:
		return "rsa2048"
	case RSA3072:
		return "rsa3072"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// PKI is a throw-away certificate authority for pubkey tests.
type PKI struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// Identity is an end-entity certificate and its private key.
type Identity struct {
	Name    string // file name stem, e.g. "gw-a"
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte // PKCS #8
}

// NewPKI creates a CA with an ECDSA P-256 key, valid for a day.
func NewPKI(t T, commonName string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"bitw e2e"}, CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &PKI{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// Issue creates an end-entity certificate with the given subject
// alternative names (DNS names and IP addresses), usable for IKE
// signatures.
func (p *PKI) Issue(t T, name string, kt KeyType, dnsNames []string, ips []netip.Addr) *Identity {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kt {
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		t.Fatalf("issue %s: unknown key type %v", name, kt)
	}
	if err != nil {
		t.Fatalf("issue %s: key: %v", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{Organization: []string{"bitw e2e"}, CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     dnsNames,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Cert, key.Public(), p.key)
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("issue %s: private key: %v", name, err)
	}
	return &Identity{
		Name:    name,
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
	}
}

// SwanctlFiles lays out the CA certificate and identity for a swanctl
// directory (SwanctlConfig.Files): x509ca/ca.pem, x509/NAME.pem,
// private/NAME.key.
func (p *PKI) SwanctlFiles(id *Identity) map[string][]byte {
	return map[string][]byte{
		"x509ca/ca.pem":               p.CertPEM,
		"x509/" + id.Name + ".pem":    id.CertPEM,
		"private/" + id.Name + ".key": id.KeyPEM,
	}
}

// WriteFiles writes ca.pem, NAME.pem and NAME.key into dir, the layout a
// bitw config refers to with paths relative to itself.
func (p *PKI) WriteFiles(dir string, id *Identity) error {
	for name, body := range map[string][]byte{
		"ca.pem":         p.CertPEM,
		id.Name + ".pem": id.CertPEM,
		id.Name + ".key": id.KeyPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func serial(t T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}
