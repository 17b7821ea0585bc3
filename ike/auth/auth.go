// Package auth implements the IKEv2 authentication methods of the AUTH
// payload and the certificate handling behind them:
//
//   - shared key (RFC 7296 §2.15) and NULL authentication (RFC 7619,
//     refused unless the policy allows it);
//   - RSA PKCS#1 v1.5 with SHA-1 (method 1, RFC 7296 §2.15; legacy, refused
//     unless the policy allows SHA-1);
//   - ECDSA methods 9, 10 and 11 (RFC 4754: r|s of fixed length);
//   - Digital Signature, method 14 (RFC 7427): RSASSA-PSS and RSASSA-PKCS1-v1_5
//     with SHA-2, ECDSA with SHA-2, Ed25519 (RFC 8420), and the
//     SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4);
//   - X.509 peer chains checked against configured CAs with the RFC 4945
//     profile, the peer's ID matched against the certificate, CERTREQ
//     authorities (RFC 7296 §3.7), and PEM loading of certificates and keys.
//
// Private keys stay behind crypto.Signer (Signer), so the protocol engine
// passes keys around without touching their bytes.
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
)

// Signer is a private key that signs without giving itself away: any
// crypto.Signer, such as *rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey or a key held by a hardware engine.
type Signer = crypto.Signer

// Policy says which methods and hashes a connection admits, and how it
// signs with RSA keys. The zero value is the safe default: no SHA-1, no
// NULL authentication, RSASSA-PSS.
type Policy struct {
	// AllowSHA1 admits RSA method 1 (PKCS#1 v1.5 with SHA-1) and SHA-1
	// in Digital Signature AUTH payloads (RFC 8247 §3.2 deprecates it).
	AllowSHA1 bool
	// AllowNull admits NULL authentication (RFC 7619): the peer proves
	// nothing about its identity.
	AllowNull bool
	// RSAPKCS1v15 signs Digital Signature payloads with RSASSA-PKCS1-v1_5
	// instead of RSASSA-PSS, for peers without PSS. Verification accepts
	// either regardless.
	RSAPKCS1v15 bool
}

// Errors the engine maps to notifications and counters. Every failed
// check wraps one of them.
var (
	// ErrAuthFailed: the AUTH data does not verify (AUTHENTICATION_FAILED).
	ErrAuthFailed = errors.New("auth: AUTH payload does not verify")
	// ErrNotAllowed: the method or hash is one the policy refuses.
	ErrNotAllowed = errors.New("auth: authentication method refused by policy")
	// ErrUnsupported: the method, key type or algorithm is one bitw does not support.
	ErrUnsupported = errors.New("auth: unsupported authentication method or key")
)

// HashAlgorithm is an IKEv2 Hash Algorithm identifier (RFC 7427 §4,
// RFC 8420 §2), as carried in SIGNATURE_HASH_ALGORITHMS.
type HashAlgorithm uint16

const (
	HashSHA1     HashAlgorithm = 1
	HashSHA256   HashAlgorithm = 2
	HashSHA384   HashAlgorithm = 3
	HashSHA512   HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // for Ed25519 and Ed448, which hash internally
)

func (h HashAlgorithm) String() string {
	switch h {
	case HashSHA1:
		return "SHA1"
	case HashSHA256:
		return "SHA2_256"
	case HashSHA384:
		return "SHA2_384"
	case HashSHA512:
		return "SHA2_512"
	case HashIdentity:
		return "IDENTITY"
	}
	return fmt.Sprintf("HASH_%d", uint16(h))
}

func (h HashAlgorithm) crypto() (crypto.Hash, bool) {
	switch h {
	case HashSHA1:
		return crypto.SHA1, true
	case HashSHA256:
		return crypto.SHA256, true
	case HashSHA384:
		return crypto.SHA384, true
	case HashSHA512:
		return crypto.SHA512, true
	case HashIdentity:
		return 0, true
	}
	return 0, false
}

