package ike_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

var (
	addrA = netip.MustParseAddr("203.0.113.1")
	addrB = netip.MustParseAddr("203.0.113.2")
	netA  = netip.MustParsePrefix("192.168.1.0/24")
	netB  = netip.MustParsePrefix("192.168.2.0/24")
	psk   = []byte("a long pre-shared key for tests")
)

// testWriter sends slog output to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger logs at IKE_TEST_LOG's level (debug, info; default warn).
func testLogger(t testing.TB, name string) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("IKE_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})).With("node", name)
}

// pairLogger is testLogger, also writing every level to w if set.
func pairLogger(t testing.TB, name string, w io.Writer) *slog.Logger {
	l := testLogger(t, name)
	if w == nil {
		return l
	}
	all := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}).WithAttrs([]slog.Attr{slog.String("node", name)})
	return slog.New(slog.NewMultiHandler(l.Handler(), all))
}

// mustParse parses comma-separated proposals.
func mustParse(t testing.TB, s string, proto proposal.Protocol) []proposal.Proposal {
	t.Helper()
	var out []proposal.Proposal
	for _, one := range strings.Split(s, ",") {
		p, err := proposal.Parse(one, proto)
		if err != nil {
			t.Fatalf("proposal %q: %v", one, err)
		}
		out = append(out, p...)
	}
	return out
}

// siteConn is a PSK site-to-site connection from local (protecting
// lnet) to remote (protecting rnet).
func siteConn(t testing.TB, local, remote netip.Addr, lnet, rnet netip.Prefix, ikeProp, espProp string) *ike.Connection {
	lid, rid := "gw-a.example", "gw-b.example"
	if local == addrB {
		lid, rid = rid, lid
	}
	return &ike.Connection{
		Name:          "gw",
		LocalAddrs:    []netip.Addr{local},
		RemoteAddrs:   []ike.AddrRange{{From: remote, To: remote}},
		Proposals:     mustParse(t, ikeProp, proposal.ProtoIKE),
		Local:         ike.AuthConfig{Method: ike.AuthPSK, ID: ike.FQDNIdentity(lid)},
		Remote:        ike.AuthConfig{Method: ike.AuthPSK, ID: ike.FQDNIdentity(rid)},
		Fragmentation: ike.FragmentYes,
		Children: []*ike.Child{{
			Name:      "net",
			LocalTS:   []ike.TrafficSelector{{TS: ike.PrefixTS(lnet)}},
			RemoteTS:  []ike.TrafficSelector{{TS: ike.PrefixTS(rnet)}},
			Proposals: mustParse(t, espProp, proposal.ProtoESP),
		}},
	}
}

// pair is two Managers on an in-memory network.
type pair struct {
	t      testing.TB
	clock  *iketest.Clock
	net    *iketest.Network
	a, b   *iketest.Node
	ia, ib *iketest.Installer
	ca, cb ike.Config
}

type pairOpts struct {
	ikeProp, espProp string
	// tweak changes the configurations before the Managers are made.
	tweak          func(a, b *ike.Config)
	credsA, credsB ike.Credentials
	keysA, keysB   ike.KeyHook
	// logTo, if set, also receives both Managers' logs at every level.
	logTo io.Writer
}

