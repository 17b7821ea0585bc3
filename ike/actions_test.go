package ike_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestTrap: start_action = trap installs an acquiring policy; an acquire
// negotiates the Child SA with the packet's selectors first (RFC 7296
// §2.9), under the trap's ReqID.
func TestTrap(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Children[0].StartAction = ike.ActionTrap }})
	if err := p.a.M.Start(); err != nil {
		t.Fatal(err)
	}
	if len(p.ia.Policies) != 1 {
		t.Fatalf("%d policies after Start", len(p.ia.Policies))
	}
	var trap ike.PolicyParams
	for _, pol := range p.ia.Policies {
		trap = pol
	}
	if !trap.Acquire || fmt.Sprint(trap.Local, trap.Remote) != "[192.168.1.0/24] [192.168.2.0/24]" {
		t.Fatalf("trap policy %+v", trap)
	}
	if st := p.a.M.Status(); len(st) != 0 {
		t.Fatalf("a trap initiated: %s", describe(st))
	}
	p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventAcquire, ReqID: trap.ReqID,
		Src: netip.MustParseAddr("192.168.1.10"), Dst: netip.MustParseAddr("192.168.2.10"), Proto: 6, SrcPort: 40000, DstPort: 443})
	// A second acquire while negotiating starts nothing new.
	p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventAcquire, ReqID: trap.ReqID,
		Src: netip.MustParseAddr("192.168.1.11"), Dst: netip.MustParseAddr("192.168.2.10")})
	p.net.Settle(time.Minute)
	s := p.established(p.a, 1)
	c := s.Children[0]
	if c.ReqID != trap.ReqID {
		t.Errorf("Child SA under ReqID %d, the trap's is %d", c.ReqID, trap.ReqID)
	}
	if len(p.ia.Policies) != 1 {
		t.Errorf("%d policies: the Child SA must use the trap's", len(p.ia.Policies))
	}
	// B narrowed TSi to what it allows; the packet's selector came first
	// and is covered by B's configuration.
	if fmt.Sprint(c.LocalTS) != "[192.168.1.10[tcp/40000] 192.168.1.0/24]" {
		t.Errorf("local selectors %v", c.LocalTS)
	}
	if n := p.a.M.Stats().IKESAs; n != 1 {
		t.Errorf("%d IKE SAs", n)
	}
	p.checkTraffic()
	// Deleting the Child SA keeps the trap.
	p.a.M.DownChild("gw", "net", nil)
	p.net.Settle(time.Minute)
	if len(p.ia.Policies) != 1 {
		t.Errorf("%d policies after the Child SA went", len(p.ia.Policies))
	}
}

// TestStartAction: start_action = start initiates on Start.
func TestStartAction(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Children[0].StartAction = ike.ActionStart }})
	if err := p.a.M.Start(); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	p.established(p.a, 1)
	p.established(p.b, 1)
}

// TestCloseAction: close_action = start brings a Child SA back when the
// peer deletes it; with none, it stays gone.
func TestCloseAction(t *testing.T) {
	for _, action := range []ike.Action{ike.ActionStart, ike.ActionNone} {
		t.Run(action.String(), func(t *testing.T) {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Children[0].CloseAction = action }})
			p.up(p.a, "gw", "net")
			p.b.M.Down("gw", nil)
			p.net.RunFor(time.Minute)
			want := 0
			if action == ike.ActionStart {
				want = 1
			}
			if n := len(p.a.M.Status()); n != want {
				t.Fatalf("A holds %d IKE SAs: %s", n, describe(p.a.M.Status()))
			}
			if want == 1 {
				p.established(p.a, 1)
			}
		})
	}
}

// TestCloseActionChild: close_action = start also answers a DELETE of
// the Child SA alone: the child comes back over the IKE SA that stayed.
func TestCloseActionChild(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Children[0].CloseAction = ike.ActionStart }})
	p.up(p.a, "gw", "net")
	ikeSA := p.established(p.a, 1)
	if err := p.b.M.DownChild("gw", "net", nil); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Minute)
	s := p.established(p.a, 1)
	if s.SPIi != ikeSA.SPIi || s.Children[0].SPIIn == ikeSA.Children[0].SPIIn {
		t.Errorf("before %s, after %s", describe([]ike.IKESAStatus{ikeSA}), describe([]ike.IKESAStatus{s}))
	}
	p.established(p.b, 1)
	p.checkTraffic()
}

