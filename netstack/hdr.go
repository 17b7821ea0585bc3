package netstack

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Ethernet II header (IEEE 802.3 clause 3.2):
//
//	+-------------------+-------------------+-----------+
//	| destination (6)   | source (6)        | type (2)  |
//	+-------------------+-------------------+-----------+
const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

var broadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func putEthernet(h []byte, dst, src MAC, typ uint16) {
	copy(h[ethDst:], dst[:])
	copy(h[ethSrc:], src[:])
	binary.BigEndian.PutUint16(h[ethType:], typ)
}

// IPv4 header (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
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
	ip4VerIHL    = 0
	ip4TotalLen  = 2
	ip4ID        = 4
	ip4FlagsFrag = 6
	ip4TTL       = 8
	ip4Proto     = 9
	ip4Checksum  = 10
	ip4Src       = 12
	ip4Dst       = 16
	ip4MinLen    = 20
	ip4MaxLen    = 65535

	ip4FlagDF       = 0x4000
	ip4FlagMF       = 0x2000
	ip4FragOffMask  = 0x1fff
	ip4OptCopied    = 0x80 // option type bit: copy into every fragment (RFC 791 §3.1)
	ip4OptEnd       = 0
	ip4OptNop       = 1
	ip4MinMTU       = 68 // RFC 791: every module forwards a 68-octet datagram unfragmented
	ip4ICMPErrorMax = 576
)

// IPv6 header (RFC 8200 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Source Address (16)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Destination Address (16)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ip6PayloadLen = 4
	ip6NextHeader = 6
	ip6HopLimit   = 7
	ip6Src        = 8
	ip6Dst        = 24
	ip6HeaderLen  = 40
	ip6MinMTU     = 1280 // RFC 8200 §5
)

// IPv6 Fragment header (RFC 8200 §4.5):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ip6FragHeaderLen = 8
	ip6FragOffset    = 2
	ip6FragID        = 4
	ip6FragMore      = 1
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	protoHopByHop = 0
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoICMPv6   = 58
	protoDestOpts = 60
)

// UDP header (RFC 768) and the NAT-T port (RFC 3948 §2.1):
//
//	+--------+--------+--------+--------+
//	|  Source Port    |  Dest. Port     |
//	+--------+--------+--------+--------+
//	|  Length         |  Checksum       |
//	+--------+--------+--------+--------+
const (
	udpDstPort   = 2
	udpHeaderLen = 8
	natTPort     = 4500
)

// TCP header (RFC 9293 §3.1), the fields the MSS clamp touches:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpDataOff   = 12
	tcpFlags     = 13
	tcpChecksum  = 16
	tcpMinLen    = 20
	tcpFlagSYN   = 0x02
	tcpOptEnd    = 0
	tcpOptNop    = 1
	tcpOptMSS    = 2
	tcpOptMSSLen = 4
)

// ICMP (RFC 792) and ICMPv6 (RFC 4443) message types the device sends, and
// the error types it must never answer with another error. Both error
// formats share one layout; the second word carries the next-hop MTU of
// fragmentation needed (RFC 1191 §4) and packet too big (RFC 4443 §3.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             unused or MTU (or pointer)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    As much of the invoking packet as fits                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	icmpDestUnreach    = 3
	icmpCodeFragNeeded = 4
	icmpSourceQuench   = 4
	icmpRedirect       = 5
	icmpTimeExceeded   = 11
	icmpParamProblem   = 12

	icmp6PacketTooBig  = 2
	icmp6TimeExceeded  = 3
	icmp6InfoMin       = 128 // types below are errors (RFC 4443 §2.1)
	icmpHeaderLen      = 8
	icmpCodeTTLTransit = 0
)

func ip4Addr(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }
func ip6Addr(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b[:16])) }

// ip4HeaderChecksum computes the header checksum with its field zeroed.
func ip4HeaderChecksum(h []byte) uint16 {
	h[ip4Checksum], h[ip4Checksum+1] = 0, 0
	return ^checksum.Checksum(h, 0)
}

// ip4HeaderValid verifies the header checksum (RFC 1812 §5.2.2).
func ip4HeaderValid(h []byte) bool { return checksum.Checksum(h, 0) == 0xffff }

// updateChecksum16 adjusts a one's-complement checksum for one 16-bit word
// changing from old to new, per RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func updateChecksum16(sum, old, new uint16) uint16 {
	s := uint32(^sum) + uint32(^old) + uint32(new)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return ^uint16(s)
}

// pseudoHeaderSum is the unfolded sum of the TCP/UDP/ICMPv6 pseudo-header
// (RFC 9293 §3.1, RFC 8200 §8.1).
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint16 {
	var s uint16
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = checksum.Checksum(a[:], 0)
		s = checksum.Checksum(b[:], s)
	} else {
		a, b := src.As16(), dst.As16()
		s = checksum.Checksum(a[:], 0)
		s = checksum.Checksum(b[:], s)
	}
	var tail [4]byte
	binary.BigEndian.PutUint16(tail[0:], uint16(length))
	tail[3] = proto
	if !src.Is4() {
		var t6 [8]byte
		binary.BigEndian.PutUint32(t6[0:], uint32(length))
		t6[7] = proto
		return checksum.Checksum(t6[:], s)
	}
	return checksum.Checksum(tail[:], s)
}
