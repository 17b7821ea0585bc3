package netstack_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

func simpleGW(t *testing.T, mod func(*gwOpts)) (*gw, *toyDP) {
	dp := newToy("203.0.113.1", "203.0.113.2")
	o := gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", red6: "2001:db8:1::1/64", black6: "2001:db8:ff::1/64", dp: dp}
	if mod != nil {
		mod(&o)
	}
	return newGW(t, o), dp
}

// RFC 1812 §5.3.1: a packet arriving with TTL 1 is not forwarded; the
// sender gets time exceeded from the red address, quoting its header.
func TestTTLExceededIPv4(t *testing.T) {
	g, dp := simpleGW(t, nil)
	orig := ipv4("192.168.1.10", "192.168.2.10", ip4opts{ttl: 1, proto: 17, id: 77}, udp("192.168.1.10", "192.168.2.10", 1000, 2000, []byte("hello")))
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, orig))
	f := expectFrame(t, g.red, "ICMP time exceeded", func(f []byte) bool { return isIPv4(f) && f[14+9] == 1 })
	if netstack.MAC(f[:6]) != macRedPeer {
		t.Fatalf("sent to %v, want the sender's MAC", netstack.MAC(f[:6]))
	}
	ip := f[14:]
	if !ip4ChecksumOK(ip) || netip.AddrFrom4([4]byte(ip[12:16])) != netip.MustParseAddr("192.168.1.1") || netip.AddrFrom4([4]byte(ip[16:20])) != netip.MustParseAddr("192.168.1.10") {
		t.Fatalf("bad IP header % x", ip[:20])
	}
	ic := ip[20:]
	if ic[0] != 11 || ic[1] != 0 || !bytes.Equal(ic[8:8+len(orig)], orig) {
		t.Fatalf("bad ICMP % x", ic)
	}
	if got := checksumOf(ic); got != 0 {
		t.Fatalf("ICMP checksum off by %#x", got)
	}
	c := g.s.Counters()
	if c.Drops[netstack.DropTTLExceeded] != 1 || c.ICMPSent != 1 || dp.outCalls.Load() != 0 {
		t.Fatalf("counters %+v, outbound calls %d", c, dp.outCalls.Load())
	}
}

func TestTTLExceededIPv6(t *testing.T) {
	g, _ := simpleGW(t, nil)
	orig := ipv6("2001:db8:1::10", "2001:db8:2::10", 1, 17, udp("2001:db8:1::10", "2001:db8:2::10", 1000, 2000, []byte("hello")))
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x86dd, orig))
	f := expectFrame(t, g.red, "ICMPv6 time exceeded", func(f []byte) bool { return isIPv6(f) && f[14+6] == 58 && f[54] == 3 })
	ip := f[14:]
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	if src != netip.MustParseAddr("2001:db8:1::1") || dst != netip.MustParseAddr("2001:db8:1::10") {
		t.Fatalf("error from %v to %v", src, dst)
	}
	if !l4ChecksumOK(src, dst, 58, ip[40:]) || !bytes.Equal(ip[48:48+len(orig)], orig) {
		t.Fatal("bad ICMPv6 message")
	}
}

// The TTL is decremented with a correct incremental checksum on the way
// into the tunnel, and the SYN's MSS is clamped with a correct checksum.
func TestDecrementAndClamp(t *testing.T) {
	g, dp := simpleGW(t, nil)
	introduce(t, g, g.black, macBlkPeer, "203.0.113.2", "203.0.113.1")
	mss4, _ := g.s.MSS()
	for _, tc := range []struct {
		name string
		opts []byte
	}{
		{"even", []byte{2, 4, 0x05, 0xb4, 1, 1, 1, 0}},
		{"odd", []byte{1, 2, 4, 0x05, 0xb4, 1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg := tcpSYN("192.168.1.10", "192.168.2.10", tc.opts)
			g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "192.168.2.10", ip4opts{ttl: 64, df: true, proto: 6}, seg)))
			f := expectFrame(t, g.black, "encapsulated SYN", func(f []byte) bool { return isIPv4(f) && f[14+9] == 50 })
			if netstack.MAC(f[:6]) != macBlkPeer {
				t.Fatalf("to %v", netstack.MAC(f[:6]))
			}
			inner := f[14+toyOverhead:]
			if inner[8] != 63 || !ip4ChecksumOK(inner) {
				t.Fatalf("TTL %d, header checksum ok=%v", inner[8], ip4ChecksumOK(inner))
			}
			tcp := inner[20:]
			off := bytes.Index(tcp[20:], []byte{2, 4})
			if off < 0 || int(binary.BigEndian.Uint16(tcp[20+off+2:])) != mss4 {
				t.Fatalf("MSS option % x, want %d", tcp[20:], mss4)
			}
			if !l4ChecksumOK(netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.2.10"), 6, tcp) {
				t.Fatal("TCP checksum broken by clamping")
			}
		})
	}
	if c := g.s.Counters(); c.MSSClamped != 2 || c.Encapsulated != 2 || dp.outCalls.Load() != 2 {
		t.Fatalf("counters %+v", c)
	}
}

