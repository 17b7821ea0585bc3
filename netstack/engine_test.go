package netstack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// Two netstacks, each with a real ipsec.Engine and hand-installed SAs:
//
//	hostA 192.168.1.10 — gwA 203.0.113.1 — gwB 203.0.113.2 — hostB 192.168.2.10

type engineNet struct {
	a, b   *gw
	ea, eb *ipsec.Engine
	ha, hb *nictest.Host
	clk    *faketime.ManualClock
	// cleartext counts black frames that carried neither IPsec nor the
	// gateways' own traffic; it must stay zero.
	cleartext atomic.Uint64
	marker    []byte
}

func suite(t testing.TB, kw string) proposal.Suite {
	t.Helper()
	ps, err := proposal.Parse(kw, proposal.ProtoESP)
	if err != nil {
		t.Fatal(err)
	}
	s := proposal.Suite{Protocol: proposal.ProtoESP}
	if len(ps[0].Encr) > 0 {
		s.Encr = ps[0].Encr[0]
	}
	if len(ps[0].Integ) > 0 {
		s.Integ = ps[0].Integ[0]
	}
	return s
}

func keys(s proposal.Suite, seed byte) (enc, integ []byte) {
	fill := func(n int) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = seed + byte(i)
		}
		return k
	}
	enc = fill(s.Encr.ID.KeyLen(s.Encr.KeyBits))
	if s.Integ != proposal.IntegNone {
		info, _ := s.Integ.Info()
		integ = fill(info.KeyLen)
	}
	return enc, integ
}

