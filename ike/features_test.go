package ike_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestProposals negotiates each IKE proposal of the interop list.
func TestProposals(t *testing.T) {
	for _, prop := range []string{
		"aes128-sha256-modp3072", "aes256-sha384-ecp384", "aes128gcm16-prfsha256-x25519",
		"chacha20poly1305-prfsha256-ecp256", "aes128ccm16-prfsha256-ecp256", "aes128-aesxcbc-modp3072",
		"aes256gcm16-prfsha384-ecp521", "aes256-sha512-modp4096", "aes128ctr-sha256-x25519", "aes128-aescmac-ecp256",
	} {
		t.Run(prop, func(t *testing.T) {
			p := newPair(t, pairOpts{ikeProp: prop, espProp: "aes256gcm16,aes128-sha256"})
			p.up(p.a, "gw", "net")
			s := p.established(p.a, 1)
			want := mustParse(t, prop, proposal.ProtoIKE)[0].String()
			if s.Proposal != want {
				t.Errorf("negotiated %q, want %q", s.Proposal, want)
			}
			p.checkTraffic()
			// Rekey the IKE SA with the same suite and use it.
			if err := p.a.M.Rekey("gw", ""); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			if err := p.b.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.established(p.a, 1)
			p.checkTraffic()
		})
	}
}

func TestESPProposals(t *testing.T) {
	for _, prop := range []string{"aes128gcm16", "aes256gcm16-esn", "aes128-sha256", "aes256-sha384-esn",
		"chacha20poly1305", "aes128ccm16", "aes128ctr-sha256", "aes128-aesxcbc"} {
		t.Run(prop, func(t *testing.T) {
			p := newPair(t, pairOpts{espProp: prop})
			p.up(p.a, "gw", "net")
			s := p.established(p.a, 1)
			if want := strings.TrimSuffix(mustParse(t, prop, proposal.ProtoESP)[0].String(), "-noesn"); s.Children[0].Proposal != want {
				t.Errorf("negotiated %q, want %q", s.Children[0].Proposal, want)
			}
			p.checkTraffic()
		})
	}
}

// TestPFS rekeys a Child SA with a key exchange (PFS).
func TestPFS(t *testing.T) {
	p := newPair(t, pairOpts{espProp: "aes128gcm16-ecp256"})
	p.up(p.a, "gw", "net")
	s := p.established(p.a, 1)
	if s.Children[0].Suite.KE != proposal.KENone {
		t.Errorf("the IKE_AUTH Child SA has key exchange %v", s.Children[0].Suite.KE)
	}
	if err := p.b.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	s = p.established(p.a, 1)
	if s.Children[0].Suite.KE != proposal.KEECP256 {
		t.Errorf("rekeyed Child SA without PFS: %v", s.Children[0].Proposal)
	}
	p.checkTraffic()
}

// TestPFSInvalidKE: the rekey initiator guesses the wrong group and
// retries with the one INVALID_KE_PAYLOAD names.
func TestPFSInvalidKE(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Children[0].Proposals = mustParse(t, "aes128gcm16-x25519-ecp256", proposal.ProtoESP)
		b.Connections[0].Children[0].Proposals = mustParse(t, "aes128gcm16-ecp256", proposal.ProtoESP)
	}})
	p.up(p.a, "gw", "net")
	if err := p.a.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	s := p.established(p.a, 1)
	if s.Children[0].Suite.KE != proposal.KEECP256 {
		t.Errorf("rekeyed with %v", s.Children[0].Proposal)
	}
	if n := p.b.M.Stats().InvalidKESent; n != 1 {
		t.Errorf("B sent %d INVALID_KE_PAYLOAD", n)
	}
	p.checkTraffic()
}

