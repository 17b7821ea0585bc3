package ike_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
)

// watchTraffic checks after every network step that each side's current
// outbound SAs are installed inbound at the other: no packet is lost.
func (p *pair) watchTraffic() {
	p.net.AfterDeliver = func() {
		if err := iketest.CheckTraffic(p.ia, p.ib); err != nil {
			p.t.Fatalf("A->B at %v: %v", p.clock.Now(), err)
		}
		if err := iketest.CheckTraffic(p.ib, p.ia); err != nil {
			p.t.Fatalf("B->A at %v: %v", p.clock.Now(), err)
		}
	}
}

func childSPIs(s ike.IKESAStatus) (in, out uint32) {
	for _, c := range s.Children {
		if c.State == ike.ChildInstalled {
			return c.SPIIn, c.SPIOut
		}
	}
	return 0, 0
}

func TestChildRekey(t *testing.T) {
	for _, from := range []string{"A", "B"} {
		t.Run("from"+from, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			oldIn, oldOut := childSPIs(p.established(p.a, 1))
			p.watchTraffic()
			n := p.a
			if from == "B" {
				n = p.b
			}
			if err := n.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			newIn, newOut := childSPIs(p.established(p.a, 1))
			p.established(p.b, 1)
			if newIn == oldIn || newOut == oldOut {
				t.Errorf("SPIs unchanged: %08x/%08x", newIn, newOut)
			}
			if in, out := p.ia.Count(); in != 1 || out != 1 {
				t.Errorf("A holds %d/%d SAs after the rekey", in, out)
			}
			if in, out := p.ib.Count(); in != 1 || out != 1 {
				t.Errorf("B holds %d/%d SAs after the rekey", in, out)
			}
			p.checkTraffic()
			checkOrder(t, p.ia)
			checkOrder(t, p.ib)
			if len(p.ia.Policies) != 1 || len(p.ib.Policies) != 1 {
				t.Errorf("policies: %d, %d", len(p.ia.Policies), len(p.ib.Policies))
			}
		})
	}
}

// checkOrder verifies that every inbound SA deletion came after another
// inbound SA of its ReqID was installed: make before break.
func checkOrder(t *testing.T, inst *iketest.Installer) {
	t.Helper()
	live := map[uint32]int{}
	for _, op := range inst.Ops {
		if op.Key.Dir != ike.DirIn {
			continue
		}
		switch op.Kind {
		case iketest.OpAddSA:
			live[op.ReqID]++
		case iketest.OpDeleteSA:
			if live[op.ReqID]--; live[op.ReqID] == 0 {
				t.Errorf("last inbound SA of ReqID %d deleted (%v) during a rekey", op.ReqID, op.Key)
			}
		}
	}
}

func TestIKERekey(t *testing.T) {
	for _, from := range []string{"A", "B"} {
		t.Run("from"+from, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			old := p.established(p.a, 1)
			p.watchTraffic()
			n := p.a
			if from == "B" {
				n = p.b
			}
			if err := n.M.Rekey("gw", ""); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			na, nb := p.established(p.a, 1), p.established(p.b, 1)
			if na.SPIi == old.SPIi || na.SPIr == old.SPIr {
				t.Errorf("IKE SPIs unchanged")
			}
			if na.SPIi != nb.SPIi || na.SPIr != nb.SPIr {
				t.Errorf("peers disagree on the new SPIs")
			}
			if na.Initiator != (from == "A") {
				t.Errorf("A is initiator=%v of the new IKE SA; the rekey initiator must be", na.Initiator)
			}
			if st := p.a.M.Status(); len(st) != 1 {
				t.Errorf("A still holds %d IKE SAs: %s", len(st), describe(st))
			}
			if st := p.b.M.Status(); len(st) != 1 {
				t.Errorf("B still holds %d IKE SAs: %s", len(st), describe(st))
			}
			// The new IKE SA works: rekey the child over it.
			if err := p.b.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.established(p.a, 1)
			p.established(p.b, 1)
			p.checkTraffic()
		})
	}
}

