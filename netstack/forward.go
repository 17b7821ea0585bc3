package netstack

import (
	"encoding/binary"
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec"
)

// fromRed forwards a transit packet from the red port: TTL, MSS clamp,
// then the data plane decides between an SA, bypass and drop. Nothing
// leaves black unless Outbound said so (fail closed).
func (l *rxLoop) fromRed(b *ipsec.Buffer, o origin) {
	if !l.decrementTTL(b, o) {
		return
	}
	l.clampMSS(b.Bytes())
	l.outbound(b, o, true)
}

// outbound runs a red-side packet through Outbound. mayFragment is false
// for pieces that pre-fragmentation already sized.
func (l *rxLoop) outbound(b *ipsec.Buffer, o origin, mayFragment bool) {
	s := l.s
	black := s.ports[Black]
	res := s.dp.Outbound(b, black.mtu)
	switch res.Verdict {
	case ipsec.VerdictForward:
		if b.Len() > black.mtu {
			// The data plane promised a packet that fits. Outer
			// fragmentation (RFC 4459 §3.1) would make the peer
			// reassemble ESP; the frame path never does it.
			s.dropBuf(b, DropTooBig)
			return
		}
		nh, ok := black.route(res.NextHop)
		if !ok {
			s.dropBuf(b, DropNoRoute)
			return
		}
		s.ctr.encapsulated.Add(1)
		l.xmit(black, b, nh, true)
	case ipsec.VerdictBypass:
		s.ctr.bypassOut.Add(1)
		l.forwardPlain(black, b, o)
	case ipsec.VerdictDrop:
		if res.Reason == ipsec.DropTooBig && mayFragment {
			l.outboundTooBig(b, o, res.MTU)
			return
		}
		s.ctr.dropDataPlane(res.Reason)
		b.Release()
	default:
		s.dropBuf(b, DropUnexpectedVerdict)
	}
}

// outboundTooBig handles an inner packet that would not fit the black MTU
// once encapsulated. An IPv4 packet that may be fragmented is split before
// encryption, so that each piece travels in its own ESP packet and the
// peer never reassembles outer fragments (RFC 4459 §3.4, fragmentation of
// the inner packet). The pieces then go through the SPD like fragments
// from red do (RFC 4301 §7.1: tunnel-mode SAs carry initial and
// non-initial fragments). Otherwise the sender learns the MTU that fits
// (RFC 4301 §8.2: ICMP fragmentation needed, RFC 1191; ICMPv6 packet too
// big, RFC 8201).
func (l *rxLoop) outboundTooBig(b *ipsec.Buffer, o origin, mtu int) {
	s := l.s
	pkt := b.Bytes()
	if pkt[0]>>4 == 4 && binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])&ip4FlagDF == 0 && mtu >= ip4MinMTU {
		n, ok := l.fragment4(b, mtu)
		if !ok {
			return
		}
		s.ctr.fragmented.Add(1)
		for i := range n {
			f := l.frags[i]
			l.frags[i] = nil
			l.outbound(f, o, false)
		}
		return
	}
	s.ctr.dropDataPlane(ipsec.DropTooBig)
	l.icmpTooBig(o, pkt, mtu)
	b.Release()
}

// fromBlackClear is cleartext transit from black: only a BYPASS policy
// lets it through to red.
func (l *rxLoop) fromBlackClear(b *ipsec.Buffer, o origin) {
	s := l.s
	res := s.dp.InboundBypass(b)
	switch res.Verdict {
	case ipsec.VerdictBypass:
		s.ctr.bypassIn.Add(1)
		l.toRed(b, o)
	case ipsec.VerdictDrop:
		s.ctr.dropDataPlane(res.Reason)
		b.Release()
	default:
		s.dropBuf(b, DropUnexpectedVerdict)
	}
}

// toRed forwards a decapsulated or bypassed packet to the red port. The
// data plane has checked it against its SA's selectors; the frame path
// still refuses what no router forwards.
func (l *rxLoop) toRed(b *ipsec.Buffer, o origin) {
	s := l.s
	var src, dst netip.Addr
	pkt := b.Bytes()
	switch {
	case len(pkt) > 0 && pkt[0]>>4 == 4:
		ihl, ok := validIPv4(b)
		if !ok {
			s.dropBuf(b, DropMalformed)
			return
		}
		pkt = b.Bytes()
		if ihl > ip4MinLen && hasSourceRoute(pkt[ip4MinLen:ihl]) {
			s.dropBuf(b, DropSourceRoute)
			return
		}
		src, dst = ip4Addr(pkt[ip4Src:]), ip4Addr(pkt[ip4Dst:])
		if dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || s.ports[Red].directedBroadcast(dst) {
			s.dropBuf(b, DropMulticast)
			return
		}
		if martian4(src) || martian4(dst) || src.IsMulticast() {
			s.dropBuf(b, DropMartian)
			return
		}
	case len(pkt) > 0 && pkt[0]>>4 == 6:
		if !validIPv6(b) {
			s.dropBuf(b, DropMalformed)
			return
		}
		pkt = b.Bytes()
		src, dst = ip6Addr(pkt[ip6Src:]), ip6Addr(pkt[ip6Dst:])
		if dst.IsMulticast() {
			s.dropBuf(b, DropMulticast)
			return
		}
		if martian6(src) || martian6(dst) || src.IsMulticast() {
			s.dropBuf(b, DropMartian)
			return
		}
	default:
		s.dropBuf(b, DropMalformed)
		return
	}
	switch {
	case s.owns(dst):
		// The device's services listen on red only; a tunnel must not
		// become a way around that.
		s.dropBuf(b, DropTunnelToDevice)
		return
	case s.owns(src):
		s.dropBuf(b, DropMartian)
		return
	}
	if !l.decrementTTL(b, o) {
		return
	}
	if o.tunnel {
		l.clampMSS(b.Bytes())
	}
	l.forwardPlain(s.ports[Red], b, o)
}

