package ipsec

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// drain returns the events waiting on ch.
func drain(ch chan Event) []Event {
	var evs []Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestPolicyEnforcedAtAddSA(t *testing.T) {
	strict := proposal.Policy{}
	cases := []struct {
		kw    string
		proto proposal.Protocol
		needs string
	}{
		{"3des-sha256", proposal.ProtoESP, "allow_legacy"},
		{"aes128-sha1", proposal.ProtoESP, "allow_legacy"},
		{"null-sha256", proposal.ProtoESP, "allow_integrity_only"},
		{"aes128gmac", proposal.ProtoESP, "allow_integrity_only"},
		{"sha256", proposal.ProtoAH, "allow_integrity_only"},
	}
	for _, c := range cases {
		s := suiteOf(t, c.kw, c.proto, false)
		enc, integ := testKeys(s, 1)
		cfg := SAConfig{Dir: DirIn, SPI: 0x5000, Mode: ModeTunnel, Src: gwA4, Dst: gwB4, Suite: s, EncKey: enc, IntegKey: integ,
			Selectors: Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}}
		err := New(Config{Policy: strict, Rand: newTestRand(1)}).AddSA(cfg)
		if err == nil || !strings.Contains(err.Error(), c.needs) {
			t.Errorf("%s: strict policy: %v, want a refusal naming %s", c.kw, err, c.needs)
		}
		if err := New(Config{Policy: allowed, Rand: newTestRand(1)}).AddSA(cfg); err != nil {
			t.Errorf("%s: permissive policy: %v", c.kw, err)
		}
	}
	// Wrong key lengths and a reserved SPI are refused too.
	s := gcm128()
	cfg := SAConfig{Dir: DirIn, SPI: 0x5000, Mode: ModeTunnel, Src: gwA4, Dst: gwB4, Suite: s, EncKey: make([]byte, 16),
		Selectors: Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}}
	if err := New(Config{}).AddSA(cfg); !errors.Is(err, errKeyLen) {
		t.Errorf("short key: %v", err)
	}
	cfg.EncKey, cfg.SPI = make([]byte, 20), 255
	if err := New(Config{}).AddSA(cfg); err == nil {
		t.Error("SPI 255 accepted")
	}
}

func TestLifetimeBytesAndPackets(t *testing.T) {
	for _, lim := range []Limit{LimitBytes, LimitPackets} {
		life := Lifetime{Soft: Limits{Packets: 3}, Hard: Limits{Packets: 5}}
		if lim == LimitBytes {
			// Each test packet is 128 inner octets.
			life = Lifetime{Soft: Limits{Bytes: 3 * 128}, Hard: Limits{Bytes: 5 * 128}}
		}
		tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, life: life})
		var fwd int
		var last OutResult
		for i := 0; i < 8; i++ {
			or, ir, _ := tp.send(t, tp.packet(100))
			if or.Verdict == VerdictForward && ir.Verdict == VerdictForward {
				fwd++
			}
			last = or
		}
		if fwd != 5 || last.Reason != DropHardExpired {
			t.Fatalf("%s: %d forwarded, last %+v", lim, fwd, last)
		}
		for _, ch := range []chan Event{tp.eventsA, tp.eventsB} {
			evs := drain(ch)
			if len(evs) != 2 || evs[0].Kind != EventSoftExpire || evs[1].Kind != EventHardExpire ||
				evs[0].Limit != lim || evs[1].Limit != lim || evs[0].ReqID != 7 {
				t.Fatalf("%s: events %+v", lim, evs)
			}
		}
		if st := tp.a.SAs()[0]; st.State != SAHardExpired || st.Stats.Packets != 5 {
			t.Fatalf("%s: sender SA %+v", lim, st)
		}
	}
	// The receiver enforces its own hard limit.
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	tp.b.DeleteSA(tp.in.Key())
	tp.in.Lifetime = Lifetime{Hard: Limits{Packets: 2}}
	if err := tp.b.AddSA(tp.in); err != nil {
		t.Fatal(err)
	}
	var reasons []DropReason
	for i := 0; i < 4; i++ {
		_, ir, _ := tp.send(t, tp.packet(10))
		reasons = append(reasons, ir.Reason)
	}
	if reasons[0] != DropNone || reasons[1] != DropNone || reasons[2] != DropHardExpired || reasons[3] != DropHardExpired {
		t.Fatalf("receiver hard limit: %v", reasons)
	}
	if evs := drain(tp.eventsB); len(evs) != 1 || evs[0].Kind != EventHardExpire || evs[0].SA.Dir != DirIn {
		t.Fatalf("receiver events %+v", evs)
	}
}

