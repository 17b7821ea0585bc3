package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Traffic Selector payloads, RFC 7296 §3.13:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                       <Traffic Selectors>                     ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tsCount     = 0
	tsSelectors = 4
)

// Traffic selector, §3.13.1:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                         Starting Address*                     ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                         Ending Address*                       ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	selType      = 0
	selProtocol  = 1
	selLength    = 2
	selStartPort = 4
	selEndPort   = 6
	selAddrs     = 8
	selHeaderLen = 4

	selIPv4Len = selAddrs + 2*4  // 16
	selIPv6Len = selAddrs + 2*16 // 40
)

// TSType is the TS Type of a traffic selector (§3.13.1).
type TSType uint8

const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

func (t TSType) String() string {
	switch t {
	case TSIPv4AddrRange:
		return "TS_IPV4_ADDR_RANGE"
	case TSIPv6AddrRange:
		return "TS_IPV6_ADDR_RANGE"
	}
	return fmt.Sprintf("TS_TYPE(%d)", uint8(t))
}

// Selector is one traffic selector (§3.13.1). Ports are inclusive; 0-65535
// is any port, and Start Port 65535 with End Port 0 is OPAQUE. For ICMP and
// ICMPv6 the "port" is Type<<8 | Code (ICMPPort).
type Selector struct {
	Type       TSType
	IPProtocol uint8 // 0: any protocol
	StartPort  uint16
	EndPort    uint16
	Start, End netip.Addr
	// Raw is the whole selector, header included, for TS types this package
	// does not decode (e.g. RFC 9478 security labels); the other fields are
	// then unused.
	Raw []byte
}

// TSi is the initiator's Traffic Selector payload (§3.13).
type TSi struct{ Selectors []Selector }

// TSr is the responder's Traffic Selector payload (§3.13).
type TSr struct{ Selectors []Selector }

func (*TSi) PayloadType() PayloadType { return PayloadTSi }
func (*TSr) PayloadType() PayloadType { return PayloadTSr }

func (t *TSi) appendBody(b []byte) ([]byte, error) { return appendTS(b, t.Selectors) }
func (t *TSr) appendBody(b []byte) ([]byte, error) { return appendTS(b, t.Selectors) }

// ICMPPort is the 16-bit "port" of an ICMP or ICMPv6 selector: Type in the
// high octet, Code in the low one (§3.13.1).
func ICMPPort(icmpType, icmpCode uint8) uint16 { return uint16(icmpType)<<8 | uint16(icmpCode) }

// SplitICMPPort is the inverse of ICMPPort.
func SplitICMPPort(port uint16) (icmpType, icmpCode uint8) { return uint8(port >> 8), uint8(port) }

// SelectorFromPrefix covers the prefix p, any protocol and any port.
func SelectorFromPrefix(p netip.Prefix) Selector {
	p = p.Masked()
	t := TSIPv6AddrRange
	if p.Addr().Is4() {
		t = TSIPv4AddrRange
	}
	return Selector{Type: t, StartPort: 0, EndPort: 65535, Start: p.Addr(), End: lastAddr(p)}
}

// AnyPort reports whether the selector covers every port.
func (s Selector) AnyPort() bool { return s.StartPort == 0 && s.EndPort == 65535 }

// OpaquePort reports the OPAQUE port encoding (§3.13.1).
func (s Selector) OpaquePort() bool { return s.StartPort == 65535 && s.EndPort == 0 }

