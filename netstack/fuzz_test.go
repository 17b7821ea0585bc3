package netstack

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// fuzzDP answers with whatever verdict the fuzzer chose, and rewrites the
// packet the way an engine could, so that every branch after the data
// plane sees arbitrary bytes too.
type fuzzDP struct{ choice byte }

func (d *fuzzDP) Outbound(b *ipsec.Buffer, mtu int) ipsec.OutResult {
	switch d.choice % 5 {
	case 0:
		if h := b.Push(28); h != nil {
			h[0] = 0x45
		}
		return ipsec.OutResult{Verdict: ipsec.VerdictForward, NextHop: netip.MustParseAddr("203.0.113.2")}
	case 1:
		return ipsec.OutResult{Verdict: ipsec.VerdictBypass, NextHop: netip.MustParseAddr("203.0.113.9")}
	case 2:
		return ipsec.OutResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropTooBig, MTU: int(d.choice)*8 + 60}
	case 3:
		return ipsec.OutResult{Verdict: ipsec.VerdictLocal}
	}
	return ipsec.OutResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropNoSA}
}

func (d *fuzzDP) Inbound(b *ipsec.Buffer) ipsec.InResult {
	switch d.choice % 4 {
	case 0:
		b.Pull(min(b.Len(), int(d.choice)))
		return ipsec.InResult{Verdict: ipsec.VerdictForward}
	case 1:
		return ipsec.InResult{Verdict: ipsec.VerdictLocal}
	case 2:
		return ipsec.InResult{Verdict: ipsec.VerdictBypass}
	}
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropAuth}
}

func (d *fuzzDP) InboundBypass(b *ipsec.Buffer) ipsec.InResult {
	if d.choice&1 == 0 {
		return ipsec.InResult{Verdict: ipsec.VerdictBypass}
	}
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropPolicyDiscard}
}

func fuzzSeedFrame(dst MAC, typ uint16, ip []byte) []byte {
	f := make([]byte, 14+len(ip))
	putEthernet(f, dst, MAC{2, 0, 0, 0, 9, 9}, typ)
	copy(f[14:], ip)
	return f
}

func fuzzSeedIPv4(src, dst [4]byte, ttl, proto uint8, ff uint16, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[6:], ff)
	p[8], p[9] = ttl, proto
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], ^checksum.Checksum(p[:20], 0))
	copy(p[20:], payload)
	return p
}

// FuzzFrame feeds arbitrary frames to either port's classifier with
// arbitrary data-plane verdicts. Nothing may panic and every buffer must
// return to the pool.
func FuzzFrame(f *testing.F) {
	host, dev, remote := [4]byte{192, 168, 1, 10}, [4]byte{203, 0, 113, 1}, [4]byte{192, 168, 2, 10}
	syn := make([]byte, 28)
	syn[12], syn[13] = 0x70, 0x02
	copy(syn[20:], []byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2})
	f.Add(byte(0), byte(0), fuzzSeedFrame(benchRedMAC, etherTypeIPv4, fuzzSeedIPv4(host, remote, 64, protoTCP, 0, syn)))
	f.Add(byte(0), byte(2), fuzzSeedFrame(benchRedMAC, etherTypeIPv4, fuzzSeedIPv4(host, remote, 64, protoUDP, 0, make([]byte, 1200))))
	f.Add(byte(0), byte(4), fuzzSeedFrame(benchRedMAC, etherTypeIPv4, fuzzSeedIPv4(host, remote, 1, protoUDP, 0, make([]byte, 8))))
	f.Add(byte(1), byte(0), fuzzSeedFrame(benchBlackMAC, etherTypeIPv4, fuzzSeedIPv4([4]byte{203, 0, 113, 2}, dev, 64, protoESP, ip4FlagMF, make([]byte, 64))))
	f.Add(byte(1), byte(0), fuzzSeedFrame(benchBlackMAC, etherTypeIPv4, fuzzSeedIPv4([4]byte{203, 0, 113, 2}, dev, 64, protoESP, 8, make([]byte, 30))))
	f.Add(byte(1), byte(1), fuzzSeedFrame(benchBlackMAC, etherTypeIPv4, fuzzSeedIPv4([4]byte{203, 0, 113, 2}, dev, 64, protoUDP, 0, []byte{0x11, 0x94, 0x11, 0x94, 0, 12, 0, 0, 0, 0, 0, 0})))
	f.Add(byte(1), byte(0), fuzzSeedFrame(benchBlackMAC, etherTypeARP, make([]byte, 28)))
	v6 := make([]byte, 48)
	v6[0], v6[6], v6[7] = 0x60, protoFragment, 64
	binary.BigEndian.PutUint16(v6[4:], 8)
	f.Add(byte(1), byte(0), fuzzSeedFrame(benchBlackMAC, etherTypeIPv6, v6))

	pool, err := ipsec.NewPool(64, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
	if err != nil {
		f.Fatal(err)
	}
	dp := &fuzzDP{}
	clk := faketime.NewManualClock()
	s, err := New(Config{
		Red:   PortConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24"), netip.MustParsePrefix("2001:db8:1::1/64")}},
		Black: PortConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("2001:db8:ff::1/64")}, Gateways: []netip.Addr{netip.MustParseAddr("203.0.113.254")}},
		Pool:  pool, Clock: clk, ReassemblySlots: 2,
	}, &sinkNIC{mac: benchRedMAC}, &sinkNIC{mac: benchBlackMAC}, dp)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	for _, p := range s.ports {
		p.neigh.set(netip.MustParseAddr("203.0.113.2"), benchPeerMAC, false)
		p.neigh.set(netip.MustParseAddr("203.0.113.254"), benchPeerMAC, false)
		p.neigh.set(netip.MustParseAddr("192.168.2.10"), benchHostMAC, true)
	}
	// Let duplicate address detection finish, so that gVisor's own timers
	// stay quiet while fuzzing.
	clk.Advance(5 * time.Second)
	loops := [numPorts]*rxLoop{s.newRxLoop(s.ports[Red]), s.newRxLoop(s.ports[Black])}
	f.Fuzz(func(t *testing.T, port, choice byte, frame []byte) {
		dp.choice = choice
		b := pool.Get()
		if len(frame) > len(b.Space()) {
			frame = frame[:len(b.Space())]
		}
		b.SetPacket(b.Headroom(), copy(b.Space(), frame))
		l := loops[port&1]
		l.handle(b)
		// release flushes and gives back the loop's spare buffers.
		l.release()
		// Timers gVisor scheduled to run at once (probes, replies) run on
		// goroutines of their own; wait for them before counting.
		clk.RunImmediatelyScheduledJobs()
		for _, p := range s.ports {
			p.neigh.drain()
		}
		if got := pool.Available(); got != 64 {
			t.Fatalf("%d of 64 buffers in the pool after one frame", got)
		}
	})
}