// installTunnel installs the SA pair and PROTECT policies for traffic
// from local to remote on e (whose black address is me, the peer's them).
func installTunnel(t testing.TB, e *ipsec.Engine, me, them string, local, remote string, spiOut, spiIn uint32, s proposal.Suite, encap bool) {
	t.Helper()
	sel := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix(local))}, Remote: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix(remote))}}
	var enc ipsec.UDPEncap
	if encap {
		enc = ipsec.UDPEncap{SrcPort: 4500, DstPort: 4500}
	}
	kOut, iOut := keys(s, byte(spiOut))
	kIn, iIn := keys(s, byte(spiIn))
	meA, themA := netip.MustParseAddr(me), netip.MustParseAddr(them)
	if err := e.AddSA(ipsec.SAConfig{Dir: ipsec.DirOut, SPI: spiOut, Mode: ipsec.ModeTunnel, Src: meA, Dst: themA, Encap: enc,
		Suite: s, EncKey: kOut, IntegKey: iOut, Selectors: sel, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSA(ipsec.SAConfig{Dir: ipsec.DirIn, SPI: spiIn, Mode: ipsec.ModeTunnel, Src: themA, Dst: meA, Encap: enc,
		Suite: s, EncKey: kIn, IntegKey: iIn, Selectors: sel, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddPolicy(ipsec.Policy{Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
}

func newEngineNet(t *testing.T, kw string, encap bool) *engineNet {
	return newEngineNetWith(t, kw, encap, netstack.TxOffloads{})
}

// newEngineNetWith is newEngineNet with NICs that take the given trains
// and stack configurations that cfg may change.
func newEngineNetWith(t *testing.T, kw string, encap bool, offloads netstack.TxOffloads, cfg ...func(*netstack.Config)) *engineNet {
	ea, eb := ipsec.New(ipsec.Config{}), ipsec.New(ipsec.Config{})
	s := suite(t, kw)
	installTunnel(t, ea, "203.0.113.1", "203.0.113.2", "192.168.1.0/24", "192.168.2.0/24", 0xa0000001, 0xb0000001, s, encap)
	installTunnel(t, eb, "203.0.113.2", "203.0.113.1", "192.168.2.0/24", "192.168.1.0/24", 0xb0000001, 0xa0000001, s, encap)
	return wireEngines(t, ea, eb, offloads, cfg...)
}

// wireEngines puts the engines ea and eb behind gwA and gwB, splices and
// watches the black wire between them, and adds hostA and hostB.
func wireEngines(t *testing.T, ea, eb *ipsec.Engine, offloads netstack.TxOffloads, cfg ...func(*netstack.Config)) *engineNet {
	mod := func(c *netstack.Config) {
		for _, f := range cfg {
			f(c)
		}
	}
	n := &engineNet{ea: ea, eb: eb, clk: faketime.NewManualClock(), marker: []byte("cleartext-marker-7d1c")}
	n.a = newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", clk: n.clk, dp: n.ea, offloads: offloads, cfg: mod})
	n.b = newGW(t, gwOpts{red: "192.168.2.1/24", black: "203.0.113.2/24", clk: n.clk, dp: n.eb, offloads: offloads, cfg: mod,
		macRed: netstack.MAC{2, 0, 0, 1, 0xa, 1}, macBlack: netstack.MAC{2, 0, 0, 1, 0xb, 1}})
	go n.watchBlack(n.a.black, n.b.black)
	go n.watchBlack(n.b.black, n.a.black)
	n.ha = newHost(t, n.a.red, n.clk, "192.168.1.10/24", "192.168.1.1")
	n.hb = newHost(t, n.b.red, n.clk, "192.168.2.10/24", "192.168.2.1")
	return n
}

// watchBlack splices the black wire and checks every frame on it: IPsec,
// or the gateways' own traffic from their black addresses, and never the
// red payload marker.
func (n *engineNet) watchBlack(from, to *nictest.NIC) {
	for {
		f, ok := from.ReadFrame(time.Hour)
		if !ok {
			return
		}
		if bytes.Contains(f, n.marker) || !blackFrameOK(f) {
			n.cleartext.Add(1)
		}
		to.WriteFrame(f)
	}
}

func blackFrameOK(f []byte) bool {
	if len(f) < 14 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0806:
		return true
	case 0x0800:
		ip := f[14:]
		if len(ip) < 20 {
			return false
		}
		src := netip.AddrFrom4([4]byte(ip[12:16]))
		return netip.MustParsePrefix("203.0.113.0/24").Contains(src)
	}
	return false
}

func TestEngineTwoGateways(t *testing.T) {
	for _, tc := range []struct {
		kw    string
		encap bool
	}{
		{"aes128gcm16", false},
		{"aes256gcm16", true},
		{"aes128-sha256", false},
	} {
		name := tc.kw
		if tc.encap {
			name += "/udp"
		}
		t.Run(name, func(t *testing.T) {
			n := newEngineNet(t, tc.kw, tc.encap)
			if err := ping(t, n.ha, n.clk, "192.168.2.10", 56); err != nil {
				t.Fatalf("ping A→B: %v", err)
			}
			if err := ping(t, n.hb, n.clk, "192.168.1.10", 1000); err != nil {
				t.Fatalf("ping B→A: %v", err)
			}
			// 3000 octets: hostA fragments to its 1500 MTU, and each
			// fragment is too big for the tunnel, so gwA
			// pre-fragments before encryption (RFC 4459 §3).
			if err := ping(t, n.ha, n.clk, "192.168.2.10", 3000); err != nil {
				t.Fatalf("large ping A→B: %v\na=%+v\nb=%+v\nea=%v\neb=%v", err, n.a.s.Counters(), n.b.s.Counters(), n.ea.Drops(), n.eb.Drops())
			}
			ca, cb := n.a.s.Counters(), n.b.s.Counters()
			if ca.Encapsulated == 0 || cb.Decapsulated == 0 || ca.Fragmented == 0 {
				t.Fatalf("counters: a=%+v b=%+v", ca, cb)
			}
			if c := n.cleartext.Load(); c != 0 {
				t.Fatalf("%d cleartext frames on black", c)
			}
			if ea := n.ea.Drops(); ea[ipsec.DropAuth] != 0 || ea[ipsec.DropReplay] != 0 {
				t.Fatalf("engine A drops: %v", ea)
			}
		})
	}
}

func TestEngineTwoGatewaysTCP(t *testing.T) {
	n := newEngineNet(t, "aes128gcm16", true)
	transferTCP(t, n.clk, n.ha, n.hb, "192.168.2.10:9000", bytes.Repeat(n.marker, 30000), 30*time.Second)
	if c := n.cleartext.Load(); c != 0 {
		t.Fatalf("%d cleartext frames on black", c)
	}
	if ca := n.a.s.Counters(); ca.MSSClamped == 0 {
		t.Fatalf("SYN not clamped: %+v", ca)
	}
}

// Without an SA nothing crosses, and nothing leaves black in clear.
func TestEngineFailClosed(t *testing.T) {
	ea := ipsec.New(ipsec.Config{})
	sel := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.1.0/24"))}, Remote: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix("192.168.2.0/24"))}}
	if _, err := ea.AddPolicy(ipsec.Policy{Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	n := wireEngines(t, ea, ipsec.New(ipsec.Config{}), netstack.TxOffloads{})
	if err := n.ha.Ping(netip.MustParseAddr("192.168.2.10"), 32, 200*time.Millisecond, func() { n.clk.Advance(time.Millisecond) }); err == nil {
		t.Fatal("ping crossed without an SA")
	}
	// 198.51.100.7 matches no policy at all: the default discards.
	if err := n.ha.Ping(netip.MustParseAddr("198.51.100.7"), 32, 100*time.Millisecond, func() { n.clk.Advance(time.Millisecond) }); err == nil {
		t.Fatal("ping crossed without a policy")
	}
	c := n.a.s.Counters()
	if c.DataPlaneDrops[ipsec.DropNoSA] == 0 || c.DataPlaneDrops[ipsec.DropPolicyDiscard] == 0 || c.Black.TxPackets != 0 {
		t.Fatalf("counters: %+v", c)
	}
	if x := n.cleartext.Load(); x != 0 {
		t.Fatalf("%d cleartext frames on black", x)
	}
}

// IPv6 inside IPv4 ESP: NDP on both red links, hop limits, and the real
// engine's IPv6 tunnel path.
func TestEngineTwoGatewaysIPv6(t *testing.T) {
	clk := faketime.NewManualClock()
	ea, eb := ipsec.New(ipsec.Config{}), ipsec.New(ipsec.Config{})
	s := suite(t, "aes128gcm16")
	installTunnel(t, ea, "203.0.113.1", "203.0.113.2", "2001:db8:1::/64", "2001:db8:2::/64", 0xa0000002, 0xb0000002, s, false)
	installTunnel(t, eb, "203.0.113.2", "203.0.113.1", "2001:db8:2::/64", "2001:db8:1::/64", 0xb0000002, 0xa0000002, s, false)
	a := newGW(t, gwOpts{red: "192.168.1.1/24", red6: "2001:db8:1::1/64", black: "203.0.113.1/24", clk: clk, dp: ea})
	b := newGW(t, gwOpts{red: "192.168.2.1/24", red6: "2001:db8:2::1/64", black: "203.0.113.2/24", clk: clk, dp: eb,
		macRed: netstack.MAC{2, 0, 0, 1, 0xa, 1}, macBlack: netstack.MAC{2, 0, 0, 1, 0xb, 1}})
	go splice(a.black, b.black)
	go splice(b.black, a.black)
	waitReady(t, a)
	waitReady(t, b)
	ha := newHost(t, a.red, clk, "2001:db8:1::10/64", "2001:db8:1::1")
	newHost(t, b.red, clk, "2001:db8:2::10/64", "2001:db8:2::1")
	if err := ping(t, ha, clk, "2001:db8:2::10", 1000); err != nil {
		t.Fatalf("ping6 across: %v\na=%+v\nb=%+v", err, a.s.Counters(), b.s.Counters())
	}
	if ca := a.s.Counters(); ca.Encapsulated == 0 || ca.Decapsulated == 0 {
		t.Fatalf("counters %+v", ca)
	}
}