// RFC 4301 §8.2 / RFC 1191: with DF set, a packet too big for the tunnel
// earns fragmentation needed carrying the inner MTU the data plane gave.
func TestTooBigDFSetIPv4(t *testing.T) {
	g, dp := simpleGW(t, nil)
	dp.innerMTU = 1300
	orig := ipv4("192.168.1.10", "192.168.2.10", ip4opts{df: true, proto: 17}, udp("192.168.1.10", "192.168.2.10", 1, 2, make([]byte, 1372)))
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, orig))
	f := expectFrame(t, g.red, "fragmentation needed", func(f []byte) bool { return isIPv4(f) && f[14+9] == 1 })
	ic := f[34:]
	if ic[0] != 3 || ic[1] != 4 || binary.BigEndian.Uint16(ic[6:]) != 1300 || checksumOf(ic) != 0 {
		t.Fatalf("ICMP % x", ic[:8])
	}
	if len(f)-14 > 576 {
		t.Fatalf("ICMP error of %d octets exceeds 576", len(f)-14)
	}
	c := g.s.Counters()
	if c.DataPlaneDrops[ipsec.DropTooBig] != 1 || c.Encapsulated != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestPacketTooBigIPv6(t *testing.T) {
	g, dp := simpleGW(t, nil)
	dp.innerMTU = 1400
	orig := ipv6("2001:db8:1::10", "2001:db8:2::10", 64, 17, udp("2001:db8:1::10", "2001:db8:2::10", 1, 2, make([]byte, 1420)))
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x86dd, orig))
	f := expectFrame(t, g.red, "packet too big", func(f []byte) bool { return isIPv6(f) && f[14+6] == 58 && f[54] == 2 })
	ip := f[14:]
	if binary.BigEndian.Uint32(ip[44:]) != 1400 || len(ip) > 1280 {
		t.Fatalf("PTB MTU %d, length %d", binary.BigEndian.Uint32(ip[44:]), len(ip))
	}
	if !l4ChecksumOK(netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), 58, ip[40:]) {
		t.Fatal("bad checksum")
	}
}

// RFC 4459 §3: with DF clear the inner packet is fragmented before
// encapsulation and each piece goes through the data plane on its own.
func TestPreFragmentation(t *testing.T) {
	g, dp := simpleGW(t, nil)
	dp.innerMTU = 600
	introduce(t, g, g.black, macBlkPeer, "203.0.113.2", "203.0.113.1")
	data := make([]byte, 1400)
	for i := range data {
		data[i] = byte(i)
	}
	orig := ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17, id: 4242}, udp("192.168.1.10", "192.168.2.10", 1, 2, data))
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, orig))
	var got []byte
	for want := 0; ; {
		f := expectFrame(t, g.black, fmt.Sprintf("fragment %+v", g.s.Counters()), func(f []byte) bool { return isIPv4(f) && f[14+9] == 50 })
		inner := f[14+toyOverhead:]
		if len(inner) > 600 || !ip4ChecksumOK(inner) || binary.BigEndian.Uint16(inner[4:]) != 4242 {
			t.Fatalf("fragment of %d octets, header % x", len(inner), inner[:20])
		}
		ff := binary.BigEndian.Uint16(inner[6:])
		if int(ff&0x1fff)*8 != want {
			t.Fatalf("offset %d, want %d", int(ff&0x1fff)*8, want)
		}
		got = append(got, inner[20:]...)
		want += len(inner) - 20
		if ff&0x2000 == 0 {
			break
		}
	}
	if !bytes.Equal(got, orig[20:]) {
		t.Fatal("fragments do not reassemble to the original")
	}
	if c := g.s.Counters(); c.Fragmented != 1 || c.Encapsulated != 3 {
		t.Fatalf("counters %+v", c)
	}
}

