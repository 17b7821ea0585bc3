package auth

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of the RFC 7427 AlgorithmIdentifiers (RFC 3279,
// RFC 4055, RFC 5758, RFC 8410).
var (
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA2 = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA256: {1, 2, 840, 10045, 4, 3, 2},
		crypto.SHA384: {1, 2, 840, 10045, 4, 3, 3},
		crypto.SHA512: {1, 2, 840, 10045, 4, 3, 4},
	}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidHash    = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
	oidRSAWithHash = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   oidSHA1WithRSA,
		crypto.SHA256: oidSHA256WithRSA,
		crypto.SHA384: oidSHA384WithRSA,
		crypto.SHA512: oidSHA512WithRSA,
	}
)

// scheme is a signature scheme named by an AlgorithmIdentifier.
type scheme uint8

const (
	schemeRSAPKCS1 scheme = iota + 1 // RSASSA-PKCS1-v1_5
	schemeRSAPSS                     // RSASSA-PSS, MGF1 with the same hash
	schemeECDSA                      // ECDSA, Ecdsa-Sig-Value in DER
	schemeEd25519                    // PureEdDSA, RFC 8420
)

// sigAlg is a parsed or to-be-encoded AlgorithmIdentifier.
type sigAlg struct {
	scheme scheme
	hash   crypto.Hash // 0 for Ed25519, which signs the octets themselves
	salt   int         // RSASSA-PSS salt length
}

// marshal encodes the AlgorithmIdentifier as RFC 7427 Appendix A does
// for PKCS#1 and ECDSA. RSASSA-PSS parameters carry the hash, MGF1 with
// the same hash and the salt length, each hash AlgorithmIdentifier with
// NULL parameters as in A.4.3; the trailerField is left out, because it
// is DEFAULT 1 and DER omits defaults (RFC 4055 §3.1).
func (a sigAlg) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		switch a.scheme {
		case schemeRSAPKCS1:
			b.AddASN1ObjectIdentifier(oidRSAWithHash[a.hash])
			b.AddASN1NULL()
		case schemeECDSA:
			if a.hash == crypto.SHA1 {
				b.AddASN1ObjectIdentifier(oidECDSAWithSHA1)
			} else {
				b.AddASN1ObjectIdentifier(oidECDSAWithSHA2[a.hash])
			}
		case schemeEd25519:
			b.AddASN1ObjectIdentifier(oidEd25519)
		case schemeRSAPSS:
			b.AddASN1ObjectIdentifier(oidRSASSAPSS)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					addHashAlgID(b, a.hash)
				})
				b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						addHashAlgID(b, a.hash)
					})
				})
				b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(int64(a.salt))
				})
			})
		default:
			b.SetError(fmt.Errorf("auth: no AlgorithmIdentifier for scheme %d", a.scheme))
		}
	})
	return b.Bytes()
}

func addHashAlgID(b *cryptobyte.Builder, h crypto.Hash) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidHash[h])
		b.AddASN1NULL()
	})
}

var errAlgID = errors.New("auth: malformed or unsupported signature AlgorithmIdentifier")

// parseSigAlg reads an RFC 7427 AlgorithmIdentifier strictly: one
// SEQUENCE, nothing after it, parameters exactly as the scheme allows
// (NULL or absent for PKCS#1, absent for ECDSA and Ed25519).
func parseSigAlg(der []byte) (sigAlg, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) {
		return sigAlg{}, errAlgID
	}
	for h, o := range oidRSAWithHash {
		if oid.Equal(o) {
			if !readOptionalNULL(&seq) {
				return sigAlg{}, errAlgID
			}
			return sigAlg{scheme: schemeRSAPKCS1, hash: h}, nil
		}
	}
	if !oid.Equal(oidRSASSAPSS) && !seq.Empty() {
		return sigAlg{}, errAlgID
	}
	switch {
	case oid.Equal(oidECDSAWithSHA1):
		return sigAlg{scheme: schemeECDSA, hash: crypto.SHA1}, nil
	case oid.Equal(oidEd25519):
		return sigAlg{scheme: schemeEd25519}, nil
	case oid.Equal(oidRSASSAPSS):
		return parsePSSParams(seq)
	}
	for h, o := range oidECDSAWithSHA2 {
		if oid.Equal(o) {
			return sigAlg{scheme: schemeECDSA, hash: h}, nil
		}
	}
	return sigAlg{}, fmt.Errorf("%w: %v", errAlgID, oid)
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055 §3.1): every field has
// a default (SHA-1, MGF1 with SHA-1, salt 20, trailer 1). The mask
// generation hash must equal the message hash, which is all crypto/rsa
// implements, and the trailer field, if present, must be 1.
func parsePSSParams(seq cryptobyte.String) (sigAlg, error) {
	a := sigAlg{scheme: schemeRSAPSS, hash: crypto.SHA1, salt: 20}
	mgfHash := crypto.SHA1
	var params cryptobyte.String
	if !seq.ReadASN1(&params, cbasn1.SEQUENCE) || !seq.Empty() {
		return sigAlg{}, errAlgID
	}
	var field cryptobyte.String
	var present bool
	if !params.ReadOptionalASN1(&field, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return sigAlg{}, errAlgID
	}
	if present {
		h, err := readHashAlgID(&field)
		if err != nil || !field.Empty() {
			return sigAlg{}, errAlgID
		}
		a.hash = h
	}
	if !params.ReadOptionalASN1(&field, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return sigAlg{}, errAlgID
	}
	if present {
		var mgf cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !field.ReadASN1(&mgf, cbasn1.SEQUENCE) || !field.Empty() || !mgf.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidMGF1) {
			return sigAlg{}, errAlgID
		}
		h, err := readHashAlgID(&mgf)
		if err != nil || !mgf.Empty() {
			return sigAlg{}, errAlgID
		}
		mgfHash = h
	}
	if !params.ReadOptionalASN1(&field, &present, cbasn1.Tag(2).ContextSpecific().Constructed()) {
		return sigAlg{}, errAlgID
	}
	if present {
		var salt int64
		if !field.ReadASN1Int64WithTag(&salt, cbasn1.INTEGER) || !field.Empty() || salt < 1 || salt > 1024 {
			return sigAlg{}, errAlgID
		}
		a.salt = int(salt)
	}
	if !params.ReadOptionalASN1(&field, &present, cbasn1.Tag(3).ContextSpecific().Constructed()) {
		return sigAlg{}, errAlgID
	}
	if present {
		var trailer int64
		if !field.ReadASN1Int64WithTag(&trailer, cbasn1.INTEGER) || !field.Empty() || trailer != 1 {
			return sigAlg{}, errAlgID
		}
	}
	if !params.Empty() || mgfHash != a.hash {
		return sigAlg{}, errAlgID
	}
	return a, nil
}

// readHashAlgID reads a hash AlgorithmIdentifier whose parameters are
// NULL or absent (RFC 4055 §2.1 allows both).
func readHashAlgID(s *cryptobyte.String) (crypto.Hash, error) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return 0, errAlgID
	}
	if !readOptionalNULL(&seq) {
		return 0, errAlgID
	}
	for h, o := range oidHash {
		if oid.Equal(o) {
			return h, nil
		}
	}
	return 0, errAlgID
}

// readOptionalNULL consumes the rest of s, which must be empty or one
// NULL with no content.
func readOptionalNULL(s *cryptobyte.String) bool {
	if s.Empty() {
		return true
	}
	var null cryptobyte.String
	return s.ReadASN1(&null, cbasn1.NULL) && null.Empty() && s.Empty()
}
