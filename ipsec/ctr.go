package ipsec

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
)

// ctrBatch is how many counter blocks xorCTR encrypts before it XORs
// their keystream into the packet: enough that each XOR call covers a
// good run of octets and that the counters of a batch are written well
// before the cipher reads them, few enough to keep each work slot small.
const ctrBatch = 8

// ctrScratch is one work slot's AES-CTR working space. It lives on the
// heap with the slot, not on the stack, because slices passed to
// cipher.Block.Encrypt escape and a stack array would be allocated on
// every packet; that allocation is what cipher.NewCTR costs per packet.
type ctrScratch struct {
	blocks [ctrBatch * aes.BlockSize]byte // counter blocks
	stream [ctrBatch * aes.BlockSize]byte // their encryption: the keystream
}

// xorCTR encrypts or decrypts p in place with AES-CTR as ESP uses it
// (RFC 3686 §4): the keystream is the encryption of the counter blocks
// nonce || IV || counter, the 32-bit big-endian counter starting at 1,
// with the 4-octet nonce from the keying material (c.salt).
//
// It composes Go's AES block cipher instead of calling cipher.NewCTR,
// which allocates a stream per packet. Following crypto/ccm, everything
// the cipher reads is written well before it reads it: the counter
// blocks of a batch are filled (nonce and IV once per packet, then only
// the counter) before the first of them is encrypted, and the XOR goes
// through subtle.XORBytes, whose wide stores a later load can take from
// the store buffer. An ESP packet has at most 2^12 blocks, far below the
// 2^32 the counter holds.
func (c *espCipher) xorCTR(p, iv []byte, hint uint32) {
	w := c.work.get(hint)
	s := w.ctr
	for j := 0; j < ctrBatch; j++ {
		b := (*[aes.BlockSize]byte)(s.blocks[j*aes.BlockSize:])
		*(*[4]byte)(b[0:4]) = c.salt
		*(*[8]byte)(b[4:12]) = [8]byte(iv)
	}
	ctr := uint32(1)
	for len(p) > 0 {
		n := min(len(p), len(s.stream))
		blocks := (n + aes.BlockSize - 1) / aes.BlockSize
		for j := 0; j < blocks; j++ {
			binary.BigEndian.PutUint32(s.blocks[j*aes.BlockSize+12:], ctr)
			ctr++
		}
		for j := 0; j < blocks; j++ {
			lo, hi := j*aes.BlockSize, (j+1)*aes.BlockSize
			c.block.Encrypt(s.stream[lo:hi], s.blocks[lo:hi])
		}
		subtle.XORBytes(p[:n], p[:n], s.stream[:n])
		p = p[n:]
	}
	w.put()
}
