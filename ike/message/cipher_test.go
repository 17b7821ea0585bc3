package message

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// cbcHMAC is a test-only Cipher: ENCR_AES_CBC with AUTH_HMAC_SHA2_256_128
// (RFC 3602, RFC 4868), the capture's IKE proposal. The MAC covers the
// associated data, the IV and the ciphertext (RFC 7296 §3.14). IVs count
// up from zero so that test output is reproducible.
type cbcHMAC struct {
	block  cipher.Block
	macKey []byte
	ivs    uint64
}

func newCBCHMAC(encKey, macKey []byte) *cbcHMAC {
	b, err := aes.NewCipher(encKey)
	if err != nil {
		panic(err)
	}
	return &cbcHMAC{block: b, macKey: macKey}
}

func (c *cbcHMAC) IVSize() int    { return aes.BlockSize }
func (c *cbcHMAC) BlockSize() int { return aes.BlockSize }
func (c *cbcHMAC) ICVSize() int   { return 16 }

func (c *cbcHMAC) NextIV(iv []byte) error {
	clear(iv)
	c.ivs++
	binary.BigEndian.PutUint64(iv[len(iv)-8:], c.ivs)
	return nil
}

func (c *cbcHMAC) mac(aad, iv, ct []byte) []byte {
	h := hmac.New(sha256.New, c.macKey)
	h.Write(aad)
	h.Write(iv)
	h.Write(ct)
	return h.Sum(nil)[:16]
}

func (c *cbcHMAC) Seal(dst, iv, plaintext, aad []byte) []byte {
	start := len(dst)
	dst = append(dst, plaintext...)
	ct := dst[start:]
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, ct)
	return append(dst, c.mac(aad, iv, ct)...)
}

var errOpen = errors.New("message authentication failed")

func (c *cbcHMAC) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	n := len(ciphertext) - 16
	if n < 0 || n%aes.BlockSize != 0 || len(iv) != aes.BlockSize {
		return nil, errOpen
	}
	if subtle.ConstantTimeCompare(c.mac(aad, iv, ciphertext[:n]), ciphertext[n:]) != 1 {
		return nil, errOpen
	}
	start := len(dst)
	dst = append(dst, ciphertext[:n]...)
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(dst[start:], dst[start:])
	return dst, nil
}

// gcm16 is a test-only AEAD Cipher: ENCR_AES_GCM_16 as RFC 5282 uses it in
// IKEv2, a 4-octet salt and an 8-octet explicit IV forming the nonce, the
// IKE header and SK header as associated data. Block size 1: AEAD needs
// no alignment.
type gcm16 struct {
	aead cipher.AEAD
	salt [4]byte
	ivs  uint64
}

func newGCM16(key []byte, salt [4]byte) *gcm16 {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return &gcm16{aead: a, salt: salt}
}

func (c *gcm16) IVSize() int    { return 8 }
func (c *gcm16) BlockSize() int { return 1 }
func (c *gcm16) ICVSize() int   { return 16 }

func (c *gcm16) NextIV(iv []byte) error {
	c.ivs++
	binary.BigEndian.PutUint64(iv, c.ivs)
	return nil
}

func (c *gcm16) nonce(iv []byte) []byte { return append(c.salt[:len(c.salt):len(c.salt)], iv...) }

func (c *gcm16) Seal(dst, iv, plaintext, aad []byte) []byte {
	return c.aead.Seal(dst, c.nonce(iv), plaintext, aad)
}

func (c *gcm16) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	if len(iv) != 8 {
		return nil, errOpen
	}
	out, err := c.aead.Open(dst, c.nonce(iv), ciphertext, aad)
	if err != nil {
		return nil, errOpen
	}
	return out, nil
}

// Fixed keys for the fuzz targets and unit tests: the ICV is real, the
// keys are public.
func testCBC() *cbcHMAC {
	return newCBCHMAC([]byte("0123456789abcdef"), []byte("fixed test integrity key, 32 oct"))
}

func testGCM() *gcm16 { return newGCM16([]byte("fedcba9876543210"), [4]byte{1, 2, 3, 4}) }

// fixedIV replays given IVs, to re-create a peer's message.
type fixedIV struct {
	Cipher
	iv []byte
}

func (f fixedIV) NextIV(iv []byte) error {
	copy(iv, f.iv)
	return nil
}
