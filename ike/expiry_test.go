package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// requests counts the requests of an exchange that from sent since
// datagram since of the network's record (first transmissions and
// retransmissions alike).
func requests(n *iketest.Network, since int, from netip.Addr, x message.ExchangeType) int {
	k := 0
	for _, d := range n.Sent[since:] {
		if h, _, ok := d.IKE(); ok && d.From.Addr() == from && h.Exchange == x && !h.IsResponse() {
			k++
		}
	}
	return k
}

// policyOps counts the policy changes an installer saw since op since.
func policyOps(inst *iketest.Installer, since int) int {
	k := 0
	for _, o := range inst.Ops[since:] {
		if o.Kind == iketest.OpAddPolicy || o.Kind == iketest.OpDeletePolicy || o.Kind == iketest.OpUpdatePolicy {
			k++
		}
	}
	return k
}

// TestChildExpiryRecreates: a Child SA that reaches its hard lifetime (its
// life_time, or a hard limit of the data plane) is deleted with the peer;
// when its child's start_action is start, a CREATE_CHILD_SA then creates
// it afresh over the same IKE SA, under the same ReqID, with its policy
// in place throughout (traffic meanwhile meets a PROTECT entry without an
// SA and is dropped, not sent in clear). With start_action none it stays
// deleted.
func TestChildExpiryRecreates(t *testing.T) {
	const life = 10 * time.Minute
	for _, c := range []struct {
		name      string
		action    ike.Action
		dataPlane bool // the data plane's hard limit rather than IKE's life_time timer
	}{
		{"start", ike.ActionStart, false},
		{"start-data-plane", ike.ActionStart, true},
		{"none", ike.ActionNone, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
				ch := a.Connections[0].Children[0]
				ch.StartAction, ch.LifeTime = c.action, life
			}})
			p.up(p.a, "gw", "net")
			before := p.established(p.a, 1)
			first := before.Children[0]
			sent, ops := len(p.net.Sent), len(p.ia.Ops)
			if c.dataPlane {
				p.net.RunFor(time.Minute)
				p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventHardExpire, ReqID: first.ReqID, SA: first.OutSA})
				p.net.Settle(time.Minute)
			} else {
				p.net.RunFor(life + time.Minute)
			}
			if c.action != ike.ActionStart {
				p.established(p.a, 0)
				p.established(p.b, 0)
				if n := requests(p.net, sent, addrA, message.ExchangeCreateChildSA); n != 0 {
					t.Errorf("%d CREATE_CHILD_SA requests after the expiry", n)
				}
				return
			}
			s := p.established(p.a, 1)
			p.established(p.b, 1)
			again := s.Children[0]
			if s.SPIi != before.SPIi || again.SPIIn == first.SPIIn {
				t.Fatalf("want a new Child SA on the same IKE SA: before %s, after %s",
					describe([]ike.IKESAStatus{before}), describe([]ike.IKESAStatus{s}))
			}
			if n := requests(p.net, sent, addrA, message.ExchangeCreateChildSA); n != 1 {
				t.Errorf("%d CREATE_CHILD_SA requests, want 1", n)
			}
			if again.ReqID != first.ReqID {
				t.Errorf("recreated under ReqID %d, the expired one had %d", again.ReqID, first.ReqID)
			}
			if n := policyOps(p.ia, ops); n != 0 || len(p.ia.Policies) != 1 {
				t.Errorf("%d policy changes, %d policies: the policy must stay through the gap", n, len(p.ia.Policies))
			}
			p.checkTraffic()
		})
	}
}

// TestChildExpiryTrap: an expired Child SA of a trapped child is deleted
// and not recreated; its trap policy stays, so the next packet's acquire
// brings it back.
func TestChildExpiryTrap(t *testing.T) {
	const life = 10 * time.Minute
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.StartAction, ch.LifeTime = ike.ActionTrap, life
	}})
	if err := p.a.M.Start(); err != nil {
		t.Fatal(err)
	}
	var reqID uint32
	for _, pol := range p.ia.Policies {
		reqID = pol.ReqID
	}
	acquire := func() {
		t.Helper()
		p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventAcquire, ReqID: reqID,
			Src: netip.MustParseAddr("192.168.1.10"), Dst: netip.MustParseAddr("192.168.2.10")})
		p.net.Settle(time.Minute)
		if c := p.established(p.a, 1).Children[0]; c.ReqID != reqID {
			t.Errorf("Child SA under ReqID %d, the trap's is %d", c.ReqID, reqID)
		}
	}
	acquire()
	sent := len(p.net.Sent)
	p.net.RunFor(life + time.Minute)
	p.established(p.a, 0)
	if n := requests(p.net, sent, addrA, message.ExchangeCreateChildSA); n != 0 {
		t.Errorf("%d CREATE_CHILD_SA requests after the expiry: traffic should bring it back", n)
	}
	if len(p.ia.Policies) != 1 {
		t.Fatalf("%d policies after the expiry, want the trap", len(p.ia.Policies))
	}
	for _, pol := range p.ia.Policies {
		if !pol.Acquire || pol.ReqID != reqID {
			t.Errorf("policy %+v is not the trap (ReqID %d)", pol, reqID)
		}
	}
	acquire()
	p.checkTraffic()
}

