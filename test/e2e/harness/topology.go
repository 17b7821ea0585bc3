package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// GatewayKind says what runs in a gateway namespace, and so what the
// harness configures in its kernel.
type GatewayKind int

const (
	// StrongSwanGateway: the kernel holds the red and black addresses,
	// forwards (ip_forward=1) and does no reverse-path filtering, as
	// kernel-libipsec needs; charon runs here (StartStrongSwan).
	StrongSwanGateway GatewayKind = iota + 1
	// BitwGateway: red0 and black0 are up but carry no kernel address,
	// not even IPv6 link-local; bitw owns them with AF_PACKET and answers
	// for the gateway's addresses itself.
	BitwGateway
	// RouterGateway: addresses and static routes to the remote red
	// subnet, so the gateways just forward in clear: the baseline.
	RouterGateway
	// QEMUGateway: bitw firmware under QEMU (StartFirmware). The TAPs
	// FirmwareRedTap and FirmwareBlackTap, which QEMU's ENET1 and ENET2
	// use, are bridged to red0 and black0, so the firmware sits where
	// the veths end; the kernel holds no address and no IPv6 here.
	QEMUGateway
)

func (k GatewayKind) String() string {
	switch k {
	case StrongSwanGateway:
		return "strongswan"
	case BitwGateway:
		return "bitw"
	case RouterGateway:
		return "router"
	case QEMUGateway:
		return "qemu"
	}
	return "GatewayKind(" + strconv.Itoa(int(k)) + ")"
}

// Link names inside the namespaces.
const (
	RedLink   = "red0"   // gateway port facing its host
	BlackLink = "black0" // gateway port facing the wire
	HostLink  = "eth0"   // host port facing its gateway
	WireLinkA = "gwa"    // wire port facing gwA
	WireLinkB = "gwb"    // wire port facing gwB
)

// Addresses of design.md's test topology. With NAT, gwB's black port sits
// in NATInside4 behind the router, whose public address is GwBBlack4, so
// gwA's view of the peer does not change.
var (
	HostA4     = netip.MustParseAddr("192.168.1.10")
	HostB4     = netip.MustParseAddr("192.168.2.10")
	RedNetA4   = netip.MustParsePrefix("192.168.1.0/24")
	RedNetB4   = netip.MustParsePrefix("192.168.2.0/24")
	GwARed4    = netip.MustParsePrefix("192.168.1.1/24")
	GwBRed4    = netip.MustParsePrefix("192.168.2.1/24")
	GwABlack4  = netip.MustParsePrefix("203.0.113.1/24")
	GwBBlack4  = netip.MustParsePrefix("203.0.113.2/24")
	NATInside4 = netip.MustParsePrefix("192.0.2.0/24")
	NATGwB4    = netip.MustParsePrefix("192.0.2.2/24")
	NATRouter4 = netip.MustParsePrefix("192.0.2.1/24")

	HostA6     = netip.MustParseAddr("fd00:1::10")
	HostB6     = netip.MustParseAddr("fd00:2::10")
	RedNetA6   = netip.MustParsePrefix("fd00:1::/64")
	RedNetB6   = netip.MustParsePrefix("fd00:2::/64")
	GwARed6    = netip.MustParsePrefix("fd00:1::1/64")
	GwBRed6    = netip.MustParsePrefix("fd00:2::1/64")
	GwABlack6  = netip.MustParsePrefix("fd00:ff::1/64")
	GwBBlack6  = netip.MustParsePrefix("fd00:ff::2/64")
	NATGwB6    = netip.MustParsePrefix("fd00:fe::2/64")
	NATRouter6 = netip.MustParsePrefix("fd00:fe::1/64")
)

// Options shape a Topology.
type Options struct {
	A, B GatewayKind // what runs in gwA and gwB; both must be set
	// NAT puts gwB behind a router that masquerades with nftables, so
	// that gwB must initiate and both peers float to UDP 4500.
	NAT bool
	// IPv6 adds the fd00::/8 addresses beside the IPv4 ones. Without it,
	// IPv6 is disabled in every namespace (no link-local chatter).
	IPv6 bool
	// MTU of every link; 0 keeps the veth default of 1500.
	MTU int
	// BlackMTU overrides MTU on the black links (gateways to wire).
	BlackMTU int
}

