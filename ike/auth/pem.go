package auth

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
)

// MinRSABits is the smallest RSA modulus a loaded key or certificate, or a
// peer's key or certificate chain, may have (NIST SP 800-131A Rev. 2
// disallows smaller ones).
const MinRSABits = 2048

// CheckPublicKey admits the key types IKEv2 signature authentication uses
// (RFC 7427): RSA of MinRSABits or more, ECDSA on P-256, P-384 or P-521,
// and Ed25519 (RFC 8420).
func CheckPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("auth: RSA key of %d bits is too weak; use %d bits or more", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("auth: ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("auth: %T keys are not supported; use RSA, ECDSA or Ed25519", pub)
	}
	return nil
}

// ParseCertificatesPEM reads every CERTIFICATE block of a PEM file, in
// order. Any other block, or none at all, is an error that says so.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("auth: PEM block %q where a CERTIFICATE was expected", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("auth: no CERTIFICATE block in PEM data")
	}
	return out, nil
}

// ParseCertificate reads a file that holds one X.509 certificate, in PEM
// or DER, whose key passes CheckPublicKey. A PEM file with several
// certificates is refused rather than cut short.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	var cert *x509.Certificate
	if isPEM(data) {
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			return nil, err
		}
		if len(certs) > 1 {
			return nil, fmt.Errorf("auth: the file holds %d certificates; give one per file", len(certs))
		}
		cert = certs[0]
	} else {
		var err error
		if cert, err = x509.ParseCertificate(data); err != nil {
			return nil, fmt.Errorf("auth: not an X.509 certificate: %w", err)
		}
	}
	if err := CheckPublicKey(cert.PublicKey); err != nil {
		return nil, err
	}
	return cert, nil
}

func isPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN")) }

// ParsePrivateKey reads a private key in PEM or DER: PKCS #8 ("PRIVATE
// KEY"), PKCS #1 ("RSA PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY", after an
// optional "EC PARAMETERS" block), or PKCS #8 encrypted with PBES2
// ("ENCRYPTED PRIVATE KEY", RFC 8018 §6.2: PBKDF2 with HMAC-SHA-1 or
// SHA-2 and AES-CBC, as `openssl genpkey -aes256` and `openssl pkcs8
// -topk8 -v2 aes256` write), which passphrase decrypts. Legacy PEM
// encryption (Proc-Type: 4,ENCRYPTED, RFC 1423) is refused: it derives
// its key with one MD5 hash of the passphrase and salt, so a copy of the
// file falls to passphrase guessing, where PBKDF2 iterates. The key must
// be RSA, ECDSA or Ed25519 and pass CheckPublicKey.
func ParsePrivateKey(data, passphrase []byte) (Signer, error) {
	var key any
	var err error
	if isPEM(data) {
		var b *pem.Block
		for rest := data; ; {
			b, rest = pem.Decode(rest)
			if b == nil || b.Type != "EC PARAMETERS" {
				break
			}
		}
		if b == nil {
			return nil, errors.New("auth: no private key block in PEM data")
		}
		if b.Headers["Proc-Type"] != "" {
			return nil, errors.New("auth: legacy PEM encryption (Proc-Type: 4,ENCRYPTED) derives its key with a single MD5 hash and is not supported; convert the key to PBES2 with `openssl pkcs8 -topk8 -v2 aes256`")
		}
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if len(passphrase) == 0 {
				return nil, errors.New("auth: the private key is encrypted and no passphrase was given")
			}
			var plain []byte
			if plain, err = decryptPKCS8(b.Bytes, passphrase); err != nil {
				return nil, err
			}
			key, err = x509.ParsePKCS8PrivateKey(plain)
			clear(plain)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("auth: PEM block %q is not a private key", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: %s: %w", b.Type, err)
		}
	} else if key, err = x509.ParsePKCS8PrivateKey(data); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(data); err != nil {
			if key, err = x509.ParseECPrivateKey(data); err != nil {
				return nil, errors.New("auth: neither PEM nor a DER PKCS #8, PKCS #1 or SEC 1 private key")
			}
		}
	}
	var signer Signer
	switch k := key.(type) {
	case *rsa.PrivateKey:
		signer = k
	case *ecdsa.PrivateKey:
		signer = k
	case ed25519.PrivateKey:
		signer = k
	default:
		return nil, fmt.Errorf("auth: %T keys cannot authenticate IKE", key)
	}
	if err := CheckPublicKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// ParsePrivateKeyPEM is ParsePrivateKey for data that must be PEM.
func ParsePrivateKeyPEM(data, passphrase []byte) (Signer, error) {
	if !isPEM(data) {
		return nil, errors.New("auth: no private key block in PEM data")
	}
	return ParsePrivateKey(data, passphrase)
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

// maxPBKDF2Iterations bounds the work a key file can demand.
const maxPBKDF2Iterations = 10_000_000

// errPassphrase is what a wrong passphrase looks like: PBES2 has no MAC,
// so it shows only as bad padding or a plaintext that is not DER.
var errPassphrase = errors.New("auth: wrong passphrase, or the key file is damaged")

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo protected with PBES2,
// PBKDF2 (HMAC-SHA-1/2) and AES-CBC, and returns the PrivateKeyInfo.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("auth: malformed encrypted PKCS #8 key")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("auth: key encryption %v is not supported; use PBES2 (openssl pkcs8 -topk8 -v2 aes256)", info.Algo.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, errors.New("auth: malformed PBES2 parameters")
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("auth: key derivation %v is not supported; use PBKDF2", params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if rest, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil || len(rest) != 0 {
		return nil, errors.New("auth: malformed PBKDF2 parameters")
	}
	if kdf.Iter < 1 || kdf.Iter > maxPBKDF2Iterations {
		return nil, fmt.Errorf("auth: PBKDF2 iteration count %d is out of range 1..%d", kdf.Iter, maxPBKDF2Iterations)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New // RFC 8018's default PRF
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("auth: PBKDF2 PRF %v is not supported", alg)
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
		return nil, fmt.Errorf("auth: key cipher %v is not supported; use AES-CBC", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, errors.New("auth: PBKDF2 key length does not match the cipher")
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.Scheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != aes.BlockSize {
		return nil, errors.New("auth: malformed AES-CBC IV")
	}
	if len(info.Data) == 0 || len(info.Data)%aes.BlockSize != 0 {
		return nil, errors.New("auth: encrypted key is not a whole number of AES blocks")
	}
	key, err := pbkdf2.Key(prf, string(passphrase), kdf.Salt, kdf.Iter, keyLen)
	if err != nil {
		return nil, fmt.Errorf("auth: PBKDF2: %w", err)
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize || subtle.ConstantTimeCompare(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) != 1 {
		clear(plain)
		return nil, errPassphrase
	}
	plain = plain[:len(plain)-pad]
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(plain, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
		clear(plain)
		return nil, errPassphrase
	}
	return plain, nil
}
