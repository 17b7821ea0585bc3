package nictest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Segmentation offload, as a NIC end sees it: SetTxOffloads makes an end
// accept trains (netstack.SegmentOffload). WriteTrains then checks every
// train against netstack's contract, splits it the way Linux's GSO does
// (SegmentTrain, written here independently of netstack), checks that the
// split gives back the frames that followed the first, and puts the
// segments on the wire as plain frames. What it found is in
// OffloadStats.

// OffloadStats counts what an end's WriteTrains saw.
type OffloadStats struct {
	Trains      uint64 // trains of two frames or more
	TrainFrames uint64 // the frames they carried
	Kinds       [4]uint64
	Violations  uint64 // trains that broke the contract (their frames are lost)
	FirstError  string // the first violation
}

// SetTxOffloads makes this end accept trains of the given kinds.
func (n *NIC) SetTxOffloads(o netstack.TxOffloads) {
	n.offMu.Lock()
	n.offloads = o
	n.offMu.Unlock()
}

// Offloads returns what WriteTrains saw so far.
func (n *NIC) Offloads() OffloadStats {
	n.offMu.Lock()
	defer n.offMu.Unlock()
	return n.offStats
}

// TxOffloads implements netstack.SegmentOffload; the zero value (no
// kinds) until SetTxOffloads.
func (n *NIC) TxOffloads() netstack.TxOffloads {
	n.offMu.Lock()
	defer n.offMu.Unlock()
	return n.offloads
}

// WriteTrains implements netstack.SegmentOffload.
func (n *NIC) WriteTrains(bufs []*ipsec.Buffer, trains []netstack.Train) (int, error) {
	if n.closed.Load() {
		return 0, netstack.ErrClosed
	}
	caps := n.TxOffloads()
	i := 0
	for _, t := range trains {
		if t.Frames < 1 || i+t.Frames > len(bufs) {
			n.violation(fmt.Errorf("train of %d frames at %d of %d", t.Frames, i, len(bufs)))
			return i, nil
		}
		frames := make([][]byte, t.Frames)
		for k, b := range bufs[i : i+t.Frames] {
			frames[k] = b.Bytes()
		}
		i += t.Frames
		if t.Kind == netstack.OffloadNone {
			if t.Frames != 1 {
				n.violation(fmt.Errorf("plain train of %d frames", t.Frames))
				continue
			}
			n.WriteFrame(frames[0])
			continue
		}
		if !caps.Kinds.Has(t.Kind) || t.Frames > caps.MaxFrames {
			n.violation(fmt.Errorf("train %+v beyond the offloads offered (%+v)", t, caps))
			continue
		}
		segs, err := SegmentTrain(frames, t)
		if err == nil {
			// The first frame now holds the train's headers; the
			// others are as they were.
			err = CompareSegments(segs[1:], frames[1:], t)
		}
		if err != nil {
			n.violation(err)
			continue
		}
		n.offMu.Lock()
		n.offStats.Trains++
		n.offStats.TrainFrames += uint64(t.Frames)
		n.offStats.Kinds[t.Kind]++
		n.offMu.Unlock()
		for _, s := range segs {
			n.WriteFrame(s)
		}
	}
	if i != len(bufs) {
		n.violation(fmt.Errorf("trains cover %d of %d frames", i, len(bufs)))
	}
	return len(bufs), nil
}

func (n *NIC) violation(err error) {
	n.offMu.Lock()
	defer n.offMu.Unlock()
	n.offStats.Violations++
	if n.offStats.FirstError == "" {
		n.offStats.FirstError = err.Error()
	}
}

// CompareSegments compares what segmentation produced with the frames it
// stands for, and tolerates the two differences netstack.Train allows:
// an ESP-in-UDP packet over IPv4 may have had no checksum (RFC 3948
// §2.1), where the segment has a computed one, and an atomic datagram's
// ID may differ (RFC 6864 §4.1), where the segment's header checksum
// must still hold.
func CompareSegments(segs, frames [][]byte, t netstack.Train) error {
	for k := range segs {
		a, b := segs[k], frames[k]
		if len(a) != len(b) {
			return fmt.Errorf("segment %d: %d octets, the frame had %d", k, len(a), len(b))
		}
		a = append([]byte(nil), a...)
		ck := t.TransportOffset + t.ChecksumOffset()
		if t.Kind == netstack.OffloadUDP && b[ck] == 0 && b[ck+1] == 0 {
			a[ck], a[ck+1] = 0, 0
		}
		if ip := b[ethLen:]; ip[0]>>4 == 4 && ip[6]&0x40 != 0 {
			// An atomic datagram's ID means nothing (RFC 6864 §4.1): a
			// sender's fixed ID may come back counting.
			sip := a[ethLen:]
			if checksum.Checksum(sip[:ipv4Len], 0) != 0xffff {
				return fmt.Errorf("segment %d: bad IPv4 header checksum", k)
			}
			copy(sip[4:6], ip[4:6])
			copy(sip[10:12], ip[10:12])
		}
		if string(a) != string(b) {
			return fmt.Errorf("segment %d differs from the frame it stands for:\n got % x\nwant % x", k, a[:t.HeaderLen], b[:t.HeaderLen])
		}
	}
	return nil
}

