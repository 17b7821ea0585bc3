package ipsec

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/hw/hwtest"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// offloadPair is a newPair whose two gateways also exist on a crypto
// engine: fa and fb carry the same SAs, policies and random source as a
// and b, with Config.Crypto set.
type offloadPair struct {
	*testPair
	fa, fb *Engine
}

func newOffloadPair(t *testing.T, pc pairConfig, ea, eb hw.Engine) *offloadPair {
	t.Helper()
	tp := newPair(t, pc)
	op := &offloadPair{testPair: tp,
		fa: New(Config{Now: tp.clockA.Now, Rand: newTestRand(1), Policy: allowed, Crypto: ea}),
		fb: New(Config{Now: tp.clockB.Now, Rand: newTestRand(2), Policy: allowed, Crypto: eb}),
	}
	for _, side := range []struct {
		e  *Engine
		sa SAConfig
	}{{op.fa, tp.out}, {op.fb, tp.in}} {
		if err := side.e.AddSA(side.sa); err != nil {
			t.Fatalf("AddSA: %v", err)
		}
		if _, err := side.e.AddPolicy(Policy{Selectors: side.sa.Selectors, Action: ActionProtect, ReqID: 7}); err != nil {
			t.Fatalf("AddPolicy: %v", err)
		}
	}
	return op
}

// seal runs pkt through e.Outbound and returns the ESP packet.
func seal(t *testing.T, e *Engine, pkt []byte) []byte {
	t.Helper()
	b := bufferWith(pkt)
	if r := e.Outbound(b, 1500); r.Verdict != VerdictForward {
		t.Fatalf("outbound: %v %v", r.Verdict, r.Reason)
	}
	return bytes.Clone(b.Bytes())
}

// open runs an ESP packet through e.Inbound and returns the inner packet.
func open(t *testing.T, e *Engine, esp []byte) []byte {
	t.Helper()
	b := bufferWith(esp)
	if r := e.Inbound(b); r.Verdict != VerdictForward {
		t.Fatalf("inbound: %v %v", r.Verdict, r.Reason)
	}
	return bytes.Clone(b.Bytes())
}

// TestOffloadMatchesGoCrypto: ESP through a fake engine (around the soft
// engine) is byte for byte what Go's crypto produces with the same IVs,
// and each side opens what the other sealed, for every AES key size, both
// modes, with and without ESN and UDP encapsulation. The fake's counters
// prove the engine did the work.
func TestOffloadMatchesGoCrypto(t *testing.T) {
	for _, kw := range []string{"aes128-sha256", "aes192-sha256", "aes256-sha256"} {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, esn := range []bool{false, true} {
				for _, encap := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/esn=%v/udp=%v", kw, mode, esn, encap)
					t.Run(name, func(t *testing.T) {
						fa, fb := hwtest.New(hw.Soft(), "fakeA"), hwtest.New(hw.Soft(), "fakeB")
						op := newOffloadPair(t, pairConfig{suite: suiteOf(t, kw, proposal.ProtoESP, esn), mode: mode, encap: encap}, fa, fb)
						for i, n := range []int{0, 1, 100, 1300} {
							pkt := op.packet(n)
							plain, offloaded := seal(t, op.a, pkt), seal(t, op.fa, pkt)
							if !bytes.Equal(plain, offloaded) {
								t.Fatalf("packet %d: engine's ESP differs from Go's:\n%x\n%x", i, offloaded, plain)
							}
							if got := open(t, op.fb, plain); !bytes.Equal(got, pkt) {
								t.Fatalf("packet %d: engine opened Go's ESP wrongly", i)
							}
							if got := open(t, op.b, offloaded); !bytes.Equal(got, pkt) {
								t.Fatalf("packet %d: Go opened the engine's ESP wrongly", i)
							}
						}
						for _, c := range []struct {
							f  *hwtest.Fake
							op hwtest.Op
						}{{fa, hwtest.OpEncrypt}, {fa, hwtest.OpSum}, {fb, hwtest.OpVerify}, {fb, hwtest.OpDecrypt}} {
							if n := c.f.Calls(c.op); n != 4 {
								t.Errorf("%s: %s called %d times for 4 packets", c.f.Name(), c.op, n)
							}
						}
					})
				}
			}
		}
	}
}

// TestOffloadOnlyWhatTheEngineOffers: transforms and key sizes outside
// the engine's caps stay on Go's crypto and still work.
func TestOffloadOnlyWhatTheEngineOffers(t *testing.T) {
	for _, c := range []struct {
		kw      string
		offload bool
	}{
		{"aes128-sha256", true},
		{"aes256-sha256", false}, // the DCP has AES-128 only
		{"aes128-sha512", false},
		{"aes128-aesxcbc", false},
		{"aes128gcm16", false},
		{"aes128ctr-sha256", false},
	} {
		t.Run(c.kw, func(t *testing.T) {
			f := hwtest.New(hw.Soft(), "DCP")
			f.SetCaps(hw.ESPMinimum)
			op := newOffloadPair(t, pairConfig{suite: suiteOf(t, c.kw, proposal.ProtoESP, false), mode: ModeTunnel}, f, f)
			pkt := op.packet(500)
			if got := open(t, op.fb, seal(t, op.fa, pkt)); !bytes.Equal(got, pkt) {
				t.Fatal("round trip changed the packet")
			}
			if used := f.Calls(hwtest.OpEncrypt) != 0; used != c.offload {
				t.Fatalf("engine used: %v, want %v", used, c.offload)
			}
		})
	}
}

