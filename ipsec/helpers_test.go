package ipsec

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// testClock is a manual monotonic clock.
type testClock struct {
	mu  sync.Mutex
	now int64
}

func (c *testClock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d int64) {
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
}

// testRand is a deterministic, concurrency-safe random source.
type testRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newTestRand(seed byte) *testRand {
	var s [32]byte
	s[0] = seed
	return &testRand{r: rand.NewChaCha8(s)}
}

func (r *testRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Read(p)
}

var (
	redA4   = netip.MustParsePrefix("192.168.1.0/24")
	redB4   = netip.MustParsePrefix("192.168.2.0/24")
	redA6   = netip.MustParsePrefix("fd00:a::/64")
	redB6   = netip.MustParsePrefix("fd00:b::/64")
	hostA4  = netip.MustParseAddr("192.168.1.10")
	hostB4  = netip.MustParseAddr("192.168.2.10")
	hostA6  = netip.MustParseAddr("fd00:a::10")
	hostB6  = netip.MustParseAddr("fd00:b::10")
	gwA4    = netip.MustParseAddr("203.0.113.1")
	gwB4    = netip.MustParseAddr("203.0.113.2")
	gwA6    = netip.MustParseAddr("2001:db8::1")
	gwB6    = netip.MustParseAddr("2001:db8::2")
	allowed = proposal.Policy{AllowLegacy: true, AllowIntegrityOnly: true}
)

// udpPacket builds an IPv4 or IPv6 UDP packet with a valid checksum.
func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	l4 := make([]byte, udpLen+len(payload))
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[udpLen:], payload)
	pkt := ipPacket(src, dst, protoUDP, l4)
	setL4Checksum(pkt)
	return pkt
}

// ipPacket wraps l4 in an IPv4 or IPv6 header.
func ipPacket(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	if src.Is4() {
		h := make([]byte, ipv4MinLen, ipv4MinLen+len(l4))
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[ipv4TotalLen:], uint16(ipv4MinLen+len(l4)))
		binary.BigEndian.PutUint16(h[ipv4ID:], 0x1234)
		h[ipv4Flags] = ipv4FlagDF
		h[ipv4TTL] = 63
		h[ipv4Proto] = proto
		putAddr(h[ipv4Src:], src)
		putAddr(h[ipv4Dst:], dst)
		setIPv4Checksum(h)
		return append(h, l4...)
	}
	h := make([]byte, ipv6Len, ipv6Len+len(l4))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[ipv6PayloadLen:], uint16(len(l4)))
	h[ipv6NextHeader] = proto
	h[ipv6HopLimit] = 63
	putAddr(h[ipv6Src:], src)
	putAddr(h[ipv6Dst:], dst)
	return append(h, l4...)
}

// setL4Checksum computes the TCP/UDP/ICMPv6 checksum of a packet without
// extension headers or options.
func setL4Checksum(pkt []byte) {
	var h ipHeader
	if !parseIP(pkt, &h, true) {
		panic("bad packet")
	}
	seg := pkt[h.l4:h.total]
	off := map[uint8]int{protoTCP: 16, protoUDP: 6, protoICMPv6: 2, protoICMP: 2}[h.proto]
	binary.BigEndian.PutUint16(seg[off:], 0)
	var sum uint32
	if h.proto != protoICMP {
		sum = checksumAdd(sum, h.srcK.addr(h.v6).AsSlice())
		sum = checksumAdd(sum, h.dstK.addr(h.v6).AsSlice())
		sum += uint32(h.proto) + uint32(len(seg))
	}
	sum = checksumAdd(sum, seg)
	ck := checksumFold(sum)
	if ck == 0 && h.proto == protoUDP {
		ck = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], ck)
}

// l4ChecksumOK verifies the upper-layer checksum the same way.
func l4ChecksumOK(pkt []byte) bool {
	c := append([]byte(nil), pkt...)
	setL4Checksum(c)
	return string(c) == string(pkt)
}

// bufferWith returns a fresh Buffer holding pkt.
func bufferWith(pkt []byte) *Buffer {
	b := NewBuffer(DefaultBufferSize)
	copy(b.Extend(len(pkt)), pkt)
	return b
}

// testKeys returns deterministic key material of the lengths s needs.
func testKeys(s proposal.Suite, seed byte) (enc, integ []byte) {
	fill := func(n int, base byte) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = base + byte(i)
		}
		return k
	}
	if s.Protocol == proposal.ProtoESP {
		enc = fill(s.Encr.ID.KeyLen(s.Encr.KeyBits), seed)
	}
	if s.Integ != proposal.IntegNone {
		info, _ := s.Integ.Info()
		integ = fill(info.KeyLen, seed+0x80)
	}
	return enc, integ
}

// pairConfig describes one SA between gateway A (sender) and B.
type pairConfig struct {
	suite     proposal.Suite
	mode      Mode
	inner6    bool
	outer6    bool
	encap     bool
	spi       uint32
	window    int
	life      Lifetime
	initSeq   uint64
	tfc       bool
	outer     OuterHeader
	natOA     NATOA
	selectors *Selectors
}

type testPair struct {
	a, b         *Engine
	clockA       *testClock
	clockB       *testClock
	eventsA      chan Event
	eventsB      chan Event
	out, in      SAConfig
	src, dst     netip.Addr // inner hosts
	gwSrc, gwDst netip.Addr
}

