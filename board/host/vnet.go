//go:build linux

package host

import (
	"encoding/binary"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// virtio-net header that PACKET_VNET_HDR puts before each frame (virtio
// spec v1.2 §5.1.6, "struct virtio_net_hdr", legacy layout: native byte
// order, as the kernel's packet socket writes it):
//
//	+-------+----------+---------+----------+------------+-------------+
//	| flags | gso_type | hdr_len | gso_size | csum_start | csum_offset |
//	|  u8   |    u8    |   u16   |   u16    |    u16     |     u16     |
//	+-------+----------+---------+----------+------------+-------------+
const (
	vnetHdrLen     = 10
	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLenOff  = 2
	vnetGSOSize    = 4
	vnetCsumStart  = 6
	vnetCsumOffset = 8
)

type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func parseVnet(b []byte) vnetHdr {
	return vnetHdr{
		flags:      b[vnetFlags],
		gsoType:    b[vnetGSOType],
		gsoSize:    binary.NativeEndian.Uint16(b[vnetGSOSize:]),
		csumStart:  binary.NativeEndian.Uint16(b[vnetCsumStart:]),
		csumOffset: binary.NativeEndian.Uint16(b[vnetCsumOffset:]),
	}
}

// vnetForTrain writes the virtio header for a train whose first frame is
// head: checksum completion from the transport header on, segmentation
// into SegmentSize-octet payloads, and the ECN flag when the first TCP
// segment carries CWR (the kernel then keeps CWR on it alone). Linux's
// virtio_net_hdr_to_skb takes GSO_UDP_L4 only with NEEDS_CSUM and the
// UDP checksum offset, and a TCP offload frame without NEEDS_CSUM would
// be segmented in software at the link; the partial sum the checksum
// field holds is the one the kernel's own TSO and USO leave there. The
// frame is marked DODGY: tcp_gso_segment and __udp_gso_segment check its
// headers, and a link with the offload (veth has them all) then passes
// it on whole.
func vnetForTrain(v *[vnetHdrLen]byte, t netstack.Train, head []byte) {
	var typ uint8
	switch t.Kind {
	case netstack.OffloadTCPv4:
		typ = unix.VIRTIO_NET_HDR_GSO_TCPV4
	case netstack.OffloadTCPv6:
		typ = unix.VIRTIO_NET_HDR_GSO_TCPV6
	case netstack.OffloadUDP:
		typ = unix.VIRTIO_NET_HDR_GSO_UDP_L4
	}
	if typ != unix.VIRTIO_NET_HDR_GSO_UDP_L4 && head[t.TransportOffset+tcpFlagsOff]&tcpFlagCWR != 0 {
		typ |= unix.VIRTIO_NET_HDR_GSO_ECN
	}
	v[vnetFlags] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	v[vnetGSOType] = typ
	binary.NativeEndian.PutUint16(v[vnetHdrLenOff:], uint16(t.HeaderLen))
	binary.NativeEndian.PutUint16(v[vnetGSOSize:], uint16(t.SegmentSize))
	binary.NativeEndian.PutUint16(v[vnetCsumStart:], uint16(t.TransportOffset))
	binary.NativeEndian.PutUint16(v[vnetCsumOffset:], uint16(t.ChecksumOffset()))
}

// Frame offsets the segmentation code needs (IEEE 802.3, RFC 791,
// RFC 8200, RFC 9293, RFC 768).
const (
	ethHeaderLen  = 14
	ethTypeOff    = 12
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	ipv6HeaderLen = 40
	tcpFlagsOff   = 13
	tcpFlagFIN    = 0x01
	tcpFlagPSH    = 0x08
	tcpFlagCWR    = 0x80
	protoTCP      = 6
	protoUDP      = 17
)

// completeChecksum finishes a CHECKSUM_PARTIAL frame: the sender left the
// pseudo-header sum in the checksum field, and the sum over everything
// from csum_start on, folded and complemented, belongs there (the
// kernel's skb_checksum_help does the same).
func completeChecksum(frame []byte, h vnetHdr) bool {
	start, field := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if start >= len(frame) || field+2 > len(frame) {
		return false
	}
	sum := ^checksum.Checksum(frame[start:], 0)
	// RFC 768: a computed UDP checksum of zero is sent as all ones.
	if sum == 0 && h.csumOffset == 6 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], sum)
	return true
}

// segmenter splits one GSO frame (TCP over IPv4/IPv6, or UDP_L4) into wire
// frames of at most gso_size payload octets each, into caller buffers,
// possibly across several Read calls. It also fixes the headers of
// segments that a scattered read put in place (packetNIC.readSegments).
type segmenter struct {
	frame   []byte // the whole GSO frame; nil when idle
	gsoType uint8
	mss     int
	hdrLen  int // Ethernet + IP + transport headers
	ipOff   int // = ethHeaderLen
	l4Off   int
	v6      bool
	payload int // payload octets after the headers
	next    int // payload offset of the next segment
	seg     int // index of the next segment
}

// start validates a GSO frame and prepares to split it.
func (s *segmenter) start(frame []byte, h vnetHdr) bool {
	if !s.parse(frame, len(frame), h) {
		return false
	}
	s.frame = frame
	return true
}