func TestLifetimeTime(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel,
		life: Lifetime{Soft: Limits{Time: time.Hour}, Hard: Limits{Time: 2 * time.Hour}}})
	tp.clockA.Advance(int64(59 * time.Minute))
	tp.a.Tick(tp.clockA.Now())
	if evs := drain(tp.eventsA); len(evs) != 0 {
		t.Fatalf("early events %+v", evs)
	}
	tp.clockA.Advance(int64(time.Minute))
	tp.a.Tick(tp.clockA.Now())
	tp.a.Tick(tp.clockA.Now())
	if evs := drain(tp.eventsA); len(evs) != 1 || evs[0].Kind != EventSoftExpire || evs[0].Limit != LimitTime {
		t.Fatalf("soft: %+v", evs)
	}
	if or, ir, _ := tp.send(t, tp.packet(10)); or.Verdict != VerdictForward || ir.Verdict != VerdictForward {
		t.Fatal("a soft-expired SA must still carry traffic")
	}
	tp.clockA.Advance(int64(time.Hour))
	tp.a.Tick(tp.clockA.Now())
	if evs := drain(tp.eventsA); len(evs) != 1 || evs[0].Kind != EventHardExpire || evs[0].SA != tp.out.Key() {
		t.Fatalf("hard: %+v", evs)
	}
	if or, _, _ := tp.send(t, tp.packet(10)); or.Reason != DropHardExpired {
		t.Fatalf("after hard expiry: %+v", or)
	}
}

func TestSequenceExhaustion(t *testing.T) {
	for _, esn := range []bool{false, true} {
		limit := uint64(1<<32 - 1)
		if esn {
			limit = ^uint64(0)
		}
		tp := newPair(t, pairConfig{suite: suiteOf(t, "aes128gcm16", protoESPSuite, esn), mode: ModeTunnel, initSeq: limit - 2})
		var reasons []DropReason
		for i := 0; i < 4; i++ {
			or, ir, _ := tp.send(t, tp.packet(10))
			if or.Verdict == VerdictForward && ir.Verdict != VerdictForward {
				t.Fatalf("esn=%v packet %d: inbound %+v", esn, i, ir)
			}
			reasons = append(reasons, or.Reason)
		}
		if reasons[0] != DropNone || reasons[1] != DropNone || reasons[2] != DropSeqExhausted || reasons[3] != DropSeqExhausted {
			t.Fatalf("esn=%v: %v", esn, reasons)
		}
		evs := drain(tp.eventsA)
		if len(evs) != 1 || evs[0].Kind != EventSeqExhausted {
			t.Fatalf("esn=%v: events %+v", esn, evs)
		}
		if st := tp.a.SAs()[0]; st.State != SAExhausted || st.Seq != limit || st.Stats.Packets != 2 {
			t.Fatalf("esn=%v: %+v", esn, st)
		}
	}
}

func TestAcquireRateLimited(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	if err := tp.a.DeleteSA(tp.out.Key()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		or, _, _ := tp.send(t, tp.packet(10))
		if or.Reason != DropNoSA {
			t.Fatalf("%+v", or)
		}
	}
	evs := drain(tp.eventsA)
	if len(evs) != 1 || evs[0].Kind != EventAcquire || evs[0].ReqID != 7 || evs[0].Packet.Src != tp.src ||
		evs[0].Packet.Dst != tp.dst || evs[0].Packet.Proto != protoUDP || evs[0].Packet.DstPort != 2222 {
		t.Fatalf("events %+v", evs)
	}
	tp.clockA.Advance(int64(time.Second))
	tp.send(t, tp.packet(10))
	tp.send(t, tp.packet(10))
	if evs := drain(tp.eventsA); len(evs) != 1 {
		t.Fatalf("after an interval: %+v", evs)
	}
	if d := tp.a.Drops(); d[DropNoSA] != 102 {
		t.Fatalf("no_sa drops %d", d[DropNoSA])
	}
}