func hashID(h crypto.Hash) HashAlgorithm {
	switch h {
	case crypto.SHA1:
		return HashSHA1
	case crypto.SHA256:
		return HashSHA256
	case crypto.SHA384:
		return HashSHA384
	case crypto.SHA512:
		return HashSHA512
	}
	return HashIdentity
}

// SupportedHashes is what bitw announces in SIGNATURE_HASH_ALGORITHMS:
// the SHA-2 hashes and Identity, and SHA-1 only when the policy allows it.
func SupportedHashes(pol Policy) []HashAlgorithm {
	hs := []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}
	if pol.AllowSHA1 {
		hs = append([]HashAlgorithm{HashSHA1}, hs...)
	}
	return hs
}

// AppendHashAlgorithms appends SIGNATURE_HASH_ALGORITHMS notification data:
// a list of 2-octet identifiers (RFC 7427 §4).
func AppendHashAlgorithms(dst []byte, hs []HashAlgorithm) []byte {
	for _, h := range hs {
		dst = binary.BigEndian.AppendUint16(dst, uint16(h))
	}
	return dst
}

// ParseHashAlgorithms reads SIGNATURE_HASH_ALGORITHMS notification data.
// Identifiers it does not know are kept (and never selected); an odd
// length is an error.
func ParseHashAlgorithms(data []byte) ([]HashAlgorithm, error) {
	if len(data)%2 != 0 {
		return nil, fmt.Errorf("auth: SIGNATURE_HASH_ALGORITHMS data of %d octets is not a list of 2-octet IDs", len(data))
	}
	out := make([]HashAlgorithm, 0, len(data)/2)
	for ; len(data) > 0; data = data[2:] {
		out = append(out, HashAlgorithm(binary.BigEndian.Uint16(data)))
	}
	return out, nil
}

// SelectHash picks the hash to sign with key pub from those the peer
// announced: Identity for Ed25519; for ECDSA the hash matching the curve
// first (RFC 4754's pairing), then stronger ones; for RSA SHA-256, 384,
// 512. SHA-1 only if the policy allows it. ok is false when the peer
// announced nothing usable.
func SelectHash(pub crypto.PublicKey, peer []HashAlgorithm, pol Policy) (h HashAlgorithm, ok bool) {
	var prefs []HashAlgorithm
	switch k := pub.(type) {
	case ed25519.PublicKey:
		prefs = []HashAlgorithm{HashIdentity}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			prefs = []HashAlgorithm{HashSHA384, HashSHA512, HashSHA256}
		case elliptic.P521():
			prefs = []HashAlgorithm{HashSHA512, HashSHA384, HashSHA256}
		default:
			prefs = []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512}
		}
	case *rsa.PublicKey:
		prefs = []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512}
	default:
		return 0, false
	}
	if pol.AllowSHA1 && !isEd25519(pub) {
		prefs = append(prefs, HashSHA1)
	}
	for _, want := range prefs {
		for _, have := range peer {
			if want == have {
				return want, true
			}
		}
	}
	return 0, false
}

func isEd25519(pub crypto.PublicKey) bool {
	_, ok := pub.(ed25519.PublicKey)
	return ok
}

// ChooseMethod picks the AUTH method for our key: Digital Signature
// (RFC 7427) with a hash the peer announced, or without its
// SIGNATURE_HASH_ALGORITHMS the key's own method: ECDSA 9-11 by curve,
// RSA method 1 only if SHA-1 is allowed. Ed25519 exists only in method 14.
func ChooseMethod(pub crypto.PublicKey, peerHashes []HashAlgorithm, pol Policy) (message.AuthMethod, HashAlgorithm, error) {
	if h, ok := SelectHash(pub, peerHashes, pol); ok {
		return message.AuthDigitalSignature, h, nil
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return message.AuthECDSAP256SHA256, HashSHA256, nil
		case elliptic.P384():
			return message.AuthECDSAP384SHA384, HashSHA384, nil
		case elliptic.P521():
			return message.AuthECDSAP521SHA512, HashSHA512, nil
		}
	case *rsa.PublicKey:
		if pol.AllowSHA1 {
			return message.AuthRSASignature, HashSHA1, nil
		}
		return 0, 0, fmt.Errorf("%w: the peer announced no SHA-2 hash for Digital Signature, and RSA method 1 needs SHA-1", ErrNotAllowed)
	case ed25519.PublicKey:
		return 0, 0, fmt.Errorf("%w: Ed25519 needs the peer to announce the Identity hash (RFC 8420)", ErrUnsupported)
	}
	return 0, 0, fmt.Errorf("%w: key type %T", ErrUnsupported, pub)
}

