package keymat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/bitw-dev/bitw/crypto/ccm"
	"github.com/bitw-dev/bitw/crypto/cmac"
	"github.com/bitw-dev/bitw/crypto/xcbc"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// ErrOpen is the single error Open returns, whatever failed: a wrong
// length, a bad ICV or tag. Telling them apart would help an attacker and
// not the operator (RFC 7296 §2.21.1 says to drop such messages).
var ErrOpen = errors.New("keymat: Encrypted payload failed its integrity check")

// ErrIVExhausted means a counter-mode key has sealed 2^64-1 messages; the
// IKE SA must be rekeyed before it can send again.
var ErrIVExhausted = errors.New("keymat: IV counter exhausted; rekey the IKE SA")

// Ciphers returns the Encrypted payload ciphers of this generation, as
// seen by one side: out seals what we send, in opens what we receive.
// Messages from the original initiator use SK_ei and SK_ai, the others
// SK_er and SK_ar (RFC 7296 §2.14). rand feeds the random IVs of AES-CBC;
// the counter modes take their IVs from counters that live in k, so
// calling Ciphers again never repeats an IV.
//
// A Cipher is for one goroutine at a time (the IKE goroutine).
func (k *IKEKeys) Ciphers(initiator bool, rand io.Reader) (out, in message.Cipher, err error) {
	i2r, err := newCipher(k.Suite, k.SKei, k.SKai, rand, &k.ivI2R)
	if err != nil {
		return nil, nil, err
	}
	r2i, err := newCipher(k.Suite, k.SKer, k.SKar, rand, &k.ivR2I)
	if err != nil {
		return nil, nil, err
	}
	if initiator {
		return i2r, r2i, nil
	}
	return r2i, i2r, nil
}

// NewCipher returns the Encrypted payload cipher for one direction from
// raw key bytes: encKey is SK_ei (or SK_er) with any salt, integKey SK_ai
// (or SK_ar), nil for combined-mode ciphers. rand feeds AES-CBC IVs.
//
// Each call starts a new IV counter, and two Ciphers sealing under one
// key would repeat IVs: make exactly one per key and direction. Prefer
// IKEKeys.Ciphers, which keeps the counters with the keys.
func NewCipher(s proposal.Suite, encKey, integKey []byte, rand io.Reader) (message.Cipher, error) {
	return newCipher(s, encKey, integKey, rand, new(ivCounter))
}