func TestEventOverflowCounted(t *testing.T) {
	ch := make(chan Event, 1)
	e := New(Config{Events: ch, Rand: newTestRand(1)})
	sa := &assoc{reqID: 1}
	sa.path.Store(&path{})
	for i := 0; i < 3; i++ {
		e.saEvent(EventSoftExpire, sa, LimitBytes)
	}
	if len(ch) != 1 || e.EventOverflows() != 2 {
		t.Fatalf("queued %d, overflows %d", len(ch), e.EventOverflows())
	}
}

// TestRekeyMakeBeforeBreak installs a new SA pair under the same ReqID
// while packets sealed with the old one are in flight: the policy moves to
// the new outbound SA at once, the old inbound SA still accepts the
// stragglers, and deleting the old pair afterwards loses nothing.
func TestRekeyMakeBeforeBreak(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, spi: 0x1000})
	var inFlight [][]byte
	for i := 0; i < 3; i++ {
		b := bufferWith(tp.packet(20))
		tp.a.Outbound(b, 1500)
		inFlight = append(inFlight, append([]byte(nil), b.Bytes()...))
	}
	newIn, newOut := tp.in, tp.out
	newIn.SPI, newOut.SPI = 0x2000, 0x2000
	newIn.EncKey, _ = testKeys(gcm128(), 0x40)
	newOut.EncKey = newIn.EncKey
	if err := tp.b.AddSA(newIn); err != nil {
		t.Fatal(err)
	}
	if err := tp.a.AddSA(newOut); err != nil {
		t.Fatal(err)
	}
	pol := tp.a.Policies()
	if len(pol) != 1 || !pol[0].HasSA || pol[0].OutSA.SPI != 0x2000 {
		t.Fatalf("policy after rekey: %+v", pol)
	}
	or, ir, _ := tp.send(t, tp.packet(20))
	if or.Verdict != VerdictForward || ir.Verdict != VerdictForward || ir.SPI != 0x2000 {
		t.Fatalf("new SA: %+v %+v", or, ir)
	}
	for i, w := range inFlight {
		if r := tp.b.Inbound(bufferWith(w)); r.Verdict != VerdictForward || r.SPI != 0x1000 {
			t.Fatalf("straggler %d: %+v", i, r)
		}
	}
	if err := tp.a.DeleteSA(tp.out.Key()); err != nil {
		t.Fatal(err)
	}
	if err := tp.b.DeleteSA(tp.in.Key()); err != nil {
		t.Fatal(err)
	}
	if or, ir, _ := tp.send(t, tp.packet(20)); ir.Verdict != VerdictForward || or.Verdict != VerdictForward {
		t.Fatalf("after deleting the old pair: %+v %+v", or, ir)
	}
	if d := tp.b.Drops(); nonzero(d) != "" {
		t.Fatalf("drops: %s", nonzero(d))
	}
	// Deleting the newest outbound SA falls back to none.
	if err := tp.a.DeleteSA(newOut.Key()); err != nil {
		t.Fatal(err)
	}
	if or, _, _ := tp.send(t, tp.packet(20)); or.Reason != DropNoSA {
		t.Fatalf("without SA: %+v", or)
	}
}