// parse validates the headers of a GSO frame of total octets, of which
// head holds at least the headers, and records its geometry.
func (s *segmenter) parse(head []byte, total int, h vnetHdr) bool {
	*s = segmenter{}
	if len(head) < ethHeaderLen+20 || h.gsoSize == 0 || total < len(head) {
		return false
	}
	typ := h.gsoType &^ unix.VIRTIO_NET_HDR_GSO_ECN
	var proto uint8
	l4 := 0
	switch binary.BigEndian.Uint16(head[ethTypeOff:]) {
	case etherTypeIPv4:
		ip := head[ethHeaderLen:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return false
		}
		proto, l4 = ip[9], ethHeaderLen+ihl
	case etherTypeIPv6:
		ip := head[ethHeaderLen:]
		if len(ip) < ipv6HeaderLen || ip[0]>>4 != 6 {
			return false
		}
		// Extension headers before the transport header are not
		// produced by the kernel's TSO/USO paths; refuse them.
		proto, l4, s.v6 = ip[6], ethHeaderLen+ipv6HeaderLen, true
	default:
		return false
	}
	var thl int
	switch {
	case (typ == unix.VIRTIO_NET_HDR_GSO_TCPV4 && !s.v6 || typ == unix.VIRTIO_NET_HDR_GSO_TCPV6 && s.v6) && proto == protoTCP:
		if len(head) < l4+20 {
			return false
		}
		thl = int(head[l4+12]>>4) * 4
		if thl < 20 {
			return false
		}
	case typ == unix.VIRTIO_NET_HDR_GSO_UDP_L4 && proto == protoUDP:
		thl = 8
	default:
		return false
	}
	if len(head) < l4+thl || total-l4-thl == 0 {
		return false
	}
	s.gsoType, s.mss, s.hdrLen, s.ipOff, s.l4Off = typ, int(h.gsoSize), l4+thl, ethHeaderLen, l4
	s.payload = total - s.hdrLen
	return true
}

// segments is the number of segments the frame splits into.
func (s *segmenter) segments() int { return (s.payload + s.mss - 1) / s.mss }

// segmentLen is the payload of segment i.
func (s *segmenter) segmentLen(i int) int { return min(s.mss, s.payload-i*s.mss) }

func (s *segmenter) active() bool { return s.frame != nil }

// fill writes segments into bufs and returns how many it wrote. The
// segmenter stays active while segments remain.
func (s *segmenter) fill(bufs []*ipsec.Buffer) int {
	n := 0
	payload := s.frame[s.hdrLen:]
	for n < len(bufs) && s.next < len(payload) {
		end := min(s.next+s.mss, len(payload))
		b := bufs[n]
		space := b.Space()
		size := s.hdrLen + end - s.next
		if size > len(space) {
			// Cannot happen with gso_size within the MTU; drop the rest.
			s.frame = nil
			return n
		}
		copy(space, s.frame[:s.hdrLen])
		copy(space[s.hdrLen:], payload[s.next:end])
		s.fixHeaders(space[:size], s.seg)
		b.SetPacket(b.Headroom(), size)
		s.next = end
		s.seg++
		n++
	}
	if s.next >= len(payload) {
		s.frame = nil
	}
	return n
}

// fixHeaders makes segment seg, in f, a valid packet: lengths, IPv4 ID
// and checksum, TCP sequence number and flags (the first segment keeps
// CWR, the last FIN and PSH, as the kernel's software GSO does), and a
// full transport checksum.
func (s *segmenter) fixHeaders(f []byte, seg int) {
	ip := f[s.ipOff:]
	l4 := f[s.l4Off:]
	last := seg == s.segments()-1
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		id := binary.BigEndian.Uint16(ip[4:]) + uint16(seg)
		binary.BigEndian.PutUint16(ip[4:], id)
		ihl := int(ip[0]&0x0f) * 4
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:ihl], 0))
	}
	var ckOff int
	if s.gsoType == unix.VIRTIO_NET_HDR_GSO_UDP_L4 {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		ckOff = 6
	} else {
		seq := binary.BigEndian.Uint32(l4[4:]) + uint32(seg*s.mss)
		binary.BigEndian.PutUint32(l4[4:], seq)
		if !last {
			l4[tcpFlagsOff] &^= tcpFlagFIN | tcpFlagPSH
		}
		if seg > 0 {
			l4[tcpFlagsOff] &^= tcpFlagCWR
		}
		ckOff = 16
	}
	l4[ckOff], l4[ckOff+1] = 0, 0
	proto := uint8(protoTCP)
	if ckOff == 6 {
		proto = protoUDP
	}
	sum := ^checksum.Checksum(l4, pseudoSum(ip, s.v6, proto, len(l4)))
	if sum == 0 && proto == protoUDP {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(l4[ckOff:], sum)
}

func pseudoSum(ip []byte, v6 bool, proto uint8, n int) uint16 {
	var s uint16
	if v6 {
		s = checksum.Checksum(ip[8:40], 0)
		var t [8]byte
		binary.BigEndian.PutUint32(t[:], uint32(n))
		t[7] = proto
		return checksum.Checksum(t[:], s)
	}
	s = checksum.Checksum(ip[12:20], 0)
	t := [4]byte{0, proto, byte(n >> 8), byte(n)}
	return checksum.Checksum(t[:], s)
}
