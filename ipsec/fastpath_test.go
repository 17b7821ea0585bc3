package ipsec

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
)

// fastPathPair returns two identical pairs (same keys, random sources and
// clocks), the first with the fast paths its SAs qualify for and the
// second with them switched off, so that every packet can go through both
// and the results be compared.
func fastPathPair(t *testing.T, pc pairConfig) (fast, slow *testPair) {
	t.Helper()
	fast, slow = newPair(t, pc), newPair(t, pc)
	for _, e := range []*Engine{slow.a, slow.b} {
		e.mu.Lock()
		for _, sa := range e.sas {
			sa.fastOut, sa.fastIn = false, false
		}
		e.mu.Unlock()
	}
	return fast, slow
}

func saOf(e *Engine, k SAKey) *assoc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sas[k]
}

// fastPathConfigs are the SA shapes the fast paths take, and a few near
// them that they must leave to the general paths.
func fastPathConfigs(t *testing.T) []pairConfig {
	var pcs []pairConfig
	for _, kw := range []string{"aes128gcm16", "aes256gcm12", "chacha20poly1305"} {
		for _, esn := range []bool{false, true} {
			for _, v := range []struct{ inner6, outer6, encap bool }{
				{false, false, false}, {false, false, true}, {true, false, true}, {false, true, false}, {true, true, true},
			} {
				pcs = append(pcs, pairConfig{suite: suiteOf(t, kw, protoESPSuite, esn), mode: ModeTunnel,
					inner6: v.inner6, outer6: v.outer6, encap: v.encap, window: 64})
			}
		}
	}
	pcs = append(pcs,
		pairConfig{suite: gcm128(), mode: ModeTunnel, outer: OuterHeader{TTL: 9, DF: DFSet, ECN: ECNCompat, SetDSCP: true, DSCP: 10}},
		pairConfig{suite: gcm128(), mode: ModeTunnel, outer: OuterHeader{DF: DFClear}},
		pairConfig{suite: gcm128(), mode: ModeTunnel, initSeq: 1<<32 - 4},
		pairConfig{suite: gcm128(), mode: ModeTunnel, tfc: true},
		pairConfig{suite: gcm128(), mode: ModeTunnel, life: Lifetime{Soft: Limits{Packets: 3}, Hard: Limits{Packets: 5}}},
		pairConfig{suite: suiteOf(t, "aes128ccm16", protoESPSuite, false), mode: ModeTunnel},
		pairConfig{suite: gcm128(), mode: ModeTransport},
	)
	return pcs
}

func pcName(pc pairConfig) string {
	return fmt.Sprintf("%s-esn=%v/in6=%v/out6=%v/udp=%v/%+v/seq=%d/tfc=%v/%+v/%s",
		pc.suite.Encr.ID, pc.suite.ESN, pc.inner6, pc.outer6, pc.encap, pc.outer, pc.initSeq, pc.tfc, pc.life, pc.mode)
}

// TestOutboundFastPath: Engine.outboundFast builds every packet byte for
// byte as outboundESP does, and leaves to it, unchanged, every packet it
// does not build (too big, no room, sequence numbers used up, SA expired).
func TestOutboundFastPath(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 100, 1000, 1400, 1430, 1472}
	for _, pc := range fastPathConfigs(t) {
		t.Run(pcName(pc), func(t *testing.T) {
			fast, slow := fastPathPair(t, pc)
			want := pc.mode == ModeTunnel && !pc.tfc && pc.life == (Lifetime{}) && pc.suite.Encr.ID != suiteOf(t, "aes128ccm16", protoESPSuite, false).Encr.ID
			if got := saOf(fast.a, fast.out.Key()).fastOut; got != want {
				t.Fatalf("fastOut %v, want %v", got, want)
			}
			for i, n := range sizes {
				for _, mtu := range []int{1500, 120} {
					pkt := fast.packet(n)
					if i%3 == 1 {
						setTOS(pkt, uint8(i)<<2|uint8(i)&3)
					}
					bf, bs := bufferWith(pkt), bufferWith(pkt)
					rf, rs := fast.a.Outbound(bf, mtu), slow.a.Outbound(bs, mtu)
					if rf != rs || !bytes.Equal(bf.Bytes(), bs.Bytes()) || bf.Headroom() != bs.Headroom() {
						t.Fatalf("%d octets, MTU %d:\nfast %+v %x\nslow %+v %x", n, mtu, rf, bf.Bytes(), rs, bs.Bytes())
					}
				}
			}
			// A buffer without headroom or tailroom for the headers.
			tight := fast.packet(50)
			bf, bs := &Buffer{buf: append([]byte(nil), tight...), tail: len(tight)}, &Buffer{buf: append([]byte(nil), tight...), tail: len(tight)}
			if rf, rs := fast.a.Outbound(bf, 1500), slow.a.Outbound(bs, 1500); rf != rs || rf.Reason != DropNoRoom {
				t.Fatalf("no headroom: fast %+v slow %+v", rf, rs)
			}
			if fd, sd := fast.a.Drops(), slow.a.Drops(); fd != sd {
				t.Fatalf("drops: fast %s slow %s", nonzero(fd), nonzero(sd))
			}
			if fi, si := fast.a.SAs()[0], slow.a.SAs()[0]; fi.Seq != si.Seq || fi.Stats != si.Stats || fi.State != si.State {
				t.Fatalf("SA: fast %+v slow %+v", fi, si)
			}
		})
	}
}

