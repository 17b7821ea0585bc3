package config

import (
	"strings"
	"testing"
)

func TestParseTrafficSelector(t *testing.T) {
	for _, tc := range []struct {
		in, out          string
		from, to         string
		proto            uint8
		fromPort, toPort uint16
		dynamic          bool
	}{
		{in: "10.0.0.0/24", from: "10.0.0.0", to: "10.0.0.255", toPort: 0xffff},
		{in: "10.0.0.7", from: "10.0.0.7", to: "10.0.0.7", toPort: 0xffff},
		{in: "10.0.0.7/32", out: "10.0.0.7", from: "10.0.0.7", to: "10.0.0.7", toPort: 0xffff},
		{in: "0.0.0.0/0", from: "0.0.0.0", to: "255.255.255.255", toPort: 0xffff},
		{in: "10.0.0.5-10.0.0.9", from: "10.0.0.5", to: "10.0.0.9", toPort: 0xffff},
		{in: "10.0.0.0-10.0.0.255", out: "10.0.0.0/24", from: "10.0.0.0", to: "10.0.0.255", toPort: 0xffff},
		{in: "2001:db8::/32", from: "2001:db8::", to: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", toPort: 0xffff},
		{in: "10.0.0.0/24[tcp/80]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoTCP, fromPort: 80, toPort: 80},
		{in: "10.0.0.0/24[udp/1000-2000]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoUDP, fromPort: 1000, toPort: 2000},
		{in: "10.0.0.0/24[udp/any]", out: "10.0.0.0/24[udp]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoUDP, toPort: 0xffff},
		{in: "10.0.0.0/24[any]", out: "10.0.0.0/24", from: "10.0.0.0", to: "10.0.0.255", toPort: 0xffff},
		{in: "10.0.0.0/24[icmp/8]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoICMP, fromPort: 0x0800, toPort: 0x0800},
		{in: "10.0.0.0/24[icmp/772]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoICMP, fromPort: 0x0304, toPort: 0x0304},
		{in: "10.0.0.0/24[icmp/768-1023]", from: "10.0.0.0", to: "10.0.0.255", proto: ProtoICMP, fromPort: 0x0300, toPort: 0x03ff},
		{in: "fd00::/64[ipv6-icmp/128]", from: "fd00::", to: "fd00::ffff:ffff:ffff:ffff", proto: ProtoICMPv6, fromPort: 0x8000, toPort: 0x8000},
		{in: "fd00::/64[icmpv6]", out: "fd00::/64[ipv6-icmp]", from: "fd00::", to: "fd00::ffff:ffff:ffff:ffff", proto: ProtoICMPv6, toPort: 0xffff},
		{in: "10.0.0.0/8[sctp/5060]", from: "10.0.0.0", to: "10.255.255.255", proto: ProtoSCTP, fromPort: 5060, toPort: 5060},
		{in: "10.0.0.0/8[47]", out: "10.0.0.0/8[gre]", from: "10.0.0.0", to: "10.255.255.255", proto: 47, toPort: 0xffff},
		{in: "10.0.0.0/8[253]", from: "10.0.0.0", to: "10.255.255.255", proto: 253, toPort: 0xffff},
		{in: "10.0.0.0/8[udp/opaque]", from: "10.0.0.0", to: "10.255.255.255", proto: ProtoUDP, fromPort: 0xffff, toPort: 0},
		{in: "dynamic", dynamic: true, toPort: 0xffff},
		{in: "dynamic[tcp/22]", dynamic: true, proto: ProtoTCP, fromPort: 22, toPort: 22},
	} {
		ts, err := ParseTrafficSelector(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if ts.Dynamic != tc.dynamic || ts.Proto != tc.proto || ts.FromPort != tc.fromPort || ts.ToPort != tc.toPort {
			t.Errorf("%s: got %+v", tc.in, ts)
		}
		if !tc.dynamic && (ts.Addrs.From.String() != tc.from || ts.Addrs.To.String() != tc.to) {
			t.Errorf("%s: range %s..%s, want %s..%s", tc.in, ts.Addrs.From, ts.Addrs.To, tc.from, tc.to)
		}
		want := tc.out
		if want == "" {
			want = tc.in
		}
		if ts.String() != want {
			t.Errorf("%s: String() = %s, want %s", tc.in, ts, want)
		}
	}
}

func TestParseTrafficSelectorErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "not an IP address"},
		{"10.0.0.0/33", "not a subnet"},
		{"10.0.0.1/24", "host bits set"},
		{"10.0.0.9-10.0.0.5", "runs backwards"},
		{"10.0.0.1-fd00::1", "mixes IPv4 and IPv6"},
		{"gw.example", "not an IP address"},
		{"%any", "not an IP address"},
		{"10.0.0.0/8[tcp/80", "one [PROTO/PORT] at the end"},
		{"10.0.0.0/8[tcp/80]x", "one [PROTO/PORT] at the end"},
		{"10.0.0.0/8[tcp/80][udp]", "one [PROTO/PORT]"},
		{"10.0.0.0/8[xtp]", "unknown protocol"},
		{"10.0.0.0/8[256]", "unknown protocol"},
		{"10.0.0.0/8[gre/5]", "has no ports"},
		{"10.0.0.0/8[tcp/http]", "no services database"},
		{"10.0.0.0/8[tcp/65536]", "not a port"},
		{"10.0.0.0/8[tcp/90-80]", "runs backwards"},
		{"10.0.0.0/8[icmp/772-8]", "runs backwards"},
		{"fd00::/8[icmp]", "IPv6 uses ipv6-icmp"},
		{"10.0.0.0/8[ipv6-icmp]", "IPv4 uses icmp"},
		{"fe80::1%eth0", "plain IPv4 or IPv6"},
	} {
		_, err := ParseTrafficSelector(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzTrafficSelector checks that parsing never panics and that what
// parses prints back to an equal selector.
func FuzzTrafficSelector(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24[tcp/80]", "dynamic[icmp/8]", "fd00::1-fd00::9[ipv6-icmp/768-1023]", "1.2.3.4[udp/opaque]", "0.0.0.0/0[132/1-2]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTrafficSelector(s)
		if err != nil {
			return
		}
		again, err := ParseTrafficSelector(ts.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, ts, err)
		}
		if again != ts {
			t.Fatalf("%q printed as %q, which parses to %+v, not %+v", s, ts, again, ts)
		}
	})
}