func TestInvalidKE(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Proposals = mustParse(t, "aes128gcm16-prfsha256-x25519-ecp256", proposal.ProtoIKE)
		b.Connections[0].Proposals = mustParse(t, "aes128gcm16-prfsha256-ecp256", proposal.ProtoIKE)
	}})
	p.up(p.a, "gw", "net")
	s := p.established(p.a, 1)
	if s.Suite.KE != proposal.KEECP256 {
		t.Errorf("negotiated %s", s.Proposal)
	}
	if n := p.b.M.Stats().InvalidKESent; n != 1 {
		t.Errorf("B sent %d INVALID_KE_PAYLOAD", n)
	}
	if n := p.a.M.Stats().ErrorNotifies[message.NotifyInvalidKEPayload]; n != 1 {
		t.Errorf("A counted %d INVALID_KE_PAYLOAD", n)
	}
	if n := p.b.M.Stats().HalfOpenMax; n != 1 {
		t.Errorf("B kept %d half-open SAs: INVALID_KE_PAYLOAD must keep no state", n)
	}
	p.checkTraffic()
}

func TestNoProposalChosen(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].KeyingTries = 1
		b.Connections[0].Proposals = mustParse(t, "aes256-sha384-ecp384", proposal.ProtoIKE)
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if result == nil || !errorsIsNotify(result, message.NotifyNoProposalChosen) {
		t.Errorf("up: %v, want NO_PROPOSAL_CHOSEN", result)
	}
	if n := p.a.M.Stats().ErrorNotifies[message.NotifyNoProposalChosen]; n != 1 {
		t.Errorf("A counted %d NO_PROPOSAL_CHOSEN", n)
	}
	if len(p.a.M.Status())+len(p.b.M.Status()) != 0 {
		t.Error("SAs left behind")
	}
}

func errorsIsNotify(err error, n message.NotifyType) bool {
	return err != nil && errors.Unwrap(err) == nil && err.Error() == "ike: peer answered "+n.String()
}

func TestChildNoProposalChosen(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		b.Connections[0].Children[0].Proposals = mustParse(t, "aes256-sha512", proposal.ProtoESP)
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyNoProposalChosen) {
		t.Errorf("up: %v", result)
	}
	// The IKE SA is up without the child (RFC 7296 §1.2).
	p.established(p.a, 0)
	p.established(p.b, 0)
	if in, out := p.ia.Count(); in+out != 0 {
		t.Errorf("A installed %d/%d SAs", in, out)
	}
	if len(p.ia.Ops) == 0 || p.ia.Ops[len(p.ia.Ops)-1].Kind != iketest.OpReleaseSPI {
		t.Errorf("A did not release the SPI: %v", p.ia.Ops)
	}
}

func TestCookies(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { b.CookieThreshold = -1 }})
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	s := p.b.M.Stats()
	if s.CookiesSent != 1 || s.CookiesVerified != 1 {
		t.Errorf("cookies sent %d, verified %d", s.CookiesSent, s.CookiesVerified)
	}
	p.checkTraffic()
}

