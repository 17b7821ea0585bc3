package hw

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
)

// Soft returns the engine built on Go's crypto. It offers AES-CBC with
// every key size and HMAC-SHA-256, and no hardware random source (Go's
// crypto/rand is the place for randomness). Its operations allocate
// nothing per call and run in parallel.
func Soft() Engine { return soft{} }

type soft struct{}

func (soft) Name() string { return "soft" }
func (soft) Caps() Caps   { return AES128CBC | AES192CBC | AES256CBC | HMACSHA256 }

func (soft) Random([]byte) error {
	return fmt.Errorf("crypto/hw: soft engine has no random number generator: %w", errors.ErrUnsupported)
}

// softCBC keeps a few CBC modes per key. crypto/cipher's CBC modes hold
// the chaining value, so one mode serves one call at a time; resetting
// its IV (SetIV) instead of making a new mode keeps calls allocation-free.
type softCBC struct {
	modes slots[cbcModes]
}

type cbcModes struct {
	enc, dec cipher.BlockMode
}

// ivSetter is implemented by crypto/cipher's CBC modes.
type ivSetter interface{ SetIV([]byte) }

func (soft) NewAESCBC(key []byte) (CBC, error) {
	if len(key) != 16 && len(key) != 24 && len(key) != 32 {
		return nil, fmt.Errorf("%w: AES key of %d octets", ErrLength, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &softCBC{}
	var zero [BlockSize]byte
	c.modes.init(func(m *cbcModes) {
		m.enc = cipher.NewCBCEncrypter(b, zero[:])
		m.dec = cipher.NewCBCDecrypter(b, zero[:])
	})
	m := &c.modes.s[0].v
	if _, ok := m.enc.(ivSetter); !ok {
		return nil, fmt.Errorf("crypto/hw: this Go's CBC encrypter cannot reset its IV: %w", errors.ErrUnsupported)
	}
	if _, ok := m.dec.(ivSetter); !ok {
		return nil, fmt.Errorf("crypto/hw: this Go's CBC decrypter cannot reset its IV: %w", errors.ErrUnsupported)
	}
	return c, nil
}

func (c *softCBC) Encrypt(dst, src, iv []byte) error { return c.crypt(dst, src, iv, true) }
func (c *softCBC) Decrypt(dst, src, iv []byte) error { return c.crypt(dst, src, iv, false) }

func (c *softCBC) crypt(dst, src, iv []byte, enc bool) error {
	if err := checkCBC(dst, src, iv); err != nil {
		return err
	}
	s := c.modes.get()
	m := s.v.dec
	if enc {
		m = s.v.enc
	}
	m.(ivSetter).SetIV(iv)
	m.CryptBlocks(dst[:len(src)], src)
	s.mu.Unlock()
	return nil
}

// checkCBC validates a CBC call's lengths, for every engine.
func checkCBC(dst, src, iv []byte) error {
	switch {
	case len(src)%BlockSize != 0:
		return fmt.Errorf("%w: CBC input of %d octets is not whole blocks", ErrLength, len(src))
	case len(dst) < len(src):
		return fmt.Errorf("%w: CBC output of %d octets for %d", ErrLength, len(dst), len(src))
	case len(iv) != BlockSize:
		return fmt.Errorf("%w: CBC IV of %d octets", ErrLength, len(iv))
	}
	return nil
}

// softMAC keeps a few HMAC states per key. crypto/hmac precomputes the
// padded key blocks and, after the first Sum, restores them on Reset
// without allocating.
type softMAC struct {
	states slots[macState]
}

type macState struct {
	h   hash.Hash
	sum [HashSize]byte
}

func (soft) NewHMACSHA256(key []byte) (MAC, error) {
	m := &softMAC{}
	m.states.init(func(s *macState) { s.h = hmac.New(sha256.New, key) })
	return m, nil
}

func (m *softMAC) Sum(out, data []byte) error {
	if len(out) == 0 || len(out) > HashSize {
		return fmt.Errorf("%w: HMAC-SHA-256 output of %d octets", ErrLength, len(out))
	}
	s := m.states.get()
	copy(out, m.compute(s, data))
	s.mu.Unlock()
	return nil
}

func (m *softMAC) Verify(mac, data []byte) (bool, error) {
	if err := checkVerify(mac); err != nil {
		return false, err
	}
	s := m.states.get()
	ok := subtle.ConstantTimeCompare(m.compute(s, data)[:len(mac)], mac) == 1
	s.mu.Unlock()
	return ok, nil
}

func (m *softMAC) compute(s *slot[macState], data []byte) []byte {
	s.v.h.Reset()
	s.v.h.Write(data)
	return s.v.h.Sum(s.v.sum[:0])
}

// checkVerify validates the length of a MAC to verify, for every engine.
func checkVerify(mac []byte) error {
	if len(mac) < MinVerify || len(mac) > HashSize {
		return fmt.Errorf("%w: HMAC-SHA-256 of %d octets to verify (%d to %d)", ErrLength, len(mac), MinVerify, HashSize)
	}
	return nil
}

// slots is per-key mutable state for concurrent callers: one slot per
// possible parallel caller, rounded up to a power of two. A call takes a
// free slot near a rotating start and blocks only when all are busy.
type slots[T any] struct {
	s    []slot[T]
	mask uint32
	next atomic.Uint32
}

type slot[T any] struct {
	mu sync.Mutex
	v  T
	_  [64]byte // keeps neighbouring slots off one cache line
}

func (p *slots[T]) init(fill func(*T)) {
	n := 1
	for n < runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	p.s = make([]slot[T], n)
	p.mask = uint32(n - 1)
	for i := range p.s {
		fill(&p.s[i].v)
	}
}

// get returns a locked slot; the caller unlocks it.
func (p *slots[T]) get() *slot[T] {
	start := p.next.Add(1)
	for i := uint32(0); i <= p.mask; i++ {
		s := &p.s[(start+i)&p.mask]
		if s.mu.TryLock() {
			return s
		}
	}
	s := &p.s[start&p.mask]
	s.mu.Lock()
	return s
}
