package ipsec

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// gmacIVLen is the IV that AUTH_AES_*_GMAC carries at the start of the AH
// ICV field, ahead of the 16-octet tag (RFC 4543 §5).
const gmacIVLen = 8

// IPv4 options that RFC 4302 Appendix A.1 classifies as immutable; every
// other option is zeroed whole for the ICV (§3.3.3.1.1.2).
func ipv4OptionImmutable(t byte) bool {
	switch t {
	case 0, 1, // End of Options List, No Operation
		130, // Security
		133, // Extended Security
		134, // Commercial Security
		148, // Router Alert
		149: // Sender Directed Multi-Destination Delivery
		return true
	}
	return false
}

const (
	ipv4OptLSRR = 131
	ipv4OptSSRR = 137
)

// canonicalize puts the IP header pkt[:ahOff] (with IPv4 options or IPv6
// extension headers) into the form RFC 4302 §3.3.3.1 authenticates:
// mutable fields zero, mutable-but-predictable fields set to their value
// at the final destination. The caller saves and restores the octets.
func canonicalize(pkt []byte, ahOff int) DropReason {
	if pkt[0]>>4 == 4 {
		return canonIPv4(pkt[:ahOff])
	}
	return canonIPv6(pkt, ahOff)
}

// canonIPv4 follows RFC 4302 §3.3.3.1.1: DSCP, ECN, flags, fragment
// offset, TTL and checksum are zeroed; mutable options are zeroed whole;
// with loose or strict source routing the destination is the route's
// last address while the route is not yet exhausted.
func canonIPv4(hdr []byte) DropReason {
	hdr[ipv4TOS] = 0
	hdr[ipv4Flags], hdr[ipv4Flags+1] = 0, 0
	hdr[ipv4TTL] = 0
	hdr[ipv4Checksum], hdr[ipv4Checksum+1] = 0, 0
	opts := hdr[ipv4MinLen:]
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 {
			break // End of Options List; what follows is padding
		}
		if t == 1 {
			i++
			continue
		}
		if i+2 > len(opts) {
			return DropMalformed
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return DropMalformed
		}
		if !ipv4OptionImmutable(t) {
			if (t == ipv4OptLSRR || t == ipv4OptSSRR) && l >= 7 && int(opts[i+2]) <= l {
				copy(hdr[ipv4Dst:ipv4Dst+4], opts[i+l-4:i+l])
			}
			clear(opts[i : i+l])
		}
		i += l
	}
	return DropNone
}

// canonIPv6 follows RFC 4302 §3.3.3.1.2: traffic class, flow label and
// hop limit are zeroed; options whose type says they may change en route
// (RFC 8200 §4.2, the third-highest bit) have their data zeroed; a type 0
// or type 2 routing header and the destination address are set to their
// values at the final destination.
func canonIPv6(pkt []byte, ahOff int) DropReason {
	pkt[0] &= 0xf0
	pkt[1], pkt[2], pkt[3] = 0, 0, 0
	pkt[ipv6HopLimit] = 0
	nh := pkt[ipv6NextHeader]
	off := ipv6Len
	for off < ahOff {
		if off+8 > ahOff {
			return DropMalformed
		}
		n := (int(pkt[off+1]) + 1) * 8
		if off+n > ahOff {
			return DropMalformed
		}
		switch nh {
		case protoHopByHop, protoDstOpts:
			if r := zeroMutableOptions(pkt[off+2 : off+n]); r != DropNone {
				return r
			}
		case protoRouting:
			if r := canonRouting(pkt, pkt[off:off+n]); r != DropNone {
				return r
			}
		case protoFragment:
			return DropFragment
		default:
			return DropMalformed
		}
		nh = pkt[off]
		off += n
	}
	if off != ahOff || nh != protoAH {
		return DropMalformed
	}
	return DropNone
}

func zeroMutableOptions(opts []byte) DropReason {
	for i := 0; i < len(opts); {
		if opts[i] == 0 { // Pad1
			i++
			continue
		}
		if i+2 > len(opts) {
			return DropMalformed
		}
		l := int(opts[i+1])
		if i+2+l > len(opts) {
			return DropMalformed
		}
		if opts[i]&0x20 != 0 {
			clear(opts[i+2 : i+2+l])
		}
		i += 2 + l
	}
	return DropNone
}

