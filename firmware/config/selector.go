package config

import (
	"fmt"
	"strconv"
	"strings"
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") that
// selectors name.
const (
	ProtoAny     uint8 = 0
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// protocolNames are the names selectors accept, as /etc/protocols spells
// them (strongSwan looks them up there); "icmpv6" is accepted as well.
// bitw carries no protocols database, so other protocols go by number.
var protocolNames = map[string]uint8{
	"any":       ProtoAny,
	"icmp":      ProtoICMP,
	"igmp":      2,
	"tcp":       ProtoTCP,
	"udp":       ProtoUDP,
	"gre":       47,
	"esp":       50,
	"ah":        51,
	"ipv6-icmp": ProtoICMPv6,
	"icmpv6":    ProtoICMPv6,
	"ospf":      89,
	"pim":       103,
	"sctp":      ProtoSCTP,
	"udplite":   ProtoUDPLite,
}

func protocolName(p uint8) string {
	switch p {
	case ProtoICMPv6:
		return "ipv6-icmp"
	case ProtoAny:
		return "any"
	}
	for name, n := range protocolNames {
		if n == p && name != "icmpv6" {
			return name
		}
	}
	return strconv.Itoa(int(p))
}

func parseProtocol(s string) (uint8, error) {
	if p, ok := protocolNames[s]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q: use a name such as tcp, udp, icmp, ipv6-icmp, sctp, or a number 0-255", s)
	}
	return uint8(n), nil
}

// hasPorts reports whether selectors of protocol p carry ports (for ICMP:
// type and code, RFC 7296 §3.13.1).
func hasPorts(p uint8) bool {
	switch p {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoUDPLite, ProtoICMP, ProtoICMPv6:
		return true
	}
	return false
}

func isICMP(p uint8) bool { return p == ProtoICMP || p == ProtoICMPv6 }

// Port values with a meaning of their own (RFC 4301 §4.4.1.1).
const (
	portOpaqueFrom = 0xffff
	portOpaqueTo   = 0
)

// TrafficSelector is one traffic selector of a child (RFC 7296 §3.13.1):
// an address range, an IP protocol and a port range, or "dynamic".
type TrafficSelector struct {
	// Dynamic stands for the SA's own outer address, or the virtual IP
	// negotiated for it; Addrs is unset.
	Dynamic bool
	Addrs   AddressRange
	// Proto is the IP protocol; ProtoAny (0) matches every protocol.
	Proto uint8
	// FromPort..ToPort is the port range, 0..65535 for any. For ICMP and
	// ICMPv6 each value holds the type in its high octet and the code in
	// its low one (RFC 7296 §3.13.1). FromPort 65535 with ToPort 0 is
	// OPAQUE (RFC 4301 §4.4.1.1).
	FromPort, ToPort uint16
}

// AnyPort reports whether the selector covers every port.
func (ts TrafficSelector) AnyPort() bool { return ts.FromPort == 0 && ts.ToPort == 0xffff }

// Opaque reports whether the selector's ports are OPAQUE.
func (ts TrafficSelector) Opaque() bool {
	return ts.FromPort == portOpaqueFrom && ts.ToPort == portOpaqueTo
}

// ParseTrafficSelector reads a selector in swanctl.conf's syntax: an
// address part ("10.0.0.0/24", "10.0.0.1", "10.0.0.5-10.0.0.9",
// "2001:db8::/64" or "dynamic"), optionally followed by [PROTO] or
// [PROTO/PORT], where PORT is a number, a range "1000-2000", "any" or
// "opaque". For ICMP a PORT below 256 is a type (with code 0) and a larger
// one is type*256+code, as strongSwan reads them: [icmp/8] is an echo
// request.
func ParseTrafficSelector(s string) (TrafficSelector, error) {
	var ts TrafficSelector
	addr, protoPort, hasPP := strings.Cut(s, "[")
	if hasPP {
		inner, ok := strings.CutSuffix(protoPort, "]")
		if !ok || strings.ContainsAny(inner, "[]") {
			return ts, fmt.Errorf("%q: the protocol/port part must be one [PROTO/PORT] at the end", s)
		}
		if err := ts.parseProtoPort(inner); err != nil {
			return ts, fmt.Errorf("%q: %w", s, err)
		}
	} else {
		ts.ToPort = 0xffff
	}
	if addr == "dynamic" {
		ts.Dynamic = true
		return ts, nil
	}
	r, err := parseAddressRange(addr)
	if err != nil {
		return ts, fmt.Errorf("%w (a selector is a subnet, an address, a range or \"dynamic\")", err)
	}
	ts.Addrs = r
	switch {
	case ts.Proto == ProtoICMP && !r.Is4():
		return ts, fmt.Errorf("%q: icmp is IPv4's; IPv6 uses ipv6-icmp", s)
	case ts.Proto == ProtoICMPv6 && r.Is4():
		return ts, fmt.Errorf("%q: ipv6-icmp is IPv6's; IPv4 uses icmp", s)
	}
	return ts, nil
}

func (ts *TrafficSelector) parseProtoPort(s string) error {
	proto, port, hasPort := strings.Cut(s, "/")
	p, err := parseProtocol(proto)
	if err != nil {
		return err
	}
	ts.Proto = p
	ts.FromPort, ts.ToPort = 0, 0xffff
	if !hasPort || port == "any" {
		return nil
	}
	if !hasPorts(p) {
		return fmt.Errorf("protocol %s has no ports; ports go with tcp, udp, sctp, udplite, icmp or ipv6-icmp", protocolName(p))
	}
	if port == "opaque" {
		ts.FromPort, ts.ToPort = portOpaqueFrom, portOpaqueTo
		return nil
	}
	lo, hi, err := parsePortRange(port)
	if err != nil {
		if _, numErr := strconv.Atoi(strings.Split(port, "-")[0]); numErr != nil {
			return fmt.Errorf("port %q: give numbers; bitw has no services database", port)
		}
		return err
	}
	if isICMP(p) {
		lo, hi = icmpPort(lo), icmpPort(hi)
		if lo > hi {
			return fmt.Errorf("ICMP range %q runs backwards", port)
		}
	}
	ts.FromPort, ts.ToPort = lo, hi
	return nil
}

// icmpPort applies strongSwan's reading of an ICMP "port": below 256 it is
// a type, above it type and code.
func icmpPort(v uint16) uint16 {
	if v < 256 {
		return v << 8
	}
	return v
}

// String prints the selector in the syntax ParseTrafficSelector reads, as
// the status output shows it: "192.168.1.0/24", "10.0.0.1[tcp/80]".
func (ts TrafficSelector) String() string {
	var b strings.Builder
	if ts.Dynamic {
		b.WriteString("dynamic")
	} else {
		b.WriteString(ts.Addrs.String())
	}
	if ts.Proto == ProtoAny && ts.AnyPort() {
		return b.String()
	}
	b.WriteString("[" + protocolName(ts.Proto))
	switch {
	case ts.AnyPort():
	case ts.Opaque():
		b.WriteString("/opaque")
	case isICMP(ts.Proto) && ts.FromPort&0xff == 0 && ts.ToPort&0xff == 0:
		// Types with code 0, the form [icmp/8] gives.
		b.WriteString("/" + strconv.Itoa(int(ts.FromPort>>8)))
		if ts.ToPort != ts.FromPort {
			b.WriteString("-" + strconv.Itoa(int(ts.ToPort>>8)))
		}
	default:
		b.WriteString("/" + strconv.Itoa(int(ts.FromPort)))
		if ts.ToPort != ts.FromPort {
			b.WriteString("-" + strconv.Itoa(int(ts.ToPort)))
		}
	}
	b.WriteString("]")
	return b.String()
}
