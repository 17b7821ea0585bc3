package netstack

import (
	"encoding/binary"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Outer-fragment reassembly for datagrams addressed to the black address
// (RFC 791 §3.2, RFC 8200 §4.5). ESP must be whole before Inbound can
// authenticate it, and the classifier needs the UDP port. The reassembler
// is bounded: a fixed number of slots, each with storage for one maximal
// datagram, allocated at New. Only the black RX goroutine uses it.
//
// Discipline: overlapping or inconsistent fragments discard the whole
// datagram (RFC 5722 for IPv6; the same for IPv4, where overlaps serve
// only evasion). A datagram still incomplete at its deadline is dropped;
// when every slot is busy the oldest is evicted for the newcomer.
const (
	reasmHeaderRoom = 128   // unfragmentable part: IPv4 header with options, or IPv6 header and extension headers
	reasmMaxPayload = 65535 // fragment offset (13 bits of 8 octets) plus the last fragment's length
	reasmBlock      = 8     // fragment offsets count 8-octet blocks
	reasmBitmapLen  = (reasmMaxPayload/reasmBlock + 64) / 64
)

type reasmKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8 // IPv4 protocol; zero for IPv6, whose key is the triple (RFC 8200 §4.5)
}

type reasmSlot struct {
	inUse    bool
	key      reasmKey
	deadline tcpip.MonotonicTime
	buf      []byte // reasmHeaderRoom octets for the header, then the payload
	hdrLen   int    // zero until the first fragment arrives
	total    int    // payload length; -1 until the last fragment arrives
	maxEnd   int
	got      int
	have     [reasmBitmapLen]uint64
}

type reassembler struct {
	slots   []reasmSlot
	timeout time.Duration
	done    *reasmSlot // slot whose datagram the caller holds until release
}

func newReassembler(slots int, timeout time.Duration) *reassembler {
	r := &reassembler{slots: make([]reasmSlot, slots), timeout: timeout}
	for i := range r.slots {
		r.slots[i].buf = make([]byte, reasmHeaderRoom+reasmMaxPayload)
	}
	return r
}

// slot finds the datagram's slot or claims one, evicting the oldest when
// all are busy.
func (r *reassembler) slot(k reasmKey, now tcpip.MonotonicTime, ctr *counters) *reasmSlot {
	var free, oldest *reasmSlot
	for i := range r.slots {
		s := &r.slots[i]
		if !s.inUse {
			if free == nil {
				free = s
			}
			continue
		}
		if s.key == k {
			return s
		}
		if oldest == nil || s.deadline.Before(oldest.deadline) {
			oldest = s
		}
	}
	if free == nil {
		ctr.drop(DropReassemblyEvicted)
		free = oldest
	}
	free.inUse = true
	free.key = k
	free.deadline = now.Add(r.timeout)
	free.hdrLen, free.total, free.maxEnd, free.got = 0, -1, 0, 0
	clear(free.have[:])
	return free
}

func (r *reassembler) free(s *reasmSlot) { s.inUse = false }

// expire drops datagrams past their deadline.
func (r *reassembler) expire(now tcpip.MonotonicTime, ctr *counters) {
	for i := range r.slots {
		s := &r.slots[i]
		if s.inUse && !now.Before(s.deadline) {
			ctr.drop(DropReassemblyTimeout)
			s.inUse = false
		}
	}
}

// drain forgets every datagram; the slots own no pool buffers.
func (r *reassembler) drain() {
	for i := range r.slots {
		r.slots[i].inUse = false
	}
}