// TestChildExpiryRefused: the rekeys of a start child keep being refused
// with TEMPORARY_FAILURE until its life_time; then the Child SA is
// deleted, and its recreation, refused as well, is retried with the rekey
// retries' backoff until the peer accepts it: here over the IKE SA that
// replaced the first meanwhile.
func TestChildExpiryRefused(t *testing.T) {
	const life = 150 * time.Second
	p, r := refusingPair(t, nil, func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.StartAction, ch.LifeTime = ike.ActionStart, life
	})
	installed := p.clock.Now()
	if err := p.b.M.Rekey("gw", ""); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Second)
	if err := p.a.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.RunUntil(life, func() bool { return children(p.a, ike.ChildDeleting) == 1 })
	expired := p.clock.Now()
	if d := expired.Sub(installed); d < life || d > life+time.Second {
		t.Fatalf("the Child SA went after %v, its life_time is %v", d, life)
	}
	rekeys := len(r.sent)
	p.net.RunFor(3 * time.Minute)
	tries := r.sent[rekeys:]
	if len(tries) < 5 {
		t.Fatalf("%d CREATE_CHILD_SA requests in 3 minutes after the expiry, want the recreation retried", len(tries))
	}
	if first := tries[0].Sub(expired); first > time.Second {
		t.Errorf("first recreation %v after the expiry, want at once after the DELETE", first)
	}
	retries := &rekeyAttempts{sent: tries}
	for _, at := range r.answered {
		if at.After(expired) {
			retries.answered = append(retries.answered, at)
		}
	}
	checkWindows(t, retries.waits())
	p.established(p.a, 0)
	// B's IKE SA rekey gets through: it stops refusing.
	p.net.Filter = nil
	p.net.RunFor(time.Minute)
	s := p.established(p.a, 1)
	p.established(p.b, 1)
	if s.SPIi == 0 || children(p.a, ike.ChildInstalled) != 1 {
		t.Fatalf("A: %s", describe(p.a.M.Status()))
	}
	if n := p.b.M.Stats().IKESAs; n != 1 {
		t.Errorf("B holds %d IKE SAs", n)
	}
	p.checkTraffic()
	t.Logf("recreation requests at %v after the expiry", since(expired, tries))
}

// TestChildExpiryOperatorDown: `down conn/child` while the expired Child
// SA's DELETE is in flight cancels its recreation: the operator's word
// wins over start_action.
func TestChildExpiryOperatorDown(t *testing.T) {
	const life = 10 * time.Minute
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ch := a.Connections[0].Children[0]
		ch.StartAction, ch.LifeTime = ike.ActionStart, life
	}})
	p.up(p.a, "gw", "net")
	if !p.net.RunUntil(life+time.Second, func() bool { return children(p.a, ike.ChildDeleting) == 1 }) {
		t.Fatal("the Child SA did not start deleting at its life_time")
	}
	var result error
	done := false
	if err := p.a.M.DownChild("gw", "net", func(err error) { result, done = err, true }); err != nil {
		t.Fatalf("down while the expired Child SA is deleted: %v", err)
	}
	p.net.RunFor(time.Minute)
	if !done || result != nil {
		t.Errorf("down: done %v, %v", done, result)
	}
	p.established(p.a, 0)
	p.established(p.b, 0)
}

// TestChildExpiryBothSides: both ends have the start child and reach its
// life_time at the same instant: the DELETEs cross, then the two
// recreations. Each end answers the other's and completes its own, and
// the one with the lowest nonce is deleted by its creator (as for a rekey
// collision, RFC 7296 §2.8.1), leaving one Child SA.
func TestChildExpiryBothSides(t *testing.T) {
	const life = 10 * time.Minute
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		ca, cb := a.Connections[0].Children[0], b.Connections[0].Children[0]
		ca.StartAction, ca.LifeTime = ike.ActionStart, life
		// B installed one network latency before A: both expire at
		// once.
		cb.StartAction, cb.LifeTime = ike.ActionStart, life+p0Latency
	}})
	p.up(p.a, "gw", "net")
	first := p.established(p.a, 1).Children[0]
	sent := len(p.net.Sent)
	p.net.RunFor(life + time.Minute)
	if a, b := requests(p.net, sent, addrA, message.ExchangeCreateChildSA), requests(p.net, sent, addrB, message.ExchangeCreateChildSA); a != 1 || b != 1 {
		t.Fatalf("CREATE_CHILD_SA requests: A %d, B %d; the scenario wants one each", a, b)
	}
	ca := p.established(p.a, 1).Children[0]
	cb := p.established(p.b, 1).Children[0]
	if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn || ca.SPIIn == first.SPIIn {
		t.Errorf("A %08x/%08x, B %08x/%08x", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
	}
	p.checkTraffic()
}

