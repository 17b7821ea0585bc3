package ikee2e

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"github.com/bitw-dev/bitw/test/e2e/harness"
)

const testPSK = "bitw-e2e-lab-psk-not-a-secret-0123456789"

var tools = []string{"charon-systemd", "swanctl", "ping", "ip"}

// The IKE proposals of the issue, each negotiated in both roles.
var ikeProposals = []string{
	"aes128-sha256-modp3072",
	"aes256-sha384-ecp384",
	"aes128gcm16-prfsha256-x25519",
	"chacha20poly1305-prfsha256-ecp256",
	"aes128ccm16-prfsha256-ecp256",
	"aes128-aesxcbc-modp3072",
}

// setup is one bitw-against-strongSwan topology.
type setup struct {
	t    *testing.T
	topo *harness.Topology
	sw   *harness.StrongSwan
	bw   *bitwPeer
}

type opts struct {
	ikeProp, espProp string
	nat              bool
	pki              *harness.PKI
	bitwID, swID     *harness.Identity
	site             func(*harness.SiteToSite)
	conn             func(*ike.Connection)
}

func parse(t *testing.T, s string, proto proposal.Protocol) []proposal.Proposal {
	t.Helper()
	p, err := proposal.Parse(s, proto)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newSetup(t *testing.T, o opts) *setup {
	harness.RequireE2E(t, tools...)
	if o.ikeProp == "" {
		o.ikeProp = "aes128gcm16-prfsha256-x25519"
	}
	if o.espProp == "" {
		o.espProp = "aes128gcm16"
	}
	s := &setup{t: t}
	s.topo = harness.NewTopology(t, harness.Options{A: harness.StrongSwanGateway, B: harness.StrongSwanGateway, NAT: o.nat})
	site := harness.SiteToSite{Proposals: []string{o.ikeProp}, ESPProposals: []string{o.espProp}, PSK: testPSK}
	if o.pki != nil {
		site.PKI, site.Identity = o.pki, o.swID
	}
	if o.site != nil {
		o.site(&site)
	}
	s.sw = harness.StartStrongSwan(t, s.topo.GwB.NS, s.topo.GwB.SwanctlConfig(site), nil)

	g := s.topo.GwA
	conn := &ike.Connection{
		Name:          harness.DefaultConnName,
		LocalAddrs:    []netip.Addr{g.Black4.Addr()},
		RemoteAddrs:   []ike.AddrRange{{From: g.Peer4, To: g.Peer4}},
		Proposals:     parse(t, o.ikeProp, proposal.ProtoIKE),
		Fragmentation: ike.FragmentYes,
		KeyingTries:   1,
		Local:         ike.AuthConfig{Method: ike.AuthPSK, ID: ike.FQDNIdentity(g.ID())},
		Remote:        ike.AuthConfig{Method: ike.AuthPSK, ID: ike.FQDNIdentity(g.PeerID())},
		Children: []*ike.Child{{
			Name:      harness.DefaultChildName,
			LocalTS:   []ike.TrafficSelector{{TS: ike.PrefixTS(g.LocalNet4)}},
			RemoteTS:  []ike.TrafficSelector{{TS: ike.PrefixTS(g.RemoteNet4)}},
			Proposals: parse(t, o.espProp, proposal.ProtoESP),
			CopyDF:    true, CopyECN: true,
		}},
	}
	var creds ike.Credentials = ike.StaticCredentials{PSKs: []ike.PSK{{Secret: []byte(testPSK)}}}
	if o.pki != nil {
		key, err := auth.ParsePrivateKeyPEM(o.bitwID.KeyPEM, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Local = ike.AuthConfig{Method: ike.AuthPubkey, ID: ike.FQDNIdentity(g.ID()), Certs: []*x509.Certificate{o.bitwID.Cert}}
		conn.Remote = ike.AuthConfig{Method: ike.AuthPubkey, ID: ike.FQDNIdentity(g.PeerID()), CACerts: []*x509.Certificate{o.pki.Cert}}
		conn.SendCertReq = true
		creds = ike.StaticCredentials{Keys: []crypto.Signer{key}}
	}
	if o.conn != nil {
		o.conn(conn)
	}
	s.bw = startBitw(t, g, ike.Config{Connections: []*ike.Connection{conn}, RetransmitTimeout: 2 * time.Second}, creds)
	return s
}

// establish brings the tunnel up from bitw (initiator) or strongSwan.
func (s *setup) establish(bitwInitiates bool) (ike.IKESAStatus, harness.IKESA) {
	s.t.Helper()
	if bitwInitiates {
		if err := s.bw.up(harness.DefaultConnName, harness.DefaultChildName, 20*time.Second); err != nil {
			s.t.Fatal(err)
		}
	} else if err := s.sw.Initiate(harness.DefaultChildName, 20*time.Second); err != nil {
		s.t.Fatal(err)
	}
	return s.check(bitwInitiates)
}

// check compares both sides' views of the one IKE SA and Child SA, the
// keys they derived, and sends pings through the tunnel.
func (s *setup) check(bitwInitiator bool) (ike.IKESAStatus, harness.IKESA) {
	s.t.Helper()
	b := s.bw.waitEstablished(1, 20*time.Second)
	swSA, swChild, err := s.sw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 20*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	if b.Initiator != bitwInitiator || swSA.Initiator == bitwInitiator {
		s.t.Errorf("roles: bitw initiator=%v, strongSwan initiator=%v", b.Initiator, swSA.Initiator)
	}
	if got := fmt.Sprintf("%016x", b.SPIi); got != swSA.SPIi {
		s.t.Errorf("SPIi: bitw %s, strongSwan %s", got, swSA.SPIi)
	}
	if got := fmt.Sprintf("%016x", b.SPIr); got != swSA.SPIr {
		s.t.Errorf("SPIr: bitw %s, strongSwan %s", got, swSA.SPIr)
	}
	c := b.Children[0]
	if got := fmt.Sprintf("%08x", c.SPIIn); got != swChild.SPIOut {
		s.t.Errorf("inbound SPI %s, strongSwan sends to %s", got, swChild.SPIOut)
	}
	if got := fmt.Sprintf("%08x", c.SPIOut); got != swChild.SPIIn {
		s.t.Errorf("outbound SPI %s, strongSwan receives on %s", got, swChild.SPIIn)
	}
	if !c.Encap || !swChild.Encap {
		s.t.Errorf("encapsulation: bitw %v, strongSwan %v (kernel-libipsec always encapsulates)", c.Encap, swChild.Encap)
	}
	s.checkKeys(b)
	s.topo.HostA.NS.MustPing(s.t, s.topo.HostB.Addr4, 3)
	return b, swSA
}

// checkKeys compares the keys bitw derived (its key hook) with those
// charon logged for the same SPIs.
func (s *setup) checkKeys(b ike.IKESAStatus) {
	s.t.Helper()
	ks, err := s.sw.Keys()
	if err != nil {
		s.t.Fatal(err)
	}
	s.bw.keys.mu.Lock()
	defer s.bw.keys.mu.Unlock()
	c := b.Children[0]
	matched := 0
	for _, e := range ks.ESP {
		ours, ok := s.bw.keys.child[e.SPI]
		if !ok || (e.SPI != c.SPIIn && e.SPI != c.SPIOut) {
			continue
		}
		if !bytes.Equal(ours.EncKey, e.EncrKey) || !bytes.Equal(ours.IntegKey, e.IntegKey) {
			s.t.Errorf("ESP SA %08x: keys differ from charon's", e.SPI)
		}
		matched++
	}
	if matched != 2 {
		s.t.Errorf("charon's log gave keys for %d of the 2 ESP SAs", matched)
	}
	var spii, spir [8]byte
	binary.BigEndian.PutUint64(spii[:], b.SPIi)
	binary.BigEndian.PutUint64(spir[:], b.SPIr)
	for _, k := range ks.IKE {
		if k.SPIi != spii || k.SPIr != spir {
			continue
		}
		for _, ours := range s.bw.keys.ike {
			if ours.SPIi == b.SPIi && ours.SPIr == b.SPIr {
				if !bytes.Equal(ours.SKei, k.SKei) || !bytes.Equal(ours.SKer, k.SKer) ||
					!bytes.Equal(ours.SKai, k.SKai) || !bytes.Equal(ours.SKar, k.SKar) {
					s.t.Error("IKE SA keys differ from charon's")
				}
				return
			}
		}
	}
	s.t.Error("no IKE SA keys to compare")
}

func TestInteropProposals(t *testing.T) {
	harness.RequireE2E(t, tools...)
	for _, prop := range ikeProposals {
		for _, bitwInit := range []bool{true, false} {
			role := "bitw-initiator"
			if !bitwInit {
				role = "bitw-responder"
			}
			t.Run(prop+"/"+role, func(t *testing.T) {
				s := newSetup(t, opts{ikeProp: prop})
				b, sw := s.establish(bitwInit)
				if want := parse(t, prop, proposal.ProtoIKE)[0].String(); b.Proposal != want {
					t.Errorf("bitw negotiated %q, want %q", b.Proposal, want)
				}
				if sw.State != "ESTABLISHED" {
					t.Errorf("strongSwan: %s", sw.State)
				}
			})
		}
	}
}

func TestInteropCertificates(t *testing.T) {
	harness.RequireE2E(t, tools...)
	for _, kt := range []harness.KeyType{harness.ECDSAP256, harness.RSA2048} {
		for _, bitwInit := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v/initiator=%v", kt, bitwInit), func(t *testing.T) {
				harness.RequireE2E(t, tools...)
				pki := harness.NewPKI(t, "bitw e2e CA")
				a := pki.Issue(t, "gw-a", kt, []string{"gw-a.example"}, nil)
				b := pki.Issue(t, "gw-b", kt, []string{"gw-b.example"}, nil)
				s := newSetup(t, opts{pki: pki, bitwID: a, swID: b})
				st, _ := s.establish(bitwInit)
				if st.RemoteID != "gw-b.example" {
					t.Errorf("authenticated %q", st.RemoteID)
				}
				t.Logf("AUTH methods: bitw %v, strongSwan %v", st.LocalAuth, st.RemoteAuth)
			})
		}
	}
}