// Outer fragments addressed to the black address are reassembled before
// the data plane sees them; the inner packet then leaves red.
func TestOuterReassembly(t *testing.T) {
	g, dp := simpleGW(t, nil)
	introduce(t, g, g.red, macRedPeer, "192.168.1.10", "192.168.1.1")
	inner := ipv4("192.168.2.10", "192.168.1.10", ip4opts{proto: 17}, udp("192.168.2.10", "192.168.1.10", 5, 6, bytes.Repeat([]byte{0xab}, 1400)))
	esp := append(binary.BigEndian.AppendUint32(nil, dp.spi), 0, 0, 0, 1)
	outerPayload := append(esp, inner...)
	frags := fragmentIPv4("203.0.113.2", "203.0.113.1", 50, 999, outerPayload, 600)
	// Out of order, last first.
	for i := len(frags) - 1; i >= 0; i-- {
		g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, frags[i]))
	}
	f := expectFrame(t, g.red, "decapsulated packet", func(f []byte) bool { return isIPv4(f) && f[14+9] == 17 })
	out := f[14:]
	if netstack.MAC(f[:6]) != macRedPeer || out[8] != 63 || !bytes.Equal(out[20:], inner[20:]) {
		t.Fatalf("inner packet mangled: ttl %d", out[8])
	}
	c := g.s.Counters()
	if c.Reassembled != 1 || c.Decapsulated != 1 {
		t.Fatalf("counters %+v", c)
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if len(dp.inboundLen) != 1 || dp.inboundLen[0] != 20+len(outerPayload) {
		t.Fatalf("Inbound saw %v", dp.inboundLen)
	}
}

// fragmentIPv4 splits payload into IPv4 fragments of at most mtu octets.
func fragmentIPv4(src, dst string, proto uint8, id uint16, payload []byte, mtu int) [][]byte {
	var out [][]byte
	step := (mtu - 20) &^ 7
	for off := 0; off < len(payload); off += step {
		end := min(off+step, len(payload))
		p := ipv4(src, dst, ip4opts{proto: proto, id: id}, payload[off:end])
		ff := uint16(off / 8)
		if end < len(payload) {
			ff |= 0x2000
		}
		binary.BigEndian.PutUint16(p[6:], ff)
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], checksumOf(p[:20]))
		out = append(out, p)
	}
	return out
}

func TestReassemblyOverlapAndTimeout(t *testing.T) {
	g, dp := simpleGW(t, nil)
	payload := bytes.Repeat([]byte{1}, 2000)
	frags := fragmentIPv4("203.0.113.2", "203.0.113.1", 50, 1, payload, 600)
	// Overlap: the second fragment twice, the copy one block earlier.
	dup := append([]byte(nil), frags[1]...)
	ff := binary.BigEndian.Uint16(dup[6:])
	binary.BigEndian.PutUint16(dup[6:], ff-1)
	dup[10], dup[11] = 0, 0
	binary.BigEndian.PutUint16(dup[10:], checksumOf(dup[:20]))
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, frags[1]))
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, dup))
	eventually(t, g.clk, "overlap drop", func() bool { return g.s.Counters().Drops[netstack.DropReassemblyOverlap] == 1 })

	// Timeout: one fragment, then the deadline passes.
	frags = fragmentIPv4("203.0.113.2", "203.0.113.1", 50, 2, payload, 600)
	in := g.s.Counters().FragmentsIn
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, frags[0]))
	for i := 0; g.s.Counters().FragmentsIn == in; i++ {
		if i == 1000 {
			t.Fatal("fragment not received")
		}
		time.Sleep(time.Millisecond)
	}
	g.clk.Advance(netstack.DefaultReassemblyTimeout + time.Second)
	// Expiry runs with the next batch on black.
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, frags[2]))
	eventually(t, g.clk, "timeout drop", func() bool { return g.s.Counters().Drops[netstack.DropReassemblyTimeout] == 1 })
	if dp.inCalls.Load() != 0 {
		t.Fatal("incomplete datagram reached the data plane")
	}
}