// TestNATFloat moves the peer to a new address and port with UpdateSA.
func TestNATFloat(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, encap: true})
	newDst := netip.MustParseAddr("198.51.100.9")
	k, err := tp.a.UpdateSA(tp.out.Key(), SAUpdate{Dst: newDst, Encap: &UDPEncap{SrcPort: 4500, DstPort: 31000}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Dst != newDst {
		t.Fatalf("new key %v", k)
	}
	b := bufferWith(tp.packet(20))
	or := tp.a.Outbound(b, 1500)
	o := b.Bytes()
	if or.NextHop != newDst || netip.AddrFrom4([4]byte(o[16:20])) != newDst || o[22] != 31000>>8 || o[23] != 31000&0xff {
		t.Fatalf("outer header after float: %+v %x", or, o[:28])
	}
	if _, ok := tp.a.SA(k); !ok {
		t.Fatal("SA not found under its new key")
	}
	if _, err := tp.a.UpdateSA(tp.out.Key(), SAUpdate{}); !errors.Is(err, ErrNoSA) {
		t.Fatalf("old key still valid: %v", err)
	}
	// The NAT in front of B translates the destination back; B accepts
	// the packet whatever the source (no MatchSrc).
	natTranslate(b.Bytes(), netip.MustParseAddr("198.51.100.77"), 1025, gwB4, 4500)
	if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
		t.Fatalf("%+v", r)
	}
	// With encapsulation disabled by an update, UDP packets are refused.
	if _, err := tp.b.UpdateSA(tp.in.Key(), SAUpdate{Encap: &UDPEncap{}}); err != nil {
		t.Fatal(err)
	}
	b = bufferWith(tp.packet(20))
	tp.a.Outbound(b, 1500)
	natTranslate(b.Bytes(), netip.MustParseAddr("198.51.100.77"), 1025, gwB4, 4500)
	if r := tp.b.Inbound(b); r.Reason != DropEncap {
		t.Fatalf("%+v", r)
	}
}

func TestSPDOrderAndConflicts(t *testing.T) {
	e := New(Config{Rand: newTestRand(1)})
	all := Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}
	icmp := Selectors{Local: []TS{ProtoTS(redA4, protoICMP, 0, 0xffff)}, Remote: []TS{ProtoTS(redB4, protoICMP, 0, 0xffff)}}
	if _, err := e.AddPolicy(Policy{Priority: 10, Selectors: all, Action: ActionDiscard}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddPolicy(Policy{Priority: 10, Selectors: icmp, Action: ActionBypass}); !errors.Is(err, ErrPolicyConflict) {
		t.Fatalf("overlap at one priority: %v", err)
	}
	id, err := e.AddPolicy(Policy{Priority: 5, Selectors: icmp, Action: ActionBypass})
	if err != nil {
		t.Fatal(err)
	}
	ping := ipPacket(hostA4, hostB4, protoICMP, []byte{8, 0, 0, 0, 0, 0, 0, 0})
	if r := e.Outbound(bufferWith(ping), 1500); r.Verdict != VerdictBypass || r.NextHop != hostB4 {
		t.Fatalf("ping: %+v", r)
	}
	if r := e.Outbound(bufferWith(udpPacket(hostA4, hostB4, 1, 2, nil)), 1500); r.Reason != DropPolicyDiscard {
		t.Fatalf("udp: %+v", r)
	}
	if r := e.Outbound(bufferWith(udpPacket(hostB4, hostA4, 1, 2, nil)), 1500); r.Reason != DropPolicyDiscard {
		t.Fatalf("no entry: %+v", r)
	}
	// Reordering through UpdatePolicy.
	if err := e.UpdatePolicy(id, Policy{Priority: 20, Selectors: icmp, Action: ActionBypass}); err != nil {
		t.Fatal(err)
	}
	if r := e.Outbound(bufferWith(ping), 1500); r.Reason != DropPolicyDiscard {
		t.Fatalf("after update: %+v", r)
	}
	if err := e.DeletePolicy(id); err != nil || e.DeletePolicy(id) == nil {
		t.Fatalf("delete: %v", err)
	}
}