// ecdsaMethods maps RFC 4754's methods to their curve and hash.
var ecdsaMethods = map[message.AuthMethod]struct {
	curve elliptic.Curve
	hash  crypto.Hash
}{
	message.AuthECDSAP256SHA256: {elliptic.P256(), crypto.SHA256},
	message.AuthECDSAP384SHA384: {elliptic.P384(), crypto.SHA384},
	message.AuthECDSAP521SHA512: {elliptic.P521(), crypto.SHA512},
}

// Sign returns the Authentication Data of an AUTH payload with method m
// over octets (keymat's SignedOctets), signed by key. h is the hash for
// method 14 (from ChooseMethod); the other methods fix their own. rand is
// passed to the key; Go's RSA and ECDSA keys ignore it since Go 1.26 and
// use the system's generator.
func Sign(rand io.Reader, key Signer, m message.AuthMethod, h HashAlgorithm, octets []byte, pol Policy) ([]byte, error) {
	pub := key.Public()
	switch m {
	case message.AuthRSASignature:
		if !pol.AllowSHA1 {
			return nil, fmt.Errorf("%w: RSA method 1 signs with SHA-1", ErrNotAllowed)
		}
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("%w: method %s needs an RSA key, have %T", ErrUnsupported, m, pub)
		}
		return key.Sign(rand, digest(crypto.SHA1, octets), crypto.SHA1)
	case message.AuthECDSAP256SHA256, message.AuthECDSAP384SHA384, message.AuthECDSAP521SHA512:
		want := ecdsaMethods[m]
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != want.curve {
			return nil, fmt.Errorf("%w: method %s needs an ECDSA %s key", ErrUnsupported, m, want.curve.Params().Name)
		}
		der, err := key.Sign(rand, digest(want.hash, octets), want.hash)
		if err != nil {
			return nil, err
		}
		return derToRS(der, coordLen(want.curve))
	case message.AuthDigitalSignature:
		alg, err := signingAlg(pub, h, pol)
		if err != nil {
			return nil, err
		}
		algID, err := alg.marshal()
		if err != nil {
			return nil, err
		}
		var sig []byte
		switch alg.scheme {
		case schemeEd25519:
			sig, err = key.Sign(rand, octets, crypto.Hash(0))
		case schemeRSAPSS:
			sig, err = key.Sign(rand, digest(alg.hash, octets), &rsa.PSSOptions{SaltLength: alg.salt, Hash: alg.hash})
		default:
			sig, err = key.Sign(rand, digest(alg.hash, octets), alg.hash)
		}
		if err != nil {
			return nil, err
		}
		return message.AppendDigitalSignature(nil, algID, sig)
	}
	return nil, fmt.Errorf("%w: method %s does not sign", ErrUnsupported, m)
}