// A large IKE message, fragmented by the network and bigger than a pool
// buffer, still reaches the socket on the black address: reassembly hands
// the whole datagram to the local stack.
func TestLargeFragmentedIKEMessage(t *testing.T) {
	g, _ := simpleGW(t, nil)
	waitReady(t, g)
	for _, v6 := range []bool{false, true} {
		src, dst := "203.0.113.2", "203.0.113.1"
		if v6 {
			src, dst = "2001:db8:ff::2", "2001:db8:ff::1"
		}
		conn, err := g.s.ListenUDP(netip.AddrPortFrom(netip.MustParseAddr(dst), 500))
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte("IKE_AUTH with certificates "), 150) // 4050 octets
		dgram := udp(src, dst, 500, 500, msg)
		var frags [][]byte
		if v6 {
			frags = fragmentIPv6(src, dst, 17, 0x1234, dgram, 1280)
		} else {
			frags = fragmentIPv4(src, dst, 17, 0x1234, dgram, 1500)
		}
		for _, fr := range frags {
			typ := uint16(0x0800)
			if v6 {
				typ = 0x86dd
			}
			g.black.WriteFrame(ether(macBlackGW, macBlkPeer, typ, fr))
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 8192)
		n, _, err := conn.ReadFrom(buf)
		conn.Close()
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("v6=%v: got %d octets, %v", v6, n, err)
		}
	}
	if c := g.s.Counters(); c.Reassembled != 2 {
		t.Fatalf("counters %+v", c)
	}
}

// fragmentIPv6 splits an upper-layer payload into IPv6 fragments.
func fragmentIPv6(src, dst string, nh uint8, id uint32, payload []byte, mtu int) [][]byte {
	var out [][]byte
	step := (mtu - 48) &^ 7
	for off := 0; off < len(payload); off += step {
		end := min(off+step, len(payload))
		fh := make([]byte, 8, 8+end-off)
		fh[0] = nh
		ow := uint16(off/8) << 3
		if end < len(payload) {
			ow |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], ow)
		binary.BigEndian.PutUint32(fh[4:], id)
		out = append(out, ipv6(src, dst, 64, 44, append(fh, payload[off:end]...)))
	}
	return out
}

// IKE on 4500 behind the non-ESP marker: the data plane says local, and
// the socket on the black address gets it.
func TestNATTIKEGoesLocal(t *testing.T) {
	g, _ := simpleGW(t, nil)
	conn, err := g.s.ListenUDP(netip.MustParseAddrPort("203.0.113.1:4500"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := append([]byte{0, 0, 0, 0}, "IKE_AUTH"...)
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, ipv4("203.0.113.2", "203.0.113.1", ip4opts{proto: 17}, udp("203.0.113.2", "203.0.113.1", 4500, 4500, msg))))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 100)
	n, _, err := conn.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

// Packets for an unresolved neighbour wait in a bounded queue and leave
// once ARP answers; beyond the bound they are dropped and counted.
func TestNeighbourQueue(t *testing.T) {
	g, _ := simpleGW(t, func(o *gwOpts) {
		o.cfg = func(c *netstack.Config) { c.NeighbourQueue = 3 }
	})
	inner := func(i byte) []byte {
		return ipv4("192.168.2.10", "192.168.1.20", ip4opts{proto: 17}, udp("192.168.2.10", "192.168.1.20", 5, 6, []byte{i}))
	}
	esp := binary.BigEndian.AppendUint32(nil, 0x0badf00d)
	esp = append(esp, 0, 0, 0, 1)
	for i := range byte(5) {
		g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, ipv4("203.0.113.2", "203.0.113.1", ip4opts{proto: 50}, append(append([]byte(nil), esp...), inner(i)...))))
	}
	eventually(t, g.clk, "ARP request", func() bool {
		f, ok := g.red.ReadFrame(time.Millisecond)
		return ok && isARPRequestFor(f, "192.168.1.20")
	})
	c := g.s.Counters()
	if c.NeighbourHeld != 3 || c.Drops[netstack.DropNeighbourQueueFull] != 2 {
		t.Fatalf("counters %+v", c)
	}
	g.red.WriteFrame(arpReply(macRedPeer, macRedGW, "192.168.1.20", "192.168.1.1"))
	for i := range byte(3) {
		f := expectFrame(t, g.red, "held packet", func(f []byte) bool { return isIPv4(f) && f[14+9] == 17 })
		if netstack.MAC(f[:6]) != macRedPeer || f[len(f)-1] != i {
			t.Fatalf("held packet %d: % x", i, f)
		}
	}
}