// canonRouting rewrites a type 0 (RFC 2460 §4.4) or type 2 (RFC 6275
// §6.4) routing header and the IPv6 destination into their state at the
// final destination, as RFC 4302 §3.3.3.1.2.2 requires. Other routing
// types are immutable once Segments Left is zero; before that their final
// form is unknown here.
func canonRouting(pkt, rh []byte) DropReason {
	segLeft := int(rh[3])
	if segLeft == 0 {
		return DropNone
	}
	switch rh[2] {
	case 0, 2:
	default:
		return DropUnpredictable
	}
	addrs := rh[8:]
	n := len(addrs) / 16
	if segLeft > n || len(addrs)%16 != 0 {
		return DropMalformed
	}
	// Each hop swaps the destination with the next listed address, so at
	// the end the destination is the last address and the list holds the
	// earlier destinations in order.
	var cur, next [16]byte
	copy(cur[:], pkt[ipv6Dst:ipv6Dst+16])
	for i := n - segLeft; i < n; i++ {
		copy(next[:], addrs[i*16:])
		copy(addrs[i*16:], cur[:])
		cur = next
	}
	copy(pkt[ipv6Dst:], cur[:])
	rh[3] = 0
	return DropNone
}

// ahTag returns the part of the AH ICV field that holds the ICV proper:
// all of it but alignment padding, after the IV for GMAC.
func (sa *assoc) ahTag(ah []byte) []byte {
	off := ahFixedLen
	if sa.ah.gmac != nil {
		off += gmacIVLen
	}
	return ah[off : off+sa.ah.icvLen]
}

// ahDigest computes the AH ICV of pkt, whose AH header at ahOff has its
// ICV zeroed (a GMAC IV and ICV padding stay as sent), into out. The header before AH
// is canonicalized in place and restored. With ESN the high half of the
// sequence number follows the packet (RFC 4302 §2.5.1, §3.3.3.2).
func (sa *assoc) ahDigest(pkt []byte, ahOff int, seq uint64, sc *scratch, out []byte) DropReason {
	in := sa.ah
	w := in.work.get(uint32(seq))
	defer w.put()
	save := w.scratchBuf(ahOff)
	copy(save, pkt[:ahOff])
	defer copy(pkt[:ahOff], save)
	if r := canonicalize(pkt, ahOff); r != DropNone {
		return r
	}
	if in.gmac != nil {
		data := pkt
		if sa.esn {
			if cap(pkt)-len(pkt) < 4 {
				return DropNoRoom
			}
			data = pkt[:len(pkt)+4]
			binary.BigEndian.PutUint32(data[len(pkt):], uint32(seq>>32))
		}
		copy(sc[scNonce:], in.salt[:])
		copy(sc[scNonce+4:], pkt[ahOff+ahFixedLen:ahOff+ahFixedLen+gmacIVLen])
		// The tag field is part of the authenticated data, so the tag
		// is computed aside and copied in.
		copy(out, in.gmac.Tag(w.sum[:0], sc[scNonce:scNonce+12], data))
		return DropNone
	}
	w.mac.Reset()
	w.mac.Write(pkt)
	if sa.esn {
		binary.BigEndian.PutUint32(sc[scAAD:], uint32(seq>>32))
		w.mac.Write(sc[scAAD : scAAD+4])
	}
	sum := w.mac.Sum(w.sum[:0])
	copy(out, sum[:in.icvLen])
	return DropNone
}