// newPair builds two engines with an outbound SA on A, the matching
// inbound SA on B and PROTECT policies on both.
func newPair(t testing.TB, pc pairConfig) *testPair {
	t.Helper()
	tp := &testPair{clockA: &testClock{}, clockB: &testClock{}, eventsA: make(chan Event, 16), eventsB: make(chan Event, 16)}
	tp.a = New(Config{Now: tp.clockA.Now, Rand: newTestRand(1), Events: tp.eventsA, Policy: allowed})
	tp.b = New(Config{Now: tp.clockB.Now, Rand: newTestRand(2), Events: tp.eventsB, Policy: allowed})
	if pc.spi == 0 {
		pc.spi = 0x1000
	}
	tp.gwSrc, tp.gwDst = gwA4, gwB4
	if pc.outer6 {
		tp.gwSrc, tp.gwDst = gwA6, gwB6
	}
	local, remote := redA4, redB4
	tp.src, tp.dst = hostA4, hostB4
	if pc.inner6 {
		local, remote = redA6, redB6
		tp.src, tp.dst = hostA6, hostB6
	}
	if pc.mode == ModeTransport {
		// Transport mode protects the gateways' own traffic.
		tp.src, tp.dst = tp.gwSrc, tp.gwDst
		local, remote = netip.PrefixFrom(tp.gwSrc, tp.gwSrc.BitLen()), netip.PrefixFrom(tp.gwDst, tp.gwDst.BitLen())
	}
	selA := Selectors{Local: []TS{PrefixTS(local)}, Remote: []TS{PrefixTS(remote)}}
	selB := Selectors{Local: []TS{PrefixTS(remote)}, Remote: []TS{PrefixTS(local)}}
	if pc.selectors != nil {
		selA = *pc.selectors
		selB = Selectors{Local: pc.selectors.Remote, Remote: pc.selectors.Local}
	}
	enc, integ := testKeys(pc.suite, 0x10)
	var encA, encB UDPEncap
	if pc.encap {
		encA = UDPEncap{SrcPort: 4500, DstPort: 4500}
		encB = encA
	}
	tp.out = SAConfig{Dir: DirOut, SPI: pc.spi, Mode: pc.mode, Src: tp.gwSrc, Dst: tp.gwDst, Encap: encA,
		Suite: pc.suite, EncKey: enc, IntegKey: integ, Lifetime: pc.life, Selectors: selA, ReqID: 7,
		InitialSeq: pc.initSeq, TFC: pc.tfc, Outer: pc.outer}
	tp.in = SAConfig{Dir: DirIn, SPI: pc.spi, Mode: pc.mode, Src: tp.gwSrc, Dst: tp.gwDst, Encap: encB,
		Suite: pc.suite, EncKey: enc, IntegKey: integ, Lifetime: pc.life, Selectors: selB, ReqID: 7,
		ReplayWindow: pc.window, NATOA: pc.natOA, InitialSeq: pc.initSeq}
	if err := tp.a.AddSA(tp.out); err != nil {
		t.Fatalf("AddSA out: %v", err)
	}
	if err := tp.b.AddSA(tp.in); err != nil {
		t.Fatalf("AddSA in: %v", err)
	}
	if _, err := tp.a.AddPolicy(Policy{Selectors: selA, Action: ActionProtect, ReqID: 7, Acquire: true}); err != nil {
		t.Fatalf("AddPolicy A: %v", err)
	}
	if _, err := tp.b.AddPolicy(Policy{Selectors: selB, Action: ActionProtect, ReqID: 7}); err != nil {
		t.Fatalf("AddPolicy B: %v", err)
	}
	return tp
}

// packet returns a UDP packet from A's host to B's host.
func (tp *testPair) packet(n int) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	return udpPacket(tp.src, tp.dst, 1111, 2222, payload)
}

// send runs pkt through A.Outbound and B.Inbound and returns the results
// and the buffer.
func (tp *testPair) send(t testing.TB, pkt []byte) (OutResult, InResult, *Buffer) {
	t.Helper()
	b := bufferWith(pkt)
	or := tp.a.Outbound(b, 1500)
	if or.Verdict != VerdictForward {
		return or, InResult{}, b
	}
	ir := tp.b.Inbound(b)
	return or, ir, b
}

func gcm128() proposal.Suite {
	return proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

const protoESPSuite = proposal.ProtoESP

// natTranslate rewrites the addresses and UDP ports of an IPv4 UDP packet
// as a NAT would, fixing the IPv4 header checksum (the UDP checksum of
// ESP-in-UDP is zero).
func natTranslate(pkt []byte, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) {
	putAddr(pkt[ipv4Src:], src)
	putAddr(pkt[ipv4Dst:], dst)
	l4 := int(pkt[0]&0xf) * 4
	binary.BigEndian.PutUint16(pkt[l4:], sport)
	binary.BigEndian.PutUint16(pkt[l4+2:], dport)
	setIPv4Checksum(pkt[:l4])
}

const protoAHSuite = proposal.ProtoAH

func putAddr(dst []byte, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(dst, b[:])
		return
	}
	b := a.As16()
	copy(dst, b[:])
}