// When nobody answers, held packets are dropped and their buffers return
// (the pool check in Cleanup would fail otherwise).
func TestNeighbourFailure(t *testing.T) {
	g, _ := simpleGW(t, nil)
	introduce(t, g, g.red, macRedPeer, "192.168.1.10", "192.168.1.1")
	// Bypass from black to an unresolvable red host.
	g.dp.(*toyDP).bypassIn = true
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, ipv4("198.51.100.1", "192.168.1.99", ip4opts{proto: 17}, udp("198.51.100.1", "192.168.1.99", 1, 2, nil))))
	eventually(t, g.clk, "resolution failure", func() bool { return g.s.Counters().Drops[netstack.DropNeighbourFailed] == 1 })
	if c := g.s.Counters(); c.BypassIn != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// RFC 1812 §4.3.2.8: ICMP errors are rate limited.
func TestICMPRateLimit(t *testing.T) {
	g, _ := simpleGW(t, func(o *gwOpts) {
		o.cfg = func(c *netstack.Config) { c.ICMPBurst, c.ICMPRate = 5, 1 }
	})
	for range 20 {
		g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "192.168.2.10", ip4opts{ttl: 1, proto: 17}, udp("192.168.1.10", "192.168.2.10", 1, 2, nil))))
	}
	eventually(t, g.clk, "20 TTL drops", func() bool { return g.s.Counters().Drops[netstack.DropTTLExceeded] == 20 })
	c := g.s.Counters()
	// The clock moved a little while waiting, so allow a token or two.
	if c.ICMPSent < 5 || c.ICMPSent > 8 || c.ICMPSent+c.ICMPRateLimited != 20 {
		t.Fatalf("sent %d, limited %d", c.ICMPSent, c.ICMPRateLimited)
	}
}

// Cleartext crosses only where the data plane says BYPASS.
func TestBypassBothWays(t *testing.T) {
	g, dp := simpleGW(t, nil)
	dp.bypassOut = netip.MustParsePrefix("203.0.113.0/24")
	introduce(t, g, g.black, macBlkPeer, "203.0.113.9", "203.0.113.1")
	introduce(t, g, g.red, macRedPeer, "192.168.1.10", "192.168.1.1")
	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "203.0.113.9", ip4opts{proto: 17}, udp("192.168.1.10", "203.0.113.9", 1, 2, []byte("out")))))
	f := expectFrame(t, g.black, "bypassed packet", func(f []byte) bool { return isIPv4(f) && f[14+9] == 17 })
	if f[14+8] != 63 || netstack.MAC(f[:6]) != macBlkPeer {
		t.Fatal("bad bypass forwarding")
	}
	in := ipv4("203.0.113.9", "192.168.1.10", ip4opts{proto: 17}, udp("203.0.113.9", "192.168.1.10", 2, 1, []byte("in")))
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, in))
	eventually(t, g.clk, "inbound bypass drop", func() bool { return g.s.Counters().DataPlaneDrops[ipsec.DropPolicyDiscard] == 1 })
	dp.mu.Lock()
	dp.bypassIn = true
	dp.mu.Unlock()
	g.black.WriteFrame(ether(macBlackGW, macBlkPeer, 0x0800, in))
	expectFrame(t, g.red, "bypassed inbound packet", func(f []byte) bool { return isIPv4(f) && f[14+9] == 17 })
	if c := g.s.Counters(); c.BypassOut != 1 || c.BypassIn != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// What no router forwards is dropped under its own reason.