// TestNAT puts B behind a masquerading NAT: both peers detect it, move to
// port 4500, encapsulate ESP in UDP and B sends keepalives; when the NAT
// forgets its mapping, A follows B to the new port.
func TestNAT(t *testing.T) {
	inside := netip.MustParseAddr("192.168.0.2")
	public := netip.MustParseAddr("198.51.100.1")
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].RemoteAddrs = nil // %any: B appears from its NAT
		a.Connections[0].DPDDelay = 30 * time.Second
		b.Connections[0].LocalAddrs = []netip.Addr{inside}
		b.Connections[0].DPDDelay = 30 * time.Second
	}})
	p.net.NAT = iketest.NewNAT(netip.MustParsePrefix("192.168.0.0/24"), public)
	p.b = p.net.Attach(inside, p.b.M, p.ib)
	p.up(p.b, "gw", "net")
	sa, sb := p.established(p.a, 1), p.established(p.b, 1)
	if !sa.NATRemote || sa.NATLocal || !sb.NATLocal || sb.NATRemote {
		t.Errorf("NAT detection: A local %v remote %v; B local %v remote %v", sa.NATLocal, sa.NATRemote, sb.NATLocal, sb.NATRemote)
	}
	if sa.Local.Port() != ike.PortNATT || sb.Local.Port() != ike.PortNATT || sb.Remote.Port() != ike.PortNATT {
		t.Errorf("not floated to 4500: A %v-%v, B %v-%v", sa.Local, sa.Remote, sb.Local, sb.Remote)
	}
	if sa.Remote.Addr() != public {
		t.Errorf("A sees B at %v", sa.Remote)
	}
	if !sa.Children[0].Encap || !sb.Children[0].Encap {
		t.Error("ESP not in UDP")
	}
	out, _ := p.ia.Outbound(sa.Children[0].ReqID)
	if out.Encap.DstPort != sa.Remote.Port() || out.Encap.SrcPort != ike.PortNATT || out.Dst != public {
		t.Errorf("A's outbound SA goes to %v:%d from port %d", out.Dst, out.Encap.DstPort, out.Encap.SrcPort)
	}
	p.checkTraffic()
	p.net.RunFor(time.Minute)
	if n := p.b.M.Stats().KeepalivesSent; n < 2 {
		t.Errorf("B sent %d keepalives in a minute", n)
	}
	if n := p.a.M.Stats().KeepalivesSent; n != 0 {
		t.Errorf("A, not behind a NAT, sent %d keepalives", n)
	}
	// The NAT reboots: B's next message comes from a new port, and A
	// moves the IKE SA and the Child SA there.
	p.net.NAT.Rebind()
	if err := p.b.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Minute)
	sa2 := p.established(p.a, 1)
	if sa2.Remote == sa.Remote {
		t.Errorf("A still sends to %v", sa.Remote)
	}
	out, _ = p.ia.Outbound(sa2.Children[0].ReqID)
	if out.Encap.DstPort != sa2.Remote.Port() {
		t.Errorf("A's outbound SA still goes to port %d, B is at %v", out.Encap.DstPort, sa2.Remote)
	}
	p.checkTraffic()
	p.net.RunFor(5 * time.Minute)
	p.established(p.a, 1)
	p.established(p.b, 1)
}

// TestForceEncap: encap = yes fakes NAT detection, so ESP goes in UDP
// without a NAT.
func TestForceEncap(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].ForceEncap = true }})
	p.up(p.a, "gw", "net")
	sa, sb := p.established(p.a, 1), p.established(p.b, 1)
	if !sa.Children[0].Encap || !sb.Children[0].Encap {
		t.Error("ESP not in UDP")
	}
	if !sb.NATRemote {
		t.Error("B did not see the faked NAT")
	}
	if sa.Local.Port() != ike.PortNATT {
		t.Errorf("A stayed on %v", sa.Local)
	}
	p.checkTraffic()
}

// TestFragmentation: a large IKE_AUTH crosses a small path MTU in RFC 7383
// fragments, both ways, with a fragment lost on the way.
func TestFragmentation(t *testing.T) {
	many := func(base string) []ike.TrafficSelector {
		var ts []ike.TrafficSelector
		for i := range 60 {
			ts = append(ts, ike.TrafficSelector{TS: ike.PrefixTS(netip.MustParsePrefix(fmt.Sprintf(base, i)))})
		}
		return ts
	}
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.FragmentMTU, b.FragmentMTU = 576, 576
		a.Connections[0].Children[0].LocalTS = many("10.1.%d.0/24")
		a.Connections[0].Children[0].RemoteTS = many("10.2.%d.0/24")
		b.Connections[0].Children[0].LocalTS = many("10.2.%d.0/24")
		b.Connections[0].Children[0].RemoteTS = many("10.1.%d.0/24")
	}})
	lost := false
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		if _, first, ok := d.IKE(); ok && first == message.PayloadSKF && !lost {
			lost = true
			return iketest.Drop
		}
		if len(d.Data) > 576-28 {
			t.Errorf("datagram of %d octets exceeds the MTU", len(d.Data))
		}
		return iketest.Deliver
	}
	p.up(p.a, "gw", "net")
	s := p.established(p.a, 1)
	if len(s.Children[0].LocalTS) != 60 {
		t.Errorf("%d selectors", len(s.Children[0].LocalTS))
	}
	sa, sb := p.a.M.Stats(), p.b.M.Stats()
	if sa.FragmentsSent == 0 || sb.FragmentsSent == 0 || sa.FragmentsReceived == 0 || sb.FragmentsReceived == 0 {
		t.Errorf("fragments A %d/%d, B %d/%d", sa.FragmentsSent, sa.FragmentsReceived, sb.FragmentsSent, sb.FragmentsReceived)
	}
	p.checkTraffic()
}