// TestChildExpiryBothSidesReordered: as TestChildExpiryBothSides, but one
// end's CREATE_CHILD_SA request arrives after the answer to the other's:
// that end completes its own before it sees the peer's, and must still
// apply the rule when the peer's arrives.
func TestChildExpiryBothSidesReordered(t *testing.T) {
	const life = 10 * time.Minute
	for _, late := range []netip.Addr{addrA, addrB} {
		t.Run(late.String(), func(t *testing.T) {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
				ca, cb := a.Connections[0].Children[0], b.Connections[0].Children[0]
				ca.StartAction, ca.LifeTime = ike.ActionStart, life
				cb.StartAction, cb.LifeTime = ike.ActionStart, life+p0Latency
			}})
			p.up(p.a, "gw", "net")
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				if h, _, ok := d.IKE(); ok && d.From.Addr() == late && h.Exchange == message.ExchangeCreateChildSA && !h.IsResponse() {
					d.At = d.At.Add(4 * p0Latency)
				}
				return iketest.Deliver
			}
			sent := len(p.net.Sent)
			p.net.RunFor(life + time.Minute)
			if a, b := requests(p.net, sent, addrA, message.ExchangeCreateChildSA), requests(p.net, sent, addrB, message.ExchangeCreateChildSA); a != 1 || b != 1 {
				t.Fatalf("CREATE_CHILD_SA requests: A %d, B %d; the scenario wants one each", a, b)
			}
			ca := p.established(p.a, 1).Children[0]
			cb := p.established(p.b, 1).Children[0]
			if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
				t.Errorf("A %08x/%08x, B %08x/%08x", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
			}
			p.checkTraffic()
		})
	}
}

// p0Latency is the in-memory network's one-way latency.
const p0Latency = 5 * time.Millisecond

// TestIKEExpiryRestarts: an IKE SA whose rekeys are refused until its hard
// lifetime (rekey_time + over_time) is deleted; with a start child it is
// then initiated afresh, as after a dead peer with dpd_action = start,
// unless the operator takes the connection down meanwhile.
func TestIKEExpiryRestarts(t *testing.T) {
	const rekey, over = 10 * time.Minute, time.Minute
	for _, c := range []struct {
		name   string
		action ike.Action
		down   bool // the operator downs the connection while the DELETE is in flight
	}{
		{"start", ike.ActionStart, false},
		{"none", ike.ActionNone, false},
		{"start-down", ike.ActionStart, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, _ := refusingPair(t, nil, func(a, b *ike.Config) {
				conn := a.Connections[0]
				conn.RekeyTime, conn.OverTime = rekey, over
				conn.Children[0].StartAction = c.action
			})
			before := p.established(p.a, 1)
			// B's Child SA rekey never ends: A's IKE SA rekeys get
			// TEMPORARY_FAILURE.
			if err := p.b.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			if !p.net.RunUntil(rekey+over+time.Second, func() bool {
				st := p.a.M.Status()
				return len(st) == 1 && st[0].State == ike.IKEDeleting
			}) {
				t.Fatalf("A's IKE SA is not deleted at its hard lifetime: %s", describe(p.a.M.Status()))
			}
			if d := p.a.M.Stats().ErrorNotifies[message.NotifyTemporaryFailure]; d == 0 {
				t.Error("no IKE SA rekey was refused")
			}
			if c.down {
				if err := p.a.M.Down("gw", nil); err != nil {
					t.Fatal(err)
				}
			}
			p.net.RunFor(time.Minute)
			if c.action != ike.ActionStart || c.down {
				if st := p.a.M.Status(); len(st) != 0 {
					t.Fatalf("A holds %s", describe(st))
				}
				return
			}
			s := p.established(p.a, 1)
			p.established(p.b, 1)
			if s.SPIi == before.SPIi {
				t.Errorf("the same IKE SA %016x", s.SPIi)
			}
			p.checkTraffic()
		})
	}
}
