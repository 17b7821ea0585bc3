// Package cmac implements AES-CMAC (RFC 4493, NIST SP 800-38B) and
// AES-CMAC-PRF-128 (RFC 4615).
//
// IPsec uses AES-CMAC-96 (RFC 4494) for ESP and AH integrity; it is the
// first 12 octets of the 16-octet tag, and callers truncate. IKEv2 uses
// AES-CMAC-PRF-128 as a PRF (RFC 4615 §3).
package cmac

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"

	"github.com/bitw-dev/bitw/crypto/internal/cbcmac"
)

// Size is the tag size in octets.
const Size = cbcmac.BlockSize

// BlockSize is the cipher block size in octets.
const BlockSize = cbcmac.BlockSize

// MAC is a streaming AES-CMAC. It implements hash.Hash; Write, Sum into a
// slice with spare capacity, and Reset do not allocate. Like any
// hash.Hash, a MAC is for one goroutine at a time.
type MAC struct {
	s cbcmac.State
}

// New returns a CMAC keyed by b, which must have a 16-octet block (any AES
// key size works).
func New(b cipher.Block) (*MAC, error) {
	if b.BlockSize() != BlockSize {
		return nil, errors.New("cmac: cipher block size must be 16 octets")
	}
	k1, k2 := subkeys(b)
	m := new(MAC)
	m.s.Init(b, k1, k2)
	return m, nil
}

// NewPRF128 returns AES-CMAC-PRF-128 keyed by key of any length (RFC 4615
// §3): a key that is not 16 octets is first replaced by
// AES-CMAC(0^128, key).
func NewPRF128(key []byte) (*MAC, error) {
	var k [16]byte
	if len(key) == len(k) {
		copy(k[:], key)
	} else {
		zero, err := aes.NewCipher(k[:])
		if err != nil {
			return nil, err
		}
		m, err := New(zero)
		if err != nil {
			return nil, err
		}
		m.Write(key)
		m.Sum(k[:0])
	}
	b, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return New(b)
}

// subkeys derives K1 and K2 (RFC 4493 §2.3): L = E(K, 0^128), K1 = dbl(L),
// K2 = dbl(K1).
func subkeys(b cipher.Block) (k1, k2 [BlockSize]byte) {
	var l [BlockSize]byte
	b.Encrypt(l[:], l[:])
	k1 = dbl(l)
	k2 = dbl(k1)
	return k1, k2
}

// dbl multiplies by x in GF(2^128) with the polynomial x^128+x^7+x^2+x+1:
// a left shift, and Rb = 0x87 folded in when the top bit falls off. The
// fold uses a mask, not a branch, so timing does not depend on the key.
func dbl(in [BlockSize]byte) (out [BlockSize]byte) {
	carry := in[0] >> 7
	for i := 0; i < BlockSize-1; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[BlockSize-1] = in[BlockSize-1]<<1 ^ (0x87 & -carry)
	return out
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