// TestSimultaneousChildRekey rekeys the same Child SA from both sides at
// once (RFC 7296 §2.8.1): exactly one new SA pair survives, chosen by the
// nonces, and traffic flows at every step. Delays vary which side's
// messages arrive first.
func TestSimultaneousChildRekey(t *testing.T) {
	for seed := range 8 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			p.watchTraffic()
			n := 0
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				n++
				d.At = d.At.Add(time.Duration((n*7+seed*13)%11) * time.Millisecond)
				return iketest.Deliver
			}
			if err := p.a.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			if err := p.b.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.net.RunFor(time.Minute)
			sa, sb := p.established(p.a, 1), p.established(p.b, 1)
			ai, ao := childSPIs(sa)
			bi, bo := childSPIs(sb)
			if ai != bo || ao != bi {
				t.Fatalf("children do not pair: %s / %s", describe(p.a.M.Status()), describe(p.b.M.Status()))
			}
			if in, out := p.ia.Count(); in != 1 || out != 1 {
				t.Errorf("A holds %d/%d SAs: %s", in, out, describe(p.a.M.Status()))
			}
			if in, out := p.ib.Count(); in != 1 || out != 1 {
				t.Errorf("B holds %d/%d SAs: %s", in, out, describe(p.b.M.Status()))
			}
			p.checkTraffic()
		})
	}
}

// TestSimultaneousIKERekey rekeys the IKE SA from both sides at once
// (RFC 7296 §2.8.2).
func TestSimultaneousIKERekey(t *testing.T) {
	for seed := range 8 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			p.watchTraffic()
			n := 0
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				n++
				d.At = d.At.Add(time.Duration((n*5+seed*3)%9) * time.Millisecond)
				return iketest.Deliver
			}
			if err := p.a.M.Rekey("gw", ""); err != nil {
				t.Fatal(err)
			}
			if err := p.b.M.Rekey("gw", ""); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.net.RunFor(5 * time.Minute)
			sa, sb := p.established(p.a, 1), p.established(p.b, 1)
			if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
				t.Fatalf("different IKE SAs survived: %s / %s", describe(p.a.M.Status()), describe(p.b.M.Status()))
			}
			if st := p.a.M.Status(); len(st) != 1 {
				t.Errorf("A holds %d IKE SAs: %s", len(st), describe(st))
			}
			if st := p.b.M.Status(); len(st) != 1 {
				t.Errorf("B holds %d IKE SAs: %s", len(st), describe(st))
			}
			p.checkTraffic()
			// Still usable.
			if err := p.a.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.established(p.a, 1)
			p.established(p.b, 1)
		})
	}
}

// TestRekeyAgainstDelete: A rekeys the Child SA while B deletes it.
func TestRekeyAgainstDelete(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	if err := p.a.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	if err := p.b.M.DownChild("gw", "net", nil); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	p.net.RunFor(time.Minute)
	sa, sb := p.a.M.Status(), p.b.M.Status()
	if len(sa) != 1 || len(sb) != 1 || sa[0].State != ike.IKEEstablished || sb[0].State != ike.IKEEstablished {
		t.Fatalf("IKE SAs: %s / %s", describe(sa), describe(sb))
	}
	// Whatever survived must pair up.
	if len(sa[0].Children) != len(sb[0].Children) {
		t.Fatalf("children differ: %s / %s", describe(sa), describe(sb))
	}
	ia, oa := p.ia.Count()
	ib, ob := p.ib.Count()
	if ia != ob || ib != oa {
		t.Errorf("installed SAs do not pair: A %d/%d, B %d/%d", ia, oa, ib, ob)
	}
	p.checkTraffic()
}

func TestDelete(t *testing.T) {
	for _, from := range []string{"A", "B"} {
		t.Run("from"+from, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			n := p.a
			if from == "B" {
				n = p.b
			}
			done := false
			if err := n.M.Down("gw", func(error) { done = true }); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			if !done {
				t.Error("down did not finish")
			}
			for _, x := range []*iketest.Node{p.a, p.b} {
				if st := x.M.Status(); len(st) != 0 {
					t.Errorf("%v keeps %s", x.Addr, describe(st))
				}
				if in, out := x.Installer.Count(); in+out != 0 || len(x.Installer.Policies) != 0 {
					t.Errorf("%v keeps %d/%d SAs and %d policies", x.Addr, in, out, len(x.Installer.Policies))
				}
			}
		})
	}
}

