package ipsec

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// craftESP seals an arbitrary ESP plaintext (payload, padding, pad length,
// next header) with A's outbound SA and wraps it in A's outer header, so
// tests can hand B packets that Outbound would never build.
func craftESP(t testing.TB, tp *testPair, seq uint64, plaintext []byte) *Buffer {
	t.Helper()
	tp.a.mu.Lock()
	sa := tp.a.sas[tp.out.Key()]
	tp.a.mu.Unlock()
	c := sa.esp
	espLen := espHeaderLen + c.ivLen + len(plaintext) + c.icvLen
	w := make([]byte, 4+espLen, 4+espLen+16)
	e := w[4:]
	binary.BigEndian.PutUint32(e, tp.out.SPI)
	binary.BigEndian.PutUint32(e[4:], uint32(seq))
	if err := c.writeIV(e[8:8+c.ivLen], seq); err != nil {
		t.Fatal(err)
	}
	copy(e[8+c.ivLen:], plaintext)
	var sc scratch
	c.seal(w, 4, seq, sa.esn, &sc)
	return bufferWith(ipPacket(tp.gwSrc, tp.gwDst, protoESP, e))
}

// trailer pads p per RFC 4303 §2.4 to a multiple of align and appends pad
// length and next header.
func trailer(p []byte, nh byte, align int) []byte {
	pad := (align - (len(p)+2)%align) % align
	for i := 0; i < pad; i++ {
		p = append(p, byte(i+1))
	}
	return append(p, byte(pad), nh)
}

func TestPaddingChecks(t *testing.T) {
	tp := newPair(t, pairConfig{suite: suiteOf(t, "aes128-sha256", protoESPSuite, false), mode: ModeTunnel})
	inner := tp.packet(9)
	good := trailer(append([]byte(nil), inner...), protoIPv4, 16)
	if r := tp.b.Inbound(craftESP(t, tp, 1, good)); r.Verdict != VerdictForward {
		t.Fatalf("well-formed: %+v %s", r, nonzero(tp.b.Drops()))
	}
	badContent := append([]byte(nil), good...)
	badContent[len(inner)+1] = 7 // second padding octet should be 2
	if r := tp.b.Inbound(craftESP(t, tp, 2, badContent)); r.Reason != DropPadding {
		t.Fatalf("wrong padding octet: %+v", r)
	}
	badLen := append([]byte(nil), good...)
	badLen[len(badLen)-2] = 200 // longer than the plaintext
	if r := tp.b.Inbound(craftESP(t, tp, 3, badLen)); r.Reason != DropPadding {
		t.Fatalf("pad length past the payload: %+v", r)
	}
	// A payload that is not a valid inner packet of the announced kind.
	bogus := trailer([]byte{0x60, 0, 0, 0}, protoIPv4, 16)
	if r := tp.b.Inbound(craftESP(t, tp, 4, bogus)); r.Reason != DropMalformed {
		t.Fatalf("garbage inner packet: %+v", r)
	}
	if r := tp.b.Inbound(craftESP(t, tp, 5, trailer(append([]byte(nil), inner...), protoTCP, 16))); r.Reason != DropNextHeader {
		t.Fatalf("tunnel mode carrying TCP: %+v", r)
	}
	if d := tp.b.SAs()[0].Stats; d.OtherDrops != 4 || d.Packets != 1 {
		t.Fatalf("SA counters %+v", d)
	}
}

// TestTFCPaddingTrimmed: extra octets after the inner packet (TFC padding,
// RFC 4303 §2.7) are removed using the inner header's length.
func TestTFCPadding(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, tfc: true})
	for _, n := range []int{1, 100, 1000} {
		pkt := tp.packet(n)
		b := bufferWith(pkt)
		if r := tp.a.Outbound(b, 1400); r.Verdict != VerdictForward {
			t.Fatal(r)
		}
		if b.Len() > 1400 || b.Len() < 1400-4 {
			t.Fatalf("TFC: outer packet of %d octets for MTU 1400", b.Len())
		}
		if r := tp.b.Inbound(b); r.Verdict != VerdictForward || !bytes.Equal(b.Bytes(), pkt) {
			t.Fatalf("%d: %+v", n, r)
		}
	}
	crafted := append(append([]byte(nil), tp.packet(5)...), make([]byte, 40)...)
	b := craftESP(t, tp, 100, trailer(crafted, protoIPv4, 4))
	if r := tp.b.Inbound(b); r.Verdict != VerdictForward || !bytes.Equal(b.Bytes(), tp.packet(5)) {
		t.Fatalf("TFC-padded packet: %+v %x", r, b.Bytes())
	}
}