// TestSelectorsMultihomedSCTP: several address ranges per side, as an
// SCTP association between multi-homed hosts needs (RFC 3554), and the
// protocol and port constraints of each selector.
func TestSelectorsMultihomedSCTP(t *testing.T) {
	local := []TS{ProtoTS(mustPrefix("10.1.0.0/24"), protoSCTP, 5000, 5000), ProtoTS(mustPrefix("10.2.0.0/24"), protoSCTP, 5000, 5000)}
	remote := []TS{
		{Proto: protoSCTP, From: netip.MustParseAddr("172.16.0.5"), To: netip.MustParseAddr("172.16.0.9"), ToPort: 0xffff},
		ProtoTS(mustPrefix("fd00:5::/64"), protoSCTP, 0, 0xffff),
	}
	sel := Selectors{Local: local, Remote: remote}
	if err := sel.validate(); err != nil {
		t.Fatal(err)
	}
	s := sel.compile()
	pkt := func(src, dst string, proto uint8, sport uint32) *flow {
		s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
		return &flow{srcK: keyOf(s), dstK: keyOf(d), v6: s.Is6(), proto: proto, famProto: famProto(s.Is6(), proto), srcPort: sport, dstPort: 9}
	}
	for _, c := range []struct {
		f    *flow
		want bool
	}{
		{pkt("10.1.0.1", "172.16.0.5", protoSCTP, 5000), true},
		{pkt("10.2.0.7", "172.16.0.9", protoSCTP, 5000), true},
		{pkt("10.2.0.7", "172.16.0.10", protoSCTP, 5000), false},
		{pkt("10.3.0.7", "172.16.0.9", protoSCTP, 5000), false},
		{pkt("10.1.0.1", "172.16.0.5", protoTCP, 5000), false},
		{pkt("10.1.0.1", "172.16.0.5", protoSCTP, 5001), false},
	} {
		if got := s.matchOut(c.f); got != c.want {
			t.Errorf("%v -> %v proto %d port %d: %v", c.f.srcK.addr(c.f.v6), c.f.dstK.addr(c.f.v6), c.f.proto, c.f.srcPort, got)
		}
	}
	// A non-initial fragment has no ports: it matches only ANY ports.
	frag := pkt("10.1.0.1", "172.16.0.5", protoSCTP, portUnknown)
	frag.dstPort = portUnknown
	if s.matchOut(frag) {
		t.Error("fragment matched a port selector")
	}
	anyPorts := Selectors{Local: []TS{ProtoTS(mustPrefix("10.1.0.0/24"), protoSCTP, 0, 0xffff)}, Remote: remote}
	if m := anyPorts.compile(); anyPorts.validate() != nil || !m.matchOut(frag) {
		t.Error("fragment did not match ANY ports")
	}
	// ICMP type and code: echo requests (type 8) only.
	echo := Selectors{Local: []TS{ProtoTS(redA4, protoICMP, 8<<8, 8<<8|0xff)}, Remote: []TS{ProtoTS(redB4, protoICMP, 8<<8, 8<<8|0xff)}}
	if err := echo.validate(); err != nil {
		t.Fatal(err)
	}
	echoM := echo.compile()
	var h ipHeader
	for _, c := range []struct {
		typ  byte
		want bool
	}{{8, true}, {0, false}, {3, false}} {
		p := ipPacket(hostA4, hostB4, protoICMP, []byte{c.typ, 0, 0, 0})
		parseIP(p, &h, true)
		if echoM.matchOut(&h.flow) != c.want {
			t.Errorf("ICMP type %d: %v", c.typ, !c.want)
		}
	}
}

func TestInboundBypass(t *testing.T) {
	e := New(Config{Rand: newTestRand(1)})
	sel := Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}
	e.AddPolicy(Policy{Priority: 1, Selectors: Selectors{Local: []TS{ProtoTS(redA4, protoICMP, 0, 0xffff)}, Remote: []TS{ProtoTS(redB4, protoICMP, 0, 0xffff)}}, Action: ActionBypass})
	e.AddPolicy(Policy{Priority: 2, Selectors: sel, Action: ActionProtect, ReqID: 1})
	ping := ipPacket(hostB4, hostA4, protoICMP, []byte{0, 0, 0, 0})
	if r := e.InboundBypass(bufferWith(ping)); r.Verdict != VerdictBypass {
		t.Fatalf("bypass: %+v", r)
	}
	if r := e.InboundBypass(bufferWith(udpPacket(hostB4, hostA4, 1, 2, nil))); r.Reason != DropNotProtected {
		t.Fatalf("cleartext for PROTECT: %+v", r)
	}
	if r := e.InboundBypass(bufferWith(udpPacket(gwB4, gwA4, 1, 2, nil))); r.Reason != DropPolicyDiscard {
		t.Fatalf("no entry: %+v", r)
	}
	if r := e.InboundBypass(bufferWith([]byte{0x45, 0})); r.Reason != DropMalformed {
		t.Fatalf("malformed: %+v", r)
	}
}

