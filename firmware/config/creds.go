package config

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
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

// minRSABits is the smallest RSA modulus bitw signs or verifies with
// (NIST SP 800-131A Rev. 2 disallows smaller ones).
const minRSABits = 2048

// checkPublicKey admits the key types IKEv2 signature authentication uses
// (RFC 7427): RSA of minRSABits or more, ECDSA on P-256/384/521, Ed25519.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits is too weak; use %d bits or more", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("%T keys are not supported; use RSA, ECDSA or Ed25519", pub)
	}
	return nil
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

// parseCertificate reads one X.509 certificate in PEM or DER.
func parseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if bytes.Contains(data, []byte("-----BEGIN")) {
		der = nil
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if der != nil {
				return nil, errors.New("the file holds more than one certificate; give one per file")
			}
			der = b.Bytes
		}
		if der == nil {
			return nil, errors.New("no CERTIFICATE block in the PEM file")
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not an X.509 certificate: %v", err)
	}
	if err := checkPublicKey(cert.PublicKey); err != nil {
		return nil, err
	}
	return cert, nil
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
	return pub, checkPublicKey(pub)
}

// parsePrivateKey reads a private key in PEM or DER: PKCS #8 (plain or
// encrypted with PBES2, RFC 8018 §6.2), PKCS #1 RSA or SEC 1 EC.
// passphrase decrypts an encrypted PKCS #8 key.
func parsePrivateKey(data []byte, passphrase string) (crypto.Signer, error) {
	var key any
	var err error
	if bytes.Contains(data, []byte("-----BEGIN")) {
		var b *pem.Block
		for rest := data; ; {
			b, rest = pem.Decode(rest)
			if b == nil || b.Type != "EC PARAMETERS" {
				break
			}
		}
		if b == nil {
			return nil, errors.New("no private key in the PEM file")
		}
		if b.Headers["Proc-Type"] != "" {
			return nil, errors.New("legacy PEM encryption (Proc-Type: 4,ENCRYPTED) has no integrity check and is not supported; convert the key with `openssl pkcs8 -topk8 -v2 aes256`")
		}
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if passphrase == "" {
				return nil, errors.New("the key is encrypted; give its passphrase as secret")
			}
			var plain []byte
			if plain, err = decryptPKCS8(b.Bytes, passphrase); err == nil {
				key, err = x509.ParsePKCS8PrivateKey(plain)
			}
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
		}
	} else {
		if key, err = x509.ParsePKCS8PrivateKey(data); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(data); err != nil {
				key, err = x509.ParseECPrivateKey(data)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T keys cannot sign", key)
	}
	if err := checkPublicKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// PKCS #5 v2.1 (RFC 8018) and NIST object identifiers.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// encryptedPrivateKeyInfo is RFC 5958 §3.
type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

// pbes2Params is RFC 8018 appendix A.4.
type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

// pbkdf2Params is RFC 8018 appendix A.2.
type pbkdf2Params struct {
	Salt      []byte
	Iter      int
	KeyLength int                      `asn1:"optional"`
	PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
}

// maxPBKDF2Iterations bounds the work a key file can demand of the loader.
const maxPBKDF2Iterations = 10_000_000

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo protected with PBES2,
// PBKDF2 (HMAC-SHA-1/2) and AES-CBC: what `openssl genpkey -aes256` and
// `openssl pkcs8 -topk8 -v2 aes256` write.
func decryptPKCS8(der []byte, passphrase string) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed encrypted PKCS #8 key")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("key encryption %v is not supported; use PBES2 (openssl pkcs8 -topk8 -v2 aes256)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed PBES2 parameters")
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("key derivation %v is not supported; use PBKDF2", params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if rest, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil || len(rest) != 0 {
		return nil, errors.New("malformed PBKDF2 parameters")
	}
	if kdf.Iter < 1 || kdf.Iter > maxPBKDF2Iterations {
		return nil, fmt.Errorf("PBKDF2 iteration count %d is out of range 1..%d", kdf.Iter, maxPBKDF2Iterations)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("PBKDF2 PRF %v is not supported", alg)
	}
	var keyLen int
	switch alg := params.Scheme.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("key cipher %v is not supported; use AES-CBC", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, errors.New("PBKDF2 key length does not match the cipher")
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.Scheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != aes.BlockSize {
		return nil, errors.New("malformed AES-CBC IV")
	}
	if len(info.Data) == 0 || len(info.Data)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted key is not a whole number of AES blocks")
	}
	key, err := pbkdf2.Key(prf, passphrase, kdf.Salt, kdf.Iter, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	// CBC without a MAC: a wrong passphrase shows as bad padding or as a
	// PKCS #8 structure that does not parse.
	pad := int(plain[len(plain)-1])
	wrong := errors.New("wrong passphrase, or the key file is damaged")
	if pad == 0 || pad > aes.BlockSize {
		return nil, wrong
	}
	want := bytes.Repeat([]byte{byte(pad)}, pad)
	if subtle.ConstantTimeCompare(plain[len(plain)-pad:], want) != 1 {
		return nil, wrong
	}
	plain = plain[:len(plain)-pad]
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(plain, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
		return nil, wrong
	}
	return plain, nil
}
