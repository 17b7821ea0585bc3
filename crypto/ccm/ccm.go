// Package ccm implements AES-CCM, Counter with CBC-MAC (RFC 3610, NIST SP
// 800-38C), as a cipher.AEAD.
//
// ESP (RFC 4309) and IKEv2 (RFC 5282) use an 11-octet nonce (a 3-octet
// salt from the key material and the 8-octet IV carried in the packet)
// with 8-, 12- or 16-octet tags.
//
// Seal and Open work in place and, when dst has room, allocate nothing.
package ccm

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math"
	"sync"
)

const blockSize = 16

// batchBlocks is how many counter blocks crypt prepares at a time: enough
// that each is written well before the cipher reads it and that sealing
// XORs the keystream in one call per batch, few enough to keep the AEAD's
// scratch space small.
const batchBlocks = 8

var errOpen = errors.New("ccm: message authentication failed")

type ccm struct {
	b         cipher.Block
	tagSize   int
	nonceSize int
	// maxLen is the longest message the L-octet length field can express
	// (RFC 3610 §2.1: l(m) < 2^(8L)).
	maxLen uint64

	// mu guards the scratch below. The scratch lives in the struct, not
	// on the stack, because slices passed to cipher.Block.Encrypt escape
	// and would be allocated per call. Two goroutines sharing scratch
	// would mix keystreams across nonces, so calls are serialized.
	mu  sync.Mutex
	mac [blockSize]byte               // CBC-MAC chaining value
	s0  [blockSize]byte               // E(A_0), which masks the tag
	ctr [batchBlocks * blockSize]byte // counter blocks A_i
	ks  [batchBlocks * blockSize]byte // keystream E(A_i)
	tag [blockSize]byte               // received tag, copied before output may overwrite it
}

// New returns CCM over b, which must have a 16-octet block. tagSize (M in
// RFC 3610) must be 4, 6, 8, 10, 12, 14 or 16 and nonceSize 7 to 13; the
// length field then has L = 15 - nonceSize octets.
//
// The AEAD keeps scratch space in itself to stay allocation-free, so
// concurrent calls on one AEAD are serialized; give each worker its own
// AEAD for parallelism.
func New(b cipher.Block, tagSize, nonceSize int) (cipher.AEAD, error) {
	if b.BlockSize() != blockSize {
		return nil, errors.New("ccm: cipher block size must be 16 octets")
	}
	if tagSize < 4 || tagSize > 16 || tagSize%2 != 0 {
		return nil, errors.New("ccm: tag size must be 4, 6, 8, 10, 12, 14 or 16 octets")
	}
	if nonceSize < 7 || nonceSize > 13 {
		return nil, errors.New("ccm: nonce size must be 7 to 13 octets")
	}
	c := &ccm{b: b, tagSize: tagSize, nonceSize: nonceSize, maxLen: ^uint64(0)}
	if l := 15 - nonceSize; l < 8 {
		c.maxLen = 1<<(8*l) - 1
	}
	return c, nil
}

func (c *ccm) NonceSize() int { return c.nonceSize }
func (c *ccm) Overhead() int  { return c.tagSize }

func (c *ccm) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != c.nonceSize {
		panic("ccm: incorrect nonce length given to CCM")
	}
	if uint64(len(plaintext)) > c.maxLen {
		panic("ccm: message too long for the nonce size")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+c.tagSize)
	if inexactOverlap(out, plaintext) {
		panic("ccm: invalid buffer overlap")
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	c.start(nonce, len(plaintext), additionalData)
	c.crypt(out[:len(plaintext)], plaintext, true)
	for i := range c.tagSize {
		out[len(plaintext)+i] = c.mac[i] ^ c.s0[i]
	}
	return ret
}

func (c *ccm) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != c.nonceSize {
		panic("ccm: incorrect nonce length given to CCM")
	}
	if len(ciphertext) < c.tagSize || uint64(len(ciphertext)-c.tagSize) > c.maxLen {
		return nil, errOpen
	}
	n := len(ciphertext) - c.tagSize
	ret, out := sliceForAppend(dst, n)
	if inexactOverlap(out, ciphertext) {
		panic("ccm: invalid buffer overlap")
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	copy(c.tag[:], ciphertext[n:])
	c.start(nonce, n, additionalData)
	c.crypt(out, ciphertext[:n], false)
	for i := range c.tagSize {
		c.mac[i] ^= c.s0[i]
	}
	if subtle.ConstantTimeCompare(c.mac[:c.tagSize], c.tag[:c.tagSize]) != 1 {
		// Release nothing of an unauthenticated message.
		clear(out)
		clear(c.ks[:])
		return nil, errOpen
	}
	return ret, nil
}

