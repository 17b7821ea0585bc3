//go:build linux

package host

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/bitw-dev/bitw/ipsec"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

var (
	src4, dst4 = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	src6, dst6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
)

// buildFrame returns Ethernet + IP + a TCP or UDP header + payload, with
// the transport checksum field holding only the pseudo-header sum, as a
// CHECKSUM_PARTIAL sender leaves it.
func buildFrame(v6 bool, proto uint8, payload []byte) []byte {
	thl := 20
	if proto == protoUDP {
		thl = 8
	}
	ipl := 20
	if v6 {
		ipl = 40
	}
	f := make([]byte, ethHeaderLen+ipl+thl+len(payload))
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	ip := f[ethHeaderLen:]
	l4 := ip[ipl:]
	if v6 {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv6)
		ip[0], ip[6], ip[7] = 0x60, proto, 64
		binary.BigEndian.PutUint16(ip[4:], uint16(thl+len(payload)))
		s, d := src6.As16(), dst6.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	} else {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
		ip[0], ip[8], ip[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		binary.BigEndian.PutUint16(ip[4:], 100)
		ip[6] = 0x40
		s, d := src4.As4(), dst4.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	}
	binary.BigEndian.PutUint16(l4[0:], 1234)
	binary.BigEndian.PutUint16(l4[2:], 80)
	ck := 6
	if proto == protoTCP {
		binary.BigEndian.PutUint32(l4[4:], 1000)
		l4[12] = 5 << 4
		l4[13] = tcpFlagCWR | tcpFlagPSH | tcpFlagFIN | 0x10
		ck = 16
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(payload)))
	}
	copy(l4[thl:], payload)
	binary.BigEndian.PutUint16(l4[ck:], pseudoSum(ip, v6, proto, len(l4)))
	return f
}

func l4Valid(f []byte) bool {
	v6 := binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6
	ip := f[ethHeaderLen:]
	ipl, proto := 20, ip[9]
	if v6 {
		ipl, proto = 40, ip[6]
	}
	l4 := ip[ipl:]
	return checksum.Checksum(l4, pseudoSum(ip, v6, proto, len(l4))) == 0xffff
}

func TestCompleteChecksum(t *testing.T) {
	for _, tc := range []struct {
		v6    bool
		proto uint8
	}{{false, protoTCP}, {false, protoUDP}, {true, protoTCP}, {true, protoUDP}} {
		f := buildFrame(tc.v6, tc.proto, []byte("partial checksum from a local sender on veth"))
		if l4Valid(f) {
			t.Fatal("the partial frame already checksums")
		}
		ipl := 20
		if tc.v6 {
			ipl = 40
		}
		off := uint16(16)
		if tc.proto == protoUDP {
			off = 6
		}
		if !completeChecksum(f, vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: uint16(ethHeaderLen + ipl), csumOffset: off}) || !l4Valid(f) {
			t.Fatalf("v6=%v proto=%d: checksum not completed", tc.v6, tc.proto)
		}
	}
	if completeChecksum(make([]byte, 20), vnetHdr{csumStart: 18, csumOffset: 16}) {
		t.Fatal("out-of-range checksum offsets accepted")
	}
}

func newBufs(n int) []*ipsec.Buffer {
	bufs := make([]*ipsec.Buffer, n)
	for i := range bufs {
		bufs[i] = ipsec.NewBuffer(ipsec.DefaultBufferSize)
	}
	return bufs
}