// put records one fragment's payload at off. hdr is the fragment's
// unfragmentable part, kept from the first fragment. It reports the
// completed datagram (header then payload, valid until release), or nil
// with DropNone while fragments are missing, or a drop reason that has
// already discarded the datagram.
func (r *reassembler) put(s *reasmSlot, hdr []byte, off int, data []byte, more bool) ([]byte, DropReason) {
	end := off + len(data)
	switch {
	case len(data) == 0 || more && len(data)%reasmBlock != 0:
		r.free(s)
		return nil, DropMalformed
	case end > reasmMaxPayload || off == 0 && len(hdr) > reasmHeaderRoom:
		r.free(s)
		return nil, DropReassemblyTooBig
	case !more && (s.total >= 0 && s.total != end || s.maxEnd > end),
		more && s.total >= 0 && end > s.total:
		r.free(s)
		return nil, DropReassemblyOverlap
	}
	first, last := off/reasmBlock, (end+reasmBlock-1)/reasmBlock
	for i := first; i < last; i++ {
		if s.have[i/64]&(1<<(i%64)) != 0 {
			r.free(s)
			return nil, DropReassemblyOverlap
		}
	}
	for i := first; i < last; i++ {
		s.have[i/64] |= 1 << (i % 64)
	}
	copy(s.buf[reasmHeaderRoom+off:], data)
	s.got += len(data)
	s.maxEnd = max(s.maxEnd, end)
	if !more {
		s.total = end
	}
	if off == 0 {
		s.hdrLen = copy(s.buf[reasmHeaderRoom-len(hdr):reasmHeaderRoom], hdr)
	}
	if s.total < 0 || s.got != s.total || s.hdrLen == 0 {
		return nil, DropNone
	}
	r.done = s
	return s.buf[reasmHeaderRoom-s.hdrLen : reasmHeaderRoom+s.total], DropNone
}

// release frees the slot of the datagram put last returned.
func (r *reassembler) release() {
	if r.done != nil {
		r.free(r.done)
		r.done = nil
	}
}

// add4 takes one IPv4 fragment (header validated, ihl its length) and
// returns the whole datagram once complete, with its header rewritten as
// an unfragmented one.
func (r *reassembler) add4(pkt []byte, ihl int, now tcpip.MonotonicTime, ctr *counters) ([]byte, DropReason) {
	ff := binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])
	k := reasmKey{
		src:   ip4Addr(pkt[ip4Src:]),
		dst:   ip4Addr(pkt[ip4Dst:]),
		id:    uint32(binary.BigEndian.Uint16(pkt[ip4ID:])),
		proto: pkt[ip4Proto],
	}
	s := r.slot(k, now, ctr)
	d, why := r.put(s, pkt[:ihl], int(ff&ip4FragOffMask)*8, pkt[ihl:], ff&ip4FlagMF != 0)
	if d == nil {
		return nil, why
	}
	h := d[:s.hdrLen]
	if len(d) > ip4MaxLen {
		r.release()
		return nil, DropReassemblyTooBig
	}
	binary.BigEndian.PutUint16(h[ip4TotalLen:], uint16(len(d)))
	binary.BigEndian.PutUint16(h[ip4FlagsFrag:], binary.BigEndian.Uint16(h[ip4FlagsFrag:])&ip4FlagDF)
	binary.BigEndian.PutUint16(h[ip4Checksum:], ip4HeaderChecksum(h))
	return d, DropNone
}

// add6 takes one IPv6 fragment; c locates its Fragment header.
func (r *reassembler) add6(pkt []byte, c ip6Chain, now tcpip.MonotonicTime, ctr *counters) ([]byte, DropReason) {
	fh := pkt[c.fragHdr : c.fragHdr+ip6FragHeaderLen]
	offWord := binary.BigEndian.Uint16(fh[ip6FragOffset:])
	k := reasmKey{
		src: ip6Addr(pkt[ip6Src:]),
		dst: ip6Addr(pkt[ip6Dst:]),
		id:  binary.BigEndian.Uint32(fh[ip6FragID:]),
	}
	s := r.slot(k, now, ctr)
	off := int(offWord>>3) * 8
	d, why := r.put(s, pkt[:c.fragHdr], off, pkt[c.fragHdr+ip6FragHeaderLen:], offWord&ip6FragMore != 0)
	if off == 0 && why == DropNone {
		// The header kept is the first fragment's unfragmentable part;
		// the field that named the Fragment header now names what
		// followed it (RFC 8200 §4.5).
		s.buf[reasmHeaderRoom-s.hdrLen+c.fragNH] = fh[0]
	}
	if d == nil {
		return nil, why
	}
	if len(d)-ip6HeaderLen > 0xffff {
		r.release()
		return nil, DropReassemblyTooBig
	}
	binary.BigEndian.PutUint16(d[ip6PayloadLen:], uint16(len(d)-ip6HeaderLen))
	return d, DropNone
}
