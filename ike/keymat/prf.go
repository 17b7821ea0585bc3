// Package keymat derives and uses the key material of IKEv2 SAs:
//
//   - the negotiated pseudorandom function: HMAC-SHA1 and HMAC-SHA2
//     (RFC 2104, RFC 4868), AES-XCBC-PRF-128 (RFC 4434) and
//     AES-CMAC-PRF-128 (RFC 4615), and prf+ (RFC 7296 §2.13);
//   - SKEYSEED and SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr
//     (RFC 7296 §2.14), their update after each additional key exchange in
//     IKE_INTERMEDIATE (RFC 9370 §2.2.2), IKE SA rekeying (RFC 7296 §2.18,
//     RFC 9370 §2.2.4) and Child SA KEYMAT (RFC 7296 §2.17);
//   - the ciphers of the Encrypted payload (message.Cipher): AES-CBC and
//     AES-CTR (RFC 5930) with an integrity transform, AES-GCM and AES-CCM
//     (RFC 5282), ChaCha20-Poly1305 (RFC 7634);
//   - the octets the AUTH payload covers and the shared-key AUTH value
//     (RFC 7296 §2.15), with the IKE_INTERMEDIATE IntAuth chain
//     (RFC 9242 §3.3.2).
//
// Transform IDs and key lengths come from ipsec/proposal. Nothing here
// keeps package-level mutable state; randomness is injected.
package keymat

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/bitw-dev/bitw/crypto/cmac"
	"github.com/bitw-dev/bitw/crypto/xcbc"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// PRF is a negotiated IKEv2 pseudorandom function. The zero value is not
// usable; get one from NewPRF. A PRF holds no key and no state, so one
// value serves any number of goroutines.
type PRF struct {
	id      proposal.PRFID
	info    proposal.PRFInfo
	newHash func() hash.Hash // nil for the AES-based PRFs
}

// NewPRF returns the PRF for a transform ID. It does not apply the device
// policy (SHA-1 is legacy): proposal.Suite.Check does, before any keys are
// derived.
func NewPRF(id proposal.PRFID) (PRF, error) {
	info, ok := id.Info()
	if !ok {
		return PRF{}, fmt.Errorf("keymat: unsupported PRF %s", id)
	}
	p := PRF{id: id, info: info}
	switch id {
	case proposal.PRFHMACSHA1:
		p.newHash = sha1.New
	case proposal.PRFHMACSHA256:
		p.newHash = sha256.New
	case proposal.PRFHMACSHA384:
		p.newHash = sha512.New384
	case proposal.PRFHMACSHA512:
		p.newHash = sha512.New
	case proposal.PRFAES128XCBC, proposal.PRFAES128CMAC:
	default:
		return PRF{}, fmt.Errorf("keymat: unsupported PRF %s", id)
	}
	return p, nil
}

// ID is the transform ID.
func (p PRF) ID() proposal.PRFID { return p.id }

// Size is the output length in octets.
func (p PRF) Size() int { return p.info.OutLen }

// KeyLen is the preferred key length: the length of SK_d, SK_pi and SK_pr
// (RFC 7296 §2.14).
func (p PRF) KeyLen() int { return p.info.KeyLen }

// aesBased reports the two PRFs that RFC 7296 §2.14 treats specially.
func (p PRF) aesBased() bool { return p.newHash == nil }

// Compute returns prf(key, data[0] | data[1] | ...). Any key length works:
// HMAC hashes long keys (RFC 2104 §2); the AES PRFs pad or compress keys
// that are not 16 octets (RFC 4434 §2, RFC 4615 §3).
func (p PRF) Compute(key []byte, data ...[]byte) []byte {
	m := p.keyed(key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(make([]byte, 0, p.Size()))
}

func (p PRF) keyed(key []byte) hash.Hash {
	var (
		m   hash.Hash
		err error
	)
	switch {
	case p.newHash != nil:
		return hmac.New(p.newHash, key)
	case p.id == proposal.PRFAES128XCBC:
		m, err = xcbc.NewPRF128(key)
	case p.id == proposal.PRFAES128CMAC:
		m, err = cmac.NewPRF128(key)
	default:
		panic("keymat: PRF used before NewPRF")
	}
	if err != nil {
		// Both take a key of any length and only build AES-128 from 16
		// octets, which cannot fail.
		panic("keymat: " + err.Error())
	}
	return m
}

// ErrPlusTooLong means prf+ was asked for more than 255 blocks: its
// one-octet counter would wrap (RFC 7296 §2.13).
var ErrPlusTooLong = errors.New("keymat: prf+ output longer than 255 PRF blocks")

// Plus returns the first n octets of prf+(key, seed[0] | seed[1] | ...)
// (RFC 7296 §2.13):
//
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	...
func (p PRF) Plus(key []byte, n int, seed ...[]byte) ([]byte, error) {
	size := p.Size()
	if n < 0 || n > 255*size {
		return nil, ErrPlusTooLong
	}
	out := make([]byte, 0, (n+size-1)/size*size)
	m := p.keyed(key)
	var prev []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(prev)
		for _, s := range seed {
			m.Write(s)
		}
		m.Write([]byte{byte(i)})
		start := len(out)
		out = m.Sum(out)
		prev = out[start:]
	}
	return out[:n], nil
}
