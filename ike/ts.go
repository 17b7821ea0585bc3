package ike

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/bitw-dev/bitw/ike/message"
)

// TS is one traffic selector (RFC 7296 §3.13.1): an inclusive address
// range, an IP protocol (0: any) and an inclusive port range. For ICMP and
// ICMPv6 the "port" is type<<8 | code. FromPort 65535 with ToPort 0 is
// OPAQUE. It mirrors ipsec.TS.
type TS struct {
	Proto            uint8
	From, To         netip.Addr
	FromPort, ToPort uint16
}

// PrefixTS selects every packet to or from p.
func PrefixTS(p netip.Prefix) TS {
	r := RangeOf(p)
	return TS{From: r.From, To: r.To, ToPort: 65535}
}

// TrafficSelector is a configured selector: a TS, or "dynamic", which
// stands for the IKE SA's own address or the virtual IP negotiated for it.
type TrafficSelector struct {
	Dynamic bool
	TS
}

func (t TS) anyPort() bool { return t.FromPort == 0 && t.ToPort == 65535 }
func (t TS) opaque() bool  { return t.FromPort == 65535 && t.ToPort == 0 }

// String prints the selector as the status output shows it:
// "192.168.1.0/24", "10.0.0.1-10.0.0.9[tcp/80]".
func (t TS) String() string {
	s := AddrRange{From: t.From, To: t.To}.String()
	if t.Proto == 0 && t.anyPort() {
		return s
	}
	proto := protoName(t.Proto)
	switch {
	case t.anyPort():
		return s + "[" + proto + "]"
	case t.opaque():
		return s + "[" + proto + "/opaque]"
	case t.FromPort == t.ToPort:
		return fmt.Sprintf("%s[%s/%d]", s, proto, t.FromPort)
	}
	return fmt.Sprintf("%s[%s/%d-%d]", s, proto, t.FromPort, t.ToPort)
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return fmt.Sprint(p)
}

func (t TS) is4() bool { return t.From.Is4() }

// valid reports a well-formed selector: one family, From <= To, ports in
// order or OPAQUE, and ports only with a protocol.
func (t TS) valid() bool {
	if !t.From.IsValid() || t.From.BitLen() != t.To.BitLen() || t.To.Less(t.From) {
		return false
	}
	if t.FromPort > t.ToPort && !t.opaque() {
		return false
	}
	return t.Proto != 0 || t.anyPort()
}

// intersect narrows two selectors to what both cover (RFC 7296 §2.9).
func (t TS) intersect(o TS) (TS, bool) {
	if t.From.BitLen() != o.From.BitLen() {
		return TS{}, false
	}
	r := TS{From: maxAddr(t.From, o.From), To: minAddr(t.To, o.To)}
	if r.To.Less(r.From) {
		return TS{}, false
	}
	switch {
	case t.Proto == 0:
		r.Proto = o.Proto
	case o.Proto == 0 || o.Proto == t.Proto:
		r.Proto = t.Proto
	default:
		return TS{}, false
	}
	switch {
	case t.opaque() || o.opaque():
		// OPAQUE meets OPAQUE or any port; specific ports exclude it.
		if (t.opaque() || t.anyPort()) && (o.opaque() || o.anyPort()) {
			r.FromPort, r.ToPort = 65535, 0
		} else {
			return TS{}, false
		}
	default:
		r.FromPort, r.ToPort = max(t.FromPort, o.FromPort), min(t.ToPort, o.ToPort)
		if r.FromPort > r.ToPort {
			return TS{}, false
		}
	}
	return r, true
}

// contains reports whether t covers all of o.
func (t TS) contains(o TS) bool {
	i, ok := t.intersect(o)
	return ok && i == o
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return b
	}
	return a
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return a
	}
	return b
}

// narrow intersects every offered selector with every configured one,
// keeping the offered order (RFC 7296 §2.9: the first selectors may name
// the packet that triggered the request) and dropping duplicates and
// selectors that another one already covers.
func narrow(offered, configured []TS) []TS {
	var out []TS
	for _, o := range offered {
		for _, c := range configured {
			if i, ok := o.intersect(c); ok && !coveredBy(out, i) {
				out = append(out, i)
			}
		}
	}
	return out
}

func coveredBy(list []TS, t TS) bool {
	for _, l := range list {
		if l.contains(t) {
			return true
		}
	}
	return false
}

// subsetOf reports whether every selector of got lies within one of
// offered: what an initiator checks of the responder's narrowing.
func subsetOf(got, offered []TS) bool {
	for _, g := range got {
		if !coveredBy(offered, g) {
			return false
		}
	}
	return true
}

// resolve replaces dynamic selectors with the address (host selector)
// they stand for.
func resolve(cfg []TrafficSelector, dynamic []netip.Addr) []TS {
	var out []TS
	for _, c := range cfg {
		if !c.Dynamic {
			out = append(out, c.TS)
			continue
		}
		for _, a := range dynamic {
			a = a.Unmap()
			out = append(out, TS{Proto: c.Proto, From: a, To: a, FromPort: c.FromPort, ToPort: c.ToPort})
		}
	}
	if out == nil {
		return nil
	}
	return slices.Clip(out)
}

func toSelectors(ts []TS) []message.Selector {
	out := make([]message.Selector, len(ts))
	for i, t := range ts {
		typ := message.TSIPv4AddrRange
		if !t.is4() {
			typ = message.TSIPv6AddrRange
		}
		out[i] = message.Selector{Type: typ, IPProtocol: t.Proto, StartPort: t.FromPort, EndPort: t.ToPort,
			Start: t.From, End: t.To}
	}
	return out
}

// fromSelectors converts received selectors, leaving out types bitw does
// not use (such as RFC 9478 security labels) and malformed ones.
func fromSelectors(sels []message.Selector) []TS {
	out := make([]TS, 0, len(sels))
	for _, s := range sels {
		if s.Type != message.TSIPv4AddrRange && s.Type != message.TSIPv6AddrRange {
			continue
		}
		t := TS{Proto: s.IPProtocol, From: s.Start.Unmap(), To: s.End.Unmap(), FromPort: s.StartPort, ToPort: s.EndPort}
		if t.valid() {
			out = append(out, t)
		}
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	r, _ := netip.AddrFromSlice(b)
	return r
}

// rangePrefix returns from..to as a prefix when it is exactly one.
func rangePrefix(from, to netip.Addr) (netip.Prefix, bool) {
	if from.BitLen() != to.BitLen() || !from.IsValid() {
		return netip.Prefix{}, false
	}
	f, t := from.AsSlice(), to.AsSlice()
	n := 0
	for i := range f {
		x := f[i] ^ t[i]
		if x != 0 {
			n += bits.LeadingZeros8(x)
			break
		}
		n += 8
	}
	p := netip.PrefixFrom(from, n)
	if p.Masked().Addr() != from || lastAddr(p) != to {
		return netip.Prefix{}, false
	}
	return p, true
}

// specificity scores a selector list for policy priority: narrower
// selectors must come first in the SPD.
func specificity(ts []TS) int {
	best := 0
	for _, t := range ts {
		n := 0
		if p, ok := rangePrefix(t.From, t.To); ok {
			n = p.Bits()
		} else {
			n = t.From.BitLen() - 1
		}
		if t.From.Is4() {
			n += 96 // compare IPv4 and IPv6 on one scale
		}
		if t.Proto != 0 {
			n++
		}
		if !t.anyPort() {
			n++
		}
		best = max(best, n)
	}
	return best
}
