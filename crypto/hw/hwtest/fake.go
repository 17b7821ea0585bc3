// Package hwtest is a test double of hw.Engine, for host tests of code
// that runs on crypto engines the host does not have. Fake wraps a real
// engine (normally hw.Soft()), counts every call, and on request fails
// calls, corrupts their results or holds them until released.
package hwtest

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/bitw-dev/bitw/crypto/hw"
)

// Op names an engine operation.
type Op int

const (
	OpNewCBC  Op = iota // Engine.NewAESCBC
	OpNewMAC            // Engine.NewHMACSHA256
	OpEncrypt           // CBC.Encrypt
	OpDecrypt           // CBC.Decrypt
	OpSum               // MAC.Sum
	OpVerify            // MAC.Verify
	OpRandom            // Engine.Random
	numOps
)

var opNames = [numOps]string{"NewAESCBC", "NewHMACSHA256", "Encrypt", "Decrypt", "Sum", "Verify", "Random"}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return "Op?"
}

// Fault is what a Fake does on an operation.
type Fault int32

const (
	// Pass calls the wrapped engine.
	Pass Fault = iota
	// Fail returns ErrInjected without calling the wrapped engine and
	// without touching any output: an in-place Encrypt leaves the
	// plaintext where it was.
	Fail
	// Corrupt calls the wrapped engine and then spoils the result: the
	// first output octet of Encrypt, Decrypt and Sum is flipped, Verify
	// reports a match whatever the MAC, Random returns zeros.
	Corrupt
	// Hang blocks the call until Release, then passes.
	Hang
)

// ErrInjected is the error of a Fail fault.
var ErrInjected = errors.New("hwtest: injected engine failure")

// Fake is an hw.Engine around another. Its methods, like every engine's,
// are safe for concurrent use, and allocate nothing beyond the wrapped
// engine's.
type Fake struct {
	inner   hw.Engine
	name    string
	caps    atomic.Uint32
	capsSet atomic.Bool
	faults  [numOps]atomic.Int32
	calls   [numOps]atomic.Uint64
	release chan struct{}
	once    sync.Once
}

// New returns a Fake named name around inner, passing every call.
func New(inner hw.Engine, name string) *Fake {
	return &Fake{inner: inner, name: name, release: make(chan struct{})}
}

// Inject sets the fault for op, from the next call on.
func (f *Fake) Inject(op Op, fault Fault) { f.faults[op].Store(int32(fault)) }

// Calls counts the calls of op so far, faulty ones included.
func (f *Fake) Calls(op Op) uint64 { return f.calls[op].Load() }

// SetCaps makes the Fake claim c instead of the wrapped engine's caps.
// Operations outside c still reach the wrapped engine: this is how a
// test presents an engine that lies about itself.
func (f *Fake) SetCaps(c hw.Caps) {
	f.caps.Store(uint32(c))
	f.capsSet.Store(true)
}

// Release lets every held call, and every later Hang, through.
func (f *Fake) Release() { f.once.Do(func() { close(f.release) }) }

func (f *Fake) Name() string { return f.name }

func (f *Fake) Caps() hw.Caps {
	if f.capsSet.Load() {
		return hw.Caps(f.caps.Load())
	}
	return f.inner.Caps()
}

// enter counts a call and returns its fault, after holding it for Hang.
func (f *Fake) enter(op Op) Fault {
	f.calls[op].Add(1)
	fault := Fault(f.faults[op].Load())
	if fault == Hang {
		<-f.release
		return Pass
	}
	return fault
}

func (f *Fake) NewAESCBC(key []byte) (hw.CBC, error) {
	if f.enter(OpNewCBC) == Fail {
		return nil, ErrInjected
	}
	c, err := f.inner.NewAESCBC(key)
	if err != nil {
		return nil, err
	}
	return &fakeCBC{f: f, inner: c}, nil
}

func (f *Fake) NewHMACSHA256(key []byte) (hw.MAC, error) {
	if f.enter(OpNewMAC) == Fail {
		return nil, ErrInjected
	}
	m, err := f.inner.NewHMACSHA256(key)
	if err != nil {
		return nil, err
	}
	return &fakeMAC{f: f, inner: m}, nil
}

func (f *Fake) Random(p []byte) error {
	switch f.enter(OpRandom) {
	case Fail:
		return ErrInjected
	case Corrupt:
		clear(p)
		return nil
	}
	return f.inner.Random(p)
}

type fakeCBC struct {
	f     *Fake
	inner hw.CBC
}

func (c *fakeCBC) Encrypt(dst, src, iv []byte) error {
	return c.f.crypt(OpEncrypt, c.inner.Encrypt, dst, src, iv)
}

func (c *fakeCBC) Decrypt(dst, src, iv []byte) error {
	return c.f.crypt(OpDecrypt, c.inner.Decrypt, dst, src, iv)
}

func (f *Fake) crypt(op Op, run func(dst, src, iv []byte) error, dst, src, iv []byte) error {
	fault := f.enter(op)
	if fault == Fail {
		return ErrInjected
	}
	if err := run(dst, src, iv); err != nil {
		return err
	}
	if fault == Corrupt && len(src) > 0 {
		dst[0] ^= 1
	}
	return nil
}

type fakeMAC struct {
	f     *Fake
	inner hw.MAC
}

func (m *fakeMAC) Sum(out, data []byte) error {
	fault := m.f.enter(OpSum)
	if fault == Fail {
		return ErrInjected
	}
	if err := m.inner.Sum(out, data); err != nil {
		return err
	}
	if fault == Corrupt && len(out) > 0 {
		out[0] ^= 1
	}
	return nil
}

func (m *fakeMAC) Verify(mac, data []byte) (bool, error) {
	switch m.f.enter(OpVerify) {
	case Fail:
		return false, ErrInjected
	case Corrupt:
		return true, nil
	}
	return m.inner.Verify(mac, data)
}
