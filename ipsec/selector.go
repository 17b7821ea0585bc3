package ipsec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// TS is one traffic selector (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1): an
// inclusive address range, an IP protocol and an inclusive port range.
// Proto 0 means any protocol and then the ports must be the full range.
// For ICMP and ICMPv6 the "port" is type<<8 | code; for the IPv6 Mobility
// Header it is type<<8. A selector whose ports are the full range (0 to
// 65535) also matches packets whose ports are unknown, such as non-initial
// fragments (RFC 4301 §4.4.1, OPAQUE).
type TS struct {
	Proto    uint8
	From, To netip.Addr
	FromPort uint16
	ToPort   uint16
}

// addrKey is an address as a 128-bit integer (IPv4 in the low 32 bits),
// cheaper to compare per packet than netip.Addr.
type addrKey struct{ hi, lo uint64 }

func (a addrKey) less(b addrKey) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func keyOf(a netip.Addr) addrKey {
	if a.Is4() {
		b := a.As4()
		return addrKey{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return addrKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// keyFrom reads an address key from 4 or 16 packet octets.
func keyFrom(b []byte) addrKey {
	if len(b) == 4 {
		return addrKey{lo: uint64(binary.BigEndian.Uint32(b))}
	}
	return addrKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:16])}
}

// PrefixTS selects every packet to or from p.
func PrefixTS(p netip.Prefix) TS {
	p = p.Masked()
	return TS{From: p.Addr(), To: lastAddr(p), ToPort: 0xffff}
}

// ProtoTS selects protocol proto with ports lo..hi to or from p.
func ProtoTS(p netip.Prefix, proto uint8, lo, hi uint16) TS {
	t := PrefixTS(p)
	t.Proto, t.FromPort, t.ToPort = proto, lo, hi
	return t
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	r, _ := netip.AddrFromSlice(a)
	return r
}

// anyPorts reports whether the selector covers every port.
func (t *TS) anyPorts() bool { return t.FromPort == 0 && t.ToPort == 0xffff }

func (t TS) String() string {
	s := t.From.String() + "-" + t.To.String()
	if t.Proto != 0 {
		s += fmt.Sprintf("[%d/%d-%d]", t.Proto, t.FromPort, t.ToPort)
	}
	return s
}

func (t *TS) validate() error {
	if !t.From.IsValid() || !t.To.IsValid() {
		return errors.New("traffic selector without addresses")
	}
	t.From, t.To = t.From.Unmap(), t.To.Unmap()
	if t.From.Is4() != t.To.Is4() || t.From.Zone() != "" || t.To.Zone() != "" {
		return fmt.Errorf("traffic selector %s mixes address families or has a zone", t)
	}
	if t.To.Less(t.From) {
		return fmt.Errorf("traffic selector %s: range ends before it starts", t)
	}
	if t.ToPort < t.FromPort {
		return fmt.Errorf("traffic selector %s: port range ends before it starts", t)
	}
	if t.Proto == 0 && !t.anyPorts() {
		return fmt.Errorf("traffic selector %s: ports need a protocol", t)
	}
	return nil
}

func (t *TS) overlaps(u *TS) bool {
	if t.Proto != 0 && u.Proto != 0 && t.Proto != u.Proto {
		return false
	}
	if t.From.Is4() != u.From.Is4() {
		return false
	}
	if t.To.Less(u.From) || u.To.Less(t.From) {
		return false
	}
	return t.FromPort <= u.ToPort && u.FromPort <= t.ToPort
}

// Selectors are two lists of traffic selectors: Local names the protected
// hosts on the red side and Remote those behind the peer. A packet matches
// when one Local and one Remote selector both match it (IKEv2 TSi/TSr
// semantics); several entries per side express multi-homed SCTP
// associations (RFC 3554) or narrowed address sets.
type Selectors struct {
	Local, Remote []TS
}

func (s *Selectors) validate() error {
	if len(s.Local) == 0 || len(s.Remote) == 0 {
		return errors.New("selectors need at least one local and one remote entry")
	}
	for i := range s.Local {
		if err := s.Local[i].validate(); err != nil {
			return err
		}
	}
	for i := range s.Remote {
		if err := s.Remote[i].validate(); err != nil {
			return err
		}
	}
	return nil
}