// forwardPlain sends a cleartext IP packet out of p toward its own
// destination, fragmenting or reporting when it exceeds p's MTU.
func (l *rxLoop) forwardPlain(p *port, b *ipsec.Buffer, o origin) {
	s := l.s
	pkt := b.Bytes()
	var dst netip.Addr
	if pkt[0]>>4 == 4 {
		dst = ip4Addr(pkt[ip4Dst:])
	} else {
		dst = ip6Addr(pkt[ip6Dst:])
	}
	nh, ok := p.route(dst)
	if !ok {
		s.dropBuf(b, DropNoRoute)
		return
	}
	if b.Len() <= p.mtu {
		l.xmit(p, b, nh, false)
		return
	}
	if pkt[0]>>4 == 4 && binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])&ip4FlagDF == 0 {
		n, ok := l.fragment4(b, p.mtu)
		if !ok {
			return
		}
		s.ctr.fragmented.Add(1)
		for i := range n {
			f := l.frags[i]
			l.frags[i] = nil
			l.xmit(p, f, nh, false)
		}
		return
	}
	s.ctr.drop(DropTooBig)
	l.icmpTooBig(o, pkt, p.mtu)
	b.Release()
}

// route picks the next hop on p for dst: dst itself when on-link, else
// the port's gateway for its family.
func (p *port) route(dst netip.Addr) (netip.Addr, bool) {
	switch {
	case dst.Is4():
		if p.a.v4.IsValid() && p.a.v4.Contains(dst) {
			return dst, true
		}
		if p.a.gw4.IsValid() {
			return p.a.gw4, true
		}
	case dst.Is6() && !dst.Is4In6():
		if p.a.v6.IsValid() && p.a.v6.Contains(dst) {
			return dst, true
		}
		if p.a.gw6.IsValid() {
			return p.a.gw6, true
		}
	}
	return netip.Addr{}, false
}

// xmit adds the Ethernet header for next hop nh and queues the frame, or
// hands the packet to the neighbour table while nh resolves. sealed says
// that b is ESP the data plane sealed.
func (l *rxLoop) xmit(p *port, b *ipsec.Buffer, nh netip.Addr, sealed bool) {
	mac, ok := p.neigh.lookup(nh)
	if !ok {
		p.neigh.hold(nh, b)
		return
	}
	if !p.pushEthernet(b, mac) {
		l.s.dropBuf(b, DropNoBuffer)
		return
	}
	l.enqueue(p, b, sealed)
}

// decrementTTL applies RFC 1812 §5.3.1 (and RFC 8200 §3 for the hop
// limit): a packet that arrives with 1 or less cannot be forwarded and
// earns an ICMP time exceeded (RFC 792, RFC 4443 §3.3). It updates the
// IPv4 checksum incrementally (RFC 1624) and reports false when it
// consumed b.
func (l *rxLoop) decrementTTL(b *ipsec.Buffer, o origin) bool {
	pkt := b.Bytes()
	if pkt[0]>>4 == 4 {
		if pkt[ip4TTL] <= 1 {
			l.icmpError(o, pkt, icmpTimeExceeded, icmpCodeTTLTransit, 0)
			l.s.dropBuf(b, DropTTLExceeded)
			return false
		}
		old := binary.BigEndian.Uint16(pkt[ip4TTL:])
		pkt[ip4TTL]--
		sum := updateChecksum16(binary.BigEndian.Uint16(pkt[ip4Checksum:]), old, binary.BigEndian.Uint16(pkt[ip4TTL:]))
		binary.BigEndian.PutUint16(pkt[ip4Checksum:], sum)
		return true
	}
	if pkt[ip6HopLimit] <= 1 {
		l.icmpError(o, pkt, icmp6TimeExceeded, icmpCodeTTLTransit, 0)
		l.s.dropBuf(b, DropTTLExceeded)
		return false
	}
	pkt[ip6HopLimit]--
	return true
}

// icmpTooBig reports the MTU that fits: fragmentation needed with the
// next-hop MTU (RFC 1191 §4) or packet too big (RFC 4443 §3.2), never
// below IPv6's minimum link MTU (RFC 8200 §5).
func (l *rxLoop) icmpTooBig(o origin, pkt []byte, mtu int) {
	if pkt[0]>>4 == 4 {
		l.icmpError(o, pkt, icmpDestUnreach, icmpCodeFragNeeded, uint32(min(mtu, 0xffff)))
		return
	}
	l.icmpError(o, pkt, icmp6PacketTooBig, 0, uint32(max(mtu, ip6MinMTU)))
}
