package netstack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// sinkNIC accepts every frame and never receives: the benchmarks drive
// the RX loop's handler directly, so they measure the frame path and the
// data plane without goroutine hand-offs.
type sinkNIC struct {
	mac    MAC
	frames atomic.Int64
}

func (n *sinkNIC) Read([]*ipsec.Buffer) (int, error) { return 0, ErrClosed }
func (n *sinkNIC) Write(bufs []*ipsec.Buffer) (int, error) {
	n.frames.Add(int64(len(bufs)))
	return len(bufs), nil
}
func (n *sinkNIC) MAC() MAC     { return n.mac }
func (n *sinkNIC) MTU() int     { return 1500 }
func (n *sinkNIC) Close() error { return nil }

// passDP forwards without touching the packet, to isolate netstack's cost.
type passDP struct{ peer netip.Addr }

func (d passDP) Outbound(b *ipsec.Buffer, mtu int) ipsec.OutResult {
	return ipsec.OutResult{Verdict: ipsec.VerdictForward, NextHop: d.peer}
}
func (d passDP) Inbound(b *ipsec.Buffer) ipsec.InResult {
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropUnknownSPI}
}
func (d passDP) InboundBypass(b *ipsec.Buffer) ipsec.InResult {
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropPolicyDiscard}
}

var (
	benchRedMAC   = MAC{2, 0, 0, 0, 0xa, 1}
	benchBlackMAC = MAC{2, 0, 0, 0, 0xb, 1}
	benchHostMAC  = MAC{2, 0, 0, 0, 0xa, 2}
	benchPeerMAC  = MAC{2, 0, 0, 0, 0xb, 2}
	benchPeer     = netip.MustParseAddr("203.0.113.2")
)

// benchSuite returns the suite of the benchmarks' SAs, AES-128-GCM-16,
// and their all-zero key.
func benchSuite(tb testing.TB) (proposal.Suite, []byte) {
	ps, err := proposal.Parse("aes128gcm16", proposal.ProtoESP)
	if err != nil {
		tb.Fatal(err)
	}
	s := proposal.Suite{Protocol: proposal.ProtoESP, Encr: ps[0].Encr[0]}
	return s, make([]byte, s.Encr.ID.KeyLen(s.Encr.KeyBits))
}

// benchEncap is the SAs' UDP encapsulation (RFC 3948) if encap, else none.
func benchEncap(encap bool) ipsec.UDPEncap {
	if encap {
		return ipsec.UDPEncap{SrcPort: 4500, DstPort: 4500}
	}
	return ipsec.UDPEncap{}
}

// benchEngine is an engine whose one outbound SA protects 192.168.1.0/24
// to 192.168.2.0/24 toward benchPeer, in UDP if encap.
func benchEngine(tb testing.TB, encap bool) *ipsec.Engine {
	e := ipsec.New(ipsec.Config{})
	s, key := benchSuite(tb)
	sel := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.1.0/24"))}, Remote: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.2.0/24"))}}
	if err := e.AddSA(ipsec.SAConfig{Dir: ipsec.DirOut, SPI: 0x1001, Mode: ipsec.ModeTunnel, Src: netip.MustParseAddr("203.0.113.1"), Dst: benchPeer,
		Encap: benchEncap(encap), Suite: s, EncKey: key, Selectors: sel, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.AddPolicy(ipsec.Policy{Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	return e
}

// benchSetup returns a stack whose black neighbour is resolved, its red RX
// handler, the black sink and a red frame of size octets (IP packet).
func benchSetup(tb testing.TB, dp DataPlane, size int) (*Stack, *rxLoop, *sinkNIC, []byte) {
	pool, err := ipsec.NewPool(256, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
	if err != nil {
		tb.Fatal(err)
	}
	black := &sinkNIC{mac: benchBlackMAC}
	s, err := New(Config{
		Red:   PortConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24")}},
		Black: PortConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}},
		Pool:  pool, Clock: faketime.NewManualClock(),
	}, &sinkNIC{mac: benchRedMAC}, black, dp)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Close()
		if pool.Available() != 256 {
			tb.Errorf("pool leak: %d of 256", pool.Available())
		}
	})
	s.ports[Black].neigh.set(benchPeer, benchPeerMAC, false)
	l := s.newRxLoop(s.ports[Red])
	tb.Cleanup(l.release) // before the pool check: the loop keeps spares

	frame := make([]byte, 14+size)
	putEthernet(frame, benchRedMAC, benchHostMAC, etherTypeIPv4)
	ip := frame[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size))
	ip[6] = 0x40
	ip[8], ip[9] = 64, protoUDP
	copy(ip[12:], []byte{192, 168, 1, 10})
	copy(ip[16:], []byte{192, 168, 2, 10})
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	binary.BigEndian.PutUint16(ip[20:], 1000)
	binary.BigEndian.PutUint16(ip[22:], 2000)
	binary.BigEndian.PutUint16(ip[24:], uint16(size-20))
	return s, l, black, frame
}