func TestChildless(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Childless = ike.ChildlessForce }})
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	p.established(p.b, 1)
	if n := p.a.M.Stats().Out[2][0]; n != 1 {
		t.Errorf("%d CREATE_CHILD_SA requests; the child must come that way", n)
	}
	p.checkTraffic()
}

// TestChildlessNoChildren: A has no children at all and brings up a
// childless IKE SA; B's attempt to add one finds no configuration at A.
func TestChildlessNoChildren(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].Children = nil }})
	done := false
	if err := p.a.M.Up("gw", "", func(err error) {
		if err != nil {
			t.Error(err)
		}
		done = true
	}); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	if !done {
		t.Fatal("up did not finish")
	}
	p.established(p.a, 0)
	p.established(p.b, 0)
	var result error
	p.b.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyTSUnacceptable) {
		t.Errorf("B's child: %v, want TS_UNACCEPTABLE", result)
	}
	p.established(p.a, 0)
}

func TestChildlessRefused(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Childless = ike.ChildlessForce
		a.Connections[0].KeyingTries = 1
		b.Connections[0].Childless = ike.ChildlessNever
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	// B does not announce support, so A creates the child in IKE_AUTH.
	if result != nil {
		t.Fatalf("up: %v", result)
	}
	p.established(p.a, 1)
}

// TestVirtualIP: A asks for an address; B assigns one from its pool with
// DNS servers, and the Child SA narrows to it.
func TestVirtualIP(t *testing.T) {
	pool := &ike.Pool{Name: "clients", First: netip.MustParseAddr("10.9.0.1"), Last: netip.MustParseAddr("10.9.0.254"),
		DNS: []netip.Addr{netip.MustParseAddr("10.9.0.53")}}
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].VIPs = []netip.Addr{netip.IPv4Unspecified()}
		a.Connections[0].Children[0].LocalTS = []ike.TrafficSelector{{Dynamic: true}}
		b.Pools = []*ike.Pool{pool}
		b.Connections[0].Pools = []string{"clients"}
		b.Connections[0].Children[0].RemoteTS = []ike.TrafficSelector{{Dynamic: true}}
	}})
	p.up(p.a, "gw", "net")
	sa, sb := p.established(p.a, 1), p.established(p.b, 1)
	want := netip.MustParseAddr("10.9.0.1")
	if len(sa.VIPs) != 1 || sa.VIPs[0] != want || len(sb.Leases) != 1 || sb.Leases[0] != want {
		t.Fatalf("VIPs %v, leases %v", sa.VIPs, sb.Leases)
	}
	if got := sa.Children[0].LocalTS; len(got) != 1 || got[0].String() != "10.9.0.1" {
		t.Errorf("A's local selectors %v", got)
	}
	if got := sb.Children[0].RemoteTS; len(got) != 1 || got[0].String() != "10.9.0.1" {
		t.Errorf("B's remote selectors %v", got)
	}
	p.checkTraffic()
	// Rekeys keep the narrowed selectors.
	p.a.M.Rekey("gw", "net")
	p.net.Settle(time.Minute)
	if got := p.established(p.a, 1).Children[0].LocalTS; len(got) != 1 || got[0].String() != "10.9.0.1" {
		t.Errorf("after the rekey: %v", got)
	}
	// The lease ends with the IKE SA.
	p.a.M.Down("gw", nil)
	p.net.Settle(time.Minute)
	p.up(p.a, "gw", "net")
	if sa := p.established(p.a, 1); len(sa.VIPs) != 1 || sa.VIPs[0] != want {
		t.Errorf("second lease %v; the identity should get its address back", sa.VIPs)
	}
}