// Host is an end host on a red network.
type Host struct {
	NS      *Netns
	Link    string     // HostLink
	Addr4   netip.Addr // 192.168.x.10
	Addr6   netip.Addr // valid with Options.IPv6
	Gateway netip.Addr // its default route (the gateway's red address)
}

// Gateway is one of the two gateway namespaces. The address fields are
// what the gateway uses; for a BitwGateway they belong in bitw's config
// and the kernel holds none of them.
type Gateway struct {
	Name      string // "gw-a" or "gw-b"
	Kind      GatewayKind
	NS        *Netns
	RedLink   string // RedLink
	BlackLink string // BlackLink

	Red4, Black4 netip.Prefix
	Red6, Black6 netip.Prefix // valid with Options.IPv6
	// NextHop4/6 is the black next hop when the peer is not on-link
	// (gwB behind NAT: the router); invalid otherwise.
	NextHop4, NextHop6 netip.Addr
	// Peer4/6 is the address this gateway sends IKE to (remote_addrs).
	Peer4, Peer6 netip.Addr
	// LocalNet and RemoteNet are the red subnets (local_ts, remote_ts).
	LocalNet4, RemoteNet4 netip.Prefix
	LocalNet6, RemoteNet6 netip.Prefix // valid with Options.IPv6
}

// Topology is design.md's test topology in five namespaces.
type Topology struct {
	Prefix       string
	Opts         Options
	HostA, HostB *Host
	GwA, GwB     *Gateway
	// Wire connects the black links: a bridge, or the NAT router.
	Wire *Netns
	// WireA and WireB are Wire's links facing gwA and gwB: the places to
	// capture what each gateway puts on the black network.
	WireA, WireB string
}

// NewTopology builds the namespaces, links, addresses and routes. Cleanups
// registered on t remove all of it.
func NewTopology(t T, opts Options) *Topology {
	t.Helper()
	for _, k := range []GatewayKind{opts.A, opts.B} {
		if k != StrongSwanGateway && k != BitwGateway && k != RouterGateway && k != QEMUGateway {
			t.Fatalf("topology: gateway kind %v is not set or unknown", k)
		}
	}
	prefix := NewPrefix()
	topo := &Topology{Prefix: prefix, Opts: opts, WireA: WireLinkA, WireB: WireLinkB}
	topo.HostA = &Host{NS: NewNetns(t, prefix+"ha"), Link: HostLink, Addr4: HostA4, Gateway: GwARed4.Addr()}
	topo.GwA = &Gateway{Name: "gw-a", Kind: opts.A, NS: NewNetns(t, prefix+"ga"), RedLink: RedLink, BlackLink: BlackLink,
		Red4: GwARed4, Black4: GwABlack4, Peer4: GwBBlack4.Addr(), LocalNet4: RedNetA4, RemoteNet4: RedNetB4}
	topo.Wire = NewNetns(t, prefix+"w")
	topo.GwB = &Gateway{Name: "gw-b", Kind: opts.B, NS: NewNetns(t, prefix+"gb"), RedLink: RedLink, BlackLink: BlackLink,
		Red4: GwBRed4, Black4: GwBBlack4, Peer4: GwABlack4.Addr(), LocalNet4: RedNetB4, RemoteNet4: RedNetA4}
	topo.HostB = &Host{NS: NewNetns(t, prefix+"hb"), Link: HostLink, Addr4: HostB4, Gateway: GwBRed4.Addr()}
	if opts.IPv6 {
		topo.HostA.Addr6, topo.HostB.Addr6 = HostA6, HostB6
		a, b := topo.GwA, topo.GwB
		a.Red6, a.Black6, a.Peer6, a.LocalNet6, a.RemoteNet6 = GwARed6, GwABlack6, GwBBlack6.Addr(), RedNetA6, RedNetB6
		b.Red6, b.Black6, b.Peer6, b.LocalNet6, b.RemoteNet6 = GwBRed6, GwBBlack6, GwABlack6.Addr(), RedNetB6, RedNetA6
	}
	if opts.NAT {
		topo.GwB.Black4, topo.GwB.NextHop4 = NATGwB4, NATRouter4.Addr()
		if opts.IPv6 {
			topo.GwB.Black6, topo.GwB.NextHop6 = NATGwB6, NATRouter6.Addr()
		}
	}

	topo.sysctls(t)
	topo.links(t)
	topo.configureHost(t, topo.HostA)
	topo.configureHost(t, topo.HostB)
	topo.configureGateway(t, topo.GwA)
	topo.configureGateway(t, topo.GwB)
	topo.configureWire(t)
	return topo
}