func TestClassifierDrops(t *testing.T) {
	g, dp := simpleGW(t, nil)
	bcast := netstack.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	other := netstack.MAC{2, 9, 9, 9, 9, 9}
	u := func(s, d string) []byte { return udp(s, d, 1, 2, nil) }
	cases := []struct {
		name  string
		frame []byte
		want  netstack.DropReason
	}{
		{"runt", []byte{1, 2, 3}, netstack.DropRunt},
		{"other MAC", ether(other, macRedPeer, 0x0800, ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17}, u("192.168.1.10", "192.168.2.10"))), netstack.DropNotForUs},
		{"VLAN", ether(macRedGW, macRedPeer, 0x8100, make([]byte, 46)), netstack.DropEtherType},
		{"bad checksum", func() []byte {
			p := ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17}, u("192.168.1.10", "192.168.2.10"))
			p[10] ^= 1
			return ether(macRedGW, macRedPeer, 0x0800, p)
		}(), netstack.DropMalformed},
		{"loopback source", ether(macRedGW, macRedPeer, 0x0800, ipv4("127.0.0.1", "192.168.2.10", ip4opts{proto: 17}, u("127.0.0.1", "192.168.2.10"))), netstack.DropMartian},
		{"spoofed device source", ether(macRedGW, macRedPeer, 0x0800, ipv4("203.0.113.1", "192.168.2.10", ip4opts{proto: 17}, u("203.0.113.1", "192.168.2.10"))), netstack.DropMartian},
		{"link broadcast", ether(bcast, macRedPeer, 0x0800, ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17}, u("192.168.1.10", "192.168.2.10"))), netstack.DropLinkBroadcast},
		{"multicast", ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "239.1.1.1", ip4opts{proto: 17}, u("192.168.1.10", "239.1.1.1"))), netstack.DropMulticast},
		{"black address from red", ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "203.0.113.1", ip4opts{proto: 17}, u("192.168.1.10", "203.0.113.1"))), netstack.DropOtherPortAddress},
		{"source route", ether(macRedGW, macRedPeer, 0x0800, withOptions(ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17}, u("192.168.1.10", "192.168.2.10")), []byte{131, 7, 4, 192, 168, 9, 9, 0})), netstack.DropSourceRoute},
		{"link-local v6 transit", ether(macRedGW, macRedPeer, 0x86dd, ipv6("fe80::10", "2001:db8:2::10", 64, 17, u("fe80::10", "2001:db8:2::10"))), netstack.DropMartian},
	}
	for _, tc := range cases {
		before := g.s.Counters().Drops[tc.want]
		g.red.WriteFrame(tc.frame)
		eventually(t, g.clk, tc.name, func() bool { return g.s.Counters().Drops[tc.want] == before+1 })
	}
	if dp.outCalls.Load() != 0 {
		t.Fatal("a dropped frame reached the data plane")
	}
}

// withOptions inserts IPv4 options (a multiple of 4 octets) into p.
func withOptions(p, opts []byte) []byte {
	q := append(append(append([]byte(nil), p[:20]...), opts...), p[20:]...)
	q[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(q[2:], uint16(len(q)))
	q[10], q[11] = 0, 0
	binary.BigEndian.PutUint16(q[10:], checksumOf(q[:20+len(opts)]))
	return q
}

func checksumOf(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// Next hops off the port's prefix go to the port's gateway: the peer
// behind the black router, and red networks behind a red router.
func TestGatewayRouting(t *testing.T) {
	dp := newToy("203.0.113.1", "198.51.100.2")
	g := newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", redGW: "192.168.1.254", blackGW: "203.0.113.254", dp: dp})
	routerBlack, routerRed := netstack.MAC{2, 0, 0, 0, 0xee, 1}, netstack.MAC{2, 0, 0, 0, 0xee, 2}
	introduce(t, g, g.black, routerBlack, "203.0.113.254", "203.0.113.1")
	introduce(t, g, g.red, routerRed, "192.168.1.254", "192.168.1.1")

	g.red.WriteFrame(ether(macRedGW, macRedPeer, 0x0800, ipv4("192.168.1.10", "192.168.2.10", ip4opts{proto: 17}, udp("192.168.1.10", "192.168.2.10", 1, 2, nil))))
	f := expectFrame(t, g.black, "ESP toward the black gateway", func(f []byte) bool { return isIPv4(f) && f[14+9] == 50 })
	if netstack.MAC(f[:6]) != routerBlack {
		t.Fatalf("ESP sent to %v, want the black gateway", netstack.MAC(f[:6]))
	}

	inner := ipv4("192.168.2.10", "10.7.0.5", ip4opts{proto: 17}, udp("192.168.2.10", "10.7.0.5", 1, 2, nil))
	esp := append(binary.BigEndian.AppendUint32(nil, dp.spi), 0, 0, 0, 9)
	g.black.WriteFrame(ether(macBlackGW, routerBlack, 0x0800, ipv4("198.51.100.2", "203.0.113.1", ip4opts{proto: 50}, append(esp, inner...))))
	f = expectFrame(t, g.red, "decapsulated packet toward the red gateway", func(f []byte) bool { return isIPv4(f) && f[14+9] == 17 })
	if netstack.MAC(f[:6]) != routerRed {
		t.Fatalf("inner packet sent to %v, want the red gateway", netstack.MAC(f[:6]))
	}
}