// TestInteropRekey rekeys the Child SA and the IKE SA from each side
// while a ping runs through the tunnel: nothing may be lost.
func TestInteropRekey(t *testing.T) {
	s := newSetup(t, opts{})
	b0, _ := s.establish(true)
	s.rekeyBothWays(b0)
}

// TestInteropAddKEFallback: bitw proposes ML-KEM-768 as an additional key
// exchange (IKE and ESP proposals "...-x25519-ke1_mlkem768" first, the same
// without ML-KEM second) to strongSwan 5.9, which knows neither ADDKE
// transforms nor IKE_FOLLOWUP_KE and refuses a proposal carrying them.
// Proposal selection falls back to the second proposal (RFC 9370 §2.2.1)
// when the SAs are set up and on every rekey, from either side, with PFS
// on the Child SA rekeys, and no IKE_FOLLOWUP_KE is ever sent.
func TestInteropAddKEFallback(t *testing.T) {
	harness.RequireE2E(t, tools...)
	const swIKE, swESP = "aes256gcm16-prfsha384-x25519", "aes256gcm16-x25519"
	for _, bitwInit := range []bool{true, false} {
		t.Run(fmt.Sprintf("bitw-initiator=%v", bitwInit), func(t *testing.T) {
			s := newSetup(t, opts{ikeProp: swIKE, espProp: swESP, conn: func(c *ike.Connection) {
				c.Proposals = append(parse(t, swIKE+"-ke1_mlkem768", proposal.ProtoIKE), c.Proposals...)
				ch := c.Children[0]
				ch.Proposals = append(parse(t, swESP+"-ke1_mlkem768", proposal.ProtoESP), ch.Proposals...)
			}})
			b0, _ := s.establish(bitwInit)
			if b0.Proposal != swIKE {
				t.Errorf("IKE SA: %s", b0.Proposal)
			}
			b := s.rekeyBothWays(b0)
			if b.Proposal != swIKE || b.Children[0].Proposal != swESP {
				t.Errorf("after the rekeys: IKE SA %s, Child SA %s, want %s and %s", b.Proposal, b.Children[0].Proposal,
					swIKE, swESP)
			}
			st := s.bw.stats()
			if n := st.Out[followupSlot()][0] + st.In[followupSlot()][0]; n != 0 {
				t.Errorf("%d IKE_FOLLOWUP_KE requests", n)
			}
			if len(st.ErrorNotifies) != 0 {
				t.Errorf("error notifies: %v", st.ErrorNotifies)
			}
			// charon saw ML-KEM (transform type 6, ID 36) in bitw's
			// proposals, at least in bitw's two rekeys, and chose around
			// it.
			log, err := os.ReadFile(s.sw.LogPath)
			if err != nil {
				t.Fatal(err)
			}
			offered := 0
			for _, l := range strings.Split(string(log), "\n") {
				if strings.Contains(l, "received proposals:") && strings.Contains(l, "UNKNOWN_6_36") {
					offered++
				}
			}
			if offered < 2 {
				t.Errorf("charon's log shows ML-KEM in %d received proposals", offered)
			}
		})
	}
}