func (s Selectors) clone() Selectors {
	return Selectors{Local: append([]TS(nil), s.Local...), Remote: append([]TS(nil), s.Remote...)}
}

// tsKey is a validated TS in the form the data path compares: each field
// is an offset and a span, so that a range check is one subtraction and
// one unsigned comparison, and family and protocol are one masked compare.
type tsKey struct {
	from, span addrKey // the addresses From .. From+span
	// fromPort .. fromPort+portSpan are the ports. A full range spans
	// portUnknown too, so that only it matches packets without ports.
	fromPort, portSpan uint32
	// famProto is the family and protocol as a flow's famProto holds
	// them; famProtoMask leaves the protocol out for ANY.
	famProto, famProtoMask uint16
}

// matcher is a validated Selectors compiled for per-packet matching.
type matcher struct {
	local, remote []tsKey
}

func (s *Selectors) compile() matcher {
	conv := func(l []TS) []tsKey {
		k := make([]tsKey, len(l))
		for i := range l {
			t := &l[i]
			from, to := keyOf(t.From), keyOf(t.To)
			lo, borrow := bits.Sub64(to.lo, from.lo, 0)
			hi, _ := bits.Sub64(to.hi, from.hi, borrow)
			k[i] = tsKey{from: from, span: addrKey{hi: hi, lo: lo},
				fromPort: uint32(t.FromPort), portSpan: uint32(t.ToPort - t.FromPort),
				famProto: famProto(t.From.Is6(), t.Proto), famProtoMask: famMask | 0xff}
			if t.anyPorts() {
				k[i].portSpan = portUnknown
			}
			if t.Proto == 0 {
				k[i].famProtoMask = famMask
			}
		}
		return k
	}
	return matcher{local: conv(s.Local), remote: conv(s.Remote)}
}

// famMask is the family bit of famProto.
const famMask = 0x100

// famProto packs an address family and a protocol for matching.
func famProto(v6 bool, proto uint8) uint16 {
	if v6 {
		return famMask | uint16(proto)
	}
	return uint16(proto)
}

// matchOut reports whether a red packet leaving toward the peer matches:
// its source is local and its destination remote.
func (m *matcher) matchOut(f *flow) bool { return matchFlow(m.local, m.remote, f) }

// matchIn reports whether a packet arriving from the peer matches: its
// source is remote and its destination local.
func (m *matcher) matchIn(f *flow) bool { return matchFlow(m.remote, m.local, f) }

// matchFlow reports whether f's source and port fall inside one of the
// selectors src and its destination inside one of dst.
func matchFlow(src, dst []tsKey, f *flow) bool {
	if len(src) == 1 && len(dst) == 1 {
		// One selector a side, the common case, without the loops.
		return src[0].match(f.srcK, f.srcPort, f.famProto) && dst[0].match(f.dstK, f.dstPort, f.famProto)
	}
	ok := false
	for i := range src {
		if ok = src[i].match(f.srcK, f.srcPort, f.famProto); ok {
			break
		}
	}
	if !ok {
		return false
	}
	for i := range dst {
		if dst[i].match(f.dstK, f.dstPort, f.famProto) {
			return true
		}
	}
	return false
}

// match reports whether address a and port, of a packet whose family and
// protocol are fp, fall inside t. A difference below a range's start
// wraps around to a large value, so one unsigned comparison checks both
// ends of the range.
func (t *tsKey) match(a addrKey, port uint32, fp uint16) bool {
	lo, borrow := bits.Sub64(a.lo, t.from.lo, 0)
	hi, _ := bits.Sub64(a.hi, t.from.hi, borrow)
	return (fp^t.famProto)&t.famProtoMask == 0 && port-t.fromPort <= t.portSpan &&
		(hi < t.span.hi || hi == t.span.hi && lo <= t.span.lo)
}

// overlaps reports whether some packet could match both s and o, which
// makes their relative order significant (RFC 4301 §4.4.1, decorrelation).
func (s *Selectors) overlaps(o *Selectors) bool {
	return listsOverlap(s.Local, o.Local) && listsOverlap(s.Remote, o.Remote)
}

func listsOverlap(a, b []TS) bool {
	for i := range a {
		for j := range b {
			if a[i].overlaps(&b[j]) {
				return true
			}
		}
	}
	return false
}
