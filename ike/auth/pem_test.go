package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func TestParsePrivateKey(t *testing.T) {
	keys := testKeys()
	rk := keys["rsa"].(*rsa.PrivateKey)
	ek := keys["p384"].(*ecdsa.PrivateKey)
	edk := keys["ed25519"].(ed25519.PrivateKey)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, _ := x509.MarshalECPrivateKey(ek)
	params := pemOf("EC PARAMETERS", []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22})
	for name, c := range map[string]struct {
		data []byte
		want crypto.PublicKey
	}{
		"PKCS#8 RSA":        {pemOf("PRIVATE KEY", pkcs8(rk)), rk.Public()},
		"PKCS#8 ECDSA":      {pemOf("PRIVATE KEY", pkcs8(ek)), ek.Public()},
		"PKCS#8 Ed25519":    {pemOf("PRIVATE KEY", pkcs8(edk)), edk.Public()},
		"PKCS#1":            {pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), rk.Public()},
		"SEC 1":             {pemOf("EC PRIVATE KEY", sec1), ek.Public()},
		"SEC 1 with params": {append(params, pemOf("EC PRIVATE KEY", sec1)...), ek.Public()},
		"DER PKCS#8":        {pkcs8(edk), edk.Public()},
		"DER PKCS#1":        {x509.MarshalPKCS1PrivateKey(rk), rk.Public()},
		"DER SEC 1":         {sec1, ek.Public()},
	} {
		k, err := ParsePrivateKey(c.data, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !samePublic(k.Public(), c.want) {
			t.Errorf("%s: a different key", name)
		}
	}
	// Deprecated in Go, and refused here: legacy PEM encryption is the
	// format under test.
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), []byte("passphrase"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		data    []byte
		message string
	}{
		"legacy encrypted PEM": {pem.EncodeToMemory(legacy), "legacy PEM encryption"},
		"malformed PKCS#8":     {pemOf("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), "malformed encrypted PKCS #8"},
		"a certificate":        {pemOf("CERTIFICATE", []byte{0x30, 0}), "not a private key"},
		"nothing":              {[]byte("no PEM here"), "neither PEM nor a DER"},
		"corrupt PKCS#8":       {pemOf("PRIVATE KEY", []byte{0x30, 3, 1, 2, 3}), "PRIVATE KEY"},
	} {
		_, err := ParsePrivateKey(c.data, []byte("passphrase"))
		if err == nil || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: error %v should mention %q", name, err, c.message)
		}
	}
	if _, err := ParsePrivateKeyPEM(pkcs8(edk), nil); err == nil || !strings.Contains(err.Error(), "no private key block") {
		t.Errorf("ParsePrivateKeyPEM took DER: %v", err)
	}
	if k, err := ParsePrivateKeyPEM(pemOf("PRIVATE KEY", pkcs8(edk)), nil); err != nil || !samePublic(k.Public(), edk.Public()) {
		t.Errorf("ParsePrivateKeyPEM: %v", err)
	}
}

