// Package xcbc implements AES-XCBC-MAC (RFC 3566) and AES-XCBC-PRF-128
// (RFC 4434).
//
// IPsec uses AES-XCBC-MAC-96 (RFC 3566) for ESP and AH integrity; it
// is the first 12 octets of the 16-octet tag, and callers truncate. IKEv2
// uses AES-XCBC-PRF-128 as a PRF (RFC 4434, RFC 7296 §2.13).
package xcbc

import (
	"crypto/aes"
	"errors"

	"github.com/bitw-dev/bitw/crypto/internal/cbcmac"
)

// KeySize is the AES-XCBC-MAC key size in octets: RFC 3566 defines it for
// AES-128 only.
const KeySize = 16

// Size is the tag size in octets.
const Size = cbcmac.BlockSize

// BlockSize is the cipher block size in octets.
const BlockSize = cbcmac.BlockSize

// MAC is a streaming AES-XCBC-MAC. It implements hash.Hash; Write, Sum
// into a slice with spare capacity, and Reset do not allocate. Like any
// hash.Hash, a MAC is for one goroutine at a time.
type MAC struct {
	s cbcmac.State
}

// New returns AES-XCBC-MAC keyed by a 16-octet key.
func New(key []byte) (*MAC, error) {
	if len(key) != KeySize {
		return nil, errors.New("xcbc: key must be 16 octets (RFC 3566 §4)")
	}
	k, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// RFC 3566 §4 step 1: K1, K2 and K3 are the encryptions of the
	// constant blocks 0x01..., 0x02... and 0x03... under K. K1 keys the
	// chain; K2 masks a complete last block and K3 a padded one.
	var k1, k2, k3 [BlockSize]byte
	for i := range BlockSize {
		k1[i], k2[i], k3[i] = 0x01, 0x02, 0x03
	}
	k.Encrypt(k1[:], k1[:])
	k.Encrypt(k2[:], k2[:])
	k.Encrypt(k3[:], k3[:])
	b, err := aes.NewCipher(k1[:])
	if err != nil {
		return nil, err
	}
	m := new(MAC)
	m.s.Init(b, k2, k3)
	return m, nil
}

// NewPRF128 returns AES-XCBC-PRF-128 keyed by key of any length (RFC 4434
// §2): a shorter key is padded with zero octets, a longer one is replaced
// by AES-XCBC-MAC(0^128, key).
func NewPRF128(key []byte) (*MAC, error) {
	var k [KeySize]byte
	if len(key) <= KeySize {
		copy(k[:], key)
	} else {
		m, err := New(k[:])
		if err != nil {
			return nil, err
		}
		m.Write(key)
		m.Sum(k[:0])
	}
	return New(k[:])
}

// Write absorbs p. It never returns an error.
func (m *MAC) Write(p []byte) (int, error) { return m.s.Write(p) }

// Sum appends the 16-octet tag to in without changing the state.
func (m *MAC) Sum(in []byte) []byte { return m.s.Sum(in) }

// Reset forgets the input written so far; the key stays.
func (m *MAC) Reset() { m.s.Reset() }

// Size returns the tag size, 16.
func (m *MAC) Size() int { return Size }

// BlockSize returns the cipher block size, 16.
func (m *MAC) BlockSize() int { return BlockSize }