func newCipher(s proposal.Suite, encKey, integKey []byte, rand io.Reader, ctr *ivCounter) (message.Cipher, error) {
	info, ok := s.Encr.ID.Info()
	if !ok {
		return nil, fmt.Errorf("keymat: unsupported encryption %s", s.Encr.ID)
	}
	if want, err := encrKeyLen(s); err != nil {
		return nil, err
	} else if len(encKey) != want {
		return nil, fmt.Errorf("keymat: %s key is %d octets, want %d", s.Encr.ID, len(encKey), want)
	}
	if info.AEAD != (s.Integ == proposal.IntegNone) {
		return nil, fmt.Errorf("keymat: %s with integrity %s", s.Encr.ID, s.Integ)
	}
	aesKey := encKey[:len(encKey)-info.SaltLen]
	salt := encKey[len(encKey)-info.SaltLen:]
	switch s.Encr.ID {
	case proposal.EncrAESCBC, proposal.EncrAESCTR:
		block, err := aes.NewCipher(aesKey)
		if err != nil {
			return nil, err
		}
		mac, err := newInteg(s.Integ, integKey)
		if err != nil {
			return nil, err
		}
		if s.Encr.ID == proposal.EncrAESCBC {
			if rand == nil {
				return nil, errors.New("keymat: AES-CBC needs a random source for its IVs")
			}
			return &cbcCipher{block: block, mac: mac, rand: rand}, nil
		}
		c := &ctrCipher{block: block, mac: mac, ctr: ctr}
		copy(c.counter[:4], salt) // RFC 3686 §4: nonce | IV | block counter
		return c, nil
	case proposal.EncrAESGCM8, proposal.EncrAESGCM12, proposal.EncrAESGCM16:
		block, err := aes.NewCipher(aesKey)
		if err != nil {
			return nil, err
		}
		c := &aeadCipher{tagLen: info.ICVLen, ctr: ctr, block: block}
		if info.ICVLen < 12 {
			// crypto/cipher's GCM stops at 12-octet tags. A shorter tag
			// is the leading octets of the full one (SP 800-38D §5.2.1.2),
			// so seal with 16 and cut; Open recomputes (gcmTruncated).
			c.aead, err = cipher.NewGCM(block)
			c.truncated = true
		} else {
			c.aead, err = cipher.NewGCMWithTagSize(block, info.ICVLen)
		}
		if err != nil {
			return nil, err
		}
		c.nonceLen = copy(c.nonce[:], salt) + 8
		return c, nil
	case proposal.EncrAESCCM8, proposal.EncrAESCCM12, proposal.EncrAESCCM16:
		block, err := aes.NewCipher(aesKey)
		if err != nil {
			return nil, err
		}
		aead, err := ccm.New(block, info.ICVLen, info.SaltLen+8) // RFC 5282 §4: 3-octet salt | 8-octet IV
		if err != nil {
			return nil, err
		}
		c := &aeadCipher{aead: aead, tagLen: info.ICVLen, ctr: ctr}
		c.nonceLen = copy(c.nonce[:], salt) + 8
		return c, nil
	case proposal.EncrChaCha20Poly13:
		aead, err := chacha20poly1305.New(aesKey)
		if err != nil {
			return nil, err
		}
		c := &aeadCipher{aead: aead, tagLen: info.ICVLen, ctr: ctr}
		c.nonceLen = copy(c.nonce[:], salt) + 8 // RFC 7634 §2: salt | IV
		return c, nil
	}
	return nil, fmt.Errorf("keymat: %s cannot protect IKE messages here", s.Encr.ID)
}

// integ is a keyed integrity transform truncated to its ICV (RFC 2404,
// RFC 4868 §2.3, RFC 3566, RFC 4494).
type integ struct {
	h   hash.Hash
	icv int
	sum []byte
}

func newInteg(id proposal.IntegID, key []byte) (*integ, error) {
	info, ok := id.Info()
	if !ok || info.GMAC {
		return nil, fmt.Errorf("keymat: %s cannot protect IKE messages", id)
	}
	if len(key) != info.KeyLen {
		return nil, fmt.Errorf("keymat: %s key is %d octets, want %d", id, len(key), info.KeyLen)
	}
	var h hash.Hash
	switch id {
	case proposal.IntegHMACSHA196:
		h = hmac.New(sha1.New, key)
	case proposal.IntegHMACSHA256128:
		h = hmac.New(sha256.New, key)
	case proposal.IntegHMACSHA384192:
		h = hmac.New(sha512.New384, key)
	case proposal.IntegHMACSHA512256:
		h = hmac.New(sha512.New, key)
	case proposal.IntegAESXCBC96:
		m, err := xcbc.New(key)
		if err != nil {
			return nil, err
		}
		h = m
	case proposal.IntegAESCMAC96:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		m, err := cmac.New(b)
		if err != nil {
			return nil, err
		}
		h = m
	default:
		return nil, fmt.Errorf("keymat: unsupported integrity %s", id)
	}
	return &integ{h: h, icv: info.ICVLen, sum: make([]byte, 0, h.Size())}, nil
}

// mac computes the ICV over the message from the IKE header to the end of
// the encrypted data (RFC 7296 §3.14): aad, then the IV, then ciphertext.
func (m *integ) mac(aad, iv, ciphertext []byte) []byte {
	m.h.Reset()
	m.h.Write(aad)
	m.h.Write(iv)
	m.h.Write(ciphertext)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum[:m.icv]
}