// Gateways returns gwA and gwB.
func (tp *Topology) Gateways() []*Gateway { return []*Gateway{tp.GwA, tp.GwB} }

// RedPrefixes are the protected subnets, which must never appear in clear
// on the black network.
func (tp *Topology) RedPrefixes() []netip.Prefix {
	p := []netip.Prefix{RedNetA4, RedNetB4}
	if tp.Opts.IPv6 {
		p = append(p, RedNetA6, RedNetB6)
	}
	return p
}

// CheckNoRedInClear reports a test error when frames captured on the
// black network carry red traffic in clear; where names the capture.
func (tp *Topology) CheckNoRedInClear(t testing.TB, where string, frames []Frame) {
	t.Helper()
	if leaks := CleartextLeaks(frames, tp.RedPrefixes(), tp.RedAddrs()); len(leaks) > 0 {
		t.Errorf("%s: %d of %d frames expose red traffic, first: %v", where, len(leaks), len(frames), leaks[0])
	}
}

// RedAddrs are the red hosts' and gateways' red addresses.
func (tp *Topology) RedAddrs() []netip.Addr {
	a := []netip.Addr{HostA4, HostB4, GwARed4.Addr(), GwBRed4.Addr()}
	if tp.Opts.IPv6 {
		a = append(a, HostA6, HostB6, GwARed6.Addr(), GwBRed6.Addr())
	}
	return a
}

func (tp *Topology) sysctls(t T) {
	v6off := []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
	v6on := []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"}
	forward := []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"}
	if tp.Opts.IPv6 {
		forward = append(forward, "net.ipv6.conf.all.forwarding=1")
	}
	for _, h := range []*Host{tp.HostA, tp.HostB} {
		if tp.Opts.IPv6 {
			h.NS.Sysctl(t, v6on...)
		} else {
			h.NS.Sysctl(t, v6off...)
		}
	}
	for _, g := range tp.Gateways() {
		switch {
		case g.Kind == BitwGateway || g.Kind == QEMUGateway:
			// Links created from now on get no IPv6 address at all.
			g.NS.Sysctl(t, v6off...)
		case tp.Opts.IPv6:
			g.NS.Sysctl(t, append(v6on, forward...)...)
		default:
			g.NS.Sysctl(t, append(v6off, forward...)...)
		}
	}
	switch {
	case !tp.Opts.NAT:
		// A bridge needs no IP at all; keep its ports quiet.
		tp.Wire.Sysctl(t, v6off...)
	case tp.Opts.IPv6:
		tp.Wire.Sysctl(t, append(v6on, forward...)...)
	default:
		tp.Wire.Sysctl(t, append(v6off, forward...)...)
	}
}

// links creates the four veth pairs, each end directly in its namespace,
// so no name ever exists in the caller's namespace.
func (tp *Topology) links(t T) {
	veth := func(ns *Netns, name string, peerNS *Netns, peer string, mtu int) {
		cmds := []string{fmt.Sprintf("link add %s type veth peer name %s netns %s", name, peer, peerNS.Name)}
		if mtu > 0 {
			cmds = append(cmds, fmt.Sprintf("link set %s mtu %d", name, mtu))
		}
		ns.IPBatch(t, cmds...)
		if mtu > 0 {
			peerNS.IPBatch(t, fmt.Sprintf("link set %s mtu %d", peer, mtu))
		}
	}
	black := tp.Opts.MTU
	if tp.Opts.BlackMTU > 0 {
		black = tp.Opts.BlackMTU
	}
	veth(tp.GwA.NS, RedLink, tp.HostA.NS, HostLink, tp.Opts.MTU)
	veth(tp.GwA.NS, BlackLink, tp.Wire, WireLinkA, black)
	veth(tp.GwB.NS, BlackLink, tp.Wire, WireLinkB, black)
	veth(tp.GwB.NS, RedLink, tp.HostB.NS, HostLink, tp.Opts.MTU)
}

func (tp *Topology) configureHost(t T, h *Host) {
	cmds := []string{
		fmt.Sprintf("addr add %s/24 dev %s", h.Addr4, h.Link),
		fmt.Sprintf("link set %s up", h.Link),
		fmt.Sprintf("route add default via %s", h.Gateway),
	}
	if tp.Opts.IPv6 {
		gw6 := GwARed6.Addr()
		if h == tp.HostB {
			gw6 = GwBRed6.Addr()
		}
		cmds = append(cmds,
			fmt.Sprintf("addr add %s/64 dev %s nodad", h.Addr6, h.Link),
			fmt.Sprintf("route add default via %s", gw6))
	}
	h.NS.IPBatch(t, cmds...)
}