// start computes E(A_0) into s0, loads the counter blocks with the nonce,
// and runs the CBC-MAC over B_0 and the encoded additional data (RFC 3610
// §2.2).
func (c *ccm) start(nonce []byte, msgLen int, aad []byte) {
	l := 15 - c.nonceSize

	// A_i (RFC 3610 §2.3):
	//  octet 0: Flags = L' = L-1
	//  octets 1 .. 15-L: Nonce
	//  octets 16-L .. 15: counter i
	for j := range batchBlocks {
		a := c.ctr[j*blockSize : (j+1)*blockSize]
		a[0] = byte(l - 1)
		copy(a[1:], nonce)
		clear(a[1+c.nonceSize:])
	}
	c.b.Encrypt(c.s0[:], c.ctr[:blockSize])

	// B_0 (RFC 3610 §2.2):
	//  octet 0: Flags = 64*Adata + 8*M' + L', M' = (M-2)/2, L' = L-1
	//  octets 1 .. 15-L: Nonce
	//  octets 16-L .. 15: l(m)
	flags := byte((c.tagSize-2)/2)<<3 | byte(l-1)
	if len(aad) > 0 {
		flags |= 1 << 6
	}
	c.mac[0] = flags
	copy(c.mac[1:], nonce)
	clear(c.mac[1+c.nonceSize:])
	putCounter(&c.mac, l, uint64(msgLen))
	c.b.Encrypt(c.mac[:], c.mac[:])

	if len(aad) == 0 {
		return
	}
	// l(a) is encoded in 2, 6 or 10 octets (RFC 3610 §2.2), then a, then
	// zeros up to a block boundary.
	var first [blockSize]byte
	var n int
	switch la := uint64(len(aad)); {
	case la < 1<<16-1<<8:
		binary.BigEndian.PutUint16(first[:], uint16(la))
		n = 2
	case la <= 1<<32-1:
		first[0], first[1] = 0xff, 0xfe
		binary.BigEndian.PutUint32(first[2:], uint32(la))
		n = 6
	default:
		first[0], first[1] = 0xff, 0xff
		binary.BigEndian.PutUint64(first[2:], la)
		n = 10
	}
	k := copy(first[n:], aad)
	subtle.XORBytes(c.mac[:], c.mac[:], first[:])
	c.b.Encrypt(c.mac[:], c.mac[:])
	c.macPadded(aad[k:])
}

// macPadded runs p through the CBC-MAC, zero-padded to a block boundary.
func (c *ccm) macPadded(p []byte) {
	for len(p) >= blockSize {
		subtle.XORBytes(c.mac[:], c.mac[:], p[:blockSize])
		c.b.Encrypt(c.mac[:], c.mac[:])
		p = p[blockSize:]
	}
	if len(p) > 0 {
		for i, v := range p {
			c.mac[i] ^= v
		}
		c.b.Encrypt(c.mac[:], c.mac[:])
	}
}

// crypt XORs src with the keystream E(A_1), E(A_2), ... into dst and runs
// the plaintext through the CBC-MAC: src when sealing, dst when opening.
// dst and src are the same length and overlap exactly or not at all.
//
// Two details keep this near the cost of the CBC-MAC chain alone:
//   - Each keystream block is encrypted next to a CBC-MAC step. It does
//     not depend on the chain, so the CPU overlaps the two.
//   - Everything the cipher reads is written with 16-octet stores
//     (subtle.XORBytes) or well ahead of time (the counter blocks, built a
//     batch at a time). A CPU cannot forward narrower stores into the
//     cipher's 16-octet load, and that stall on the chain costs more than
//     the XOR.
func (c *ccm) crypt(dst, src []byte, sealing bool) {
	l := 15 - c.nonceSize
	var i uint64 = 1
	for len(src) > 0 {
		n := min(len(src), len(c.ks))
		blocks := (n + blockSize - 1) / blockSize
		for j := range blocks {
			putCounter((*[blockSize]byte)(c.ctr[j*blockSize:]), l, i)
			i++
		}
		// The keystream runs one block ahead of its use, so that opening,
		// where the CBC-MAC needs the block just decrypted, does not wait
		// on a keystream encryption issued a moment before.
		c.b.Encrypt(c.ks[:blockSize], c.ctr[:blockSize])
		full := n / blockSize
		for j := range full {
			lo, hi := j*blockSize, (j+1)*blockSize
			if hi < blocks*blockSize {
				c.b.Encrypt(c.ks[hi:hi+blockSize], c.ctr[hi:hi+blockSize])
			}
			if sealing {
				subtle.XORBytes(c.mac[:], c.mac[:], src[lo:hi])
			} else {
				subtle.XORBytes(dst[lo:hi], src[lo:hi], c.ks[lo:hi])
				subtle.XORBytes(c.mac[:], c.mac[:], dst[lo:hi])
			}
			c.b.Encrypt(c.mac[:], c.mac[:])
		}
		if sealing {
			subtle.XORBytes(dst[:full*blockSize], src[:full*blockSize], c.ks[:full*blockSize])
		}
		if full < blocks {
			// The message's last, partial block: zero-padded for the MAC.
			lo := full * blockSize
			for k := lo; k < n; k++ {
				p := src[k]
				if !sealing {
					p ^= c.ks[k]
				}
				c.mac[k-lo] ^= p
				dst[k] = src[k] ^ c.ks[k]
			}
			c.b.Encrypt(c.mac[:], c.mac[:])
		}
		dst, src = dst[n:], src[n:]
	}
}

// putCounter writes v big-endian into the last l octets of block, which
// the caller has zeroed, and keeps v below 2^(8l). The common case (L >= 4
// as in ESP and IKE, v < 2^32) is then one 4-octet store.
func putCounter(block *[blockSize]byte, l int, v uint64) {
	if l >= 4 && v <= math.MaxUint32 {
		binary.BigEndian.PutUint32(block[blockSize-4:], uint32(v))
		return
	}
	for k := range l {
		block[blockSize-1-k] = byte(v >> (8 * k))
	}
}

// sliceForAppend extends in by n octets, reusing its capacity when it can,
// and returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}
