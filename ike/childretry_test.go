package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// createAttempts watches A's CREATE_CHILD_SA requests (when sent) and B's
// answers (when delivered) from the moment it is armed.
func createAttempts(p *pair) *rekeyAttempts {
	r := &rekeyAttempts{}
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeCreateChildSA {
			switch {
			case d.From.Addr() == addrA && !h.IsResponse():
				r.sent = append(r.sent, d.Sent)
			case d.From.Addr() == addrB && h.IsResponse():
				r.answered = append(r.answered, d.At)
			}
		}
		return iketest.Deliver
	}
	return r
}

// refuseSPIs makes B's data plane refuse n SPI allocations after skipping
// skip, so that B answers those CREATE_CHILD_SA requests with
// TEMPORARY_FAILURE and accepts the next, and watches A's requests from
// now on.
func refuseSPIs(p *pair, skip, n int) *rekeyAttempts {
	calls := 0
	p.ib.FailAllocSPI = func(proposal.Protocol) bool {
		calls++
		return calls > skip && calls <= skip+n
	}
	return createAttempts(p)
}

// TestChildCreateRetry: a CREATE_CHILD_SA that creates a Child SA and is
// answered with TEMPORARY_FAILURE (RFC 7296 §2.25) is tried again in the
// rekey retries' backoff windows, whatever asked for the Child SA: `up`
// over an existing IKE SA, a second start child after IKE_AUTH, an
// acquire from a trap, a close_action restart. Here the peer refuses
// twice and accepts the third request; before, the first refusal was
// final for all of them.
func TestChildCreateRetry(t *testing.T) {
	netA2, netB2 := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")
	second := func(t *testing.T, local, remote netip.Prefix) *ike.Child {
		return &ike.Child{Name: "net2", LocalTS: []ike.TrafficSelector{{TS: ike.PrefixTS(local)}},
			RemoteTS: []ike.TrafficSelector{{TS: ike.PrefixTS(remote)}}, Proposals: mustParse(t, "aes128gcm16", proposal.ProtoESP)}
	}
	for _, c := range []struct {
		name  string
		tweak func(t *testing.T, a, b *ike.Config)
		// run brings up what the scenario needs, arms the refusals and
		// asks for the Child SA; wantChildren is how many A then ends
		// up with. done, if set, reports the request's outcome.
		run          func(t *testing.T, p *pair) (r *rekeyAttempts, done func() (bool, error))
		wantChildren int
	}{
		{"up", nil, func(t *testing.T, p *pair) (*rekeyAttempts, func() (bool, error)) {
			p.up(p.a, "gw", "net")
			if err := p.a.M.DownChild("gw", "net", nil); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.established(p.a, 0)
			r := refuseSPIs(p, 0, 2)
			return r, upAsync(t, p)
		}, 1},
		{"start-second-child", func(t *testing.T, a, b *ike.Config) {
			a.Connections[0].Children = append(a.Connections[0].Children, second(t, netA2, netB2))
			b.Connections[0].Children = append(b.Connections[0].Children, second(t, netB2, netA2))
			for _, ch := range a.Connections[0].Children {
				ch.StartAction = ike.ActionStart
			}
		}, func(t *testing.T, p *pair) (*rekeyAttempts, func() (bool, error)) {
			// B's first SPI goes to the Child SA of IKE_AUTH.
			r := refuseSPIs(p, 1, 2)
			if err := p.a.M.Start(); err != nil {
				t.Fatal(err)
			}
			return r, nil
		}, 2},
		{"acquire", func(t *testing.T, a, b *ike.Config) {
			a.Connections[0].Children[0].StartAction = ike.ActionTrap
		}, func(t *testing.T, p *pair) (*rekeyAttempts, func() (bool, error)) {
			if err := p.a.M.Start(); err != nil {
				t.Fatal(err)
			}
			var reqID uint32
			for _, pol := range p.ia.Policies {
				reqID = pol.ReqID
			}
			acquire := func() {
				p.a.M.HandleDataPlaneEvent(ike.DataPlaneEvent{Kind: ike.EventAcquire, ReqID: reqID,
					Src: netip.MustParseAddr("192.168.1.10"), Dst: netip.MustParseAddr("192.168.2.10")})
			}
			acquire()
			p.net.Settle(time.Minute)
			p.established(p.a, 1)
			// B closes it; the trap stays and the next packet acquires
			// it over the IKE SA.
			if err := p.b.M.DownChild("gw", "net", nil); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.established(p.a, 0)
			r := refuseSPIs(p, 0, 2)
			acquire()
			return r, nil
		}, 1},
		{"close-action", func(t *testing.T, a, b *ike.Config) {
			a.Connections[0].Children[0].CloseAction = ike.ActionStart
		}, func(t *testing.T, p *pair) (*rekeyAttempts, func() (bool, error)) {
			p.up(p.a, "gw", "net")
			r := refuseSPIs(p, 0, 2)
			if err := p.b.M.DownChild("gw", "net", nil); err != nil {
				t.Fatal(err)
			}
			return r, nil
		}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
				if c.tweak != nil {
					c.tweak(t, a, b)
				}
			}})
			r, done := c.run(t, p)
			p.net.RunFor(2 * time.Minute)
			p.established(p.a, c.wantChildren)
			p.established(p.b, c.wantChildren)
			if len(r.sent) != 3 || len(r.answered) != 3 {
				t.Fatalf("A sent %d CREATE_CHILD_SA requests and got %d answers, want 3 and 3", len(r.sent), len(r.answered))
			}
			if n := p.a.M.Stats().ErrorNotifies[message.NotifyTemporaryFailure]; n != 2 {
				t.Errorf("A got %d TEMPORARY_FAILURE, want 2", n)
			}
			checkWindows(t, r.waits())
			if done != nil {
				if ok, err := done(); !ok || err != nil {
					t.Errorf("up: finished %v, %v", ok, err)
				}
			}
			p.checkTraffic()
			t.Logf("retries after %v", r.waits())
		})
	}
}