// Prefix returns the address range as a prefix, when it is exactly one.
func (s Selector) Prefix() (netip.Prefix, bool) {
	if !s.Start.IsValid() || s.Start.BitLen() != s.End.BitLen() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= s.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(s.Start, bits)
		if p.Masked().Addr() == s.Start && lastAddr(p) == s.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String renders the selector for logs: "192.168.1.0/24",
// "10.0.0.1..10.0.0.9[17/500]", "::/0[58/0x8000-0x80ff]" for ICMPv6 echo.
func (s Selector) String() string {
	if s.Raw != nil {
		return fmt.Sprintf("%v(%x)", s.Type, s.Raw)
	}
	var out string
	if p, ok := s.Prefix(); ok {
		out = p.String()
	} else {
		out = s.Start.String() + ".." + s.End.String()
	}
	if s.IPProtocol == 0 && s.AnyPort() {
		return out
	}
	switch {
	case s.AnyPort():
		return fmt.Sprintf("%s[%d]", out, s.IPProtocol)
	case s.OpaquePort():
		return fmt.Sprintf("%s[%d/OPAQUE]", out, s.IPProtocol)
	case s.IPProtocol == 1 || s.IPProtocol == 58:
		return fmt.Sprintf("%s[%d/%#04x-%#04x]", out, s.IPProtocol, s.StartPort, s.EndPort)
	case s.StartPort == s.EndPort:
		return fmt.Sprintf("%s[%d/%d]", out, s.IPProtocol, s.StartPort)
	}
	return fmt.Sprintf("%s[%d/%d-%d]", out, s.IPProtocol, s.StartPort, s.EndPort)
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		switch {
		case (i+1)*8 <= bits:
		case i*8 >= bits:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> (bits - i*8)
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func parseTS(body []byte) ([]Selector, error) {
	n := int(body[tsCount])
	if n == 0 {
		return nil, errors.New("no traffic selectors")
	}
	rest := body[tsSelectors:]
	if n > len(rest)/selHeaderLen {
		return nil, fmt.Errorf("%d selectors announced in %d octets", n, len(rest))
	}
	out := make([]Selector, 0, n)
	for i := 0; i < n; i++ {
		if len(rest) < selHeaderLen {
			return nil, fmt.Errorf("selector %d of %d: truncated", i+1, n)
		}
		l := int(binary.BigEndian.Uint16(rest[selLength:]))
		if l < selHeaderLen || l > len(rest) {
			return nil, fmt.Errorf("selector %d of %d: length %d, %d octets left", i+1, n, l, len(rest))
		}
		sel, err := parseSelector(rest[:l])
		if err != nil {
			return nil, fmt.Errorf("selector %d of %d: %w", i+1, n, err)
		}
		out = append(out, sel)
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d octets after %d selectors", len(rest), n)
	}
	return out, nil
}

func parseSelector(b []byte) (Selector, error) {
	s := Selector{Type: TSType(b[selType])}
	var alen int
	switch s.Type {
	case TSIPv4AddrRange:
		alen = 4
	case TSIPv6AddrRange:
		alen = 16
	default:
		s.Raw = b
		return s, nil
	}
	if len(b) != selAddrs+2*alen {
		return s, fmt.Errorf("%v of %d octets", s.Type, len(b))
	}
	s.IPProtocol = b[selProtocol]
	s.StartPort = binary.BigEndian.Uint16(b[selStartPort:])
	s.EndPort = binary.BigEndian.Uint16(b[selEndPort:])
	s.Start, _ = netip.AddrFromSlice(b[selAddrs : selAddrs+alen])
	s.End, _ = netip.AddrFromSlice(b[selAddrs+alen:])
	return s, nil
}

func appendTS(b []byte, sels []Selector) ([]byte, error) {
	if len(sels) == 0 || len(sels) > 255 {
		return nil, fmt.Errorf("ike/message: %d traffic selectors, want 1..255", len(sels))
	}
	b = append(b, byte(len(sels)), 0, 0, 0)
	for i, s := range sels {
		var err error
		if b, err = appendSelector(b, s); err != nil {
			return nil, fmt.Errorf("ike/message: selector %d: %w", i+1, err)
		}
	}
	return b, nil
}

func appendSelector(b []byte, s Selector) ([]byte, error) {
	var ok bool
	switch s.Type {
	case TSIPv4AddrRange:
		ok = s.Start.Is4() && s.End.Is4()
	case TSIPv6AddrRange:
		ok = s.Start.Is6() && s.End.Is6()
	default:
		if len(s.Raw) < selHeaderLen || len(s.Raw) > maxPayloadLen || TSType(s.Raw[selType]) != s.Type ||
			int(binary.BigEndian.Uint16(s.Raw[selLength:])) != len(s.Raw) {
			return nil, fmt.Errorf("%v needs a well-formed Raw selector", s.Type)
		}
		return append(b, s.Raw...), nil
	}
	if !ok || s.Raw != nil {
		return nil, fmt.Errorf("%v with addresses %v..%v", s.Type, s.Start, s.End)
	}
	start := len(b)
	b = append(b, byte(s.Type), s.IPProtocol, 0, 0)
	b = binary.BigEndian.AppendUint16(b, s.StartPort)
	b = binary.BigEndian.AppendUint16(b, s.EndPort)
	b = append(b, s.Start.AsSlice()...)
	b = append(b, s.End.AsSlice()...)
	binary.BigEndian.PutUint16(b[start+selLength:], uint16(len(b)-start))
	return b, nil
}
