package ipsec

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	protoHopByHop = 0
	protoICMP     = 1
	protoIPv4     = 4
	protoTCP      = 6
	protoUDP      = 17
	protoIPv6     = 41
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoICMPv6   = 58
	protoNoNext   = 59 // RFC 4303 §2.6: dummy packet
	protoDstOpts  = 60
	protoMobility = 135
	protoUDPLite  = 136
	protoSCTP     = 132
	protoHIP      = 139
	protoShim6    = 140
	protoDCCP     = 33
)

// maxExtHeaders bounds the IPv6 extension headers walked per packet.
const maxExtHeaders = 8

// IPv4 header, RFC 791 §3.1.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |    DSCP   |ECN|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv4MinLen   = 20
	ipv4TOS      = 1
	ipv4TotalLen = 2
	ipv4ID       = 4
	ipv4Flags    = 6
	ipv4TTL      = 8
	ipv4Proto    = 9
	ipv4Checksum = 10
	ipv4Src      = 12
	ipv4Dst      = 16

	ipv4FlagDF      = 0x40 // in the octet at ipv4Flags
	ipv4FlagMF      = 0x20
	ipv4FragOffMask = 0x1fff
)

// IPv6 header, RFC 8200 §3.
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                Source Address (128 bits)                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Destination Address (128 bits)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv6Len        = 40
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24
)

// UDP header, RFC 768.
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|   Source Port   |   Dest. Port    |
//	+--------+--------+--------+--------+
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
const (
	udpLen      = 8
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// ESP header, RFC 4303 §2.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//	|               Security Parameters Index (SPI)                 | ^Int.
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//	|                      Sequence Number                          | |ered
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
//	|                    Payload Data* (variable)                   | |   ^
//	~                                                               ~ |   |
//	|                                                               | |Conf.
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//	|               |     Padding (0-255 bytes)                     | |ered*
//	+-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//	|                               |  Pad Length   | Next Header   | v   v
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//	|         Integrity Check Value-ICV   (variable)                |
//	~                                                               ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	espHeaderLen  = 8
	espSPI        = 0
	espSeq        = 4
	espTrailerLen = 2 // Pad Length and Next Header
)

// AH header, RFC 4302 §2.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Header   |  Payload Len  |          RESERVED             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Security Parameters Index (SPI)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Sequence Number Field                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                Integrity Check Value-ICV (variable)           |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ahFixedLen   = 12
	ahNextHeader = 0
	ahPayloadLen = 1
	ahSPI        = 4
	ahSeq        = 8
)

// ECN codepoints (RFC 3168 §5).
const (
	ecnNotECT = 0
	ecnECT1   = 1
	ecnECT0   = 2
	ecnCE     = 3
)

// checksumAdd adds b to a running ones'-complement sum (RFC 1071). It
// sums 32-bit words into 64 bits, which folds to the same 16-bit sum.
func checksumAdd(sum uint32, b []byte) uint32 {
	acc := uint64(sum)
	for len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return fold32(acc)
}

// fold32 folds a 64-bit ones'-complement accumulator into 32 bits
// without changing its 16-bit fold.
func fold32(acc uint64) uint32 {
	acc = acc&0xffffffff + acc>>32
	acc = acc&0xffffffff + acc>>32
	return uint32(acc)
}

// checksumFold folds a running sum and returns the ones' complement of it,
// the value that goes into a header.
func checksumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}

// ipv4HeaderChecksum computes the header checksum of h (a whole IPv4
// header, a multiple of 4 octets) with its checksum field taken as zero.
func ipv4HeaderChecksum(h []byte) uint16 {
	var acc uint64
	if len(h) == ipv4MinLen {
		// No options, the common case: five words, no loop, no bounds
		// checks.
		a := (*[ipv4MinLen]byte)(h)
		acc = uint64(binary.BigEndian.Uint32(a[0:4])) + uint64(binary.BigEndian.Uint32(a[4:8])) +
			uint64(binary.BigEndian.Uint16(a[8:10])) + uint64(binary.BigEndian.Uint32(a[12:16])) +
			uint64(binary.BigEndian.Uint32(a[16:20]))
	} else {
		for i := 0; i+4 <= len(h); i += 4 {
			acc += uint64(binary.BigEndian.Uint32(h[i:]))
		}
		acc -= uint64(binary.BigEndian.Uint16(h[ipv4Checksum:]))
	}
	acc = acc&0xffffffff + acc>>32
	acc = acc&0xffff + acc>>16
	acc = acc&0xffff + acc>>16
	acc = acc&0xffff + acc>>16
	return ^uint16(acc)
}

