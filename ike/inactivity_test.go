package ike_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
)

// children counts n's Child SAs in state (any IKE SA).
func children(n *iketest.Node, state ike.ChildState) int {
	k := 0
	for _, s := range n.M.Status() {
		for _, c := range s.Children {
			if c.State == state {
				k++
			}
		}
	}
	return k
}

// idleClosed holds once n has closed k Child SAs for inactivity.
func idleClosed(n *iketest.Node, k uint64) func() bool {
	return func() bool { return n.M.Stats().ChildrenIdle == k }
}

// TestInactivity: A closes a Child SA that carried no traffic in either
// direction for its inactivity time, counting from the last packet the
// data plane saw; its own close_action does not run (it answers the
// peer's DELETE), the IKE SA stays, and B sees an ordinary DELETE.
func TestInactivity(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.Inactivity = time.Minute
		ch.CloseAction = ike.ActionStart
	}})
	p.up(p.a, "gw", "net")
	start := p.clock.Now()
	c := p.established(p.a, 1).Children[0]

	// Traffic in at 30 s, out at 50 s: idle from 50 s, closed at 110 s.
	p.net.RunFor(30 * time.Second)
	p.ia.Use(c.InSA, p.clock.Now())
	p.net.RunFor(20 * time.Second)
	p.ia.Use(c.OutSA, p.clock.Now())
	p.net.RunUntil(time.Hour, idleClosed(p.a, 1))
	if idle := p.clock.Now().Sub(start); idle < 110*time.Second || idle > 111*time.Second {
		t.Errorf("closed %v after the Child SA came up, want 110 s (60 s after the last packet)", idle)
	}
	p.net.RunFor(10 * time.Minute)
	p.established(p.a, 0)
	p.established(p.b, 0)
	if n := p.a.M.Stats().ChildrenIdle; n != 1 {
		t.Errorf("ChildrenIdle = %d", n)
	}
	if in, out := p.ia.Count(); in+out != 0 {
		t.Errorf("A's data plane still holds %d+%d SAs", in, out)
	}
}

// TestInactivityPeerCloseAction: the DELETE for an idle Child SA is the
// peer's to act on, as from strongSwan: with close_action = start it
// brings the Child SA back at once.
func TestInactivityPeerCloseAction(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Children[0].Inactivity = time.Minute
		b.Connections[0].Children[0].CloseAction = ike.ActionStart
	}})
	p.up(p.a, "gw", "net")
	first := p.established(p.a, 1).Children[0]
	p.net.RunUntil(time.Hour, func() bool { return p.a.M.Stats().ChildrenIdle == 1 })
	p.net.RunUntil(time.Minute, func() bool { return children(p.a, ike.ChildInstalled) == 1 })
	p.net.Settle(time.Minute)
	again := p.established(p.a, 1).Children[0]
	p.established(p.b, 1)
	if again.SPIIn == first.SPIIn {
		t.Error("the same Child SA")
	}
	p.checkTraffic()
}

// TestInactivityTrap: an idle Child SA of a trapped child goes, its trap
// stays, and the next packet brings it back.
func TestInactivityTrap(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.StartAction, ch.Inactivity = ike.ActionTrap, 5*time.Minute
	}})
	if err := p.a.M.Start(); err != nil {
		t.Fatal(err)
	}
	var reqID uint32
	for _, pol := range p.ia.Policies {
		reqID = pol.ReqID
	}
	acquire := func() {
		p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventAcquire, ReqID: reqID, Src: addrA, Dst: addrB})
		p.net.Settle(time.Minute)
		p.established(p.a, 1)
	}
	acquire()
	p.net.RunUntil(time.Hour, idleClosed(p.a, 1))
	p.net.Settle(time.Minute)
	p.established(p.a, 0)
	if len(p.ia.Policies) != 1 {
		t.Fatalf("%d policies after the idle Child SA went, want the trap", len(p.ia.Policies))
	}
	for _, pol := range p.ia.Policies {
		if !pol.Acquire {
			t.Errorf("policy %+v is no trap", pol)
		}
	}
	acquire()
	p.checkTraffic()
}

// TestInactivityAcrossRekeys: a rekey is not traffic. The replacing SA
// inherits the idle time, so an idle tunnel that rekeys more often than
// its inactivity time still closes on time.
func TestInactivityAcrossRekeys(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.RekeyTime, ch.LifeTime, ch.Inactivity = 40*time.Second, 50*time.Second, 100*time.Second
	}})
	p.up(p.a, "gw", "net")
	start := p.clock.Now()
	first := p.established(p.a, 1).Children[0]
	p.net.RunFor(30 * time.Second)
	p.ia.Use(first.InSA, p.clock.Now())
	// Rekeyed at 40 s and 80 s; idle since 30 s, so closed at 130 s.
	p.net.RunFor(95 * time.Second)
	c := p.established(p.a, 1).Children[0]
	if c.SPIIn == first.SPIIn {
		t.Fatal("no rekey happened")
	}
	p.net.RunUntil(time.Hour, idleClosed(p.a, 1))
	if d := p.clock.Now().Sub(start); d < 130*time.Second || d > 131*time.Second {
		t.Errorf("closed %v after the first Child SA came up, want 130 s", d)
	}
	// Traffic on a rekeyed SA counts like any other.
	p.up(p.a, "gw", "net")
	start = p.clock.Now()
	c = p.established(p.a, 1).Children[0]
	p.net.RunFor(45 * time.Second) // rekeyed at 40 s
	c2 := p.established(p.a, 1).Children[0]
	if c2.SPIIn == c.SPIIn {
		t.Fatal("no rekey happened")
	}
	p.ia.Use(c2.OutSA, p.clock.Now())
	p.net.RunUntil(time.Hour, idleClosed(p.a, 2))
	if d := p.clock.Now().Sub(start); d < 145*time.Second || d > 146*time.Second {
		t.Errorf("closed %v after the Child SA came up, want 145 s", d)
	}
}

// noUsage is an Installer that cannot report SA use.
type noUsage struct{ ike.Installer }

func TestInactivityNeedsUsage(t *testing.T) {
	conn := siteConn(t, addrA, addrB, netA, netB, "aes128gcm16-prfsha256-x25519", "aes128gcm16")
	conn.Children[0].Inactivity = time.Minute
	net := iketest.NewNetwork(iketest.NewClock())
	_, err := ike.New(ike.Config{Connections: []*ike.Connection{conn}}, ike.Deps{Sender: net.Sender(), Installer: noUsage{iketest.NewInstaller(1)}})
	if err == nil || !strings.Contains(err.Error(), "SAUsage") {
		t.Errorf("got %v", err)
	}
	conn.Children[0].Inactivity = -time.Second
	if _, err := ike.New(ike.Config{Connections: []*ike.Connection{conn}}, ike.Deps{Sender: net.Sender(), Installer: iketest.NewInstaller(1)}); err == nil {
		t.Error("negative inactivity accepted")
	}
}