func (e *Engine) outboundAH(sa *assoc, b *Buffer, h *ipHeader, mtu int) OutResult {
	p := sa.path.Load()
	pkt := b.Bytes()
	tunnel := sa.mode == ModeTunnel
	var hdr int
	var nh uint8
	var v6 bool
	if tunnel {
		hdr, v6, nh = outerHeaderLen(p), p.dst.Is6(), protoIPv4
		if h.v6 {
			nh = protoIPv6
		}
	} else {
		if r := transportCheck(h, p); r != DropNone {
			return e.dropOut(r)
		}
		hdr, v6, nh = h.l4, h.v6, h.proto
	}
	field := sa.ahICV[0]
	if v6 {
		field = sa.ahICV[1]
	}
	ahLen := ahFixedLen + field
	grow := ahLen
	if tunnel {
		grow += hdr
	}
	if len(pkt)+grow > mtu {
		e.drops[DropTooBig].Add(1)
		return OutResult{Verdict: VerdictDrop, Reason: DropTooBig, MTU: max(mtu-grow, 0)}
	}
	if b.Headroom() < grow || sa.esn && b.Tailroom() < 4 {
		return e.dropOut(DropNoRoom)
	}
	seq, r := e.account(sa, len(pkt))
	if r != DropNone {
		return e.dropOut(r)
	}
	var ah []byte
	if tunnel {
		in := innerFactsOf(pkt, h.v6)
		ah = b.Push(ahLen)
		sa.writeOuter(b.Push(hdr), p, b.Len(), seq, in)
	} else {
		b.Push(ahLen)
		pk := b.Bytes()
		copy(pk[:hdr], pk[ahLen:ahLen+hdr])
		pk[h.nhOff] = protoAH
		setIPLength(pk, h.v6)
		ah = pk[hdr : hdr+ahLen]
	}
	ah[ahNextHeader] = nh
	ah[ahPayloadLen] = byte(ahLen/4 - 2)
	ah[2], ah[3] = 0, 0
	binary.BigEndian.PutUint32(ah[ahSPI:], sa.key.SPI)
	binary.BigEndian.PutUint32(ah[ahSeq:], uint32(seq))
	clear(ah[ahFixedLen:])
	if sa.ah.gmac != nil {
		binary.BigEndian.PutUint64(ah[ahFixedLen:], seq)
	}
	if r := sa.ahDigest(b.Bytes(), hdr, seq, &b.scratch, sa.ahTag(ah)); r != DropNone {
		return e.dropOut(r)
	}
	if tunnel {
		return OutResult{Verdict: VerdictForward, NextHop: p.dst}
	}
	return OutResult{Verdict: VerdictForward, NextHop: h.dstK.addr(h.v6)}
}

func (e *Engine) inboundAH(b *Buffer, h *ipHeader) InResult {
	pkt := b.Bytes()
	ahOff := h.l4
	if len(pkt) < ahOff+ahFixedLen {
		return e.dropIn(DropMalformed, 0)
	}
	ah := pkt[ahOff:]
	ahLen := (int(ah[ahPayloadLen]) + 2) * 4
	spi := binary.BigEndian.Uint32(ah[ahSPI:])
	if ahLen > len(ah) {
		return e.dropIn(DropMalformed, spi)
	}
	sa := e.tables.Load().lookupIn(spi, proposal.ProtoAH, h)
	if sa == nil {
		return e.dropIn(DropUnknownSPI, spi)
	}
	field := sa.ahICV[0]
	if h.v6 {
		field = sa.ahICV[1]
	}
	if ahLen != ahFixedLen+field {
		return e.dropSA(sa, DropMalformed)
	}
	seq, r := sa.preCheck(binary.BigEndian.Uint32(ah[ahSeq:]))
	if r != DropNone {
		return e.dropSA(sa, r)
	}
	// Only the ICV itself is zeroed for the computation; a GMAC IV and
	// any ICV padding enter it as sent (RFC 4302 §3.3.3.2.1, §3.4.4).
	tag := sa.ahTag(ah)
	got := b.scratch[scICV : scICV+len(tag)]
	copy(got, tag)
	clear(tag)
	// The computed ICV lands in the tag field, which the packet no
	// longer needs.
	if r := sa.ahDigest(pkt, ahOff, seq, &b.scratch, tag); r != DropNone {
		return e.dropSA(sa, r)
	}
	if subtle.ConstantTimeCompare(tag, got) != 1 {
		return e.dropSA(sa, DropAuth)
	}
	nh := ah[ahNextHeader]
	start := ahOff + ahLen
	if sa.mode == ModeTunnel {
		return e.decapTunnel(sa, b, start, pkt[start:], nh, seq, ecnOf(pkt))
	}
	return e.decapTransport(sa, b, h, start, len(pkt)-start, nh, seq, false)
}
