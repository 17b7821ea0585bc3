// Package responder answers ARP requests for one IPv4 address and ICMP
// echo requests sent to it, rewriting each request frame in place into
// its reply. The QEMU bring-up image uses it to prove that both ports
// receive and transmit; it is deliberately tiny and is not the
// appliance's network stack.
package responder

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec"
)

// Ethernet II header (IEEE 802.3 clause 3.2; type values from IANA):
//
//	+-------------------+-------------------+---------+
//	| destination (6)   | source (6)        | type (2)|
//	+-------------------+-------------------+---------+
const (
	ethDst       = 0
	ethSrc       = 6
	ethType      = 12
	ethHeaderLen = 14
	typeIPv4     = 0x0800
	typeARP      = 0x0806
)

// ARP for IPv4 over Ethernet (RFC 826), after the Ethernet header:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+-------------------------------+
//	|     Hardware type (1)         |     Protocol type (0x0800)    |
//	+---------------+---------------+-------------------------------+
//	| HW len (6)    | Proto len (4) |         Operation             |
//	+---------------+---------------+-------------------------------+
//	|  Sender hardware address (6) ... Sender protocol address (4)  |
//	|  Target hardware address (6) ... Target protocol address (4)  |
//	+---------------------------------------------------------------+
const (
	arpHTYPE    = 0
	arpPTYPE    = 2
	arpHLEN     = 4
	arpPLEN     = 5
	arpOper     = 6
	arpSHA      = 8
	arpSPA      = 14
	arpTHA      = 18
	arpTPA      = 24
	arpLen      = 28
	arpRequest  = 1
	arpReply    = 2
	htypeEther  = 1
	ipv4AddrLen = 4
)

// IPv4 header (RFC 791 section 3.1):
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
const (
	ipVerIHL     = 0
	ipTotalLen   = 2
	ipFlagsFrag  = 6
	ipTTL        = 8
	ipProto      = 9
	ipChecksum   = 10
	ipSrc        = 12
	ipDst        = 16
	ipMinLen     = 20
	protoICMP    = 1
	replyTTL     = 64
	fragMask     = 0x3fff // MF flag and fragment offset
	ipVersion4   = 4
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpMinLen   = 8
	// ICMP echo message types (RFC 792).
	icmpEchoReply   = 0
	icmpEchoRequest = 8
)

// Counters counts what the responder saw.
type Counters struct {
	ARPReplies  uint64
	EchoReplies uint64
	Ignored     uint64 // frames that were neither
	Malformed   uint64 // ARP or IPv4 frames that failed validation
}

// Responder answers for one address on one port. It is used by one
// goroutine.
type Responder struct {
	mac net.HardwareAddr
	ip  [4]byte
	Counters
}

// New answers for ip (IPv4) at mac.
func New(mac net.HardwareAddr, ip netip.Addr) *Responder {
	return &Responder{mac: append(net.HardwareAddr(nil), mac...), ip: ip.As4()}
}

// Reply turns the request frame in b into its reply and reports whether
// b now holds a frame to send back. Any other frame is left alone and
// counted.
func (r *Responder) Reply(b *ipsec.Buffer) bool {
	f := b.Bytes()
	if len(f) < ethHeaderLen {
		r.Malformed++
		return false
	}
	switch binary.BigEndian.Uint16(f[ethType:]) {
	case typeARP:
		return r.arp(b)
	case typeIPv4:
		return r.echo(b)
	}
	r.Ignored++
	return false
}

func (r *Responder) arp(b *ipsec.Buffer) bool {
	f := b.Bytes()
	a := f[ethHeaderLen:]
	if len(a) < arpLen || binary.BigEndian.Uint16(a[arpHTYPE:]) != htypeEther ||
		binary.BigEndian.Uint16(a[arpPTYPE:]) != typeIPv4 || a[arpHLEN] != 6 || a[arpPLEN] != ipv4AddrLen {
		r.Malformed++
		return false
	}
	if binary.BigEndian.Uint16(a[arpOper:]) != arpRequest || [4]byte(a[arpTPA:arpTPA+4]) != r.ip {
		r.Ignored++
		return false
	}
	copy(a[arpTHA:arpTHA+6], a[arpSHA:arpSHA+6])
	copy(a[arpTPA:arpTPA+4], a[arpSPA:arpSPA+4])
	copy(a[arpSHA:arpSHA+6], r.mac)
	copy(a[arpSPA:arpSPA+4], r.ip[:])
	binary.BigEndian.PutUint16(a[arpOper:], arpReply)
	r.swapEthernet(f)
	b.Truncate(ethHeaderLen + arpLen) // drop the requester's padding
	r.ARPReplies++
	return true
}

func (r *Responder) echo(b *ipsec.Buffer) bool {
	f := b.Bytes()
	ip := f[ethHeaderLen:]
	if len(ip) < ipMinLen || ip[ipVerIHL]>>4 != ipVersion4 {
		r.Malformed++
		return false
	}
	ihl := int(ip[ipVerIHL]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[ipTotalLen:]))
	// The total length, not the frame, bounds the packet: a short
	// packet arrives with Ethernet padding behind it.
	if ihl < ipMinLen || total < ihl+icmpMinLen || total > len(ip) || checksum(ip[:ihl], 0) != 0 {
		r.Malformed++
		return false
	}
	if ip[ipProto] != protoICMP || [4]byte(ip[ipDst:ipDst+4]) != r.ip ||
		binary.BigEndian.Uint16(ip[ipFlagsFrag:])&fragMask != 0 {
		r.Ignored++
		return false
	}
	icmp := ip[ihl:total]
	if icmp[icmpType] != icmpEchoRequest || icmp[icmpCode] != 0 {
		r.Ignored++
		return false
	}
	if checksum(icmp, 0) != 0 {
		r.Malformed++
		return false
	}
	icmp[icmpType] = icmpEchoReply
	binary.BigEndian.PutUint16(icmp[icmpChecksum:], 0)
	binary.BigEndian.PutUint16(icmp[icmpChecksum:], checksum(icmp, 0))

	var src [4]byte
	copy(src[:], ip[ipSrc:ipSrc+4])
	copy(ip[ipSrc:ipSrc+4], r.ip[:])
	copy(ip[ipDst:ipDst+4], src[:])
	ip[ipTTL] = replyTTL
	binary.BigEndian.PutUint16(ip[ipChecksum:], 0)
	binary.BigEndian.PutUint16(ip[ipChecksum:], checksum(ip[:ihl], 0))
	r.swapEthernet(f)
	b.Truncate(ethHeaderLen + total)
	r.EchoReplies++
	return true
}

// swapEthernet addresses the frame back to its sender, from us.
func (r *Responder) swapEthernet(f []byte) {
	copy(f[ethDst:ethDst+6], f[ethSrc:ethSrc+6])
	copy(f[ethSrc:ethSrc+6], r.mac)
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial; over data that carries a valid checksum it is 0.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
