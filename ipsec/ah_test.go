package ipsec

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

var (
	router4 = netip.MustParseAddr("192.0.2.99")
	router6 = netip.MustParseAddr("2001:db8:99::1")
	hop6    = netip.MustParseAddr("2001:db8:98::1")
	anyNets = Selectors{Local: []TS{PrefixTS(mustPrefix("0.0.0.0/0")), PrefixTS(mustPrefix("::/0"))},
		Remote: []TS{PrefixTS(mustPrefix("0.0.0.0/0")), PrefixTS(mustPrefix("::/0"))}}
)

// ipv4WithOptions builds a UDP packet from src to dst with the given
// options (padded to a 4-octet boundary).
func ipv4WithOptions(src, dst netip.Addr, opts []byte, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	ihl := ipv4MinLen + len(opts)
	l4 := make([]byte, udpLen+len(payload))
	binary.BigEndian.PutUint16(l4, 7)
	binary.BigEndian.PutUint16(l4[2:], 9)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[udpLen:], payload)
	p := make([]byte, ihl, ihl+len(l4))
	p[0] = 0x40 | byte(ihl/4)
	p[ipv4TOS] = 0x28
	binary.BigEndian.PutUint16(p[ipv4TotalLen:], uint16(ihl+len(l4)))
	binary.BigEndian.PutUint16(p[ipv4ID:], 0x4242)
	p[ipv4TTL] = 30
	p[ipv4Proto] = protoUDP
	putAddr(p[ipv4Src:], src)
	putAddr(p[ipv4Dst:], dst)
	copy(p[ipv4MinLen:], opts)
	setIPv4Checksum(p[:ihl])
	return append(p, l4...)
}

// TestCanonIPv4 checks the ICV view of an IPv4 header with options
// against RFC 4302 §3.3.3.1.1 and Appendix A, octet by octet.
func TestCanonIPv4(t *testing.T) {
	opts := []byte{
		1,            // NOP: immutable
		148, 4, 0, 0, // Router Alert: immutable
		7, 7, 4, 0, 0, 0, 0, // Record Route: mutable, zeroed whole
		131, 7, 4, 203, 0, 113, 2, // LSRR toward 203.0.113.2: mutable, predicts the destination
		130, 3, 0x5a, // Security (truncated form is fine for the walk): immutable
		0, // End of Options List
	}
	pkt := ipv4WithOptions(gwA4, router4, opts, []byte("x"))
	pkt[ipv4Flags] = ipv4FlagDF
	ihl := int(pkt[0]&0xf) * 4
	if r := canonicalize(pkt, ihl); r != DropNone {
		t.Fatal(r)
	}
	want := []byte{
		0x40 | byte(ihl/4), 0, 0, byte(len(pkt)), // TOS zeroed
		0x42, 0x42, 0, 0, // ID kept; flags and offset zeroed
		0, protoUDP, 0, 0, // TTL and checksum zeroed
		203, 0, 113, 1, // source
		203, 0, 113, 2, // destination: the source route's final hop
		1, 148, 4, 0, 0,
		0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0,
		130, 3, 0x5a,
		0,
	}
	for len(want) < ihl {
		want = append(want, 0)
	}
	if !bytes.Equal(pkt[:ihl], want) {
		t.Fatalf("canonical header\n got %x\nwant %x", pkt[:ihl], want)
	}
	// Malformed option lengths are refused rather than walked past.
	bad := ipv4WithOptions(gwA4, gwB4, []byte{7, 40, 4, 0}, nil)
	if r := canonicalize(bad, int(bad[0]&0xf)*4); r != DropMalformed {
		t.Fatalf("bad option length: %v", r)
	}
}

// routeIPv4 plays the routers between the hosts: TTL, TOS and DF change,
// Record Route fills in, and a loose source route is processed.
func routeIPv4(pkt []byte) {
	ihl := int(pkt[0]&0xf) * 4
	pkt[ipv4TTL] -= 3
	pkt[ipv4TOS] = 0xb9
	pkt[ipv4Flags] |= ipv4FlagDF
	opts := pkt[ipv4MinLen:ihl]
	for i := 0; i < len(opts) && opts[i] != 0; {
		if opts[i] == 1 {
			i++
			continue
		}
		l := int(opts[i+1])
		switch opts[i] {
		case 7:
			copy(opts[i+3:], []byte{192, 0, 2, 98})
			opts[i+2] += 4
		case 131:
			ptr := int(opts[i+2])
			var next [4]byte
			copy(next[:], opts[i+ptr-1:])
			copy(opts[i+ptr-1:], router4.AsSlice())
			copy(pkt[ipv4Dst:], next[:])
			opts[i+2] += 4
		}
		i += l
	}
	setIPv4Checksum(pkt[:ihl])
}

