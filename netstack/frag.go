package netstack

import (
	"encoding/binary"

	"github.com/bitw-dev/bitw/ipsec"
)

// fragment4 splits the IPv4 packet in b into fragments of at most mtu
// octets (RFC 791 §3.2 "Fragmentation", RFC 1812 §5.2.6) and leaves them in
// l.frags[:n], b first. Fragments keep the datagram's Identification: the
// device is not its source (RFC 6864 §4.1). Only options with the copied
// flag go into later fragments. On failure it releases b and counts.
func (l *rxLoop) fragment4(b *ipsec.Buffer, mtu int) (int, bool) {
	s := l.s
	pkt := b.Bytes()
	ihl := int(pkt[ip4VerIHL]&0x0f) * 4
	payload := len(pkt) - ihl
	var later [60]byte
	laterLen := laterFragmentHeader(later[:], pkt[:ihl])
	firstData := (mtu - ihl) &^ 7
	laterData := (mtu - laterLen) &^ 7
	if firstData < 8 || laterData < 8 || firstData >= payload {
		s.dropBuf(b, DropTooBig)
		return 0, false
	}
	ff := binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])
	origOff := int(ff&ip4FragOffMask) * 8
	origMF := ff&ip4FlagMF != 0
	n := 1
	for off := firstData; off < payload; off += laterData {
		size := min(laterData, payload-off)
		f := s.pool.Get()
		if n == len(l.frags) || f == nil || len(f.Space()) < laterLen+size {
			why := DropTooBig
			if f == nil {
				why = DropNoBuffer
			} else {
				f.Release()
			}
			for i := 1; i < n; i++ {
				l.frags[i].Release()
				l.frags[i] = nil
			}
			s.dropBuf(b, why)
			return 0, false
		}
		space := f.Space()
		copy(space, later[:laterLen])
		copy(space[laterLen:], pkt[ihl+off:ihl+off+size])
		h := space[:laterLen]
		binary.BigEndian.PutUint16(h[ip4TotalLen:], uint16(laterLen+size))
		fo := uint16((origOff + off) / 8)
		if off+size < payload || origMF {
			fo |= ip4FlagMF
		}
		binary.BigEndian.PutUint16(h[ip4FlagsFrag:], fo)
		binary.BigEndian.PutUint16(h[ip4Checksum:], ip4HeaderChecksum(h))
		f.SetPacket(f.Headroom(), laterLen+size)
		l.frags[n] = f
		n++
	}
	b.Truncate(ihl + firstData)
	h := b.Bytes()[:ihl]
	binary.BigEndian.PutUint16(h[ip4TotalLen:], uint16(ihl+firstData))
	binary.BigEndian.PutUint16(h[ip4FlagsFrag:], uint16(origOff/8)|ip4FlagMF)
	binary.BigEndian.PutUint16(h[ip4Checksum:], ip4HeaderChecksum(h))
	l.frags[0] = b
	return n, true
}

// laterFragmentHeader writes the header for fragments after the first:
// the fixed part and the options whose copied flag is set, padded with
// end-of-options to a multiple of 4 (RFC 791 §3.1).
func laterFragmentHeader(dst, hdr []byte) int {
	n := copy(dst, hdr[:ip4MinLen])
	opts := hdr[ip4MinLen:]
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == ip4OptEnd {
			break
		}
		if t == ip4OptNop {
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			break
		}
		ol := int(opts[i+1])
		if t&ip4OptCopied != 0 {
			n += copy(dst[n:], opts[i:i+ol])
		}
		i += ol
	}
	for n%4 != 0 {
		dst[n] = ip4OptEnd
		n++
	}
	dst[ip4VerIHL] = 0x40 | byte(n/4)
	return n
}