// signingAlg is the RFC 7427 scheme for our key and the chosen hash.
func signingAlg(pub crypto.PublicKey, h HashAlgorithm, pol Policy) (sigAlg, error) {
	ch, ok := h.crypto()
	if !ok {
		return sigAlg{}, fmt.Errorf("%w: hash %s", ErrUnsupported, h)
	}
	if h == HashSHA1 && !pol.AllowSHA1 {
		return sigAlg{}, fmt.Errorf("%w: SHA-1 signatures", ErrNotAllowed)
	}
	switch pub.(type) {
	case ed25519.PublicKey:
		if h != HashIdentity {
			return sigAlg{}, fmt.Errorf("%w: Ed25519 signs with the Identity hash, not %s", ErrUnsupported, h)
		}
		return sigAlg{scheme: schemeEd25519}, nil
	case *ecdsa.PublicKey:
		if h == HashIdentity {
			return sigAlg{}, fmt.Errorf("%w: ECDSA needs a hash", ErrUnsupported)
		}
		return sigAlg{scheme: schemeECDSA, hash: ch}, nil
	case *rsa.PublicKey:
		if h == HashIdentity {
			return sigAlg{}, fmt.Errorf("%w: RSA needs a hash", ErrUnsupported)
		}
		if pol.RSAPKCS1v15 {
			return sigAlg{scheme: schemeRSAPKCS1, hash: ch}, nil
		}
		return sigAlg{scheme: schemeRSAPSS, hash: ch, salt: ch.Size()}, nil
	}
	return sigAlg{}, fmt.Errorf("%w: key type %T", ErrUnsupported, pub)
}

// Verify checks a peer's signature AUTH payload (method m, data) over
// octets with the peer's public key, normally from its verified
// certificate (VerifyPeerCertificates). An RSA key below MinRSABits is
// refused (ErrNotAllowed) before any signature check. Shared-key and NULL
// payloads go to VerifySharedKey and VerifyNull instead.
func Verify(pub crypto.PublicKey, m message.AuthMethod, data, octets []byte, pol Policy) error {
	switch m {
	case message.AuthRSASignature:
		if !pol.AllowSHA1 {
			return fmt.Errorf("%w: RSA method 1 (SHA-1)", ErrNotAllowed)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: method %s with a %T key", ErrAuthFailed, m, pub)
		}
		if err := checkPeerRSA(k); err != nil {
			return err
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA1, digest(crypto.SHA1, octets), data) != nil {
			return ErrAuthFailed
		}
		return nil
	case message.AuthECDSAP256SHA256, message.AuthECDSAP384SHA384, message.AuthECDSAP521SHA512:
		want := ecdsaMethods[m]
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != want.curve {
			return fmt.Errorf("%w: method %s needs an ECDSA %s key, have %T", ErrAuthFailed, m, want.curve.Params().Name, pub)
		}
		n := coordLen(want.curve)
		if len(data) != 2*n {
			return fmt.Errorf("%w: %s signature of %d octets, want %d", ErrAuthFailed, m, len(data), 2*n)
		}
		r, s := new(big.Int).SetBytes(data[:n]), new(big.Int).SetBytes(data[n:])
		if !ecdsa.Verify(k, digest(want.hash, octets), r, s) {
			return ErrAuthFailed
		}
		return nil
	case message.AuthDigitalSignature:
		return verifyDigitalSignature(pub, data, octets, pol)
	case message.AuthSharedKey, message.AuthNull:
		return fmt.Errorf("%w: method %s is not a signature", ErrUnsupported, m)
	}
	return fmt.Errorf("%w: method %s", ErrUnsupported, m)
}

func verifyDigitalSignature(pub crypto.PublicKey, data, octets []byte, pol Policy) error {
	algID, sig, err := message.SplitDigitalSignature(data)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuthFailed, err)
	}
	alg, err := parseSigAlg(algID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if alg.hash == crypto.SHA1 && !pol.AllowSHA1 {
		return fmt.Errorf("%w: SHA-1 signature", ErrNotAllowed)
	}
	switch alg.scheme {
	case schemeEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%w: Ed25519 signature with a %T key", ErrAuthFailed, pub)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, octets, sig) {
			return ErrAuthFailed
		}
		return nil
	case schemeECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ECDSA signature with a %T key", ErrAuthFailed, pub)
		}
		if !ecdsa.VerifyASN1(k, digest(alg.hash, octets), sig) {
			return ErrAuthFailed
		}
		return nil
	case schemeRSAPKCS1, schemeRSAPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: RSA signature with a %T key", ErrAuthFailed, pub)
		}
		if err := checkPeerRSA(k); err != nil {
			return err
		}
		d := digest(alg.hash, octets)
		if alg.scheme == schemeRSAPKCS1 {
			err = rsa.VerifyPKCS1v15(k, alg.hash, d, sig)
		} else {
			err = rsa.VerifyPSS(k, alg.hash, d, sig, &rsa.PSSOptions{SaltLength: alg.salt, Hash: alg.hash})
		}
		if err != nil {
			return ErrAuthFailed
		}
		return nil
	}
	return fmt.Errorf("%w: signature scheme %d", ErrUnsupported, alg.scheme)
}

