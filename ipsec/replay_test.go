package ipsec

import (
	"fmt"
	"testing"
)

func TestReplayWindowSizes(t *testing.T) {
	for _, size := range []int{64, 65, 128, 1000, 1024, 4096, MaxReplayWindow} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			w := newReplayWindow(size)
			W := uint64(size)
			accept := func(seq uint64, want bool) {
				t.Helper()
				c := w.check(seq)
				u := w.update(seq)
				if c != want || u != want {
					t.Fatalf("seq %d (top %d): check %v update %v, want %v", seq, w.top.Load(), c, u, want)
				}
			}
			accept(0, false) // never valid
			accept(1, true)
			accept(1, false) // duplicate
			accept(W+10, true)
			accept(11, true)  // exactly W-1 behind the top
			accept(10, false) // W behind: left of the window
			accept(12, true)
			accept(12, false)
			for s := W + 9; s > 12; s -= 7 {
				accept(s, true) // out of order inside the window
			}
			// A jump far ahead clears everything behind it.
			accept(10*W+3, true)
			accept(9*W+4, true)
			accept(9*W+3, false)
			accept(10*W+3, false)
			for s := 9*W + 5; s < 10*W+3; s++ {
				if !w.check(s) {
					t.Fatalf("seq %d should be fresh after the jump", s)
				}
			}
			// Walk the top forward one at a time across many blocks.
			for s := 10*W + 4; s < 13*W; s++ {
				accept(s, true)
				accept(s, false)
				accept(s-W, false)
			}
		})
	}
}

// TestESNInference checks RFC 4303 Appendix A.2.1 in both cases, across
// the 2^32 boundary and at the bottom of the sequence space.
func TestESNInference(t *testing.T) {
	const W = 64
	cases := []struct {
		top  uint64
		low  uint32
		want uint64
		ok   bool
	}{
		// Case A: Tl >= W-1.
		{1<<32 | 256, 250, 1<<32 | 250, true},
		{1<<32 | 256, 193, 1<<32 | 193, true},   // Tl-W+1 exactly: same subspace
		{1<<32 | 256, 192, 2<<32 | 192, true},   // below: the next subspace
		{1<<32 | 256, 9999, 1<<32 | 9999, true}, // ahead in the same subspace
		{0xffffffff<<32 | 256, 100, 0, false},   // no subspace after the last
		// Case B: Tl < W-1, the window spans two subspaces.
		{1<<32 | 5, 3, 1<<32 | 3, true},
		{1<<32 | 5, 0xfffffff0, 0xfffffff0, true}, // old half of the window
		{1<<32 | 5, 0xffffffc6, 0xffffffc6, true}, // Tl-W+1 mod 2^32
		{1<<32 | 5, 0xffffffc5, 1<<32 | 0xffffffc5, true},
		{5, 0xfffffff0, 0, false}, // would be below zero
		{5, 3, 3, true},
	}
	for _, c := range cases {
		w := newReplayWindow(W)
		w.top.Store(c.top)
		got, ok := w.infer(c.low)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("top %#x low %#x: got %#x %v, want %#x %v", c.top, c.low, got, ok, c.want, c.ok)
		}
	}
}

// TestESNAcrossBoundary runs an ESN SA across 2^32: the receiver infers
// the high half, including for packets reordered around the boundary.
func TestESNAcrossBoundary(t *testing.T) {
	for _, kw := range []string{"aes128gcm16", "aes128-sha256", "aes256gmac", "aes128ccm12", "chacha20poly1305"} {
		t.Run(kw, func(t *testing.T) {
			tp := newPair(t, pairConfig{suite: suiteOf(t, kw, protoESPSuite, true), mode: ModeTunnel, initSeq: 1<<32 - 4})
			var held [][]byte
			for i := 0; i < 8; i++ {
				b := bufferWith(tp.packet(40))
				if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward {
					t.Fatalf("outbound %d: %+v", i, r)
				}
				if i == 2 || i == 3 { // seq 2^32-1 and 2^32: deliver later
					held = append(held, append([]byte(nil), b.Bytes()...))
					continue
				}
				if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
					t.Fatalf("inbound %d: %+v %s", i, r, nonzero(tp.b.Drops()))
				}
			}
			for i, w := range held {
				if r := tp.b.Inbound(bufferWith(w)); r.Verdict != VerdictForward {
					t.Fatalf("held %d: %+v %s", i, r, nonzero(tp.b.Drops()))
				}
			}
			in := tp.b.SAs()[0]
			if in.Seq != 1<<32+4 || in.Stats.Packets != 8 {
				t.Fatalf("receiver top %#x packets %d", in.Seq, in.Stats.Packets)
			}
		})
	}
}

// TestESNHighBitsAuthenticated shows the high half is covered by the ICV
// and never sent: a receiver whose window sits in the first subspace
// infers high = 0 for a packet sent with high = 1 and rejects it.
func TestESNHighBitsAuthenticated(t *testing.T) {
	for _, kw := range []string{"aes128gcm16", "aes128-sha256", "aes256gmac"} {
		tp := newPair(t, pairConfig{suite: suiteOf(t, kw, protoESPSuite, true), mode: ModeTunnel, initSeq: 1 << 32})
		// A fresh receiver: its window sits at zero.
		if err := tp.b.DeleteSA(tp.in.Key()); err != nil {
			t.Fatal(err)
		}
		tp.in.InitialSeq = 0
		if err := tp.b.AddSA(tp.in); err != nil {
			t.Fatal(err)
		}
		b := bufferWith(tp.packet(40))
		if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward {
			t.Fatal(r)
		}
		if got := b.Bytes()[24:28]; string(got) != "\x00\x00\x00\x01" {
			t.Fatalf("%s: sequence field %x, want the low half only", kw, got)
		}
		if r := tp.b.Inbound(b); r.Reason != DropAuth {
			t.Fatalf("%s: %+v, want an ICV failure", kw, r)
		}
	}
}

// TestReplayThroughEngine checks duplicates and too-old packets end to end
// with small and large windows.
func TestReplayThroughEngine(t *testing.T) {
	for _, window := range []int{64, 4096} {
		tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, window: window})
		var wires [][]byte
		for i := 0; i < window+10; i++ {
			b := bufferWith(tp.packet(10))
			tp.a.Outbound(b, 1500)
			wires = append(wires, append([]byte(nil), b.Bytes()...))
		}
		// Deliver the newest first, then everything older.
		if r := tp.b.Inbound(bufferWith(wires[len(wires)-1])); r.Verdict != VerdictForward {
			t.Fatal(r)
		}
		var fwd, replay int
		for _, w := range wires[:len(wires)-1] {
			switch r := tp.b.Inbound(bufferWith(w)); {
			case r.Verdict == VerdictForward:
				fwd++
			case r.Reason == DropReplay:
				replay++
			default:
				t.Fatal(r)
			}
		}
		// Top is window+10; sequence numbers 11..window+9 are in the window.
		if fwd != window-1 || replay != 10 {
			t.Fatalf("window %d: %d accepted, %d replays", window, fwd, replay)
		}
		if r := tp.b.Inbound(bufferWith(wires[20])); r.Reason != DropReplay {
			t.Fatalf("duplicate: %+v", r)
		}
		if got := tp.b.SAs()[0].Stats.ReplayDrops; got != 11 {
			t.Fatalf("replay drops %d", got)
		}
	}
}
