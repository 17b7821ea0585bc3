package ipsec

import (
	"crypto/cipher"
	"fmt"
	"sync"
	"testing"
)

// countingAEAD counts the ICV checks a receiver makes.
type countingAEAD struct {
	cipher.AEAD
	opens int
}

func (c *countingAEAD) Open(dst, nonce, ct, ad []byte) ([]byte, error) {
	c.opens++
	return c.AEAD.Open(dst, nonce, ct, ad)
}

// esnPair is a tunnel-mode ESN pair whose sender can skip sequence numbers
// as if the packets had been lost.
type esnPair struct {
	*testPair
	out, in *assoc
}

func newESNPair(t *testing.T, kw string) esnPair {
	t.Helper()
	tp := newPair(t, pairConfig{suite: suiteOf(t, kw, protoESPSuite, true), mode: ModeTunnel, window: 128})
	return esnPair{tp, saOf(tp.a, tp.out.Key()), saOf(tp.b, tp.in.Key())}
}

// lose advances the sender as if n packets had been sent and lost.
func (p esnPair) lose(n uint64) { p.out.seq.Add(n) }

// next encapsulates one packet on A and returns the wire bytes.
func (p esnPair) next(t *testing.T) []byte {
	t.Helper()
	b := bufferWith(p.packet(20))
	if r := p.a.Outbound(b, 1500); r.Verdict != VerdictForward {
		t.Fatalf("outbound: %+v", r)
	}
	return append([]byte(nil), b.Bytes()...)
}

func (p esnPair) deliver(pkt []byte) InResult { return p.b.Inbound(bufferWith(pkt)) }

// TestESNResync: after a loss of 2^32 or more packets the receiver fails
// esnResyncAfter packets, then finds the sender's high half within
// esnResyncEpochs more and carries traffic again (RFC 4303 Appendix A.3),
// for in-place AEADs, CCM and integrity-checked ciphers alike.
func TestESNResync(t *testing.T) {
	for _, kw := range []string{"aes128gcm16", "chacha20poly1305", "aes128ccm16", "aes128-sha256", "aes128ctr-sha1"} {
		for _, lost := range []uint64{1 << 32, 1<<32 + 77, 2<<32 - 50, 3<<32 + 1000, esnResyncEpochs << 32} {
			t.Run(fmt.Sprintf("%s/lost=%#x", kw, lost), func(t *testing.T) {
				p := newESNPair(t, kw)
				for range 10 {
					if r := p.deliver(p.next(t)); r.Verdict != VerdictForward {
						t.Fatalf("before the loss: %+v", r)
					}
				}
				p.lose(lost)
				// Packets whose low half the window places below zero
				// (A.2.1) are refused before their ICV; the rest fail it
				// until the search starts.
				first, fails := -1, 0
				for i := range 200 {
					r := p.deliver(p.next(t))
					switch {
					case r.Verdict == VerdictForward && first < 0:
						first = i
					case r.Verdict == VerdictForward:
					case first >= 0:
						t.Fatalf("packet %d after the resynchronization: %+v", i, r)
					case r.Reason == DropAuth:
						fails++
					case r.Reason != DropReplay:
						t.Fatalf("packet %d: %+v", i, r)
					}
				}
				if first < 0 || fails < esnResyncAfter || fails >= esnResyncAfter+2*esnResyncEpochs {
					t.Fatalf("first packet through: %d, after %d ICV failures", first, fails)
				}
				st := p.b.SAs()[0]
				if st.Stats.ESNResyncs != 1 || st.Stats.AuthDrops != uint64(fails) || st.Seq != p.a.SAs()[0].Seq {
					t.Fatalf("receiver %+v, sender at %#x", st, p.a.SAs()[0].Seq)
				}
			})
		}
	}
}

// TestESNResyncBounded: a sender further ahead than esnResyncEpochs is
// never found, and the search costs each failing packet at most one more
// ICV check, made only after esnResyncAfter failures in a row.
func TestESNResyncBounded(t *testing.T) {
	p := newESNPair(t, "aes128gcm16")
	ca := &countingAEAD{AEAD: p.in.esp.aead}
	p.in.esp.aead = ca
	p.deliver(p.next(t))
	top := p.b.SAs()[0].Seq
	p.lose((esnResyncEpochs + 2) << 32)
	for i := range 200 {
		before := ca.opens
		if r := p.deliver(p.next(t)); r.Reason != DropAuth {
			t.Fatalf("packet %d: %+v", i, r)
		}
		checks := ca.opens - before
		if i < esnResyncAfter && checks != 1 || checks > 2 {
			t.Fatalf("packet %d: %d ICV checks", i, checks)
		}
	}
	if st := p.b.SAs()[0]; st.Seq != top || st.Stats.ESNResyncs != 0 {
		t.Fatalf("window moved: %+v", st)
	}
}