func TestDummyPacket(t *testing.T) {
	for _, mode := range []Mode{ModeTunnel, ModeTransport} {
		tp := newPair(t, pairConfig{suite: gcm128(), mode: mode})
		b := NewBuffer(DefaultBufferSize)
		if r := tp.a.Dummy(b, tp.out.Key(), 300, 1500); r.Verdict != VerdictForward || r.NextHop != tp.gwDst {
			t.Fatalf("%s: dummy: %+v", mode, r)
		}
		wire := append([]byte(nil), b.Bytes()...)
		if r := tp.b.Inbound(b); r.Reason != DropDummy {
			t.Fatalf("%s: %+v", mode, r)
		}
		// Authentic, so it holds its sequence number.
		if r := tp.b.Inbound(bufferWith(wire)); r.Reason != DropReplay {
			t.Fatalf("%s: dummy replay: %+v", mode, r)
		}
		if or, ir, _ := tp.send(t, tp.packet(10)); ir.Verdict != VerdictForward {
			t.Fatalf("%s: traffic after a dummy: %+v %+v", mode, or, ir)
		}
		// Dummies count as carried packets on both sides.
		if d := tp.b.Drops(); d[DropDummy] != 1 || tp.b.SAs()[0].Stats.Packets != 2 || tp.a.SAs()[0].Stats.Packets != 2 {
			t.Fatalf("%s: drops %s stats %+v", mode, nonzero(d), tp.b.SAs()[0].Stats)
		}
	}
}

func TestUDPEncapsulationDemux(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, encap: true})
	keepalive := udpPacket(gwA4, gwB4, 4500, 4500, []byte{0xff})
	if r := tp.b.Inbound(bufferWith(keepalive)); r.Verdict != VerdictDrop || r.Reason != DropKeepalive {
		t.Fatalf("keepalive: %+v", r)
	}
	ike := udpPacket(gwA4, gwB4, 4500, 4500, append([]byte{0, 0, 0, 0}, bytes.Repeat([]byte{0x42}, 40)...))
	b := bufferWith(ike)
	if r := tp.b.Inbound(b); r.Verdict != VerdictLocal || !bytes.Equal(b.Bytes(), ike) {
		t.Fatalf("non-ESP marker: %+v", r)
	}
	ike500 := udpPacket(gwA4, gwB4, 500, 500, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if r := tp.b.Inbound(bufferWith(ike500)); r.Verdict != VerdictLocal {
		t.Fatalf("UDP 500: %+v", r)
	}
	short := udpPacket(gwA4, gwB4, 4500, 4500, []byte{1, 2, 3})
	if r := tp.b.Inbound(bufferWith(short)); r.Reason != DropMalformed {
		t.Fatalf("3-octet payload: %+v", r)
	}
	// ESP-in-UDP for an SA without encapsulation, and plain ESP for one
	// with it, are both refused.
	plain := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	b = bufferWith(plain.packet(10))
	plain.a.Outbound(b, 1500)
	if r := tp.b.Inbound(b); r.Reason != DropEncap {
		t.Fatalf("plain ESP to an encapsulating SA: %+v", r)
	}
	d := tp.b.Drops()
	if d[DropKeepalive] != 1 || d[DropMalformed] != 1 || d[DropEncap] != 1 {
		t.Fatalf("drops %s", nonzero(d))
	}
	if tp.b.SAs()[0].Stats.Packets != 0 {
		t.Fatal("keepalives counted as traffic")
	}
}