// TestDataPlaneEvents: a soft expiry rekeys the Child SA, a hard one
// deletes it.
func TestDataPlaneEvents(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	c := p.established(p.a, 1).Children[0]
	p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventSoftExpire, ReqID: c.ReqID, SA: c.OutSA})
	p.net.Settle(time.Minute)
	c2 := p.established(p.a, 1).Children[0]
	if c2.SPIIn == c.SPIIn {
		t.Fatal("soft expiry did not rekey")
	}
	p.checkTraffic()
	p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventHardExpire, ReqID: c2.ReqID, SA: c2.InSA})
	p.net.Settle(time.Minute)
	p.established(p.a, 0)
	p.established(p.b, 0)
	// Events for unknown SAs are ignored.
	p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventSoftExpire, SA: c.InSA})
}

// TestSoftLifetimes: rekey_bytes and rekey_packets become soft limits
// (less up to rand_*), life_* the hard ones.
func TestSoftLifetimes(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.RekeyBytes, ch.RandBytes, ch.LifeBytes = 1<<30, 1<<20, 2<<30
		ch.RekeyPackets, ch.LifePackets = 1000, 2000
		ch.LifeTime, ch.RekeyTime = time.Hour, 50*time.Minute
	}})
	p.up(p.a, "gw", "net")
	c := p.established(p.a, 1).Children[0]
	out, _ := p.ia.Outbound(c.ReqID)
	l := out.Lifetime
	if l.Soft.Bytes > 1<<30 || l.Soft.Bytes < 1<<30-1<<20 || l.Hard.Bytes != 2<<30 || l.Soft.Packets != 1000 ||
		l.Hard.Packets != 2000 || l.Hard.Time != time.Hour {
		t.Errorf("lifetime %+v", l)
	}
}

// TestAH negotiates AH when the device allows integrity-only SAs.
func TestAH(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		for _, c := range []*ike.Config{a, b} {
			c.Policy.AllowIntegrityOnly = true
			c.Connections[0].Children[0].Protocol = proposal.ProtoAH
			c.Connections[0].Children[0].Proposals = mustParse(t, "sha256", proposal.ProtoAH)
		}
	}})
	p.up(p.a, "gw", "net")
	c := p.established(p.a, 1).Children[0]
	if c.Protocol != proposal.ProtoAH || c.Proposal != "sha256" {
		t.Errorf("child %v %q", c.Protocol, c.Proposal)
	}
	p.checkTraffic()
	p.b.M.Rekey("gw", "net")
	p.net.Settle(time.Minute)
	p.checkTraffic()
}

// TestIntegrityOnlyRefused: without allow_integrity_only the config with
// AH is refused at load time.
func TestIntegrityOnlyRefused(t *testing.T) {
	cfg := ike.Config{Connections: []*ike.Connection{siteConn(t, addrA, addrB, netA, netB, "aes128gcm16-prfsha256-x25519", "aes128gcm16")}}
	cfg.Connections[0].Children[0].Protocol = proposal.ProtoAH
	cfg.Connections[0].Children[0].Proposals = mustParse(t, "sha256", proposal.ProtoAH)
	if _, err := ike.New(cfg, ike.Deps{Sender: iketest.NewNetwork(iketest.NewClock()).Sender(), Installer: iketest.NewInstaller(0)}); err == nil {
		t.Error("AH accepted without allow_integrity_only")
	}
}