// checkPeerRSA refuses a peer's RSA key below MinRSABits, the bar our own
// keys must pass when loaded: a signature by a key that small proves
// little about who made it.
func checkPeerRSA(k *rsa.PublicKey) error {
	if bits := k.N.BitLen(); bits < MinRSABits {
		return fmt.Errorf("%w: the peer's RSA key has %d bits; at least %d are required", ErrNotAllowed, bits, MinRSABits)
	}
	return nil
}

func digest(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}

func coordLen(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }

// derToRS turns an ASN.1 Ecdsa-Sig-Value into RFC 4754's r|s, each
// left-padded to the curve's coordinate length.
func derToRS(der []byte, n int) ([]byte, error) {
	r, s, ok := parseECDSASig(der)
	if !ok || len(r) > n || len(s) > n {
		return nil, errors.New("auth: malformed ECDSA signature from the key")
	}
	out := make([]byte, 2*n)
	copy(out[n-len(r):n], r)
	copy(out[2*n-len(s):], s)
	return out, nil
}

// parseECDSASig reads a DER Ecdsa-Sig-Value strictly (minimal integers,
// nothing trailing) and returns r and s as unsigned big-endian octets;
// ok is false for negative values.
func parseECDSASig(der []byte) (r, s []byte, ok bool) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var rb, sb big.Int
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&rb) || !seq.ReadASN1Integer(&sb) || !seq.Empty() ||
		rb.Sign() < 0 || sb.Sign() < 0 {
		return nil, nil, false
	}
	return rb.Bytes(), sb.Bytes(), true
}

// SharedKeyData is the AUTH data for shared-key authentication
// (RFC 7296 §2.15) with the connection's pre-shared secret.
func SharedKeyData(prf keymat.PRF, secret, octets []byte) ([]byte, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: empty pre-shared key")
	}
	return keymat.SharedKeyAuth(prf, secret, octets), nil
}

// VerifySharedKey checks a peer's shared-key AUTH data in constant time.
func VerifySharedKey(prf keymat.PRF, secret, octets, data []byte) error {
	want, err := SharedKeyData(prf, secret, octets)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, data) != 1 {
		return ErrAuthFailed
	}
	return nil
}

// NullData is the AUTH data for NULL authentication (RFC 7619 §2.1): the
// shared-key computation keyed with SK_pi for the initiator's AUTH and
// SK_pr for the responder's. initiator says whose AUTH it is.
func NullData(k *keymat.IKEKeys, initiator bool, octets []byte, pol Policy) ([]byte, error) {
	if !pol.AllowNull {
		return nil, fmt.Errorf("%w: NULL authentication", ErrNotAllowed)
	}
	key := k.SKpr
	if initiator {
		key = k.SKpi
	}
	return keymat.SharedKeyAuth(k.PRF, key, octets), nil
}

// VerifyNull checks a NULL AUTH payload; initiator says whether the peer
// that sent it is the original initiator.
func VerifyNull(k *keymat.IKEKeys, initiator bool, octets, data []byte, pol Policy) error {
	want, err := NullData(k, initiator, octets, pol)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, data) != 1 {
		return ErrAuthFailed
	}
	return nil
}