func TestSelectorMismatch(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	// B's SA admits only half of A's network.
	tp.b.DeleteSA(tp.in.Key())
	tp.in.Selectors = Selectors{Local: []TS{PrefixTS(redB4)}, Remote: []TS{PrefixTS(mustPrefix("192.168.1.128/25"))}}
	if err := tp.b.AddSA(tp.in); err != nil {
		t.Fatal(err)
	}
	_, ir, _ := tp.send(t, tp.packet(10)) // from 192.168.1.10
	if ir.Reason != DropSelector {
		t.Fatalf("%+v", ir)
	}
	tp.src = netip.MustParseAddr("192.168.1.200")
	if _, ir, _ := tp.send(t, tp.packet(10)); ir.Verdict != VerdictForward {
		t.Fatalf("inside the selectors: %+v", ir)
	}
	st := tp.b.SAs()[0].Stats
	if st.OtherDrops != 1 || st.Packets != 1 || tp.b.Drops()[DropSelector] != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestECNDecapsulationTable checks every cell of RFC 6040 §4.2's table.
func TestECNDecapsulationTable(t *testing.T) {
	const drop = 0xff
	// rows: inner Not-ECT, ECT(0), ECT(1), CE; columns: outer likewise.
	codes := []uint8{ecnNotECT, ecnECT0, ecnECT1, ecnCE}
	table := [4][4]uint8{
		{ecnNotECT, ecnNotECT, ecnNotECT, drop},
		{ecnECT0, ecnECT0, ecnECT1, ecnCE},
		{ecnECT1, ecnECT1, ecnECT1, ecnCE},
		{ecnCE, ecnCE, ecnCE, ecnCE},
	}
	for i, in := range codes {
		for j, out := range codes {
			got, ok := decapECN(in, out)
			if want := table[i][j]; want == drop && ok || want != drop && (!ok || got != want) {
				t.Errorf("inner %d outer %d: %d %v, want %d", in, out, got, ok, want)
			}
		}
	}
}

// setTOS rewrites DSCP and ECN of an IPv4 or IPv6 packet.
func setTOS(pkt []byte, tos uint8) {
	if pkt[0]>>4 == 4 {
		pkt[ipv4TOS] = tos
		setIPv4Checksum(pkt[:int(pkt[0]&0xf)*4])
		return
	}
	pkt[0] = 0x60 | tos>>4
	pkt[1] = pkt[1]&0x0f | tos<<4
}

func TestTunnelOuterHeader(t *testing.T) {
	for _, outer6 := range []bool{false, true} {
		for _, inner6 := range []bool{false, true} {
			tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, outer6: outer6, inner6: inner6})
			pkt := tp.packet(10)
			setTOS(pkt, 46<<2|ecnECT0) // EF, ECT(0)
			b := bufferWith(pkt)
			tp.a.Outbound(b, 1500)
			o := b.Bytes()
			if dscpOf(o) != 46 || ecnOf(o) != ecnECT0 {
				t.Fatalf("out%d in%d: DSCP %d ECN %d not copied", ipv(outer6), ipv(inner6), dscpOf(o), ecnOf(o))
			}
			if !outer6 && (o[ipv4TTL] != 64 || o[ipv4Flags]&ipv4FlagDF == 0) || outer6 && o[ipv6HopLimit] != 64 {
				t.Fatalf("out%d in%d: TTL/DF %x", ipv(outer6), ipv(inner6), o[:8])
			}
			// A router on the way marks congestion: CE on the outer header.
			setTOS(o, 46<<2|ecnCE)
			if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
				t.Fatalf("%+v", r)
			}
			if ecnOf(b.Bytes()) != ecnCE || dscpOf(b.Bytes()) != 46 {
				t.Fatalf("out%d in%d: CE not propagated: %x", ipv(outer6), ipv(inner6), b.Bytes()[:4])
			}
			if !inner6 && ipv4HeaderChecksum(b.Bytes()[:20]) != binary.BigEndian.Uint16(b.Bytes()[ipv4Checksum:]) {
				t.Fatal("inner checksum not updated with ECN")
			}
			// CE outside a Not-ECT packet must be dropped.
			b = bufferWith(tp.packet(10))
			tp.a.Outbound(b, 1500)
			setTOS(b.Bytes(), ecnCE)
			if r := tp.b.Inbound(b); r.Reason != DropECN {
				t.Fatalf("forbidden combination: %+v", r)
			}
		}
	}
}