// upAsync asks A to bring up gw/net and returns how it went so far.
func upAsync(t *testing.T, p *pair) func() (bool, error) {
	var result error
	finished := false
	if err := p.a.M.Up("gw", "net", func(err error) { result, finished = err, true }); err != nil {
		t.Fatal(err)
	}
	return func() (bool, error) { return finished, result }
}

// TestChildCreateRetryCancelled: `down conn/child` cancels a Child SA
// creation that TEMPORARY_FAILURE left waiting to try again, or deletes
// the Child SA once created when a retry is in flight; `down conn`, which
// deletes the IKE SA, ends it too. The request of `up` fails each time,
// and no CREATE_CHILD_SA follows.
func TestChildCreateRetryCancelled(t *testing.T) {
	for _, c := range []struct {
		name string
		// refusals is how many requests B refuses; sent is how many of
		// A's requests have gone out when the operator acts.
		refusals, sent int
		down           func(p *pair) error
		ikeSAs         int
	}{
		{"down-child-waiting", 100, 1, func(p *pair) error { return p.a.M.DownChild("gw", "net", nil) }, 1},
		{"down-child-in-flight", 1, 2, func(p *pair) error { return p.a.M.DownChild("gw", "net", nil) }, 1},
		{"down-conn-waiting", 100, 1, func(p *pair) error { return p.a.M.Down("gw", nil) }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.up(p.a, "gw", "net")
			if err := p.a.M.DownChild("gw", "net", nil); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			r := refuseSPIs(p, 0, c.refusals)
			done := upAsync(t, p)
			if !p.net.RunUntil(time.Minute, func() bool { return len(r.sent) == c.sent && len(r.answered) == c.sent-1 }) {
				t.Fatalf("A sent %d requests and got %d answers", len(r.sent), len(r.answered))
			}
			if err := c.down(p); err != nil {
				t.Fatalf("down: %v", err)
			}
			p.net.RunFor(3 * time.Minute)
			if len(r.sent) != c.sent {
				t.Errorf("A sent %d CREATE_CHILD_SA requests, want %d", len(r.sent), c.sent)
			}
			if ok, err := done(); !ok || err == nil {
				t.Errorf("up: finished %v, %v; want it failed", ok, err)
			}
			for _, n := range []*iketest.Node{p.a, p.b} {
				st := n.M.Status()
				if len(st) != c.ikeSAs || children(n, ike.ChildInstalled) != 0 {
					t.Errorf("%v: %s", n.Addr, describe(st))
				}
			}
		})
	}
}

// TestChildCreateRetryUpTwice: `up` while an earlier request of the same
// child waits to try again after TEMPORARY_FAILURE goes out at once and
// is refused as well; the earlier one's retry creates the Child SA, and
// the later one's retry finds it there and creates no second one. Both
// succeed.
func TestChildCreateRetryUpTwice(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	if err := p.a.M.DownChild("gw", "net", nil); err != nil {
		t.Fatal(err)
	}
	p.net.Settle(time.Minute)
	r := refuseSPIs(p, 0, 2)
	first := upAsync(t, p)
	if !p.net.RunUntil(time.Minute, func() bool { return len(r.answered) == 1 }) {
		t.Fatal("no answer to the first request")
	}
	second := upAsync(t, p)
	p.net.RunFor(2 * time.Minute)
	for i, done := range []func() (bool, error){first, second} {
		if ok, err := done(); !ok || err != nil {
			t.Errorf("up %d: finished %v, %v", i+1, ok, err)
		}
	}
	if len(r.sent) != 3 {
		t.Errorf("A sent %d CREATE_CHILD_SA requests, want 3", len(r.sent))
	}
	p.established(p.a, 1)
	p.established(p.b, 1)
}