// TestNarrowing: B narrows A's wide selectors to its own (RFC 7296 §2.9).
func TestNarrowing(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Children[0].LocalTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("192.168.0.0/16"))}}
		a.Connections[0].Children[0].RemoteTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("10.0.0.0/8"))}}
		b.Connections[0].Children[0].LocalTS = []ike.TrafficSelector{{TS: ike.TS{Proto: 6, From: netip.MustParseAddr("10.1.0.0"),
			To: netip.MustParseAddr("10.1.255.255"), FromPort: 443, ToPort: 443}}}
		b.Connections[0].Children[0].RemoteTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("192.168.1.0/24"))}}
	}})
	p.up(p.a, "gw", "net")
	c := p.established(p.a, 1).Children[0]
	if fmt.Sprint(c.LocalTS) != "[192.168.1.0/24]" || fmt.Sprint(c.RemoteTS) != "[10.1.0.0/16[tcp/443]]" {
		t.Errorf("narrowed to %v === %v", c.LocalTS, c.RemoteTS)
	}
	p.checkTraffic()
}

func TestTSUnacceptable(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		b.Connections[0].Children[0].RemoteTS = []ike.TrafficSelector{{TS: ike.PrefixTS(netip.MustParsePrefix("172.16.0.0/12"))}}
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyTSUnacceptable) {
		t.Errorf("up: %v, want TS_UNACCEPTABLE", result)
	}
	p.established(p.a, 0)
}

func TestTransportMode(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		for _, c := range []*ike.Config{a, b} {
			ch := c.Connections[0].Children[0]
			ch.Mode = ike.ModeTransport
			ch.LocalTS = []ike.TrafficSelector{{Dynamic: true}}
			ch.RemoteTS = []ike.TrafficSelector{{Dynamic: true}}
		}
	}})
	p.up(p.a, "gw", "net")
	sa, sb := p.established(p.a, 1), p.established(p.b, 1)
	if sa.Children[0].Mode != ike.ModeTransport || sb.Children[0].Mode != ike.ModeTransport {
		t.Errorf("modes %v %v", sa.Children[0].Mode, sb.Children[0].Mode)
	}
	if fmt.Sprint(sa.Children[0].LocalTS) != "[203.0.113.1]" || fmt.Sprint(sa.Children[0].RemoteTS) != "[203.0.113.2]" {
		t.Errorf("selectors %v %v", sa.Children[0].LocalTS, sa.Children[0].RemoteTS)
	}
	p.checkTraffic()
	p.b.M.Rekey("gw", "net")
	p.net.Settle(time.Minute)
	if c := p.established(p.a, 1).Children[0]; c.Mode != ike.ModeTransport {
		t.Errorf("rekeyed into %v", c.Mode)
	}
}

// TestTransportRefused: A asks for transport mode, B only offers tunnel
// mode; B answers in tunnel mode and A refuses the Child SA.
func TestTransportRefused(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Children[0].Mode = ike.ModeTransport
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if result == nil {
		t.Error("A accepted a tunnel-mode answer to a transport-mode request")
	}
}

// TestInitialContact: A restarts and loses its state; its INITIAL_CONTACT
// makes B drop the old IKE SA at once.
func TestInitialContact(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	old := p.established(p.b, 1)
	ma, err := ike.New(p.ca, ike.Deps{Sender: p.net.Sender(), Installer: iketest.NewInstaller(0xc0000000), Clock: p.clock,
		Rand: iketest.Rand(9), Credentials: ike.StaticCredentials{PSKs: []ike.PSK{{Secret: psk}}}, Logger: testLogger(t, "A2")})
	if err != nil {
		t.Fatal(err)
	}
	p.a = p.net.Attach(addrA, ma, p.a.Installer)
	p.up(p.a, "gw", "net")
	now := p.established(p.b, 1)
	if now.SPIi == old.SPIi {
		t.Error("B kept the old IKE SA")
	}
	if st := p.b.M.Status(); len(st) != 1 {
		t.Errorf("B holds %s", describe(st))
	}
}

// TestChildlessRequired: a responder with childless = never refuses an
// IKE_AUTH without a Child SA.
func TestChildlessRequired(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Children = nil
		a.Connections[0].KeyingTries = 1
		b.Connections[0].Childless = ike.ChildlessNever
	}})
	// B does not announce CHILDLESS_IKEV2_SUPPORTED, so A cannot even try.
	var result error
	p.a.M.Up("gw", "", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if result == nil {
		t.Fatal("a childless IKE SA came up against childless = never")
	}
	if n := p.b.M.Stats().Established; n != 0 {
		t.Errorf("B established %d IKE SAs", n)
	}
}
