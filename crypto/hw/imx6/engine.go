//go:build tamago && arm

package imx6

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/usbarmory/tamago/dma"

	"github.com/bitw-dev/bitw/crypto/hw"
)

// Work area sizes. An ESP packet is at most 65535 octets (the IPv4 total
// length), so every buffer the data plane hands over fits; a larger one
// is refused with hw.ErrLength.
const (
	maxData  = 1 << 16
	padBlock = sha256.BlockSize // HMAC's ipad or opad block, in front of the data
)

// device is what differs between the DCP and the CAAM: one AES-CBC
// command and one SHA-256 command on buffers in the DMA work area, and
// the random number generator. The engine's lock is held around every
// call.
type device interface {
	cbc(k *cbcKey, buf, iv []byte, encrypt bool) error
	sum256(buf []byte) ([sha256.Size]byte, error)
	random(p []byte) error
}

// engine is a whole-buffer engine with one hardware queue.
type engine struct {
	name string
	caps hw.Caps
	dev  device

	mu   sync.Mutex // one command at a time; guards the work area
	work []byte     // DMA: padBlock octets, then up to maxData of data
	iv   []byte     // DMA: the CBC IV
}

// reserve returns n octets of the global DMA region, which TamaGo's
// drivers use without copying (dma.Alloc and dma.Read recognise reserved
// buffers). The region is never released: the engine lives as long as
// the firmware.
func reserve(n int) (buf []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("no DMA memory for a %d-octet work area: %v", n, r)
		}
	}()
	_, buf = dma.Reserve(n, 64)
	return buf, nil
}

func newEngine(name string, caps hw.Caps, dev device) (*engine, error) {
	work, err := reserve(padBlock + maxData)
	if err != nil {
		return nil, err
	}
	iv, err := reserve(hw.BlockSize)
	if err != nil {
		return nil, err
	}
	return &engine{name: name, caps: caps, dev: dev, work: work, iv: iv}, nil
}

func (e *engine) Name() string  { return e.name }
func (e *engine) Caps() hw.Caps { return e.caps }

func (e *engine) Random(p []byte) error {
	if !e.caps.Has(hw.Random) {
		return fmt.Errorf("crypto/hw/imx6: %s has no random number generator: %w", e.name, errors.ErrUnsupported)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dev.random(p)
}

// cbcKey is one AES key. slot is where the DCP last loaded it.
type cbcKey struct {
	e    *engine
	key  []byte
	slot int
}

func (e *engine) NewAESCBC(key []byte) (hw.CBC, error) {
	if !e.caps.AESKey(len(key)) {
		return nil, fmt.Errorf("crypto/hw/imx6: %s has no AES-%d-CBC: %w", e.name, 8*len(key), errors.ErrUnsupported)
	}
	return &cbcKey{e: e, key: append([]byte(nil), key...), slot: -1}, nil
}

func (k *cbcKey) Encrypt(dst, src, iv []byte) error { return k.e.crypt(k, dst, src, iv, true) }
func (k *cbcKey) Decrypt(dst, src, iv []byte) error { return k.e.crypt(k, dst, src, iv, false) }

func (e *engine) crypt(k *cbcKey, dst, src, iv []byte, encrypt bool) error {
	switch {
	case len(src)%hw.BlockSize != 0:
		return fmt.Errorf("%w: CBC input of %d octets is not whole blocks", hw.ErrLength, len(src))
	case len(dst) < len(src):
		return fmt.Errorf("%w: CBC output of %d octets for %d", hw.ErrLength, len(dst), len(src))
	case len(iv) != hw.BlockSize:
		return fmt.Errorf("%w: CBC IV of %d octets", hw.ErrLength, len(iv))
	case len(src) > maxData:
		return fmt.Errorf("%w: %d octets exceed the %s work area", hw.ErrLength, len(src), e.name)
	case len(src) == 0:
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	buf := e.work[padBlock : padBlock+len(src)]
	copy(buf, src)
	copy(e.iv, iv)
	if err := e.dev.cbc(k, buf, e.iv, encrypt); err != nil {
		return fmt.Errorf("crypto/hw/imx6: %s: %w", e.name, err)
	}
	copy(dst, buf)
	return nil
}

// hmacKey holds HMAC's two padded key blocks (RFC 2104 §2). A key longer
// than the block is first hashed, with Go's SHA-256: once per SA, never
// per packet.
type hmacKey struct {
	e          *engine
	ipad, opad [padBlock]byte
}

func (e *engine) NewHMACSHA256(key []byte) (hw.MAC, error) {
	if !e.caps.Has(hw.HMACSHA256) {
		return nil, fmt.Errorf("crypto/hw/imx6: %s has no HMAC-SHA-256: %w", e.name, errors.ErrUnsupported)
	}
	k := &hmacKey{e: e}
	if len(key) > padBlock {
		s := sha256.Sum256(key)
		key = s[:]
	}
	copy(k.ipad[:], key)
	copy(k.opad[:], key)
	for i := range k.ipad {
		k.ipad[i] ^= 0x36
		k.opad[i] ^= 0x5c
	}
	return k, nil
}

func (k *hmacKey) Sum(out, data []byte) error {
	if len(out) == 0 || len(out) > hw.HashSize {
		return fmt.Errorf("%w: HMAC-SHA-256 output of %d octets", hw.ErrLength, len(out))
	}
	e := k.e
	e.mu.Lock()
	defer e.mu.Unlock()
	sum, err := e.hmac(k, data)
	if err != nil {
		return err
	}
	copy(out, sum[:])
	return nil
}

func (k *hmacKey) Verify(mac, data []byte) (bool, error) {
	if len(mac) < hw.MinVerify || len(mac) > hw.HashSize {
		return false, fmt.Errorf("%w: HMAC-SHA-256 of %d octets to verify", hw.ErrLength, len(mac))
	}
	e := k.e
	e.mu.Lock()
	defer e.mu.Unlock()
	sum, err := e.hmac(k, data)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(sum[:len(mac)], mac) == 1, nil
}

// hmac computes SHA-256(opad || SHA-256(ipad || data)) with two whole-
// buffer hash commands in the work area; e.mu is held. The copy of data
// into DMA memory is needed anyway (the packet lives in cached Go memory),
// and putting the ipad block in front of it makes the inner hash one
// command.
func (e *engine) hmac(k *hmacKey, data []byte) ([sha256.Size]byte, error) {
	if len(data) > maxData {
		return [sha256.Size]byte{}, fmt.Errorf("%w: %d octets exceed the %s work area", hw.ErrLength, len(data), e.name)
	}
	copy(e.work, k.ipad[:])
	copy(e.work[padBlock:], data)
	inner, err := e.dev.sum256(e.work[:padBlock+len(data)])
	if err != nil {
		return inner, fmt.Errorf("crypto/hw/imx6: %s: inner hash: %w", e.name, err)
	}
	copy(e.work, k.opad[:])
	copy(e.work[padBlock:], inner[:])
	outer, err := e.dev.sum256(e.work[:padBlock+sha256.Size])
	if err != nil {
		return outer, fmt.Errorf("crypto/hw/imx6: %s: outer hash: %w", e.name, err)
	}
	return outer, nil
}