func (tp *Topology) configureGateway(t T, g *Gateway) {
	cmds := []string{
		fmt.Sprintf("link set %s up", g.RedLink),
		fmt.Sprintf("link set %s up", g.BlackLink),
	}
	switch g.Kind {
	case BitwGateway:
		g.NS.IPBatch(t, cmds...)
		return
	case QEMUGateway:
		g.NS.IPBatch(t, append(cmds, firmwareBridges(g)...)...)
		return
	}
	cmds = append(cmds,
		fmt.Sprintf("addr add %s dev %s", g.Red4, g.RedLink),
		fmt.Sprintf("addr add %s dev %s", g.Black4, g.BlackLink))
	if g.NextHop4.IsValid() {
		cmds = append(cmds, fmt.Sprintf("route add default via %s", g.NextHop4))
	}
	if g.Kind == RouterGateway {
		cmds = append(cmds, fmt.Sprintf("route add %s via %s", g.RemoteNet4, g.routeVia4()))
	}
	if tp.Opts.IPv6 {
		cmds = append(cmds,
			fmt.Sprintf("addr add %s dev %s nodad", g.Red6, g.RedLink),
			fmt.Sprintf("addr add %s dev %s nodad", g.Black6, g.BlackLink))
		if g.NextHop6.IsValid() {
			cmds = append(cmds, fmt.Sprintf("route add default via %s", g.NextHop6))
		}
		if g.Kind == RouterGateway {
			via := g.Peer6
			if g.NextHop6.IsValid() {
				via = g.NextHop6
			}
			cmds = append(cmds, fmt.Sprintf("route add %s via %s", g.RemoteNet6, via))
		}
	}
	g.NS.IPBatch(t, cmds...)
}

func (g *Gateway) routeVia4() netip.Addr {
	if g.NextHop4.IsValid() {
		return g.NextHop4
	}
	return g.Peer4
}

// natTable is the nftables table the NAT router uses.
const natTable = "bte_nat"

func (tp *Topology) configureWire(t T) {
	w := tp.Wire
	if !tp.Opts.NAT {
		w.IPBatch(t,
			"link add br0 type bridge",
			"link set "+WireLinkA+" master br0",
			"link set "+WireLinkB+" master br0",
			"link set "+WireLinkA+" up",
			"link set "+WireLinkB+" up",
			"link set br0 up")
		return
	}
	cmds := []string{
		fmt.Sprintf("addr add %s dev %s", GwBBlack4, WireLinkA),
		fmt.Sprintf("addr add %s dev %s", NATRouter4, WireLinkB),
		"link set " + WireLinkA + " up",
		"link set " + WireLinkB + " up",
		// Plain routing to gwB's red subnet, for a RouterGateway gwB.
		fmt.Sprintf("route add %s via %s", RedNetB4, NATGwB4.Addr()),
	}
	if tp.Opts.IPv6 {
		cmds = append(cmds,
			fmt.Sprintf("addr add %s dev %s nodad", GwBBlack6, WireLinkA),
			fmt.Sprintf("addr add %s dev %s nodad", NATRouter6, WireLinkB),
			fmt.Sprintf("route add %s via %s", RedNetB6, NATGwB6.Addr()))
	}
	w.IPBatch(t, cmds...)
	// Masquerade what leaves towards gwA: gwB's IKE and ESP-in-UDP get the
	// router's public address and, on a port clash, another source port.
	ruleset := fmt.Sprintf(`table inet %s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %q masquerade
	}
}
`, natTable, WireLinkA)
	path := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(path, []byte(ruleset), 0o644); err != nil {
		t.Fatalf("nat ruleset: %v", err)
	}
	w.Run(t, "nft", "-f", path)
	t.Cleanup(func() {
		// The namespace's removal would drop the table too; deleting it
		// explicitly keeps the rule "every table is removed" visible.
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
		defer cancel()
		if out, err := w.Exec(ctx, "nft", "delete", "table", "inet", natTable); err != nil {
			t.Logf("nft delete table: %v: %s", err, out)
		}
	})
}
