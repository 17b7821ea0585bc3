// Package cbcmac is the CBC-MAC core shared by AES-CMAC (RFC 4493, NIST
// SP 800-38B) and AES-XCBC-MAC (RFC 3566). Both chain every block but the
// last through the cipher; they differ only in the two masks XORed into the
// last block, one for a complete block and one for a block padded with
// 10* (RFC 4493 §2.4 step 4, RFC 3566 §4 steps 3a and 3b).
package cbcmac

import (
	"crypto/cipher"
	"crypto/subtle"
)

// BlockSize is the cipher block and tag size in octets.
const BlockSize = 16

// State is a streaming CBC-MAC with final-block masks. Its zero value is
// not usable; call Init. Like hash.Hash, a State is not safe for
// concurrent use.
type State struct {
	block    cipher.Block
	complete [BlockSize]byte // XORed into a complete last block
	padded   [BlockSize]byte // XORed into a padded last block
	x        [BlockSize]byte // chaining value
	// pending holds up to one block not yet chained: a full block may
	// turn out to be the last one, which is masked, so it waits for more
	// input before it is processed.
	pending [BlockSize]byte
	n       int
	// final is Sum's scratch. It lives here rather than on Sum's stack
	// because a slice passed to cipher.Block.Encrypt escapes, and a stack
	// array would then be allocated on every call.
	final [BlockSize]byte
}

// Init sets the cipher and the final-block masks and resets the state.
// b's block size must be BlockSize; callers check.
func (s *State) Init(b cipher.Block, complete, padded [BlockSize]byte) {
	s.block = b
	s.complete = complete
	s.padded = padded
	s.Reset()
}

// Reset forgets all input written so far.
func (s *State) Reset() {
	s.x = [BlockSize]byte{}
	s.pending = [BlockSize]byte{}
	s.n = 0
}

// Write absorbs p. It never fails; the signature is io.Writer's.
func (s *State) Write(p []byte) (int, error) {
	total := len(p)
	if s.n > 0 {
		c := copy(s.pending[s.n:], p)
		s.n += c
		p = p[c:]
		if len(p) == 0 {
			return total, nil
		}
		// More input follows, so the pending block is not the last.
		s.chain(s.pending[:])
		s.n = 0
	}
	// Chain whole blocks straight from p, keeping back the final one
	// (full or partial) in case it is the last.
	for len(p) > BlockSize {
		s.chain(p[:BlockSize])
		p = p[BlockSize:]
	}
	s.n = copy(s.pending[:], p)
	return total, nil
}

// Sum appends the 16-octet tag of the input so far to in. It does not
// change the state, so writing may continue afterwards.
func (s *State) Sum(in []byte) []byte {
	s.final = s.x
	if s.n == BlockSize {
		subtle.XORBytes(s.final[:], s.final[:], s.pending[:])
		subtle.XORBytes(s.final[:], s.final[:], s.complete[:])
	} else {
		// Pad with a single 1 bit and then zeros (RFC 4493 §2.4 padding,
		// RFC 3566 §4 step 3b).
		var last [BlockSize]byte
		copy(last[:], s.pending[:s.n])
		last[s.n] = 0x80
		subtle.XORBytes(s.final[:], s.final[:], last[:])
		subtle.XORBytes(s.final[:], s.final[:], s.padded[:])
	}
	s.block.Encrypt(s.final[:], s.final[:])
	return append(in, s.final[:]...)
}

// chain runs one block through the CBC chain. The XOR goes through
// subtle.XORBytes because it stores all 16 octets at once: the cipher then
// loads them straight from the store buffer, where two 8-octet stores
// written in Go would stall that load on every block of the chain.
func (s *State) chain(block []byte) {
	subtle.XORBytes(s.x[:], s.x[:], block[:BlockSize])
	s.block.Encrypt(s.x[:], s.x[:])
}