// TestAHIPv4OptionsInTransit: an AH transport packet with options crosses
// routers that change every mutable field; the receiver still verifies it
// and rebuilds the packet it saw.
func TestAHIPv4OptionsInTransit(t *testing.T) {
	for _, kw := range []string{"sha256", "aesxcbc", "aes128gmac", "sha512"} {
		tp := newPair(t, pairConfig{suite: suiteOf(t, kw, protoAHSuite, true), mode: ModeTransport, selectors: &anyNets})
		opts := []byte{1, 148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 131, 7, 4, 203, 0, 113, 2, 0}
		pkt := ipv4WithOptions(gwA4, router4, opts, []byte("options survive"))
		b := bufferWith(pkt)
		if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward || r.NextHop != router4 {
			t.Fatalf("%s: %+v", kw, r)
		}
		o := b.Bytes()
		ihl := int(o[0]&0xf) * 4
		if o[ipv4Proto] != protoAH || o[ihl] != protoUDP || ipv4HeaderChecksum(o[:ihl]) != binary.BigEndian.Uint16(o[ipv4Checksum:]) {
			t.Fatalf("%s: AH header placement %x", kw, o[:ihl+4])
		}
		routeIPv4(o)
		if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
			t.Fatalf("%s: %+v %s", kw, r, nonzero(tp.b.Drops()))
		}
		got := b.Bytes()
		if got[ipv4Proto] != protoUDP || len(got) != len(pkt) || !bytes.Equal(got[ihl:], pkt[ihl:]) ||
			netip.AddrFrom4([4]byte(got[ipv4Dst:ipv4Dst+4])) != gwB4 || ipv4HeaderChecksum(got[:ihl]) != binary.BigEndian.Uint16(got[ipv4Checksum:]) {
			t.Fatalf("%s: rebuilt packet\n got %x\nsent %x", kw, got, pkt)
		}
		// An immutable option changed in transit breaks the ICV.
		b = bufferWith(pkt)
		tp.a.Outbound(b, 1500)
		b.Bytes()[ipv4MinLen+3] = 1 // Router Alert value
		setIPv4Checksum(b.Bytes()[:ihl])
		if r := tp.b.Inbound(b); r.Reason != DropAuth {
			t.Fatalf("%s: immutable option changed: %+v", kw, r)
		}
	}
}

// ipv6WithExt builds an IPv6 UDP packet from src to dst with a hop-by-hop
// header (a mutable and an immutable option) and a type 0 routing header
// listing route; dst is the first hop.
func ipv6WithExt(src, dst netip.Addr, route []netip.Addr, payload []byte) []byte {
	hbh := []byte{protoRouting, 0,
		0x3e, 2, 0xaa, 0xbb, // experimental option, may change en route
		0x1e, 0, // immutable, no data
	}
	rh := []byte{protoUDP, byte(2 * len(route)), 0, byte(len(route)), 0, 0, 0, 0}
	for _, a := range route {
		rh = append(rh, a.AsSlice()...)
	}
	l4 := make([]byte, udpLen+len(payload))
	binary.BigEndian.PutUint16(l4, 7)
	binary.BigEndian.PutUint16(l4[2:], 9)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[udpLen:], payload)
	p := ipPacket(src, dst, protoHopByHop, append(append(hbh, rh...), l4...))
	p[1] = 0x12 // traffic class and flow label bits
	p[2], p[3] = 0x34, 0x56
	return p
}

func TestCanonIPv6(t *testing.T) {
	pkt := ipv6WithExt(gwA6, router6, []netip.Addr{hop6, gwB6}, []byte("x"))
	// Pretend AH follows the routing header.
	pkt[ipv6Len+8] = protoAH
	ahOff := ipv6Len + 8 + 8 + 32
	if r := canonicalize(pkt, ahOff); r != DropNone {
		t.Fatal(r)
	}
	want := []byte{0x60, 0, 0, 0}
	if !bytes.Equal(pkt[:4], want) || pkt[ipv6HopLimit] != 0 {
		t.Fatalf("base header %x", pkt[:8])
	}
	if got := netip.AddrFrom16([16]byte(pkt[ipv6Dst : ipv6Dst+16])); got != gwB6 {
		t.Fatalf("destination %v, want the final %v", got, gwB6)
	}
	hbh := pkt[ipv6Len : ipv6Len+8]
	if !bytes.Equal(hbh, []byte{protoRouting, 0, 0x3e, 2, 0, 0, 0x1e, 0}) {
		t.Fatalf("hop-by-hop %x", hbh)
	}
	rh := pkt[ipv6Len+8 : ahOff]
	if rh[3] != 0 || netip.AddrFrom16([16]byte(rh[8:24])) != router6 || netip.AddrFrom16([16]byte(rh[24:40])) != hop6 {
		t.Fatalf("routing header at the destination %x", rh)
	}
	// Routing types whose final form is unknown cannot be authenticated
	// while segments remain.
	pkt = ipv6WithExt(gwA6, router6, []netip.Addr{gwB6}, nil)
	pkt[ipv6Len+8] = protoAH
	pkt[ipv6Len+8+2] = 4
	if r := canonicalize(pkt, ipv6Len+8+8+16); r != DropUnpredictable {
		t.Fatalf("SRH with segments left: %v", r)
	}
}