// forwardOne runs one red frame through the handler as the RX loop would.
func forwardOne(s *Stack, l *rxLoop, frame []byte) {
	b := s.pool.Get()
	b.SetPacket(b.Headroom(), copy(b.Space(), frame))
	l.handle(b)
}

// TestTransitAllocations: the red-to-black forward path, through the real
// engine and a resolved neighbour, allocates nothing.
func TestTransitAllocations(t *testing.T) {
	s, l, black, frame := benchSetup(t, benchEngine(t, false), 1400)
	allocs := testing.AllocsPerRun(1000, func() {
		forwardOne(s, l, frame)
		l.flush()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per forwarded packet", allocs)
	}
	if black.frames.Load() < 1000 || s.ctr.encapsulated.Load() < 1000 {
		t.Fatalf("forwarded %d frames, encapsulated %d", black.frames.Load(), s.ctr.encapsulated.Load())
	}
}

func benchmarkTransit(b *testing.B, dp func(testing.TB) DataPlane, size int) {
	s, l, black, frame := benchSetup(b, dp(b), size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		forwardOne(s, l, frame)
	}
	l.flush()
	b.StopTimer()
	if black.frames.Load() != int64(b.N) {
		b.Fatalf("forwarded %d of %d", black.frames.Load(), b.N)
	}
}

func pass(testing.TB) DataPlane                  { return passDP{peer: benchPeer} }
func engine(tb testing.TB) DataPlane             { return benchEngine(tb, false) }
func BenchmarkTransitFramePath64(b *testing.B)   { benchmarkTransit(b, pass, 64) }
func BenchmarkTransitFramePath1400(b *testing.B) { benchmarkTransit(b, pass, 1400) }
func BenchmarkTransitESP64(b *testing.B)         { benchmarkTransit(b, engine, 64) }
func BenchmarkTransitESP1400(b *testing.B)       { benchmarkTransit(b, engine, 1400) }

// decapSetup builds a stack whose engine holds the inbound SA for
// packets that a peer engine seals, and a generator of such ESP frames
// addressed to the black port, with ever higher sequence numbers.
func decapSetup(tb testing.TB, size int) (*Stack, *rxLoop, *sinkNIC, func(int) [][]byte) {
	inner := make([]byte, size)
	inner[0] = 0x45
	binary.BigEndian.PutUint16(inner[2:], uint16(size))
	inner[8], inner[9] = 64, protoUDP
	copy(inner[12:], []byte{192, 168, 2, 10})
	copy(inner[16:], []byte{192, 168, 1, 10})
	binary.BigEndian.PutUint16(inner[10:], ^checksum.Checksum(inner[:20], 0))
	red := &sinkNIC{mac: benchRedMAC}
	st, l, gen := decapSetupWith(tb, size, red, false, func(int) []byte { return inner })
	return st, l, red, gen
}

// decapSetupWith is decapSetup with a red NIC of the caller's, UDP
// encapsulation or not, and the inner packets that inner(i) returns.
func decapSetupWith(tb testing.TB, size int, red NIC, encap bool, inner func(i int) []byte) (*Stack, *rxLoop, func(int) [][]byte) {
	s, key := benchSuite(tb)
	me, peer := netip.MustParseAddr("203.0.113.1"), benchPeer
	// The peer protects 192.168.2.0/24 → 192.168.1.0/24.
	selPeer := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.2.0/24"))}, Remote: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.1.0/24"))}}
	selMe := ipsec.Selectors{Local: selPeer.Remote, Remote: selPeer.Local}
	enc := benchEncap(encap)
	sender := ipsec.New(ipsec.Config{})
	if err := sender.AddSA(ipsec.SAConfig{Dir: ipsec.DirOut, SPI: 0x2002, Mode: ipsec.ModeTunnel, Src: peer, Dst: me, Encap: enc, Suite: s, EncKey: key, Selectors: selPeer, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	if _, err := sender.AddPolicy(ipsec.Policy{Selectors: selPeer, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	receiver := ipsec.New(ipsec.Config{ReplayWindow: 4096})
	if err := receiver.AddSA(ipsec.SAConfig{Dir: ipsec.DirIn, SPI: 0x2002, Mode: ipsec.ModeTunnel, Src: peer, Dst: me, Encap: enc, Suite: s, EncKey: key, Selectors: selMe, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	if _, err := receiver.AddPolicy(ipsec.Policy{Selectors: selMe, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		tb.Fatal(err)
	}
	st, _, _, _ := benchSetup(tb, receiver, size)
	st.ports[Red].nic = red
	if so, ok := red.(SegmentOffload); ok {
		st.ports[Red].offload = so
	}
	st.ports[Red].neigh.set(netip.MustParseAddr("192.168.1.10"), benchHostMAC, false)
	l := st.newRxLoop(st.ports[Black])
	tb.Cleanup(l.release)

	b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	next := 0
	gen := func(count int) [][]byte {
		frames := make([][]byte, count)
		for i := range frames {
			b.Reset(ipsec.DefaultHeadroom)
			b.SetPacket(b.Headroom(), copy(b.Space(), inner(next)))
			next++
			if r := sender.Outbound(b, 1500); r.Verdict != ipsec.VerdictForward {
				tb.Fatalf("seal: %v %v", r.Verdict, r.Reason)
			}
			f := make([]byte, 14+b.Len())
			putEthernet(f, benchBlackMAC, benchPeerMAC, etherTypeIPv4)
			copy(f[14:], b.Bytes())
			frames[i] = f
		}
		return frames
	}
	return st, l, gen
}

// TestDecapAllocations: the black-to-red path, decrypting with the real
// engine toward a resolved red neighbour, allocates nothing.
func TestDecapAllocations(t *testing.T) {
	s, l, red, gen := decapSetup(t, 1400)
	frames := gen(1100)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		forwardOne(s, l, frames[i])
		l.flush()
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per decapsulated packet", allocs)
	}
	if red.frames.Load() != int64(i) || s.ctr.decapsulated.Load() != uint64(i) {
		t.Fatalf("%d of %d packets reached red (%+v)", red.frames.Load(), i, s.Counters())
	}
}

func BenchmarkDecapESP1400(b *testing.B) {
	s, l, red, gen := decapSetup(b, 1400)
	b.SetBytes(1400)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		frames := gen(min(4096, b.N-done))
		b.StartTimer()
		for _, f := range frames {
			forwardOne(s, l, f)
		}
		done += len(frames)
	}
	l.flush()
	b.StopTimer()
	if red.frames.Load() != int64(b.N) {
		b.Fatalf("decapsulated %d of %d", red.frames.Load(), b.N)
	}
}