// Frame offsets SegmentTrain needs (IEEE 802.3, RFC 791, RFC 8200,
// RFC 9293, RFC 768).
const (
	ethLen     = 14
	ipv4Len    = 20
	ipv6Len    = 40
	tcpFlagOff = 13
	tcpFIN     = 0x01
	tcpPSH     = 0x08
	tcpCWR     = 0x80
)

// SegmentTrain splits a train the way Linux's software GSO does for
// virtio-net's GSO_TCPV4, GSO_TCPV6 and GSO_UDP_L4 with NEEDS_CSUM: each
// segment gets the first frame's headers with its own lengths, IPv4 ID
// (the first one's plus its index) and header checksum, TCP sequence
// number and flags (FIN and PSH on the last segment only, CWR on the
// first only), and its transport checksum completed from the partial sum
// in the first frame, adjusted for the segment's length. A wrong partial
// sum therefore gives wrong checksums, which the caller can detect.
func SegmentTrain(frames [][]byte, t netstack.Train) ([][]byte, error) {
	if len(frames) < 2 || t.SegmentSize <= 0 {
		return nil, errors.New("nictest: a train needs two frames and a segment size")
	}
	head := frames[0]
	v6 := t.Kind == netstack.OffloadTCPv6
	if t.Kind == netstack.OffloadUDP {
		v6 = len(head) > ethLen && head[ethLen]>>4 == 6
	}
	ipLen := ipv4Len
	if v6 {
		ipLen = ipv6Len
	}
	l4 := t.TransportOffset
	if l4 != ethLen+ipLen || t.HeaderLen <= l4 || len(head) < t.HeaderLen {
		return nil, fmt.Errorf("nictest: train %+v does not fit its first frame's headers", t)
	}
	var payload []byte
	for k, f := range frames {
		if len(f) < t.HeaderLen {
			return nil, fmt.Errorf("nictest: frame %d shorter than the headers", k)
		}
		p := f[t.HeaderLen:]
		if k < len(frames)-1 && len(p) != t.SegmentSize || len(p) == 0 || len(p) > t.SegmentSize {
			return nil, fmt.Errorf("nictest: frame %d carries %d octets, segment size %d", k, len(p), t.SegmentSize)
		}
		payload = append(payload, p...)
	}
	ip := head[ethLen:]
	whole := t.HeaderLen - l4 + len(payload)
	if v6 {
		if int(binary.BigEndian.Uint16(ip[4:])) != whole {
			return nil, fmt.Errorf("nictest: IPv6 payload length %d, want %d", binary.BigEndian.Uint16(ip[4:]), whole)
		}
	} else {
		if int(binary.BigEndian.Uint16(ip[2:])) != ipv4Len+whole || checksum.Checksum(ip[:ipv4Len], 0) != 0xffff {
			return nil, fmt.Errorf("nictest: IPv4 header of the train: % x", ip[:ipv4Len])
		}
	}
	ck := l4 + t.ChecksumOffset()
	if t.Kind == netstack.OffloadUDP && int(binary.BigEndian.Uint16(head[l4+4:])) != whole {
		return nil, fmt.Errorf("nictest: UDP length %d, want %d", binary.BigEndian.Uint16(head[l4+4:]), whole)
	}
	partial := binary.BigEndian.Uint16(head[ck:])
	var segs [][]byte
	for k := 0; k*t.SegmentSize < len(payload); k++ {
		p := payload[k*t.SegmentSize : min((k+1)*t.SegmentSize, len(payload))]
		s := append(append([]byte(nil), head[:t.HeaderLen]...), p...)
		sip := s[ethLen:]
		segL4 := len(s) - l4
		if v6 {
			binary.BigEndian.PutUint16(sip[4:], uint16(segL4))
		} else {
			binary.BigEndian.PutUint16(sip[2:], uint16(ipv4Len+segL4))
			binary.BigEndian.PutUint16(sip[4:], binary.BigEndian.Uint16(ip[4:])+uint16(k))
			sip[10], sip[11] = 0, 0
			binary.BigEndian.PutUint16(sip[10:], ^checksum.Checksum(sip[:ipv4Len], 0))
		}
		if t.Kind == netstack.OffloadUDP {
			binary.BigEndian.PutUint16(s[l4+4:], uint16(segL4))
		} else {
			binary.BigEndian.PutUint32(s[l4+4:], binary.BigEndian.Uint32(head[l4+4:])+uint32(k*t.SegmentSize))
			if (k+1)*t.SegmentSize < len(payload) {
				s[l4+tcpFlagOff] &^= tcpFIN | tcpPSH
			}
			if k > 0 {
				s[l4+tcpFlagOff] &^= tcpCWR
			}
		}
		// The partial sum covered the whole length; this segment's
		// pseudo-header has its own (RFC 1624 arithmetic).
		seed := onesAdd(onesAdd(partial, ^uint16(whole)), uint16(segL4))
		binary.BigEndian.PutUint16(s[ck:], seed)
		sum := ^checksum.Checksum(s[l4:], 0)
		if sum == 0 && t.Kind == netstack.OffloadUDP {
			sum = 0xffff
		}
		binary.BigEndian.PutUint16(s[ck:], sum)
		segs = append(segs, s)
	}
	if len(segs) != len(frames) {
		return nil, fmt.Errorf("nictest: %d segments from %d frames", len(segs), len(frames))
	}
	return segs, nil
}

// onesAdd is one's complement addition of 16-bit words.
func onesAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xffff + s>>16)
}