func TestAllocSPI(t *testing.T) {
	clock := &testClock{}
	e := New(Config{Now: clock.Now, Rand: newTestRand(5)})
	seen := map[uint32]bool{}
	for i := 0; i < 1000; i++ {
		spi, err := e.AllocSPI()
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 || seen[spi] {
			t.Fatalf("SPI %#x reserved or repeated", spi)
		}
		seen[spi] = true
	}
	// A reservation is consumed by AddSA and freed by ReleaseSPI or time.
	spi, _ := e.AllocSPI()
	cfg := SAConfig{Dir: DirIn, SPI: spi, Mode: ModeTunnel, Src: gwA4, Dst: gwB4, Suite: gcm128(), EncKey: make([]byte, 20),
		Selectors: Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}}
	if err := e.AddSA(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSA(cfg); !errors.Is(err, ErrSAExists) {
		t.Fatalf("duplicate: %v", err)
	}
	cfg.Dst = gwA4
	cfg.Src = gwB4
	if err := e.AddSA(cfg); !errors.Is(err, ErrSPIInUse) {
		t.Fatalf("same SPI, other destination, no lookup flags: %v", err)
	}
	e.mu.Lock()
	n := len(e.reserved)
	e.mu.Unlock()
	if n != 1000 {
		t.Fatalf("%d reservations", n)
	}
	clock.Advance(int64(11 * time.Minute))
	e.Tick(clock.Now())
	e.mu.Lock()
	n = len(e.reserved)
	e.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d reservations after expiry", n)
	}
}

// TestLookupFlags: two inbound SAs share an SPI and differ by destination
// or source; the lookup flags (RFC 4301 §4.1) pick the right one.
func TestLookupFlags(t *testing.T) {
	for _, bySrc := range []bool{false, true} {
		e := New(Config{Rand: newTestRand(1)})
		a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.8")
		mk := func(addr netip.Addr, key byte) SAConfig {
			enc, _ := testKeys(gcm128(), key)
			c := SAConfig{Dir: DirIn, SPI: 0x4242, Mode: ModeTunnel, Src: gwA4, Dst: addr, Suite: gcm128(), EncKey: enc,
				Selectors: Selectors{Local: []TS{PrefixTS(redB4)}, Remote: []TS{PrefixTS(redA4)}}, MatchDst: true}
			if bySrc {
				c.Src, c.Dst, c.MatchDst, c.MatchSrc = addr, gwB4, false, true
			}
			return c
		}
		for i, addr := range []netip.Addr{a, b} {
			if err := e.AddSA(mk(addr, byte(0x30+i))); err != nil {
				t.Fatal(err)
			}
		}
		// A third SA with the same SPI and no flags would be ambiguous.
		plain := mk(gwB4, 0x50)
		plain.MatchDst, plain.MatchSrc = false, false
		if err := e.AddSA(plain); !errors.Is(err, ErrSPIInUse) {
			t.Fatalf("ambiguous SA: %v", err)
		}
		for i, addr := range []netip.Addr{a, b} {
			// A sender with the key of SA i, addressed to match it.
			tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, spi: 0x4242})
			out := mk(addr, byte(0x30+i))
			out.Dir, out.ReqID, out.Selectors = DirOut, 7, Selectors{Local: []TS{PrefixTS(redA4)}, Remote: []TS{PrefixTS(redB4)}}
			tp.a.DeleteSA(tp.out.Key())
			if err := tp.a.AddSA(out); err != nil {
				t.Fatal(err)
			}
			pkt := bufferWith(tp.packet(30))
			if r := tp.a.Outbound(pkt, 1500); r.Verdict != VerdictForward {
				t.Fatal(r)
			}
			if r := e.Inbound(pkt); r.Verdict != VerdictForward {
				t.Fatalf("bySrc=%v SA %d: %+v %s", bySrc, i, r, nonzero(e.Drops()))
			}
			// The same packet re-addressed to the other SA fails its ICV.
			b2 := bufferWith(tp.packet(30))
			tp.a.Outbound(b2, 1500)
			other := []netip.Addr{b, a}[i]
			if bySrc {
				putAddr(b2.Bytes()[ipv4Src:], other)
			} else {
				putAddr(b2.Bytes()[ipv4Dst:], other)
			}
			setIPv4Checksum(b2.Bytes()[:20])
			if r := e.Inbound(b2); r.Reason != DropAuth {
				t.Fatalf("bySrc=%v SA %d re-addressed: %+v", bySrc, i, r)
			}
		}
	}
}