func TestOuterHeaderPolicies(t *testing.T) {
	for i, o := range []OuterHeader{
		{TTL: 17, DF: DFClear, ECN: ECNCompat, SetDSCP: true, DSCP: 10},
		{DF: DFSet},
	} {
		tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, outer: o})
		ids := map[uint16]bool{}
		pkt := tp.packet(10)
		pkt[ipv4Flags] = 0 // inner DF clear
		setTOS(pkt, 46<<2|ecnECT1)
		for j := 0; j < 100; j++ {
			b := bufferWith(pkt)
			tp.a.Outbound(b, 1500)
			h := b.Bytes()
			id := binary.BigEndian.Uint16(h[ipv4ID:])
			if ids[id] {
				t.Fatalf("IPv4 ID %d repeated", id)
			}
			ids[id] = true
			switch i {
			case 0:
				if h[ipv4TTL] != 17 || h[ipv4Flags]&ipv4FlagDF != 0 || ecnOf(h) != ecnNotECT || dscpOf(h) != 10 {
					t.Fatalf("policy 0: %x", h[:12])
				}
			case 1:
				if h[ipv4Flags]&ipv4FlagDF == 0 || h[ipv4TTL] != 64 || ecnOf(h) != ecnECT1 {
					t.Fatalf("policy 1: %x", h[:12])
				}
			}
			if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
				t.Fatal(r)
			}
		}
	}
	// DF copied from a DF-less inner packet stays clear.
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	pkt := tp.packet(10)
	pkt[ipv4Flags] = 0
	setIPv4Checksum(pkt[:20])
	b := bufferWith(pkt)
	tp.a.Outbound(b, 1500)
	if b.Bytes()[ipv4Flags]&ipv4FlagDF != 0 {
		t.Fatal("DF set although the inner packet had none")
	}
}

// TestTooBig: the MTU reported is the largest inner packet that fits,
// exactly, for ESP and AH in both modes.
func TestTooBig(t *testing.T) {
	for _, c := range []struct {
		kw    string
		ah    bool
		mode  Mode
		encap bool
	}{
		{"aes128gcm16", false, ModeTunnel, false},
		{"aes128gcm16", false, ModeTunnel, true},
		{"aes256-sha512", false, ModeTunnel, false},
		{"aes128-sha256", false, ModeTransport, true},
		{"3des-sha1", false, ModeTransport, false},
		{"sha256", true, ModeTunnel, false},
		{"aes128gmac", true, ModeTransport, false},
	} {
		proto := protoESPSuite
		if c.ah {
			proto = protoAHSuite
		}
		tp := newPair(t, pairConfig{suite: suiteOf(t, c.kw, proto, false), mode: c.mode, encap: c.encap})
		const mtu = 1400
		b := bufferWith(tp.packet(1500))
		r := tp.a.Outbound(b, mtu)
		if r.Reason != DropTooBig || r.MTU <= 1000 || r.MTU >= mtu {
			t.Fatalf("%s %s: %+v", c.kw, c.mode, r)
		}
		fits := tp.packet(r.MTU - 28)
		b = bufferWith(fits)
		if got := tp.a.Outbound(b, mtu); got.Verdict != VerdictForward || b.Len() > mtu {
			t.Fatalf("%s %s: a packet of the reported MTU %d: %+v, %d octets", c.kw, c.mode, r.MTU, got, b.Len())
		}
		if got := tp.a.Outbound(bufferWith(tp.packet(r.MTU-27)), mtu); got.Reason != DropTooBig {
			t.Fatalf("%s %s: one octet more than MTU %d: %+v", c.kw, c.mode, r.MTU, got)
		}
	}
}

