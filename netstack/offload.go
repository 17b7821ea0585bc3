package netstack

import (
	"encoding/binary"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Segmentation offload on transmit.
//
// A NIC that can hand its link one frame standing for many (virtio-net's
// segmentation offload, virtio spec v1.2 §5.1.6.2: GSO_TCPV4, GSO_TCPV6
// and GSO_UDP_L4; Linux's TSO and USO) spares the link the per-frame work
// on the way out and, across a virtual link, the receiver too. netstack
// alone decides which frames of a batch may travel together, by protocol
// rules that do not depend on the board; the NIC only lays them out.

// OffloadKind names a kind of train.
type OffloadKind uint8

const (
	// OffloadNone is a single frame sent as it is.
	OffloadNone OffloadKind = iota
	// OffloadTCPv4 is TCP over IPv4, segmented at TCP (GSO_TCPV4).
	OffloadTCPv4
	// OffloadTCPv6 is TCP over IPv6 (GSO_TCPV6).
	OffloadTCPv6
	// OffloadUDP is UDP over IPv4 or IPv6, segmented into datagrams
	// (GSO_UDP_L4). netstack forms such trains only of ESP-in-UDP packets
	// it sealed itself (RFC 3948).
	OffloadUDP
	numOffloadKinds
)

func (k OffloadKind) String() string {
	switch k {
	case OffloadNone:
		return "none"
	case OffloadTCPv4:
		return "tcp4"
	case OffloadTCPv6:
		return "tcp6"
	case OffloadUDP:
		return "udp"
	}
	return "offload?"
}

// OffloadKinds is a set of offload kinds.
type OffloadKinds uint8

// OffloadKindsOf makes a set.
func OffloadKindsOf(kinds ...OffloadKind) OffloadKinds {
	var s OffloadKinds
	for _, k := range kinds {
		if k != OffloadNone && k < numOffloadKinds {
			s |= 1 << k
		}
	}
	return s
}

// Has reports whether k is in the set.
func (s OffloadKinds) Has(k OffloadKind) bool { return k != OffloadNone && s&(1<<k) != 0 }

// TxOffloads is what a NIC accepts as trains at the moment.
type TxOffloads struct {
	Kinds OffloadKinds
	// MaxFrames bounds the frames of one train; below 2 no train forms.
	MaxFrames int
}

// A Train is a run of consecutive frames of one WriteTrains call that the
// NIC sends as one segmentation-offload frame, or a single frame
// (OffloadNone, Frames 1).
//
// The first frame carries the headers of the whole train: the IPv4 total
// length or IPv6 payload length, and the UDP length, cover every frame's
// payload; the IPv4 header checksum is valid for them; and the transport
// checksum field holds the folded, uncomplemented pseudo-header sum over
// the whole transport length, for the NIC to complete per segment
// (virtio-net's VIRTIO_NET_HDR_F_NEEDS_CSUM). Every later frame is whole
// as well, but the NIC sends only its payload, after HeaderLen octets.
//
// Segmenting a train the way virtio-net and Linux do gives back the
// frames: every segment but the last carries SegmentSize octets of
// payload; the IPv4 ID counts up by one per segment; the TCP sequence
// number advances by the payload; CWR stays on the first segment and PSH
// on the last. Two differences remain: every segment has a computed
// transport checksum, where an ESP-in-UDP packet over IPv4 had none (RFC
// 3948 §2.1 lets receivers ignore it either way), and atomic datagrams
// (DF set) that all carried one ID get counting ones, which RFC 6864
// §4.1 tells receivers to ignore.
type Train struct {
	Kind   OffloadKind
	Frames int
	// HeaderLen counts the Ethernet, IP and transport headers, the same
	// in every frame of the train.
	HeaderLen int
	// TransportOffset is where the transport header starts in a frame:
	// the start of the checksummed span.
	TransportOffset int
	// SegmentSize is the payload of every frame but the last, which may
	// carry less.
	SegmentSize int
}

// ChecksumOffset is the position of the transport checksum field within
// the transport header (RFC 9293 §3.1, RFC 768).
func (t Train) ChecksumOffset() int {
	if t.Kind == OffloadUDP {
		return udpChecksum
	}
	return tcpChecksum
}

// SegmentOffload is an optional capability of a NIC: transmitting trains.
// NICs without it (the TamaGo boards' ENET) get plain frames from Write.
type SegmentOffload interface {
	// TxOffloads reports what the NIC takes now. A NIC may withdraw a
	// kind at run time, for example when its link refuses it.
	TxOffloads() TxOffloads

	// WriteTrains transmits bufs like Write. trains partitions bufs in
	// order: the first train covers bufs[:trains[0].Frames], the next
	// one the frames after, and so on. It returns how many frames
	// (buffers) it handed to the link; a train is handed over whole or
	// not at all. It borrows bufs and trains.
	WriteTrains(bufs []*ipsec.Buffer, trains []Train) (int, error)
}

// Limits of a train: an IP packet cannot describe more (RFC 791), and
// Linux accepts at most 64 datagrams in one UDP offload frame on older
// kernels (UDP_MAX_SEGMENTS).
const (
	maxTrainIPLen  = ip4MaxLen
	maxTrainFrames = 64
)

// TCP flags (RFC 9293 §3.1, RFC 3168 §6.1) the train rules look at.
const (
	tcpFlagFIN = 0x01
	tcpFlagRST = 0x04
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
	tcpFlagURG = 0x20
	tcpFlagECE = 0x40
	tcpFlagCWR = 0x80

	tcpSeq      = 4
	tcpUrgent   = 18
	udpLength   = 4
	udpChecksum = 6
)

// trainFrame is what the planner reads from one queued frame.
type trainFrame struct {
	kind    OffloadKind
	v6      bool
	l4      int // transport header offset in the frame
	hdrLen  int // through the transport header
	payload int
}

// parseTrainFrame reports whether f could belong to a train, and of what
// kind. Only plain headers qualify: IPv4 without options or fragments,
// IPv6 without extension headers, TCP carrying data with nothing but
// ACK, PSH, CWR and ECE set, and ESP-in-UDP this device sealed.
func parseTrainFrame(f []byte, sealed bool, kinds OffloadKinds) (trainFrame, bool) {
	var t trainFrame
	if len(f) < EthernetHeaderLen+ip4MinLen {
		return t, false
	}
	ip := f[EthernetHeaderLen:]
	var proto uint8
	switch binary.BigEndian.Uint16(f[ethType:]) {
	case etherTypeIPv4:
		if ip[ip4VerIHL] != 0x45 || int(binary.BigEndian.Uint16(ip[ip4TotalLen:])) != len(ip) ||
			binary.BigEndian.Uint16(ip[ip4FlagsFrag:])&(ip4FlagMF|ip4FragOffMask) != 0 {
			return t, false
		}
		proto, t.l4 = ip[ip4Proto], EthernetHeaderLen+ip4MinLen
	case etherTypeIPv6:
		if len(ip) < ip6HeaderLen || ip[0]>>4 != 6 || ip6HeaderLen+int(binary.BigEndian.Uint16(ip[ip6PayloadLen:])) != len(ip) {
			return t, false
		}
		proto, t.l4, t.v6 = ip[ip6NextHeader], EthernetHeaderLen+ip6HeaderLen, true
	default:
		return t, false
	}
	l4 := f[t.l4:]
	switch {
	case proto == protoTCP:
		t.kind = OffloadTCPv4
		if t.v6 {
			t.kind = OffloadTCPv6
		}
		if !kinds.Has(t.kind) || len(l4) < tcpMinLen {
			return t, false
		}
		doff := int(l4[tcpDataOff]>>4) * 4
		if doff < tcpMinLen || doff >= len(l4) || l4[tcpFlags]&(tcpFlagFIN|tcpFlagSYN|tcpFlagRST|tcpFlagURG) != 0 {
			return t, false
		}
		t.hdrLen, t.payload = t.l4+doff, len(l4)-doff
	case proto == protoUDP && sealed:
		t.kind = OffloadUDP
		if !kinds.Has(t.kind) || len(l4) <= udpHeaderLen || int(binary.BigEndian.Uint16(l4[udpLength:])) != len(l4) {
			return t, false
		}
		t.hdrLen, t.payload = t.l4+udpHeaderLen, len(l4)-udpHeaderLen
	default:
		return t, false
	}
	return t, true
}

// follows reports whether frame f, the k-th after the train's first frame
// h, continues the train: the same headers but for lengths, checksums,
// the IPv4 ID one higher per frame, and for TCP the next sequence number
// (after prev) and no CWR; PSH is left for the caller.
func follows(h, f, prev []byte, ht, ft, pt trainFrame, k int) bool {
	if ft.kind != ht.kind || ft.hdrLen != ht.hdrLen || string(f[:EthernetHeaderLen]) != string(h[:EthernetHeaderLen]) {
		return false
	}
	hi, fi := h[EthernetHeaderLen:], f[EthernetHeaderLen:]
	if ht.v6 {
		// Version, class, flow label; next header, hop limit, addresses.
		if string(fi[:4]) != string(hi[:4]) || string(fi[ip6NextHeader:ip6HeaderLen]) != string(hi[ip6NextHeader:ip6HeaderLen]) {
			return false
		}
	} else {
		// A segmenter gives segment k the first one's ID plus k. An
		// atomic datagram's ID (DF set, not a fragment) means nothing
		// and receivers ignore it (RFC 6864 §4.1), so a sender's fixed
		// ID may become that too, as Linux's own GRO and TSO allow.
		id, hid := binary.BigEndian.Uint16(fi[ip4ID:]), binary.BigEndian.Uint16(hi[ip4ID:])
		if string(fi[:ip4TotalLen]) != string(hi[:ip4TotalLen]) ||
			string(fi[ip4FlagsFrag:ip4Checksum]) != string(hi[ip4FlagsFrag:ip4Checksum]) ||
			string(fi[ip4Src:ip4MinLen]) != string(hi[ip4Src:ip4MinLen]) ||
			id != hid+uint16(k) && (id != hid || binary.BigEndian.Uint16(fi[ip4FlagsFrag:])&ip4FlagDF == 0) {
			return false
		}
	}
	hl, fl := h[ht.l4:ht.hdrLen], f[ft.l4:ft.hdrLen]
	if ht.kind == OffloadUDP {
		return string(fl[:udpLength]) == string(hl[:udpLength])
	}
	pl := prev[pt.l4:]
	return string(fl[:tcpSeq]) == string(hl[:tcpSeq]) &&
		binary.BigEndian.Uint32(fl[tcpSeq:]) == binary.BigEndian.Uint32(pl[tcpSeq:])+uint32(pt.payload) &&
		string(fl[tcpSeq+4:tcpFlags]) == string(hl[tcpSeq+4:tcpFlags]) && // ack, data offset
		fl[tcpFlags]&^tcpFlagPSH == hl[tcpFlags]&^tcpFlagCWR &&
		string(fl[tcpFlags+1:tcpChecksum]) == string(hl[tcpFlags+1:tcpChecksum]) && // window
		string(fl[tcpUrgent:]) == string(hl[tcpUrgent:]) // urgent pointer, options
}

// transportSumValid verifies a TCP segment's checksum, as receive
// coalescing must before the segment's own checksum is replaced by one
// for the whole train.
func transportSumValid(f []byte, t trainFrame) bool {
	ip := f[EthernetHeaderLen:]
	return checksum.Checksum(f[t.l4:], rawPseudoSum(ip, t.v6, protoTCP, len(f)-t.l4)) == 0xffff
}

// rawPseudoSum is pseudoHeaderSum over the IP header's address fields.
// One's complement sums do not depend on where the words sit, so the
// IPv4 form (zero, protocol, 16-bit length) and the IPv6 form (32-bit
// length, zeros, next header) add up the same words.
func rawPseudoSum(ip []byte, v6 bool, proto uint8, length int) uint16 {
	var s uint16
	if v6 {
		s = checksum.Checksum(ip[ip6Src:ip6HeaderLen], 0)
	} else {
		s = checksum.Checksum(ip[ip4Src:ip4MinLen], 0)
	}
	tail := [6]byte{byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length), 0, proto}
	return checksum.Checksum(tail[:], s)
}

