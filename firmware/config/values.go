package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	day = 24 * time.Hour
	// maxDuration bounds every configured time; a year is far beyond any
	// sensible lifetime and keeps arithmetic on durations from overflowing.
	maxDuration = 365 * day
)

// parseDuration reads a time as swanctl.conf writes it: a decimal number
// of seconds, optionally followed by s, m, h or d.
func parseDuration(s string) (time.Duration, error) {
	num, unit := s, time.Second
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 's':
			num = s[:n-1]
		case 'm':
			num, unit = s[:n-1], time.Minute
		case 'h':
			num, unit = s[:n-1], time.Hour
		case 'd':
			num, unit = s[:n-1], day
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a time: write seconds, or a number with s, m, h or d, e.g. \"30s\", \"4h\", \"1d\"", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > uint64(maxDuration/unit) {
		return 0, fmt.Errorf("%q is more than a year", s)
	}
	return time.Duration(n) * unit, nil
}

// formatDuration prints d the way a config would say it.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// duration reads a time, given as an integer number of seconds or as a
// string with a unit, and checks that it lies in [lo, hi].
func (t *table) duration(key string, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	var d time.Duration
	switch v := v.(type) {
	case int64:
		if v < 0 || v > int64(maxDuration/time.Second) {
			t.errorf(key, "%d seconds is out of range", v)
			return 0, false
		}
		d = time.Duration(v) * time.Second
	case string:
		var err error
		if d, err = parseDuration(v); err != nil {
			t.errorf(key, "%v", err)
			return 0, false
		}
	default:
		t.wrongType(key, v, `a time such as "30s", "4h" or "1d"`)
		return 0, false
	}
	if d < lo || d > hi {
		t.errorf(key, "%s is out of range %s..%s", formatDuration(d), formatDuration(lo), formatDuration(hi))
		return 0, false
	}
	return d, true
}

// parseBytes reads a volume as swanctl.conf writes it: a number, optionally
// followed by k, m or g (binary multiples, as strongSwan uses).
func parseBytes(s string) (uint64, error) {
	num, shift := s, 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			num, shift = s[:n-1], 10
		case 'm', 'M':
			num, shift = s[:n-1], 20
		case 'g', 'G':
			num, shift = s[:n-1], 30
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size: write a number, optionally with k, m or g, e.g. \"500m\"", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

// bytes reads a byte volume: an integer or a string with k, m or g.
func (t *table) bytes(key string) (uint64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		if v < 0 {
			t.errorf(key, "a size cannot be negative")
			return 0, false
		}
		return uint64(v), true
	case string:
		n, err := parseBytes(v)
		if err != nil {
			t.errorf(key, "%v", err)
			return 0, false
		}
		return n, true
	}
	t.wrongType(key, v, `a size such as 1000000 or "500m"`)
	return 0, false
}

// count reads a non-negative integer such as a packet count.
func (t *table) count(key string) (uint64, bool) {
	n, ok := t.integer(key, 0, math.MaxInt64)
	return uint64(n), ok
}

// portRange reads a port or "from-to".
func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not a port or a port range such as 1000-2000", s)
	}
	if x > y {
		return 0, 0, fmt.Errorf("port range %q runs backwards", s)
	}
	return uint16(x), uint16(y), nil
}

// parseHostPrefix reads an interface address: a host address with its
// prefix length, "192.168.1.1/24".
func parseHostPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err2 := netip.ParseAddr(s); err2 == nil {
			return netip.Prefix{}, fmt.Errorf("%q needs a prefix length, e.g. \"%s/24\"", s, a)
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an address with a prefix length, e.g. \"192.168.1.1/24\"", s)
	}
	a := p.Addr()
	if a.Zone() != "" || a.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: give a plain IPv4 or IPv6 address", s)
	}
	if !a.IsGlobalUnicast() {
		return netip.Prefix{}, fmt.Errorf("%q is not a unicast address a host can use", s)
	}
	if hostBits := a.BitLen() - p.Bits(); hostBits >= 2 {
		if a == p.Masked().Addr() {
			return netip.Prefix{}, fmt.Errorf("%q is the network address of %s, not a host address", s, p.Masked())
		}
		if a.Is4() && a == lastAddr(p) {
			return netip.Prefix{}, fmt.Errorf("%q is the broadcast address of %s", s, p.Masked())
		}
	}
	return p, nil
}

// parseAddr reads one IP address, without zone or mapped form.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%q: give a plain IPv4 or IPv6 address", s)
	}
	return a, nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// AddressRange is an inclusive range of addresses of one family. A single
// address, a CIDR prefix and a from-to range are all ranges.
type AddressRange struct {
	From, To netip.Addr
}

// parseAddressRange reads "192.0.2.1", "192.0.2.0/24" or
// "192.0.2.10-192.0.2.20".
func parseAddressRange(s string) (AddressRange, error) {
	if a, b, ok := strings.Cut(s, "-"); ok {
		from, err1 := parseAddr(a)
		to, err2 := parseAddr(b)
		if err := errors.Join(err1, err2); err != nil {
			return AddressRange{}, fmt.Errorf("%q is not an address range such as 10.0.0.10-10.0.0.20", s)
		}
		if from.Is4() != to.Is4() {
			return AddressRange{}, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		}
		if to.Less(from) {
			return AddressRange{}, fmt.Errorf("range %q runs backwards", s)
		}
		return AddressRange{from, to}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return AddressRange{}, fmt.Errorf("%q is not a subnet such as 10.0.0.0/24", s)
		}
		if p.Masked() != p {
			return AddressRange{}, fmt.Errorf("%q has host bits set; the subnet is %s", s, p.Masked())
		}
		return AddressRange{p.Addr(), lastAddr(p)}, nil
	}
	a, err := parseAddr(s)
	if err != nil {
		return AddressRange{}, err
	}
	return AddressRange{a, a}, nil
}

// Is4 reports whether the range holds IPv4 addresses.
func (r AddressRange) Is4() bool { return r.From.Is4() }

// Single reports whether the range is exactly one address.
func (r AddressRange) Single() bool { return r.From == r.To }

// Contains reports whether a lies in the range.
func (r AddressRange) Contains(a netip.Addr) bool {
	return a.Is4() == r.From.Is4() && !a.Less(r.From) && !r.To.Less(a)
}

// Overlaps reports whether the two ranges share an address.
func (r AddressRange) Overlaps(o AddressRange) bool {
	return r.Is4() == o.Is4() && !r.To.Less(o.From) && !o.To.Less(r.From)
}

// Prefix returns the range as a CIDR prefix when it is one.
func (r AddressRange) Prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= r.From.BitLen(); bits++ {
		p := netip.PrefixFrom(r.From, bits)
		if p.Masked().Addr() == r.From && lastAddr(p) == r.To {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String prints the range as a config writes it: an address, a prefix or
// from-to.
func (r AddressRange) String() string {
	if !r.From.IsValid() {
		return "%any"
	}
	if r.Single() {
		return r.From.String()
	}
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// prefixRange is the range a prefix covers.
func prefixRange(p netip.Prefix) AddressRange {
	return AddressRange{p.Masked().Addr(), lastAddr(p)}
}