func newPair(t testing.TB, o pairOpts) *pair {
	t.Helper()
	if o.ikeProp == "" {
		o.ikeProp = "aes128gcm16-prfsha256-x25519"
	}
	if o.espProp == "" {
		o.espProp = "aes128gcm16"
	}
	p := &pair{t: t, clock: iketest.NewClock()}
	p.net = iketest.NewNetwork(p.clock)
	p.ca = ike.Config{Connections: []*ike.Connection{siteConn(t, addrA, addrB, netA, netB, o.ikeProp, o.espProp)}}
	p.cb = ike.Config{Connections: []*ike.Connection{siteConn(t, addrB, addrA, netB, netA, o.ikeProp, o.espProp)}}
	if o.tweak != nil {
		o.tweak(&p.ca, &p.cb)
	}
	if o.credsA == nil {
		o.credsA = ike.StaticCredentials{PSKs: []ike.PSK{{Secret: psk}}}
	}
	if o.credsB == nil {
		o.credsB = ike.StaticCredentials{PSKs: []ike.PSK{{Secret: psk}}}
	}
	p.ia, p.ib = iketest.NewInstaller(0xa0000000), iketest.NewInstaller(0xb0000000)
	ma, err := ike.New(p.ca, ike.Deps{Sender: p.net.Sender(), Installer: p.ia, Clock: p.clock, Rand: iketest.Rand(1),
		Credentials: o.credsA, Logger: pairLogger(t, "A", o.logTo), KeyHook: o.keysA})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := ike.New(p.cb, ike.Deps{Sender: p.net.Sender(), Installer: p.ib, Clock: p.clock, Rand: iketest.Rand(2),
		Credentials: o.credsB, Logger: pairLogger(t, "B", o.logTo), KeyHook: o.keysB})
	if err != nil {
		t.Fatal(err)
	}
	p.a = p.net.Attach(addrA, ma, p.ia)
	p.b = p.net.Attach(addrB, mb, p.ib)
	t.Cleanup(p.checkClean)
	return p
}

// checkClean fails the test on refused transitions or installer misuse.
func (p *pair) checkClean() {
	for _, n := range []*iketest.Node{p.a, p.b} {
		if s := n.M.Stats(); s.InvalidTransitions != 0 {
			p.t.Errorf("%v: %d invalid state transitions", n.Addr, s.InvalidTransitions)
		}
		for _, v := range n.Installer.Violations {
			p.t.Errorf("%v: installer: %s", n.Addr, v)
		}
	}
}

// up initiates from n and runs until its child is installed.
func (p *pair) up(n *iketest.Node, conn, child string) {
	p.t.Helper()
	var result error
	done := false
	if err := n.M.Up(conn, child, func(err error) { result, done = err, true }); err != nil {
		p.t.Fatal(err)
	}
	if !p.net.RunUntil(2*time.Minute, func() bool { return done }) {
		p.t.Fatalf("up %s/%s did not finish", conn, child)
	}
	if result != nil {
		p.t.Fatalf("up %s/%s: %v", conn, child, result)
	}
	p.net.Settle(time.Minute)
}

// established returns the single IKE SA of n and fails unless it is
// ESTABLISHED with the given number of INSTALLED children.
func (p *pair) established(n *iketest.Node, children int) ike.IKESAStatus {
	p.t.Helper()
	st := n.M.Status()
	var live []ike.IKESAStatus
	for _, s := range st {
		if s.State != ike.IKEDeleting {
			live = append(live, s)
		}
	}
	if len(live) != 1 {
		p.t.Fatalf("%v: %d live IKE SAs: %s", n.Addr, len(live), describe(st))
	}
	s := live[0]
	if s.State != ike.IKEEstablished {
		p.t.Fatalf("%v: IKE SA %v", n.Addr, s.State)
	}
	k := 0
	for _, c := range s.Children {
		if c.State == ike.ChildInstalled {
			k++
		}
	}
	if k != children {
		p.t.Fatalf("%v: %d installed children, want %d: %s", n.Addr, k, children, describe(st))
	}
	return s
}

func describe(st []ike.IKESAStatus) string {
	var b strings.Builder
	for _, s := range st {
		fmt.Fprintf(&b, "[%s %v %016x/%016x init=%v %s", s.Conn, s.State, s.SPIi, s.SPIr, s.Initiator, s.Proposal)
		for _, c := range s.Children {
			fmt.Fprintf(&b, " {%s %v %08x/%08x %s %v %v}", c.Name, c.State, c.SPIIn, c.SPIOut, c.Proposal, c.LocalTS, c.RemoteTS)
		}
		b.WriteString("] ")
	}
	return b.String()
}

// checkTraffic fails unless both directions of every Child SA work.
func (p *pair) checkTraffic() {
	p.t.Helper()
	if err := iketest.CheckTraffic(p.ia, p.ib); err != nil {
		p.t.Fatalf("A->B: %v", err)
	}
	if err := iketest.CheckTraffic(p.ib, p.ia); err != nil {
		p.t.Fatalf("B->A: %v", err)
	}
}