func TestDeleteChild(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	if err := p.b.M.DownChild("gw", "net", nil); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	p.established(p.a, 0)
	p.established(p.b, 0)
	for _, x := range []*iketest.Node{p.a, p.b} {
		if in, out := x.Installer.Count(); in+out != 0 || len(x.Installer.Policies) != 0 {
			t.Errorf("%v keeps %d/%d SAs and %d policies", x.Addr, in, out, len(x.Installer.Policies))
		}
	}
	// The IKE SA carries a new Child SA.
	p.up(p.b, "gw", "net")
	p.established(p.a, 1)
	p.checkTraffic()
}

// TestDPD: B stops answering; A's liveness check finds it dead after
// dpd_delay plus the retransmissions, deletes the SAs and, with
// dpd_action = restart, initiates again when B is back.
func TestDPD(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].DPDDelay = 10 * time.Second
		a.Connections[0].Children[0].DPDAction = ike.ActionStart
	}})
	p.up(p.a, "gw", "net")
	dead := true
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		if dead && (d.From.Addr() == addrB || d.To.Addr() == addrB) {
			return iketest.Drop
		}
		return iketest.Deliver
	}
	start := p.clock.Now()
	if !p.net.RunUntil(10*time.Minute, func() bool { return p.a.M.Stats().PeersDead == 1 }) {
		t.Fatal("A never found B dead")
	}
	took := p.clock.Now().Sub(start)
	if took < 10*time.Second+165*time.Second-time.Second || took > 10*time.Second+170*time.Second {
		t.Errorf("dead after %v, want dpd_delay + 165 s", took)
	}
	if in, out := p.ia.Count(); in+out != 0 {
		t.Errorf("A keeps %d/%d SAs of a dead peer", in, out)
	}
	// B lost its state too (rebooted) and comes back.
	dead = false
	p.b.M.Shutdown(nil)
	p.net.RunFor(3 * time.Minute)
	p.established(p.a, 1)
	p.established(p.b, 1)
	p.checkTraffic()
}

// TestDPDTimeout bounds retransmission with dpd_timeout.
func TestDPDTimeout(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].DPDDelay = 5 * time.Second
		a.Connections[0].DPDTimeout = 20 * time.Second
	}})
	p.up(p.a, "gw", "net")
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict { return iketest.Drop }
	start := p.clock.Now()
	if !p.net.RunUntil(10*time.Minute, func() bool { return p.a.M.Stats().PeersDead == 1 }) {
		t.Fatal("A never found B dead")
	}
	if took := p.clock.Now().Sub(start); took > 5*time.Second+20*time.Second+time.Millisecond {
		t.Errorf("dead after %v, dpd_timeout is 20 s", took)
	}
}

// TestRekeyTimers: rekey_time and its jitter drive rekeys on their own.
func TestRekeyTimers(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		for _, c := range []*ike.Config{a, b} {
			c.Connections[0].RekeyTime = 30 * time.Minute
			c.Connections[0].RandTime = 3 * time.Minute
			ch := c.Connections[0].Children[0]
			ch.RekeyTime, ch.RandTime, ch.LifeTime = 10*time.Minute, time.Minute, 11*time.Minute
		}
	}})
	p.up(p.a, "gw", "net")
	p.watchTraffic()
	p.net.RunFor(2 * time.Hour)
	p.established(p.a, 1)
	p.established(p.b, 1)
	sa, sb := p.a.M.Stats(), p.b.M.Stats()
	rekeys := sa.Out[2][0] + sb.Out[2][0] // CREATE_CHILD_SA requests
	if rekeys < 14 {
		t.Errorf("%d CREATE_CHILD_SA requests in 2 h with 10 min child and 30 min IKE rekeys", rekeys)
	}
	if sa.ChildTransitions[ike.ChildRekeyed]+sb.ChildTransitions[ike.ChildRekeyed] < 11 {
		t.Errorf("child rekeys: %d + %d", sa.ChildTransitions[ike.ChildRekeyed], sb.ChildTransitions[ike.ChildRekeyed])
	}
}