// cbcCipher is AES-CBC with a separate integrity transform. Its IV must be
// unpredictable (RFC 7296 §3.14), so it comes from the random source.
type cbcCipher struct {
	block cipher.Block
	mac   *integ
	rand  io.Reader
}

func (c *cbcCipher) IVSize() int    { return aes.BlockSize }
func (c *cbcCipher) BlockSize() int { return aes.BlockSize }
func (c *cbcCipher) ICVSize() int   { return c.mac.icv }

func (c *cbcCipher) NextIV(iv []byte) error {
	if len(iv) != aes.BlockSize {
		return fmt.Errorf("keymat: AES-CBC IV is %d octets, got %d", aes.BlockSize, len(iv))
	}
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return fmt.Errorf("keymat: AES-CBC IV: %w", err)
	}
	return nil
}

// Seal panics if plaintext is not a whole number of blocks: padding it is
// the codec's job (RFC 7296 §3.14), so that is a programmer error.
func (c *cbcCipher) Seal(dst, iv, plaintext, aad []byte) []byte {
	if len(plaintext)%aes.BlockSize != 0 {
		panic("keymat: AES-CBC plaintext is not padded to the block size")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+c.mac.icv)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(out[:len(plaintext)], plaintext)
	copy(out[len(plaintext):], c.mac.mac(aad, iv, out[:len(plaintext)]))
	return ret
}

func (c *cbcCipher) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	n := len(ciphertext) - c.mac.icv
	if len(iv) != aes.BlockSize || n < aes.BlockSize || n%aes.BlockSize != 0 {
		return nil, ErrOpen
	}
	body, icv := ciphertext[:n], ciphertext[n:]
	if subtle.ConstantTimeCompare(c.mac.mac(aad, iv, body), icv) != 1 {
		return nil, ErrOpen
	}
	ret, out := sliceForAppend(dst, n)
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(out, body)
	return ret, nil
}

// ctrCipher is AES-CTR for IKEv2 (RFC 5930) with a separate integrity
// transform. The counter block is RFC 3686 §4's: the 4-octet nonce from
// the key material, the 8-octet IV, a 32-bit block counter from 1.
type ctrCipher struct {
	block   cipher.Block
	mac     *integ
	ctr     *ivCounter
	counter [aes.BlockSize]byte
}

func (c *ctrCipher) IVSize() int            { return 8 }
func (c *ctrCipher) BlockSize() int         { return 1 }
func (c *ctrCipher) ICVSize() int           { return c.mac.icv }
func (c *ctrCipher) NextIV(iv []byte) error { return c.ctr.next(iv) }

func (c *ctrCipher) stream(iv []byte) cipher.Stream {
	copy(c.counter[4:12], iv)
	binary.BigEndian.PutUint32(c.counter[12:], 1)
	return cipher.NewCTR(c.block, c.counter[:])
}

func (c *ctrCipher) Seal(dst, iv, plaintext, aad []byte) []byte {
	c.ctr.sealing(iv)
	ret, out := sliceForAppend(dst, len(plaintext)+c.mac.icv)
	c.stream(iv).XORKeyStream(out[:len(plaintext)], plaintext)
	copy(out[len(plaintext):], c.mac.mac(aad, iv, out[:len(plaintext)]))
	return ret
}

func (c *ctrCipher) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	n := len(ciphertext) - c.mac.icv
	if len(iv) != 8 || n < 0 {
		return nil, ErrOpen
	}
	body, icv := ciphertext[:n], ciphertext[n:]
	if subtle.ConstantTimeCompare(c.mac.mac(aad, iv, body), icv) != 1 {
		return nil, ErrOpen
	}
	ret, out := sliceForAppend(dst, n)
	c.stream(iv).XORKeyStream(out, body)
	return ret, nil
}

