package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bitw-dev/bitw/ike/auth"
)

// maxCredentialSize bounds a certificate or key file the configuration
// names. Real ones are a few kilobytes.
const maxCredentialSize = 64 << 10

// errTooLarge reports a file above the size limit.
var errTooLarge = errors.New("the file is too large")

// readRegularFile reads a regular file of at most limit bytes, so that a
// path naming a device or a FIFO fails instead of blocking, and a huge
// file fails before it is read whole.
func readRegularFile(name string, limit int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d KiB", errTooLarge, name, limit>>10)
	}
	return data, nil
}

func keyKind(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// sameKey reports whether two public keys are the same key.
func sameKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// parsePublicKey reads a raw public key: PEM "PUBLIC KEY" (X.509
// SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS #1), or DER SPKI.
func parsePublicKey(data []byte) (crypto.PublicKey, error) {
	var pub crypto.PublicKey
	var err error
	if b, _ := pem.Decode(data); b != nil {
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key", b.Type)
		}
	} else {
		pub, err = x509.ParsePKIXPublicKey(data)
	}
	if err != nil {
		return nil, fmt.Errorf("not a public key: %v", err)
	}
	if err := auth.CheckPublicKey(pub); err != nil {
		return nil, errors.New(credError(err))
	}
	return pub, nil
}

// credError is an ike/auth loading error as the configuration reports it:
// the message names the file already, not the package.
func credError(err error) string {
	return strings.TrimPrefix(err.Error(), "auth: ")
}