// planTrains groups q's frames into trains for a NIC that accepts caps,
// rewriting the first frame of every train of two or more as Train
// describes. sealed marks the frames that are ESP this device sealed.
// Only neighbours in q join, so the order of the frames never changes.
func planTrains(q []*ipsec.Buffer, sealed []bool, caps TxOffloads, trains []Train) []Train {
	maxFrames := min(caps.MaxFrames, maxTrainFrames)
	for i := 0; i < len(q); {
		n, ht, total, psh := trainAt(q[i:], sealed[i:], caps.Kinds, maxFrames)
		if n < 2 {
			trains = append(trains, Train{Frames: 1})
			i++
			continue
		}
		writeTrainHead(q[i].Bytes(), ht, total, psh)
		trains = append(trains, Train{Kind: ht.kind, Frames: n, HeaderLen: ht.hdrLen, TransportOffset: ht.l4, SegmentSize: ht.payload})
		i += n
	}
	return trains
}

// trainAt measures the train that q[0] can head: its frames, its first
// frame's facts, its IP length and whether its last frame has PSH.
func trainAt(q []*ipsec.Buffer, sealed []bool, kinds OffloadKinds, maxFrames int) (n int, ht trainFrame, total int, psh bool) {
	h := q[0].Bytes()
	ht, ok := parseTrainFrame(h, sealed[0], kinds)
	if !ok || len(q) < 2 || maxFrames < 2 {
		return 1, ht, 0, false
	}
	tcp := ht.kind != OffloadUDP
	if tcp && h[ht.l4+tcpFlags]&tcpFlagPSH != 0 {
		// A segmenter would move PSH to the last segment.
		return 1, ht, 0, false
	}
	n, total = 1, len(h)-EthernetHeaderLen
	prev, pt := h, ht
	for n < len(q) && n < maxFrames && pt.payload == ht.payload && !psh {
		f := q[n].Bytes()
		ft, ok := parseTrainFrame(f, sealed[n], kinds)
		if !ok || ft.payload > ht.payload || total+ft.payload > maxTrainIPLen || !follows(h, f, prev, ht, ft, pt, n) {
			break
		}
		if tcp {
			// The first frame's checksum is checked once a second
			// frame could join it.
			if n == 1 && !transportSumValid(h, ht) || !transportSumValid(f, ft) {
				break
			}
			psh = f[ft.l4+tcpFlags]&tcpFlagPSH != 0
		}
		total += ft.payload
		prev, pt = f, ft
		n++
	}
	return n, ht, total, psh
}

// writeTrainHead turns the first frame's headers into the train's: IP
// total (IPv4) or payload (IPv6) length of ipLen octets of IP packet,
// the UDP length, PSH from the last segment, and the partial transport
// checksum.
func writeTrainHead(h []byte, t trainFrame, ipLen int, psh bool) {
	ip := h[EthernetHeaderLen:]
	l4len := ipLen - (t.l4 - EthernetHeaderLen)
	if t.v6 {
		binary.BigEndian.PutUint16(ip[ip6PayloadLen:], uint16(ipLen-ip6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(ip[ip4TotalLen:], uint16(ipLen))
		binary.BigEndian.PutUint16(ip[ip4Checksum:], ip4HeaderChecksum(ip[:ip4MinLen]))
	}
	l4 := h[t.l4:]
	proto, ck := uint8(protoTCP), tcpChecksum
	if t.kind == OffloadUDP {
		proto, ck = protoUDP, udpChecksum
		binary.BigEndian.PutUint16(l4[udpLength:], uint16(l4len))
	} else if psh {
		l4[tcpFlags] |= tcpFlagPSH
	}
	binary.BigEndian.PutUint16(l4[ck:], rawPseudoSum(ip, t.v6, proto, l4len))
}