// aeadCipher is a combined-mode cipher used as RFC 5282 and RFC 7634
// describe: nonce = salt | IV, with the salt from the key material and the
// 8-octet IV carried in the message; the AAD runs from the IKE header to
// the end of the Encrypted payload header (RFC 5282 §5.1).
type aeadCipher struct {
	aead     cipher.AEAD
	tagLen   int
	ctr      *ivCounter
	nonce    [12]byte
	nonceLen int

	// GCM with an 8-octet tag (ENCR_AES_GCM_8), which crypto/cipher
	// cannot make: aead has a 16-octet tag and block is kept for Open.
	truncated bool
	block     cipher.Block
}

func (c *aeadCipher) IVSize() int            { return 8 }
func (c *aeadCipher) BlockSize() int         { return 1 }
func (c *aeadCipher) ICVSize() int           { return c.tagLen }
func (c *aeadCipher) NextIV(iv []byte) error { return c.ctr.next(iv) }

func (c *aeadCipher) nonceFor(iv []byte) []byte {
	copy(c.nonce[c.nonceLen-8:c.nonceLen], iv)
	return c.nonce[:c.nonceLen]
}

func (c *aeadCipher) Seal(dst, iv, plaintext, aad []byte) []byte {
	c.ctr.sealing(iv)
	out := c.aead.Seal(dst, c.nonceFor(iv), plaintext, aad)
	if c.truncated {
		out = out[:len(out)-(c.aead.Overhead()-c.tagLen)]
	}
	return out
}

func (c *aeadCipher) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	if len(iv) != 8 || len(ciphertext) < c.tagLen {
		return nil, ErrOpen
	}
	if c.truncated {
		return c.openTruncated(dst, iv, ciphertext, aad)
	}
	out, err := c.aead.Open(dst, c.nonceFor(iv), ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// openTruncated opens GCM with a short tag: it decrypts with GCM's own
// counter stream (GCTR from inc32(J0) = nonce | 2, SP 800-38D §7.2), seals
// the result again to get the full tag, and compares the leading octets.
// The plaintext is wiped unless the tag matches.
func (c *aeadCipher) openTruncated(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	n := len(ciphertext) - c.tagLen
	body, tag := ciphertext[:n], ciphertext[n:]
	nonce := c.nonceFor(iv)
	var j [aes.BlockSize]byte
	copy(j[:], nonce)
	binary.BigEndian.PutUint32(j[12:], 2)
	ret, out := sliceForAppend(dst, n)
	cipher.NewCTR(c.block, j[:]).XORKeyStream(out, body)
	full := c.aead.Seal(nil, nonce, out, aad)
	if subtle.ConstantTimeCompare(full[n:n+c.tagLen], tag) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// ivCounter issues the 8-octet IVs of one key's counter modes: RFC 5282 §3
// and RFC 3686 §2.1 need a value never used twice with the key, which a
// counter guarantees where randomness only makes it likely.
type ivCounter struct {
	issued atomic.Uint64 // last IV handed out
	sealed atomic.Uint64 // last IV Seal used
}

func (c *ivCounter) next(iv []byte) error {
	if len(iv) != 8 {
		return fmt.Errorf("keymat: counter IV is 8 octets, got %d", len(iv))
	}
	for {
		v := c.issued.Load()
		if v == math.MaxUint64 {
			return ErrIVExhausted
		}
		if c.issued.CompareAndSwap(v, v+1) {
			binary.BigEndian.PutUint64(iv, v+1)
			return nil
		}
	}
}

// sealing enforces that Seal runs with IVs from NextIV, each once and in
// order. A repeated counter-mode IV gives away the key stream (and for GCM
// the authentication key), so misuse is a programmer error and panics.
func (c *ivCounter) sealing(iv []byte) {
	if len(iv) != 8 {
		panic("keymat: Seal with an IV that is not 8 octets")
	}
	v := binary.BigEndian.Uint64(iv)
	if v == 0 || v > c.issued.Load() || v <= c.sealed.Load() {
		panic("keymat: Seal with an IV that NextIV did not issue, or that was already used")
	}
	c.sealed.Store(v)
}

// sliceForAppend extends in by n octets, reusing its capacity when it
// can, and returns the whole slice and the new tail.
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
