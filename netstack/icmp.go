package netstack

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// ICMP errors the frame path originates: time exceeded, fragmentation
// needed and packet too big. gVisor answers everything addressed to the
// device; these concern packets in transit, which gVisor never sees.
const (
	icmpTTL        = 64
	icmpTOS        = 0xc0 // internetwork control precedence (RFC 1812 §4.3.2.5)
	ip6ICMPErrMax  = ip6MinMTU
	ip4ICMPHdrsLen = ip4MinLen + icmpHeaderLen
	ip6ICMPHdrsLen = ip6HeaderLen + icmpHeaderLen
)

// rateLimiter is a token bucket shared by both ports (RFC 1812 §4.3.2.8,
// RFC 4443 §2.4(f)).
type rateLimiter struct {
	mu     sync.Mutex
	clock  tcpip.Clock
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   tcpip.MonotonicTime
}

func (r *rateLimiter) init(c tcpip.Clock, rate, burst int) {
	r.clock, r.rate, r.burst, r.tokens = c, float64(rate), float64(burst), float64(burst)
	r.last = c.NowMonotonic()
}

func (r *rateLimiter) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.NowMonotonic()
	r.tokens = min(r.burst, r.tokens+float64(now.Sub(r.last))/float64(time.Second)*r.rate)
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// mayReportError applies the rules on when not to send an ICMP error
// (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)): never about an ICMP error, a
// non-initial fragment, or a source that names no single host.
func mayReportError(pkt []byte) bool {
	if pkt[0]>>4 == 4 {
		ihl := int(pkt[ip4VerIHL]&0x0f) * 4
		if binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])&ip4FragOffMask != 0 {
			return false
		}
		src := ip4Addr(pkt[ip4Src:])
		if martian4(src) || src.IsMulticast() {
			return false
		}
		if pkt[ip4Proto] == protoICMP {
			if len(pkt) < ihl+1 {
				return false
			}
			switch pkt[ihl] {
			case icmpDestUnreach, icmpSourceQuench, icmpRedirect, icmpTimeExceeded, icmpParamProblem:
				return false
			}
		}
		return true
	}
	src := ip6Addr(pkt[ip6Src:])
	if src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return false
	}
	c, ok := walkIPv6(pkt)
	if !ok {
		return true
	}
	if c.proto == protoICMPv6 && c.fragOff == 0 {
		return c.off < len(pkt) && pkt[c.off] >= icmp6InfoMin
	}
	return true
}

// icmpError sends an ICMP error about pkt back the way it came: out of the
// port it arrived on to the neighbour that sent it, or, for a packet that
// came out of a tunnel, back through Outbound, where the SPD decides on it
// like on any red traffic (RFC 4301 §6.2). aux fills the second header word
// (the MTU for fragmentation needed and packet too big).
func (l *rxLoop) icmpError(o origin, pkt []byte, typ, code uint8, aux uint32) {
	s := l.s
	if !mayReportError(pkt) {
		return
	}
	from := s.ports[o.port]
	if o.tunnel {
		from = s.ports[Red]
	}
	v4 := pkt[0]>>4 == 4
	var src netip.Addr
	if v4 {
		src = from.a.v4.Addr()
	} else {
		src = from.a.v6.Addr()
	}
	if !src.IsValid() {
		return
	}
	if !s.icmp.allow() {
		s.ctr.icmpRateLimited.Add(1)
		return
	}
	b := s.pool.Get()
	if b == nil {
		s.ctr.drop(DropNoBuffer)
		return
	}
	var ok bool
	if v4 {
		ok = s.buildICMPv4(b, src, pkt, typ, code, aux)
	} else {
		ok = buildICMPv6(b, src, pkt, typ, code, aux)
	}
	if !ok {
		s.dropBuf(b, DropNoBuffer)
		return
	}
	s.ctr.icmpSent.Add(1)
	if o.tunnel {
		l.outbound(b, origin{port: Red}, false)
		return
	}
	if !from.pushEthernet(b, o.mac) {
		s.dropBuf(b, DropNoBuffer)
		return
	}
	l.enqueue(from, b, false)
}

// buildICMPv4 writes an IPv4 ICMP error quoting as much of pkt as fits in
// 576 octets (RFC 1812 §4.3.2.3).
func (s *Stack) buildICMPv4(b *ipsec.Buffer, src netip.Addr, pkt []byte, typ, code uint8, aux uint32) bool {
	quote := min(len(pkt), ip4ICMPErrorMax-ip4ICMPHdrsLen)
	space := b.Space()
	if len(space) < ip4ICMPHdrsLen+quote {
		return false
	}
	m := space[:ip4ICMPHdrsLen+quote]
	ip, ic := m[:ip4MinLen], m[ip4MinLen:]
	ip[ip4VerIHL], ip[1] = 0x45, icmpTOS
	binary.BigEndian.PutUint16(ip[ip4TotalLen:], uint16(len(m)))
	binary.BigEndian.PutUint16(ip[ip4ID:], uint16(s.ipID.Add(1)))
	binary.BigEndian.PutUint16(ip[ip4FlagsFrag:], 0)
	ip[ip4TTL], ip[ip4Proto] = icmpTTL, protoICMP
	a := src.As4()
	copy(ip[ip4Src:], a[:])
	copy(ip[ip4Dst:], pkt[ip4Src:ip4Src+4])
	binary.BigEndian.PutUint16(ip[ip4Checksum:], ip4HeaderChecksum(ip))
	ic[0], ic[1] = typ, code
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint32(ic[4:], aux)
	copy(ic[icmpHeaderLen:], pkt[:quote])
	binary.BigEndian.PutUint16(ic[2:], ^checksum.Checksum(ic, 0))
	b.SetPacket(b.Headroom(), len(m))
	return true
}

// buildICMPv6 writes an ICMPv6 error quoting as much of pkt as fits in
// the minimum MTU (RFC 4443 §2.4(c)).
func buildICMPv6(b *ipsec.Buffer, src netip.Addr, pkt []byte, typ, code uint8, aux uint32) bool {
	quote := min(len(pkt), ip6ICMPErrMax-ip6ICMPHdrsLen)
	space := b.Space()
	if len(space) < ip6ICMPHdrsLen+quote {
		return false
	}
	m := space[:ip6ICMPHdrsLen+quote]
	ip, ic := m[:ip6HeaderLen], m[ip6HeaderLen:]
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(ip[ip6PayloadLen:], uint16(len(ic)))
	ip[ip6NextHeader], ip[ip6HopLimit] = protoICMPv6, icmpTTL
	a := src.As16()
	copy(ip[ip6Src:], a[:])
	copy(ip[ip6Dst:], pkt[ip6Src:ip6Src+16])
	ic[0], ic[1] = typ, code
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint32(ic[4:], aux)
	copy(ic[icmpHeaderLen:], pkt[:quote])
	sum := pseudoHeaderSum(src, ip6Addr(ip[ip6Dst:]), protoICMPv6, len(ic))
	binary.BigEndian.PutUint16(ic[2:], ^checksum.Checksum(ic, sum))
	b.SetPacket(b.Headroom(), len(m))
	return true
}