// TestParsePrivateKeyOpenSSL reads keys that OpenSSL 3.0 encrypted with
// PBES2 (testdata/keys/README says how they were made).
func TestParsePrivateKeyOpenSSL(t *testing.T) {
	read := func(name string) []byte {
		data, err := os.ReadFile("testdata/keys/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	b, _ := pem.Decode(read("ec.pub"))
	want, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("bitw test passphrase")
	for _, f := range []string{"ec-aes256-sha256.pem", "ec-aes128-sha1.pem", "ec-aes192-sha512.pem"} {
		data := read(f)
		k, err := ParsePrivateKey(data, pass)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !samePublic(k.Public(), want) {
			t.Errorf("%s: decrypted key does not match ec.pub", f)
		}
		if _, err := ParsePrivateKey(data, append(pass, 'x')); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Errorf("%s with a wrong passphrase: %v", f, err)
		}
		if _, err := ParsePrivateKey(data, nil); err == nil || !strings.Contains(err.Error(), "encrypted") {
			t.Errorf("%s without a passphrase: %v", f, err)
		}
	}
	for f, wantErr := range map[string]string{
		"ec-legacy-pem.pem": "openssl pkcs8 -topk8",
		"rsa1024-pkcs1.pem": "too weak",
		"ec.pub":            "not a private key",
	} {
		if _, err := ParsePrivateKey(read(f), pass); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %v, want %q", f, err, wantErr)
		}
	}
	if k, err := ParsePrivateKey(read("ed25519.pem"), nil); err != nil {
		t.Errorf("ed25519.pem: %v", err)
	} else if _, ok := k.Public().(ed25519.PublicKey); !ok {
		t.Errorf("ed25519.pem: %T", k.Public())
	}

	// PBES2 has no MAC, so a damaged ciphertext can still decrypt and
	// parse (a garbled embedded public key is ignored), but it never
	// yields a different key.
	b, _ = pem.Decode(read("ec-aes256-sha256.pem"))
	refused := 0
	for i := len(b.Bytes) - 64; i < len(b.Bytes); i++ {
		der := bytes.Clone(b.Bytes)
		der[i] ^= 0x40
		k, err := ParsePrivateKey(pemOf("ENCRYPTED PRIVATE KEY", der), pass)
		switch {
		case err != nil:
			refused++
		case !samePublic(k.Public(), want):
			t.Fatalf("byte %d flipped: a different key", i)
		}
	}
	if refused == 0 {
		t.Error("no damaged ciphertext was refused")
	}
}

// TestPBKDF2Bound checks that a key file cannot demand unbounded work.
func TestPBKDF2Bound(t *testing.T) {
	kdf, _ := asn1.Marshal(pbkdf2Params{Salt: make([]byte, 8), Iter: maxPBKDF2Iterations + 1})
	iv, _ := asn1.Marshal(make([]byte, 16))
	params, _ := asn1.Marshal(pbes2Params{
		KDF:    pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		Scheme: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: iv}},
	})
	der, _ := asn1.Marshal(encryptedPrivateKeyInfo{
		Algo: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		Data: make([]byte, 32),
	})
	if _, err := ParsePrivateKey(pemOf("ENCRYPTED PRIVATE KEY", der), []byte("x")); err == nil || !strings.Contains(err.Error(), "iteration count") {
		t.Errorf("got %v", err)
	}
}

func TestParseCertificate(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	for name, data := range map[string][]byte{"PEM": pemOf("CERTIFICATE", leaf.Raw), "DER": leaf.Raw} {
		c, err := ParseCertificate(data)
		if err != nil || !bytes.Equal(c.Raw, leaf.Raw) {
			t.Errorf("%s: %v", name, err)
		}
	}
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := issue(t, leafTemplate(), p.inter, weakKey.Public(), nil)
	for name, c := range map[string]struct {
		data    []byte
		message string
	}{
		"two certificates": {append(pemOf("CERTIFICATE", leaf.Raw), pemOf("CERTIFICATE", p.inter.cert.Raw)...), "holds 2 certificates"},
		"a key":            {pemOf("PRIVATE KEY", []byte{0x30, 0}), "where a CERTIFICATE was expected"},
		"garbage DER":      {[]byte("not a certificate"), "not an X.509 certificate"},
		"weak RSA":         {weak.Raw, "too weak"},
	} {
		if _, err := ParseCertificate(c.data); err == nil || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: error %v should mention %q", name, err, c.message)
		}
	}
}

func FuzzParsePEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	if data, err := os.ReadFile("testdata/keys/ec-aes192-sha512.pem"); err == nil {
		f.Add(data) // 1000 PBKDF2 iterations: cheap enough to fuzz
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := ParsePrivateKey(data, []byte("bitw test passphrase")); err == nil && k == nil {
			t.Fatal("nil key without an error")
		}
		if cs, err := ParseCertificatesPEM(data); err == nil && len(cs) == 0 {
			t.Fatal("no certificates without an error")
		}
		if c, err := ParseCertificate(data); err == nil && c == nil {
			t.Fatal("nil certificate without an error")
		}
	})
}