// TestOffloadFailureDrops: when the engine fails, the packet is dropped
// and counted under DropCrypto, never sent: a failed in-place Encrypt
// leaves the plaintext in the buffer. Traffic resumes when the engine
// recovers.
func TestOffloadFailureDrops(t *testing.T) {
	for _, c := range []struct {
		op       hwtest.Op
		outbound bool
	}{{hwtest.OpEncrypt, true}, {hwtest.OpSum, true}, {hwtest.OpVerify, false}, {hwtest.OpDecrypt, false}} {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", c.op, esn), func(t *testing.T) {
				fa, fb := hwtest.New(hw.Soft(), "fakeA"), hwtest.New(hw.Soft(), "fakeB")
				op := newOffloadPair(t, pairConfig{suite: suiteOf(t, "aes128-sha256", proposal.ProtoESP, esn), mode: ModeTunnel}, fa, fb)
				pkt := op.packet(300)
				f := fb
				if c.outbound {
					f = fa
				}
				f.Inject(c.op, hwtest.Fail)
				b := bufferWith(pkt)
				if c.outbound {
					r := op.fa.Outbound(b, 1500)
					if r.Verdict != VerdictDrop || r.Reason != DropCrypto {
						t.Fatalf("outbound: %v %v, want drop %v", r.Verdict, r.Reason, DropCrypto)
					}
					if n := op.fa.Drops()[DropCrypto]; n != 1 {
						t.Fatalf("%d crypto drops counted", n)
					}
				} else {
					esp := seal(t, op.fa, pkt)
					b = bufferWith(esp)
					r := op.fb.Inbound(b)
					if r.Verdict != VerdictDrop || r.Reason != DropCrypto {
						t.Fatalf("inbound: %v %v, want drop %v", r.Verdict, r.Reason, DropCrypto)
					}
					if n := op.fb.Drops()[DropCrypto]; n != 1 {
						t.Fatalf("%d crypto drops counted", n)
					}
				}
				if f.Calls(c.op) != 1 {
					t.Fatalf("the failing operation ran %d times", f.Calls(c.op))
				}
				f.Inject(c.op, hwtest.Pass)
				if got := open(t, op.fb, seal(t, op.fa, pkt)); !bytes.Equal(got, pkt) {
					t.Fatal("no recovery after the engine came back")
				}
			})
		}
	}
}

// TestOffloadCorruptICVRejected: a sender whose engine spoils the ICV
// produces packets the receiver drops as unauthentic.
func TestOffloadCorruptICVRejected(t *testing.T) {
	fa := hwtest.New(hw.Soft(), "fakeA")
	op := newOffloadPair(t, pairConfig{suite: suiteOf(t, "aes128-sha256", proposal.ProtoESP, false), mode: ModeTunnel}, fa, nil)
	fa.Inject(hwtest.OpSum, hwtest.Corrupt)
	b := bufferWith(seal(t, op.fa, op.packet(200)))
	if r := op.b.Inbound(b); r.Verdict != VerdictDrop || r.Reason != DropAuth {
		t.Fatalf("inbound: %v %v, want drop %v", r.Verdict, r.Reason, DropAuth)
	}
}

// TestOffloadAddSAFails: an engine that cannot take the keys fails AddSA
// instead of silently leaving the SA on software.
func TestOffloadAddSAFails(t *testing.T) {
	f := hwtest.New(hw.Soft(), "DCP")
	f.Inject(hwtest.OpNewCBC, hwtest.Fail)
	e := New(Config{Rand: newTestRand(1), Policy: allowed, Crypto: f})
	s := suiteOf(t, "aes128-sha256", proposal.ProtoESP, false)
	enc, integ := testKeys(s, 1)
	err := e.AddSA(SAConfig{Dir: DirOut, SPI: 0x1000, Mode: ModeTunnel, Src: gwA4, Dst: gwB4, Suite: s, EncKey: enc, IntegKey: integ, ReqID: 7, Selectors: anyNets})
	if !errors.Is(err, hwtest.ErrInjected) {
		t.Fatalf("AddSA: %v", err)
	}
}

// TestOffloadNoAllocations: the engine path adds no allocation per
// packet, through the soft engine and through the fake.
func TestOffloadNoAllocations(t *testing.T) {
	for _, eng := range []hw.Engine{hw.Soft(), hwtest.New(hw.Soft(), "fake")} {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", eng.Name(), esn), func(t *testing.T) {
				op := newOffloadPair(t, pairConfig{suite: suiteOf(t, "aes128-sha256", proposal.ProtoESP, esn), mode: ModeTunnel, encap: true, window: 4096}, eng, eng)
				b := bufferWith(op.packet(1000))
				var fail string
				n := testing.AllocsPerRun(200, func() {
					if r := op.fa.Outbound(b, 1500); r.Verdict != VerdictForward {
						fail = fmt.Sprint("outbound ", r.Reason)
					}
					if r := op.fb.Inbound(b); r.Verdict != VerdictForward {
						fail = fmt.Sprint("inbound ", r.Reason)
					}
				})
				if fail != "" {
					t.Fatal(fail)
				}
				if n != 0 {
					t.Fatalf("%v allocations per round trip", n)
				}
			})
		}
	}
}
