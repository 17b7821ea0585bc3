package netstack_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Raw frame builders and parsers for tests that inspect the wire.

func ether(dst, src netstack.MAC, typ uint16, payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], typ)
	copy(f[14:], payload)
	return f
}

type ip4opts struct {
	ttl   uint8
	df    bool
	id    uint16
	proto uint8
}

func ipv4(src, dst string, o ip4opts, payload []byte) []byte {
	if o.ttl == 0 {
		o.ttl = 64
	}
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], o.id)
	if o.df {
		p[6] = 0x40
	}
	p[8], p[9] = o.ttl, o.proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^checksum.Checksum(p[:20], 0))
	copy(p[20:], payload)
	return p
}

func ipv6(src, dst string, hop, nh uint8, payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6], p[7] = nh, hop
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], payload)
	return p
}

func pseudo(src, dst netip.Addr, proto uint8, n int) uint16 {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	if src.Is4() {
		b = append(b, 0, proto, byte(n>>8), byte(n))
	} else {
		b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
	}
	return checksum.Checksum(b, 0)
}

// udp returns a UDP datagram with a valid checksum.
func udp(src, dst string, sport, dport uint16, data []byte) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	binary.BigEndian.PutUint16(u[6:], ^checksum.Checksum(u, pseudo(s, d, 17, len(u))))
	return u
}

// tcpSYN returns a SYN with the given options and a valid checksum.
func tcpSYN(src, dst string, opts []byte) []byte {
	t := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 80)
	binary.BigEndian.PutUint32(t[4:], 12345)
	t[12] = byte((20+len(opts))/4) << 4
	t[13] = 0x02
	binary.BigEndian.PutUint16(t[14:], 65535)
	copy(t[20:], opts)
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	binary.BigEndian.PutUint16(t[16:], ^checksum.Checksum(t, pseudo(s, d, 6, len(t))))
	return t
}

// l4ChecksumOK verifies a TCP/UDP/ICMPv6 checksum over its pseudo-header.
func l4ChecksumOK(src, dst netip.Addr, proto uint8, seg []byte) bool {
	return checksum.Checksum(seg, pseudo(src, dst, proto, len(seg))) == 0xffff
}

func ip4ChecksumOK(h []byte) bool { return checksum.Checksum(h[:int(h[0]&15)*4], 0) == 0xffff }

// expectFrame reads frames from nic until match accepts one, skipping
// others (ARP, NDP); it fails the test after a bounded wait.
func expectFrame(t testing.TB, nic *nictest.NIC, what string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		f, ok := nic.ReadFrame(100 * time.Millisecond)
		if ok && match(f) {
			return f
		}
	}
	t.Fatalf("no frame: %s", what)
	return nil
}

// noFrame fails if a matching frame shows up within a short real-time
// window.
func noFrame(t testing.TB, nic *nictest.NIC, what string, match func([]byte) bool) {
	t.Helper()
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if f, ok := nic.ReadFrame(20 * time.Millisecond); ok && match(f) {
			t.Fatalf("unexpected frame: %s", what)
		}
	}
}

func isIPv4(f []byte) bool { return len(f) >= 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 }
func isIPv6(f []byte) bool { return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x86dd }

// arpRequest is "who has target, tell sender" from mac.
func arpRequest(mac netstack.MAC, sender, target string) []byte {
	return arpFrame(1, mac, sender, netstack.MAC{}, target, netstack.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
}

// arpReply answers a request for target from mac.
func arpReply(mac netstack.MAC, to netstack.MAC, sender, target string) []byte {
	return arpFrame(2, mac, sender, to, target, to)
}

// arpFrame is an Ethernet IPv4 ARP packet (RFC 826) with operation op
// from mac and sender, about target at hardware address tha, sent to dst.
func arpFrame(op uint16, mac netstack.MAC, sender string, tha netstack.MAC, target string, dst netstack.MAC) []byte {
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:], mac[:])
	s, t := netip.MustParseAddr(sender).As4(), netip.MustParseAddr(target).As4()
	copy(a[14:], s[:])
	copy(a[18:], tha[:])
	copy(a[24:], t[:])
	return ether(dst, mac, 0x0806, a)
}

// isARPRequestFor reports an ARP request for target.
func isARPRequestFor(f []byte, target string) bool {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 || binary.BigEndian.Uint16(f[20:]) != 1 {
		return false
	}
	t := netip.MustParseAddr(target).As4()
	return [4]byte(f[38:42]) == t
}

// introduce makes the device learn peer's MAC: the peer asks for the
// device's address, so gVisor both answers and caches the asker (RFC 826).
func introduce(t testing.TB, g *gw, far *nictest.NIC, mac netstack.MAC, peer, device string) {
	t.Helper()
	far.WriteFrame(arpRequest(mac, peer, device))
	expectFrame(t, far, "ARP reply from "+device, func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
	})
}