// TestOutboundFastPathExpiry: an SA that hard-expires by time is refused
// on the fast path as on the general one.
func TestOutboundFastPathExpiry(t *testing.T) {
	fast, slow := fastPathPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, life: Lifetime{Hard: Limits{Time: 10}}})
	if !saOf(fast.a, fast.out.Key()).fastOut {
		t.Fatal("a time lifetime kept the SA off the fast path")
	}
	fast.a.Tick(10)
	slow.a.Tick(10)
	rf, rs := fast.a.Outbound(bufferWith(fast.packet(10)), 1500), slow.a.Outbound(bufferWith(slow.packet(10)), 1500)
	if rf != rs || rf.Reason != DropHardExpired {
		t.Fatalf("fast %+v slow %+v", rf, rs)
	}
}

// TestInboundFastPath: Engine.inboundFast reaches the verdict, drop reason,
// drop counters, SA counters and delivered packet that inboundESP and
// decapTunnel reach, for well-formed packets and for each way a packet can
// fail after the SA lookup.
func TestInboundFastPath(t *testing.T) {
	for _, pc := range fastPathConfigs(t) {
		t.Run(pcName(pc), func(t *testing.T) {
			fast, slow := fastPathPair(t, pc)
			c := saOf(fast.b, fast.in.Key())
			want := pc.mode == ModeTunnel && !pc.suite.ESN && pc.life == (Lifetime{}) && c.esp.kind == kindAEAD
			if c.fastIn != want {
				t.Fatalf("fastIn %v, want %v", c.fastIn, want)
			}
			var wire [][]byte
			add := func(b *Buffer) { wire = append(wire, append([]byte(nil), b.Bytes()...)) }
			// out encapsulates on A; the SAs near exhaustion and expiry
			// stop sending, which leaves their receivers empty packets.
			out := func(pkt []byte) []byte {
				b := bufferWith(pkt)
				fast.a.Outbound(b, 1500)
				return b.Bytes()
			}
			for _, n := range []int{0, 1, 2, 3, 5, 17, 100, 1300} {
				p := out(fast.packet(n))
				wire = append(wire, p, p) // the second is a replay
			}
			// An outer CE mark: kept over ECT(0), fatal over Not-ECT.
			for _, tos := range []uint8{ecnECT0, ecnNotECT} {
				inner := fast.packet(20)
				setTOS(inner, tos)
				p := out(inner)
				if pc.outer6 {
					p[1] |= ecnCE << 4
				} else {
					p[ipv4TOS] |= ecnCE
					setIPv4Checksum(p[:ipv4MinLen])
				}
				wire = append(wire, p)
			}
			// Damage to every part of a good packet.
			good := out(fast.packet(40))
			for _, off := range []int{-1, -17, -30, len(good) / 2} {
				if len(good) < 60 {
					break
				}
				p := append([]byte(nil), good...)
				if off < 0 {
					off += len(p)
				}
				p[off] ^= 0x40
				wire = append(wire, p)
			}
			wire = append(wire, good[:max(len(good)-30, 0)])
			// Plaintexts outbound would never build.
			if pc.mode == ModeTunnel {
				align := saOf(fast.a, fast.out.Key()).esp.align
				inner := fast.packet(9)
				nh := uint8(protoIPv4)
				if pc.inner6 {
					nh = protoIPv6
				}
				var alien []byte
				if pc.inner6 {
					alien = udpPacket(netip.MustParseAddr("fd00:9::1"), hostB6, 1, 2, []byte{1})
				} else {
					alien = udpPacket(netip.MustParseAddr("10.9.9.9"), hostB4, 1, 2, []byte{1})
				}
				badPad := trailer(append([]byte(nil), inner...), nh, align)
				badPad[len(inner)] ^= 9
				badLen := trailer(append([]byte(nil), inner...), nh, align)
				badLen[len(badLen)-2] = 250
				for i, pt := range [][]byte{
					trailer(append([]byte(nil), inner...), nh, align),
					append(append([]byte(nil), inner...), 0, nh), // no padding at all
					badPad, badLen,
					trailer(append([]byte(nil), inner...), protoTCP, align),
					trailer(append([]byte(nil), inner...), protoNoNext, align),
					trailer([]byte{0x45, 0, 0, 9}, nh, align),
					trailer(alien, nh, align),
					trailer(append(append([]byte(nil), inner...), make([]byte, 33)...), nh, align), // TFC padding
				} {
					if len(pt)%align == 0 {
						add(craftESP(t, fast, uint64(1000+i), pt))
					}
				}
				// Padding of every length up to 9, good and with each
				// octet wrong: inboundFast checks short padding as one
				// word and longer padding octet by octet.
				seq := uint64(2000)
				for n := 9; n < 9+align; n++ {
					inner := fast.packet(n)
					for padLen := 0; padLen <= 9; padLen++ {
						pt := append([]byte(nil), inner...)
						for i := 1; i <= padLen; i++ {
							pt = append(pt, byte(i))
						}
						pt = append(pt, byte(padLen), nh)
						if len(pt)%align != 0 {
							continue
						}
						for bad := -1; bad < padLen; bad++ {
							p := append([]byte(nil), pt...)
							if bad >= 0 {
								p[len(inner)+bad] ^= 0x80
							}
							seq++
							add(craftESP(t, fast, seq, p))
						}
					}
				}
				d := NewBuffer(DefaultBufferSize)
				if r := fast.a.Dummy(d, fast.out.Key(), 30, 1500); r.Verdict == VerdictForward {
					add(d)
				}
			}
			// Left of the window, then the right encapsulation's
			// opposite.
			for range 70 {
				wire = append(wire, out(fast.packet(1)))
			}
			wire = append(wire, good)
			if !pc.outer6 && len(good) > 60 {
				if pc.encap {
					wire = append(wire, ipPacket(fast.gwSrc, fast.gwDst, protoESP, good[ipv4MinLen+udpLen:]))
				} else {
					wire = append(wire, udpPacket(fast.gwSrc, fast.gwDst, 4500, 4500, good[ipv4MinLen:]))
				}
			}
			for i, p := range wire {
				bf, bs := bufferWith(p), bufferWith(p)
				rf, rs := fast.b.Inbound(bf), slow.b.Inbound(bs)
				if rf != rs || !bytes.Equal(bf.Bytes(), bs.Bytes()) {
					t.Fatalf("packet %d (%x):\nfast %+v %x\nslow %+v %x", i, p, rf, bf.Bytes(), rs, bs.Bytes())
				}
			}
			if fd, sd := fast.b.Drops(), slow.b.Drops(); fd != sd {
				t.Fatalf("drops: fast %s slow %s", nonzero(fd), nonzero(sd))
			}
			if fi, si := fast.b.SAs()[0], slow.b.SAs()[0]; fi.Seq != si.Seq || fi.Stats != si.Stats || fi.State != si.State {
				t.Fatalf("SA: fast %+v slow %+v", fi, si)
			}
			if fast.b.SAs()[0].Stats.Packets < 3 {
				t.Fatal("hardly anything was delivered")
			}
		})
	}
}

// TestInboundFastPathExpiry: an SA that hard-expires by time is refused on
// the fast path as on the general one.
func TestInboundFastPathExpiry(t *testing.T) {
	fast, slow := fastPathPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, life: Lifetime{Hard: Limits{Time: 10}}})
	if !saOf(fast.b, fast.in.Key()).fastIn {
		t.Fatal("a time lifetime kept the SA off the fast path")
	}
	b := bufferWith(fast.packet(10))
	fast.a.Outbound(b, 1500)
	p := b.Bytes()
	fast.b.Tick(10)
	slow.b.Tick(10)
	rf, rs := fast.b.Inbound(bufferWith(p)), slow.b.Inbound(bufferWith(p))
	if rf != rs || rf.Reason != DropHardExpired {
		t.Fatalf("fast %+v slow %+v", rf, rs)
	}
}