// routeIPv6 plays the routers: hop limit, traffic class and flow label
// change, the mutable option's data changes, and every hop of the type 0
// routing header is processed.
func routeIPv6(pkt []byte) {
	pkt[ipv6HopLimit] -= 2
	pkt[1] = 0xf7
	pkt[2], pkt[3] = 0xff, 0x01
	pkt[ipv6Len+4], pkt[ipv6Len+5] = 0x11, 0x22
	rh := pkt[ipv6Len+8:]
	n := int(rh[1]) / 2
	for rh[3] > 0 {
		i := n - int(rh[3])
		var next [16]byte
		copy(next[:], rh[8+16*i:])
		copy(rh[8+16*i:], pkt[ipv6Dst:ipv6Dst+16])
		copy(pkt[ipv6Dst:], next[:])
		rh[3]--
	}
}

func TestAHIPv6ExtensionHeadersInTransit(t *testing.T) {
	for _, kw := range []string{"sha256", "aescmac", "aes256gmac", "sha384"} {
		tp := newPair(t, pairConfig{suite: suiteOf(t, kw, protoAHSuite, false), mode: ModeTransport, outer6: true, inner6: true, selectors: &anyNets})
		pkt := ipv6WithExt(gwA6, router6, []netip.Addr{hop6, gwB6}, []byte("extension headers survive"))
		b := bufferWith(pkt)
		if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward || r.NextHop != router6 {
			t.Fatalf("%s: %+v", kw, r)
		}
		o := b.Bytes()
		ahOff := ipv6Len + 8 + 40
		if o[ipv6Len+8] != protoAH || o[ahOff] != protoUDP || (int(o[ahOff+1])+2)*4%8 != 0 {
			t.Fatalf("%s: AH placement or alignment %x", kw, o[ipv6Len:ahOff+4])
		}
		routeIPv6(o)
		if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
			t.Fatalf("%s: %+v %s", kw, r, nonzero(tp.b.Drops()))
		}
		got := b.Bytes()
		if len(got) != len(pkt) || got[ipv6Len+8] != protoUDP || !bytes.Equal(got[ahOff-40+40:], pkt[ahOff:]) {
			t.Fatalf("%s: rebuilt packet\n got %x\nsent %x", kw, got, pkt)
		}
		// Changing an immutable option breaks the ICV.
		b = bufferWith(pkt)
		tp.a.Outbound(b, 1500)
		b.Bytes()[ipv6Len+6] = 0x1f
		if r := tp.b.Inbound(b); r.Reason != DropAuth {
			t.Fatalf("%s: immutable option changed: %+v", kw, r)
		}
	}
}

// TestAHTunnelOuterMutable: routers may change the outer header's mutable
// fields in tunnel mode too.
func TestAHTunnelOuterMutable(t *testing.T) {
	for _, outer6 := range []bool{false, true} {
		tp := newPair(t, pairConfig{suite: suiteOf(t, "sha256", protoAHSuite, true), mode: ModeTunnel, outer6: outer6})
		pkt := tp.packet(33)
		b := bufferWith(pkt)
		tp.a.Outbound(b, 1500)
		o := b.Bytes()
		if outer6 {
			o[ipv6HopLimit] = 1
			o[1] |= 0x0f
		} else {
			o[ipv4TTL] = 1
			o[ipv4TOS] = 0xfe // any DSCP, ECT(0)
			o[ipv4Flags] = 0
			setIPv4Checksum(o[:20])
		}
		if r := tp.b.Inbound(b); r.Verdict != VerdictForward || !bytes.Equal(b.Bytes(), pkt) {
			t.Fatalf("outer%d: %+v", ipv(outer6), r)
		}
		// The outer source is immutable.
		b = bufferWith(pkt)
		tp.a.Outbound(b, 1500)
		if outer6 {
			b.Bytes()[ipv6Src+15] ^= 1
		} else {
			b.Bytes()[ipv4Src+3] ^= 1
			setIPv4Checksum(b.Bytes()[:20])
		}
		if r := tp.b.Inbound(b); r.Reason != DropAuth {
			t.Fatalf("outer%d: changed source: %+v", ipv(outer6), r)
		}
	}
}

func TestAHICVFieldAlignment(t *testing.T) {
	for _, kw := range ahKeywords() {
		s := suiteOf(t, kw, protoAHSuite, false)
		_, integ := testKeys(s, 1)
		sa, err := newSA(&SAConfig{Dir: DirIn, SPI: 0x999, Mode: ModeTunnel, Src: gwA4, Dst: gwB4, Suite: s, IntegKey: integ,
			Selectors: anyNets}, allowed, 64, newTestRand(1), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Integ.Info()
		icv := info.ICVLen
		if info.GMAC {
			icv += gmacIVLen
		}
		if (ahFixedLen+sa.ahICV[0])%4 != 0 || (ahFixedLen+sa.ahICV[1])%8 != 0 || sa.ahICV[0] < icv || sa.ahICV[1]-icv >= 8 {
			t.Errorf("%s: ICV fields %v for a %d-octet ICV", kw, sa.ahICV, icv)
		}
	}
	_ = proposal.ProtoAH
}