// TestESNResyncNeedsAuthenticity: once resynchronization is under way,
// forged packets and replays of authentic ones neither get through nor
// move the window; an authentic packet in between resets the count.
func TestESNResyncNeedsAuthenticity(t *testing.T) {
	p := newESNPair(t, "aes128gcm16")
	ca := &countingAEAD{AEAD: p.in.esp.aead}
	p.in.esp.aead = ca
	var old [][]byte
	for range 20 {
		pkt := p.next(t)
		old = append(old, pkt)
		p.deliver(pkt)
	}
	top := p.b.SAs()[0].Seq

	// A good packet after every esnResyncAfter-1 failures: no search.
	forge := func(pkt []byte, i int) []byte {
		f := append([]byte(nil), pkt...)
		f[len(f)-1-i%16] ^= 1 // the ICV
		return f
	}
	for round := range 3 {
		for i := range esnResyncAfter - 1 {
			before := ca.opens
			if r := p.deliver(forge(p.next(t), i)); r.Reason != DropAuth || ca.opens-before != 1 {
				t.Fatalf("round %d, forgery %d: %+v, %d checks", round, i, r, ca.opens-before)
			}
		}
		if r := p.deliver(p.next(t)); r.Verdict != VerdictForward {
			t.Fatalf("round %d: authentic packet %+v", round, r)
		}
	}
	top = p.b.SAs()[0].Seq

	// Now past the trigger: forgeries of packets 2^32 ahead, whose
	// candidates lie above the window, and replays of old packets.
	p.lose(1 << 32)
	for i := range 3 * esnResyncAfter {
		if r := p.deliver(forge(p.next(t), i)); r.Verdict == VerdictForward {
			t.Fatalf("forgery %d got through", i)
		}
		if r := p.deliver(old[i%len(old)]); r.Verdict == VerdictForward {
			t.Fatalf("replay %d got through", i)
		}
	}
	if st := p.b.SAs()[0]; st.Seq != top || st.Stats.ESNResyncs != 0 {
		t.Fatalf("window moved without an authentic packet: %+v (top was %#x)", st, top)
	}
	// The first authentic packet of the new space resynchronizes at
	// once: the count is well past the trigger.
	got := false
	for range esnResyncEpochs {
		if p.deliver(p.next(t)).Verdict == VerdictForward {
			got = true
			break
		}
	}
	if st := p.b.SAs()[0]; !got || st.Stats.ESNResyncs != 1 || st.Seq != p.a.SAs()[0].Seq {
		t.Fatalf("no resynchronization: %+v", st)
	}
}

// TestESNResyncOnlyESN: SAs without ESN have no resynchronization state
// and keep the fast path.
func TestESNResyncOnlyESN(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	if sa := saOf(tp.b, tp.in.Key()); sa.resync != nil || !sa.fastIn {
		t.Fatalf("resync %v fastIn %v", sa.resync, sa.fastIn)
	}
	p := newESNPair(t, "aes128gcm16")
	if p.in.resync == nil || p.out.resync != nil {
		t.Fatal("resynchronization state on the wrong SAs")
	}
}

// TestESNResyncConcurrent runs the search from several goroutines at once,
// for -race: forgeries and authentic packets of a space 2^32 ahead.
func TestESNResyncConcurrent(t *testing.T) {
	p := newESNPair(t, "aes128gcm16")
	p.deliver(p.next(t))
	p.lose(1 << 32)
	var pkts [][]byte
	for range 400 {
		pkts = append(pkts, p.next(t))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(pkts); i += 4 {
				f := append([]byte(nil), pkts[i]...)
				f[len(f)-1] ^= 1
				p.deliver(f)
				if i > 3*esnResyncAfter {
					p.deliver(pkts[i])
				}
			}
		})
	}
	wg.Wait()
	if st := p.b.SAs()[0].Stats; st.ESNResyncs == 0 || st.Packets == 0 {
		t.Fatalf("%+v", st)
	}
}