// setIPv4Checksum writes a fresh header checksum into h.
func setIPv4Checksum(h []byte) {
	binary.BigEndian.PutUint16(h[ipv4Checksum:], ipv4HeaderChecksum(h))
}

// checksumReplace updates a header checksum for one 16-bit field that
// changed from old to new (RFC 1624 eqn. 3).
func checksumReplace(cksum, old, new uint16) uint16 {
	sum := uint32(^cksum) + uint32(^old) + uint32(new)
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}

// addrFrom returns the address in b (4 or 16 octets).
func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// ipHeader is what the data path needs from a validated outer or inner IP
// header: the selector view (flow), where the upper-layer protocol starts
// and which field names it.
type ipHeader struct {
	flow
	// l4 is the offset of the upper-layer header.
	l4 int
	// nhOff is the offset of the octet that holds proto: the IPv4
	// Protocol field or the last IPv6 Next Header field walked.
	nhOff int
	// total is the packet length from the header's length field.
	total int
	// fragment is set for any IPv4 or IPv6 fragment; laterFrag for one
	// that does not start at offset zero.
	fragment, laterFrag bool
}

// parseIP validates the IP header at the start of pkt (bounds only) and
// fills h; with ports set, the selector view's ports too, which the outer
// header of an inbound packet does not need. It walks IPv6 extension
// headers up to the first one that is not hop-by-hop, routing or
// destination options; a fragment header ends the walk with h.fragment
// set and proto naming the fragment's payload.
func parseIP(pkt []byte, h *ipHeader, ports bool) bool {
	if len(pkt) < ipv4MinLen { // an IPv6 header is longer still
		return false
	}
	switch pkt[0] >> 4 {
	case 4:
		// Field by field: a composite literal stored through h would be
		// built on the stack and copied.
		a := (*[ipv4MinLen]byte)(pkt)
		ihl := int(a[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(a[ipv4TotalLen:]))
		if ihl < ipv4MinLen || total < ihl || total > len(pkt) {
			return false
		}
		frag := binary.BigEndian.Uint16(a[ipv4Flags:])
		h.srcK = addrKey{lo: uint64(binary.BigEndian.Uint32(a[ipv4Src:]))}
		h.dstK = addrKey{lo: uint64(binary.BigEndian.Uint32(a[ipv4Dst:]))}
		h.v6 = false
		h.proto = a[ipv4Proto]
		h.famProto = uint16(a[ipv4Proto])
		h.l4 = ihl
		h.nhOff = ipv4Proto
		h.total = total
		h.fragment = frag&(ipv4FragOffMask|uint16(ipv4FlagMF)<<8) != 0
		h.laterFrag = frag&ipv4FragOffMask != 0
	case 6:
		if len(pkt) < ipv6Len {
			return false
		}
		total := ipv6Len + int(binary.BigEndian.Uint16(pkt[ipv6PayloadLen:]))
		if total > len(pkt) {
			return false
		}
		h.v6 = true
		h.srcK = keyFrom(pkt[ipv6Src : ipv6Src+16])
		h.dstK = keyFrom(pkt[ipv6Dst : ipv6Dst+16])
		h.total = total
		h.fragment, h.laterFrag = false, false
		if !walkIPv6(pkt[:total], h) {
			return false
		}
		h.famProto = famProto(true, h.proto)
	default:
		return false
	}
	if !ports {
		return true
	}
	// TCP and UDP, the common case, here; every protocol in setPorts.
	if l4 := pkt[h.l4:h.total]; (h.proto == protoUDP || h.proto == protoTCP) && len(l4) >= 4 && !h.laterFrag {
		h.srcPort = uint32(binary.BigEndian.Uint16(l4))
		h.dstPort = uint32(binary.BigEndian.Uint16(l4[2:]))
		return true
	}
	setPorts(h, pkt[:h.total])
	return true
}

// walkIPv6 follows the extension header chain of a bounds-checked IPv6
// packet (RFC 8200 §4).
func walkIPv6(pkt []byte, h *ipHeader) bool {
	nh := pkt[ipv6NextHeader]
	nhOff := ipv6NextHeader
	off := ipv6Len
	for i := 0; ; i++ {
		switch nh {
		case protoHopByHop, protoRouting, protoDstOpts:
			if i >= maxExtHeaders || off+8 > len(pkt) {
				return false
			}
			n := (int(pkt[off+1]) + 1) * 8
			if off+n > len(pkt) {
				return false
			}
			nhOff = off
			nh = pkt[off]
			off += n
			continue
		case protoFragment:
			if off+8 > len(pkt) {
				return false
			}
			h.fragment = true
			h.laterFrag = binary.BigEndian.Uint16(pkt[off+2:])&0xfff8 != 0
			nhOff = off
			nh = pkt[off]
			off += 8
		}
		h.proto = nh
		h.nhOff = nhOff
		h.l4 = off
		return true
	}
}

// addr converts an address key back, for results and events.
func (k addrKey) addr(v6 bool) netip.Addr {
	if !v6 {
		return netip.AddrFrom4([4]byte{byte(k.lo >> 24), byte(k.lo >> 16), byte(k.lo >> 8), byte(k.lo)})
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// flow is the selector view of a packet (RFC 4301 §4.4.1.1): addresses,
// protocol and ports. For ICMP and ICMPv6 both ports carry type<<8|code,
// the encoding IKEv2 traffic selectors use (RFC 7296 §3.13.1).
type flow struct {
	srcK, dstK addrKey // the addresses, as integers
	v6         bool
	proto      uint8 // after the IPv6 extension headers walked
	famProto   uint16
	// srcPort and dstPort are portUnknown for non-initial fragments and
	// truncated headers; such packets match only selectors with ANY
	// ports (RFC 4301 §4.4.1, OPAQUE).
	srcPort, dstPort uint32
}

// portUnknown stands for the ports of a packet that shows none: it lies
// outside every port range but the full one.
const portUnknown = 1 << 16

// setPorts fills in the ports of h from the upper-layer header in pkt,
// the packet up to its length field's end.
func setPorts(h *ipHeader, pkt []byte) {
	f := &h.flow
	f.srcPort, f.dstPort = portUnknown, portUnknown
	if h.laterFrag {
		return
	}
	l4 := pkt[h.l4:]
	switch h.proto {
	case protoTCP, protoUDP, protoSCTP, protoUDPLite, protoDCCP:
		if len(l4) >= 4 {
			f.srcPort = uint32(binary.BigEndian.Uint16(l4))
			f.dstPort = uint32(binary.BigEndian.Uint16(l4[2:]))
		}
	case protoICMP, protoICMPv6:
		if len(l4) >= 2 {
			tc := uint32(l4[0])<<8 | uint32(l4[1])
			f.srcPort, f.dstPort = tc, tc
		}
	case protoMobility:
		// RFC 4301 §4.4.1.1: the Mobility Header type is a selector,
		// carried like ICMP's in the high octet.
		if len(l4) >= 3 {
			f.srcPort = uint32(l4[2]) << 8
			f.dstPort = f.srcPort
		}
	}
}

// tosOf returns the DSCP and ECN fields of an IPv4 or IPv6 header as one
// octet (the IPv4 TOS, the IPv6 Traffic Class).
func tosOf(h []byte) uint8 {
	a := (*[2]byte)(h) // one bounds check for both octets
	if a[0]>>4 == 4 {
		return a[ipv4TOS]
	}
	return a[0]<<4 | a[1]>>4
}

// ecnOf returns the ECN field of an IPv4 or IPv6 header.
func ecnOf(h []byte) uint8 {
	return tosOf(h) & 3
}

// dscpOf returns the DSCP field of an IPv4 or IPv6 header.
func dscpOf(h []byte) uint8 {
	return tosOf(h) >> 2
}

// setECN rewrites the ECN field, keeping an IPv4 header checksum valid.
func setECN(h []byte, ecn uint8) {
	if h[0]>>4 == 4 {
		old := binary.BigEndian.Uint16(h[0:])
		h[ipv4TOS] = h[ipv4TOS]&^3 | ecn
		ck := binary.BigEndian.Uint16(h[ipv4Checksum:])
		binary.BigEndian.PutUint16(h[ipv4Checksum:], checksumReplace(ck, old, binary.BigEndian.Uint16(h[0:])))
		return
	}
	h[1] = h[1]&^0x30 | ecn<<4
}