// TestIPv6 runs the whole life over IPv6 outer addresses with IPv6
// selectors and an IPv6 virtual IP.
func TestIPv6(t *testing.T) {
	a6, b6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	pool := &ike.Pool{Name: "v6", First: netip.MustParseAddr("fd00:9::1"), Last: netip.MustParseAddr("fd00:9::ff"),
		DNS: []netip.Addr{netip.MustParseAddr("fd00:9::53")}}
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ca, cb := a.Connections[0], b.Connections[0]
		ca.LocalAddrs, ca.RemoteAddrs = []netip.Addr{a6}, []ike.AddrRange{{From: b6, To: b6}}
		cb.LocalAddrs, cb.RemoteAddrs = []netip.Addr{b6}, []ike.AddrRange{{From: a6, To: a6}}
		ca.VIPs = []netip.Addr{netip.IPv6Unspecified()}
		ca.Children[0].LocalTS = []ike.TrafficSelector{{Dynamic: true}}
		ca.Children[0].RemoteTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("fd00:2::/64"))}}
		cb.Children[0].LocalTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("fd00:2::/64"))}}
		cb.Children[0].RemoteTS = []ike.TrafficSelector{{Dynamic: true}}
		b.Pools = []*ike.Pool{pool}
		cb.Pools = []string{"v6"}
	}})
	p.a = p.net.Attach(a6, p.a.M, p.ia)
	p.b = p.net.Attach(b6, p.b.M, p.ib)
	p.up(p.a, "gw", "net")
	s := p.established(p.a, 1)
	if len(s.VIPs) != 1 || s.VIPs[0] != netip.MustParseAddr("fd00:9::1") {
		t.Errorf("VIPs %v", s.VIPs)
	}
	if got := fmt.Sprint(s.Children[0].LocalTS, s.Children[0].RemoteTS); got != "[fd00:9::1] [fd00:2::/64]" {
		t.Errorf("selectors %s", got)
	}
	p.checkTraffic()
	p.a.M.Rekey("gw", "")
	p.net.Settle(time.Minute)
	p.b.M.Rekey("gw", "net")
	p.net.Settle(time.Minute)
	p.established(p.a, 1)
	p.checkTraffic()
}

// TestTFCRefused: a peer that announces ESP_TFC_PADDING_NOT_SUPPORTED
// gets no TFC padding, though the child asks for it.
func TestTFCRefused(t *testing.T) {
	keys := &keyRecorder{}
	p := newPair(t, pairOpts{keysA: keys, tweak: func(a, b *ike.Config) {
		b.Connections[0].Children[0].TFCPadding = -1
	}})
	p.up(p.a, "gw", "net")
	c := p.established(p.b, 1).Children[0]
	out, _ := p.ib.Outbound(c.ReqID)
	if out.TFCPadding != -1 {
		t.Fatalf("B's outbound SA pads %d", out.TFCPadding)
	}
	// A asks for a second Child SA and refuses TFC padding.
	st := p.a.M.Status()[0]
	k := keys.last()
	ciph, err := keymat.NewCipher(st.Suite, k.SKei, k.SKai, iketest.Rand(3))
	if err != nil {
		t.Fatal(err)
	}
	req := &message.Message{Payloads: []message.Payload{
		&message.Notify{Type: message.NotifyESPTFCPaddingNotSupported},
		&message.SA{Proposals: []message.Proposal{message.ProposalFrom(1, []byte{0xaa, 0, 0, 1}, mustParse(t, "aes128gcm16", proposal.ProtoESP)[0])}},
		&message.Nonce{Data: make([]byte, 32)},
		&message.TSi{Selectors: []message.Selector{message.SelectorFromPrefix(netA)}},
		&message.TSr{Selectors: []message.Selector{message.SelectorFromPrefix(netB)}},
	}}
	plain, err := req.EncodePlain(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := sealRaw(st.SPIi, st.SPIr, message.ExchangeCreateChildSA, 2, message.PayloadType(plain[16]), plain[message.HeaderLen:], ciph)
	p.b.M.HandlePacket(raw, netip.AddrPortFrom(addrB, ike.PortIKE), netip.AddrPortFrom(addrA, ike.PortIKE))
	var found bool
	for _, sa := range p.ib.SAs {
		if sa.Dir == ike.DirOut && sa.SPI == 0xaa000001 {
			found = true
			if sa.TFCPadding != 0 {
				t.Errorf("TFC padding %d towards a peer that refused it", sa.TFCPadding)
			}
		}
	}
	if !found {
		t.Fatalf("B installed no outbound SA for the request: %s", describe(p.b.M.Status()))
	}
}