func TestSegmentOffloadFrames(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	for _, tc := range []struct {
		name  string
		v6    bool
		proto uint8
		typ   uint8
	}{
		{"tcp4", false, protoTCP, unix.VIRTIO_NET_HDR_GSO_TCPV4},
		{"tcp6", true, protoTCP, unix.VIRTIO_NET_HDR_GSO_TCPV6},
		{"udp4-l4", false, protoUDP, unix.VIRTIO_NET_HDR_GSO_UDP_L4},
		{"udp6-l4", true, protoUDP, unix.VIRTIO_NET_HDR_GSO_UDP_L4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := buildFrame(tc.v6, tc.proto, payload)
			var s segmenter
			mss := uint16(1448)
			if tc.v6 && tc.proto == protoTCP {
				mss = 1428
			}
			if !s.start(f, vnetHdr{gsoType: tc.typ, gsoSize: mss, flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM}) {
				t.Fatal("start refused a valid frame")
			}
			// Two segments per call, as a nearly full batch would.
			var segs [][]byte
			for s.active() {
				bufs := newBufs(2)
				for _, b := range bufs[:s.fill(bufs)] {
					segs = append(segs, append([]byte(nil), b.Bytes()...))
				}
			}
			if len(segs) != 4 {
				t.Fatalf("%d segments, want 4", len(segs))
			}
			var got []byte
			for i, seg := range segs {
				if !l4Valid(seg) {
					t.Fatalf("segment %d: bad checksum", i)
				}
				ip := seg[ethHeaderLen:]
				hl := 20
				if tc.v6 {
					hl = 40
					if int(binary.BigEndian.Uint16(ip[4:])) != len(ip)-40 {
						t.Fatalf("segment %d: payload length", i)
					}
				} else if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) || binary.BigEndian.Uint16(ip[4:]) != uint16(100+i) || checksum.Checksum(ip[:20], 0) != 0xffff {
					t.Fatalf("segment %d: IPv4 header % x", i, ip[:20])
				}
				l4 := ip[hl:]
				if tc.proto == protoTCP {
					if seq := binary.BigEndian.Uint32(l4[4:]); seq != uint32(1000+len(got)) {
						t.Fatalf("segment %d: seq %d", i, seq)
					}
					fl := l4[13]
					last := i == len(segs)-1
					if (fl&tcpFlagFIN != 0) != last || (fl&tcpFlagPSH != 0) != last || (fl&tcpFlagCWR != 0) != (i == 0) {
						t.Fatalf("segment %d: flags %#x", i, fl)
					}
					got = append(got, l4[20:]...)
				} else {
					if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
						t.Fatalf("segment %d: UDP length", i)
					}
					got = append(got, l4[8:]...)
				}
				if len(seg)-ethHeaderLen > 1500 {
					t.Fatalf("segment %d: %d octets", i, len(seg))
				}
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("segments do not carry the payload")
			}
		})
	}
}

func TestSegmentRefusesBadFrames(t *testing.T) {
	f := buildFrame(false, protoTCP, make([]byte, 3000))
	var s segmenter
	for name, h := range map[string]vnetHdr{
		"no size":    {gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4},
		"wrong type": {gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV6, gsoSize: 1000},
		"ufo":        {gsoType: unix.VIRTIO_NET_HDR_GSO_UDP, gsoSize: 1000},
	} {
		if s.start(f, h) {
			t.Errorf("%s: accepted", name)
		}
	}
	frag := append([]byte(nil), f...)
	frag[ethHeaderLen+6] |= 0x20
	if s.start(frag, vnetHdr{gsoType: unix.VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1000}) {
		t.Error("fragment accepted")
	}
}

// FuzzVnetFrame: arbitrary virtio headers and frames never panic, and
// every segment fits its buffer.
func FuzzVnetFrame(f *testing.F) {
	f.Add(make([]byte, vnetHdrLen), buildFrame(false, protoTCP, make([]byte, 100)))
	h := make([]byte, vnetHdrLen)
	h[vnetGSOType] = unix.VIRTIO_NET_HDR_GSO_TCPV4
	binary.NativeEndian.PutUint16(h[vnetGSOSize:], 500)
	f.Add(h, buildFrame(false, protoTCP, make([]byte, 3000)))
	h6 := append([]byte(nil), h...)
	h6[vnetGSOType] = unix.VIRTIO_NET_HDR_GSO_UDP_L4
	f.Add(h6, buildFrame(true, protoUDP, make([]byte, 3000)))
	hc := make([]byte, vnetHdrLen)
	hc[vnetFlags] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.NativeEndian.PutUint16(hc[vnetCsumStart:], 34)
	binary.NativeEndian.PutUint16(hc[vnetCsumOffset:], 16)
	f.Add(hc, buildFrame(false, protoTCP, make([]byte, 10)))
	n := &packetNIC{segIdx: -1}
	bufs := newBufs(8)
	f.Fuzz(func(t *testing.T, vnet, frame []byte) {
		if len(vnet) < vnetHdrLen {
			return
		}
		n.seg = segmenter{}
		for _, b := range bufs {
			b.Reset(ipsec.DefaultHeadroom)
		}
		got := n.frame(0, vnet[:vnetHdrLen], frame, bufs)
		for n.seg.active() {
			got += n.seg.fill(bufs)
		}
		if got < 0 {
			t.Fatal("negative count")
		}
	})
}
