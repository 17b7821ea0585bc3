package ipsec

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestMatcherAgainstDefinition checks the compiled matcher, which compares
// offsets and spans, against the selector definition written out on
// netip addresses, for random selectors and packets of both families,
// near range ends and around the address space's edges.
func TestMatcherAgainstDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func(v6 bool) netip.Addr {
		var b [16]byte
		for i := range b {
			// Few distinct octets, so that packets often land on or
			// next to a range's ends.
			b[i] = []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff}[r.IntN(7)]
		}
		if !v6 {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16(b)
	}
	port := func() uint16 { return []uint16{0, 1, 80, 443, 0x7fff, 0xfffe, 0xffff}[r.IntN(7)] }
	ts := func() TS {
		v6 := r.IntN(2) == 0
		a, b := addr(v6), addr(v6)
		if b.Less(a) {
			a, b = b, a
		}
		t := TS{From: a, To: b, ToPort: 0xffff}
		if r.IntN(3) > 0 {
			t.Proto = []uint8{protoTCP, protoUDP, protoICMP}[r.IntN(3)]
			if r.IntN(2) == 0 {
				t.FromPort, t.ToPort = port(), port()
				if t.ToPort < t.FromPort {
					t.FromPort, t.ToPort = t.ToPort, t.FromPort
				}
			}
		}
		return t
	}
	inTS := func(t *TS, a netip.Addr, proto uint8, p uint32) bool {
		if t.From.Is6() != a.Is6() || a.Less(t.From) || t.To.Less(a) || t.Proto != 0 && t.Proto != proto {
			return false
		}
		if p == portUnknown {
			return t.anyPorts()
		}
		return uint32(t.FromPort) <= p && p <= uint32(t.ToPort)
	}
	inList := func(l []TS, a netip.Addr, proto uint8, p uint32) bool {
		for i := range l {
			if inTS(&l[i], a, proto, p) {
				return true
			}
		}
		return false
	}
	for range 2000 {
		sel := Selectors{}
		for range 1 + r.IntN(3) {
			sel.Local = append(sel.Local, ts())
			sel.Remote = append(sel.Remote, ts())
		}
		if err := sel.validate(); err != nil {
			t.Fatal(err)
		}
		m := sel.compile()
		for range 50 {
			v6 := r.IntN(2) == 0
			src, dst := addr(v6), addr(v6)
			proto := []uint8{protoTCP, protoUDP, protoICMP}[r.IntN(3)]
			sp, dp := uint32(port()), uint32(port())
			if r.IntN(8) == 0 {
				sp, dp = portUnknown, portUnknown
			}
			f := flow{srcK: keyOf(src), dstK: keyOf(dst), v6: v6, proto: proto, famProto: famProto(v6, proto), srcPort: sp, dstPort: dp}
			wantOut := inList(sel.Local, src, proto, sp) && inList(sel.Remote, dst, proto, dp)
			wantIn := inList(sel.Remote, src, proto, sp) && inList(sel.Local, dst, proto, dp)
			if m.matchOut(&f) != wantOut || m.matchIn(&f) != wantIn {
				t.Fatalf("selectors %v\npacket %v:%d -> %v:%d proto %d: matchOut %v (want %v), matchIn %v (want %v)",
					sel, src, sp, dst, dp, proto, m.matchOut(&f), wantOut, m.matchIn(&f), wantIn)
			}
		}
	}
}