// followupSlot is the Stats slot of IKE_FOLLOWUP_KE.
func followupSlot() int {
	for i := range ike.NumExchangeSlots {
		if ike.ExchangeOfSlot(i) == "IKE_FOLLOWUP_KE" {
			return i
		}
	}
	panic("no IKE_FOLLOWUP_KE slot")
}

// rekeyBothWays rekeys the Child SA and the IKE SA from each side while a
// ping runs through the tunnel, checks each step with check, and fails if
// a single ping is lost. It returns bitw's view at the end.
func (s *setup) rekeyBothWays(b0 ike.IKESAStatus) ike.IKESAStatus {
	t := s.t
	t.Helper()
	pings := make(chan harness.PingResult, 1)
	go func() {
		r, err := s.topo.HostA.NS.Ping(s.topo.HostB.Addr4, 60, 250*time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		pings <- r
	}()
	prev := b0
	for _, step := range []struct {
		name string
		do   func()
		ike  bool
	}{
		{"child from bitw", func() { s.bw.do(func(m *ike.Manager) { m.Rekey(harness.DefaultConnName, harness.DefaultChildName) }) }, false},
		{"child from strongSwan", func() {
			if err := s.sw.RekeyChild(harness.DefaultChildName); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"IKE from bitw", func() { s.bw.do(func(m *ike.Manager) { m.Rekey(harness.DefaultConnName, "") }) }, true},
		{"IKE from strongSwan", func() {
			if err := s.sw.RekeyIKE(harness.DefaultConnName); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		time.Sleep(2 * time.Second)
		step.do()
		err := harness.WaitFor(15*time.Second, step.name, func() (bool, error) {
			st := s.bw.status()
			if len(st) != 1 || st[0].State != ike.IKEEstablished || len(st[0].Children) != 1 || st[0].Children[0].State != ike.ChildInstalled {
				return false, nil
			}
			if step.ike {
				return st[0].SPIi != prev.SPIi, nil
			}
			return st[0].Children[0].SPIIn != prev.Children[0].SPIIn, nil
		})
		if err != nil {
			t.Fatalf("%v: bitw holds %s", err, describe(s.bw.status()))
		}
		// The rekey's initiator is the new IKE SA's original initiator
		// (RFC 7296 §2.18).
		initiator := prev.Initiator
		if step.ike {
			initiator = strings.HasSuffix(step.name, "bitw")
		}
		b, _ := s.check(initiator)
		if step.ike && b.Children[0].SPIIn != prev.Children[0].SPIIn {
			t.Errorf("%s: the IKE rekey changed the Child SA", step.name)
		}
		t.Logf("%s: IKE %016x/%016x %s, child %08x/%08x %s", step.name, b.SPIi, b.SPIr, b.Proposal,
			b.Children[0].SPIIn, b.Children[0].SPIOut, b.Children[0].Proposal)
		prev = b
	}
	r := <-pings
	t.Logf("ping during rekeys: %d sent, %d received", r.Transmitted, r.Received)
	if r.Transmitted != r.Received || r.Received < 60 {
		t.Errorf("lost %d of %d pings across the rekeys", r.Transmitted-r.Received, r.Transmitted)
	}
	if s := s.bw.stats(); s.InvalidTransitions != 0 || s.InstallErrors != 0 {
		t.Errorf("invalid transitions %d, install errors %d", s.InvalidTransitions, s.InstallErrors)
	}
	return prev
}

func TestInteropDelete(t *testing.T) {
	for _, fromBitw := range []bool{true, false} {
		t.Run(fmt.Sprintf("from-bitw=%v", fromBitw), func(t *testing.T) {
			s := newSetup(t, opts{})
			s.establish(!fromBitw)
			if fromBitw {
				done := make(chan error, 1)
				s.bw.do(func(m *ike.Manager) { m.Down(harness.DefaultConnName, func(err error) { done <- err }) })
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			} else if err := s.sw.Terminate(harness.DefaultConnName, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			err := harness.WaitFor(10*time.Second, "both sides empty", func() (bool, error) {
				sas, err := s.sw.ListSAs()
				return err == nil && len(sas) == 0 && len(s.bw.status()) == 0, err
			})
			if err != nil {
				t.Fatalf("%v: bitw %s", err, describe(s.bw.status()))
			}
			if n := len(s.bw.dp.e.SAs()); n != 0 {
				t.Errorf("the data plane keeps %d SAs", n)
			}
			if n := len(s.bw.dp.e.Policies()); n != 0 {
				t.Errorf("the data plane keeps %d policies", n)
			}
		})
	}
}

// TestInteropDPD kills charon; bitw's liveness checks find it dead.
func TestInteropDPD(t *testing.T) {
	s := newSetup(t, opts{conn: func(c *ike.Connection) {
		c.DPDDelay = 2 * time.Second
		c.DPDTimeout = 8 * time.Second
	}})
	s.establish(true)
	if err := s.sw.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := harness.WaitFor(30*time.Second, "bitw finds the peer dead", func() (bool, error) {
		return s.bw.stats().PeersDead == 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peer found dead after %v", time.Since(start).Round(100*time.Millisecond))
	if st := s.bw.status(); len(st) != 0 {
		t.Errorf("bitw keeps %s", describe(st))
	}
	if n := len(s.bw.dp.e.SAs()); n != 0 {
		t.Errorf("the data plane keeps %d SAs", n)
	}
}

// TestInteropNAT: strongSwan behind the masquerading router initiates;
// both sides find the NAT and float to 4500.
func TestInteropNAT(t *testing.T) {
	s := newSetup(t, opts{nat: true, conn: func(c *ike.Connection) { c.RemoteAddrs = nil }})
	b, sw := s.establish(false)
	if !b.NATRemote || !sw.NATLocal {
		t.Errorf("NAT seen: bitw remote %v, strongSwan local %v", b.NATRemote, sw.NATLocal)
	}
	if b.Local.Port() != ike.PortNATT || b.Remote.Port() == ike.PortIKE || sw.LocalPort != ike.PortNATT || sw.RemotePort != ike.PortNATT {
		t.Errorf("ports: bitw %v-%v, strongSwan %d-%d", b.Local, b.Remote, sw.LocalPort, sw.RemotePort)
	}
	if b.Remote.Addr() != harness.GwBBlack4.Addr() {
		t.Errorf("bitw sees the peer at %v", b.Remote)
	}
	// Rekey across the NAT from both sides.
	s.bw.do(func(m *ike.Manager) { m.Rekey(harness.DefaultConnName, harness.DefaultChildName) })
	time.Sleep(2 * time.Second)
	if err := s.sw.RekeyIKE(harness.DefaultConnName); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	s.check(false)
	if n := s.bw.stats().KeepalivesSent; n != 0 {
		t.Errorf("bitw, not behind the NAT, sent %d keepalives", n)
	}
}