// TestNATTransportChecksum: a transport-mode peer behind a NAT computed
// its TCP and UDP checksums over its private address; after the NAT
// rewrote the outer source, decapsulation must leave valid checksums,
// with NAT-OA (incremental) and without (recomputed).
func TestNATTransportChecksum(t *testing.T) {
	private := netip.MustParseAddr("10.0.0.5")
	public := netip.MustParseAddr("198.51.100.7")
	for _, withOA := range []bool{false, true} {
		for _, proto := range []uint8{protoUDP, protoTCP} {
			pc := pairConfig{suite: gcm128(), mode: ModeTransport, encap: true,
				selectors: &Selectors{Local: []TS{PrefixTS(mustPrefix("0.0.0.0/0"))}, Remote: []TS{PrefixTS(mustPrefix("0.0.0.0/0"))}}}
			if withOA {
				pc.natOA = NATOA{Src: private, Dst: gwB4}
			}
			tp := newPair(t, pc)
			var pkt []byte
			if proto == protoUDP {
				pkt = udpPacket(private, gwB4, 1234, 80, []byte("hello through a NAT"))
			} else {
				seg := make([]byte, 20+11)
				binary.BigEndian.PutUint16(seg, 1234)
				binary.BigEndian.PutUint16(seg[2:], 80)
				seg[12] = 5 << 4
				copy(seg[20:], "hello, tcp!")
				pkt = ipPacket(private, gwB4, protoTCP, seg)
				setL4Checksum(pkt)
			}
			tp.a.DeleteSA(tp.out.Key())
			tp.out.Src = private
			if err := tp.a.AddSA(tp.out); err != nil {
				t.Fatal(err)
			}
			b := bufferWith(pkt)
			if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward {
				t.Fatalf("%+v", r)
			}
			natTranslate(b.Bytes(), public, 40000, gwB4, 4500)
			if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
				t.Fatalf("%+v %s", r, nonzero(tp.b.Drops()))
			}
			got := b.Bytes()
			if netip.AddrFrom4([4]byte(got[ipv4Src:ipv4Src+4])) != public || !l4ChecksumOK(got) {
				t.Fatalf("oa=%v proto %d: checksum not fixed: %x", withOA, proto, got)
			}
		}
	}
}

func TestInboundRejectsJunk(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	b := bufferWith(tp.packet(10))
	tp.a.Outbound(b, 1500)
	good := append([]byte(nil), b.Bytes()...)
	frag := append([]byte(nil), good...)
	frag[ipv4Flags] |= ipv4FlagMF
	setIPv4Checksum(frag[:20])
	// A bad outer checksum matters where the header is kept: transport
	// mode.
	ttp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTransport})
	tb := bufferWith(ttp.packet(10))
	ttp.a.Outbound(tb, 1500)
	tb.Bytes()[ipv4Checksum] ^= 1
	if r := ttp.b.Inbound(tb); r.Reason != DropMalformed {
		t.Errorf("transport, bad header checksum: %+v", r)
	}
	unknown := append([]byte(nil), good...)
	unknown[20] ^= 0x80
	for _, c := range []struct {
		name string
		pkt  []byte
		want DropReason
	}{
		{"empty", nil, DropMalformed},
		{"fragment", frag, DropFragment},
		{"unknown SPI", unknown, DropUnknownSPI},
		{"truncated ESP", good[:30], DropMalformed},
		{"TCP", ipPacket(gwA4, gwB4, protoTCP, make([]byte, 20)), DropNotIPsec},
	} {
		if r := tp.b.Inbound(bufferWith(c.pkt)); r.Reason != c.want {
			t.Errorf("%s: %+v, want %s", c.name, r, c.want)
		}
	}
	if r := tp.b.Inbound(bufferWith(good)); r.Verdict != VerdictForward {
		t.Fatalf("the original still passes: %+v", r)
	}
}

// TestUDP6Checksum: ESP-in-UDP over IPv6 carries a valid UDP checksum,
// which IPv6 receivers require, in both modes.
func TestUDP6Checksum(t *testing.T) {
	for _, mode := range []Mode{ModeTunnel, ModeTransport} {
		tp := newPair(t, pairConfig{suite: gcm128(), mode: mode, encap: true, outer6: true, inner6: true})
		b := bufferWith(tp.packet(77))
		if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward {
			t.Fatal(r)
		}
		o := b.Bytes()
		if o[ipv6NextHeader] != protoUDP || binary.BigEndian.Uint16(o[ipv6Len+udpChecksum:]) == 0 || !l4ChecksumOK(o) {
			t.Fatalf("%s: UDP checksum %x", mode, o[ipv6Len:ipv6Len+8])
		}
		if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
			t.Fatalf("%s: %+v", mode, r)
		}
	}
}

// TestIPLengthLimit: without an MTU, a packet whose encapsulation would
// not fit an IP length field is refused, not wrapped around.
func TestIPLengthLimit(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	pkt := tp.packet(0xffff - 28)
	b := NewBuffer(len(pkt) + DefaultHeadroom + DefaultTailroom)
	copy(b.Extend(len(pkt)), pkt)
	r := tp.a.Outbound(b, 0)
	if r.Reason != DropTooBig || r.MTU < 0xffff-100 || r.MTU >= 0xffff-20 {
		t.Fatalf("%+v", r)
	}
}
