package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// dropNth drops the n-th (from 1) datagram matching exchange and
// direction.
func dropNth(p *pair, exch message.ExchangeType, response bool, n int) {
	seen := 0
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		h, _, ok := d.IKE()
		if ok && h.Exchange == exch && h.IsResponse() == response {
			if seen++; seen == n {
				return iketest.Drop
			}
		}
		return iketest.Deliver
	}
}

func TestLostInitRequest(t *testing.T) {
	p := newPair(t, pairOpts{})
	dropNth(p, message.ExchangeIKESAInit, false, 1)
	start := p.clock.Now()
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	p.established(p.b, 1)
	if s := p.a.M.Stats(); s.Retransmits != 1 {
		t.Errorf("%d retransmissions, want 1", s.Retransmits)
	}
	// The first retransmission comes after RetransmitTimeout.
	if took := p.clock.Now().Sub(start); took < ike.DefaultRetransmitTimeout {
		t.Errorf("established after %v, before the first retransmission could have been sent", took)
	}
	p.checkTraffic()
}

func TestLostAuthResponse(t *testing.T) {
	p := newPair(t, pairOpts{})
	dropNth(p, message.ExchangeIKEAuth, true, 1)
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	p.established(p.b, 1)
	if s := p.b.M.Stats(); s.ResponsesResent != 1 {
		t.Errorf("B resent %d cached responses, want 1", s.ResponsesResent)
	}
	if s := p.b.M.Stats(); s.In[1][0] != 1 {
		t.Errorf("B processed %d IKE_AUTH requests, want 1 (the retransmission is answered from the cache)", s.In[1][0])
	}
	p.checkTraffic()
}

func TestDuplicatedEverything(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict { return iketest.Duplicate }
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	p.established(p.b, 1)
	sb := p.b.M.Stats()
	if sb.ResponsesResent < 2 {
		t.Errorf("B resent %d responses for duplicated requests", sb.ResponsesResent)
	}
	if sa := p.a.M.Stats(); sa.Drops[ike.DropWrongMessageID] < 2 {
		t.Errorf("A dropped %d duplicate responses", sa.Drops[ike.DropWrongMessageID])
	}
	if sb.Established != 1 {
		t.Errorf("B established %d IKE SAs", sb.Established)
	}
	p.checkTraffic()
}

// TestRetransmitSchedule checks the backoff (4 s x 1.8^n, 5
// retransmissions) against a silent peer, and that the SA is given up.
func TestRetransmitSchedule(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.Connections[0].KeyingTries = 1 }})
	var times []time.Duration
	start := p.clock.Now()
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		if d.From.Addr() == addrA {
			times = append(times, d.Sent.Sub(start))
		}
		return iketest.Drop
	}
	var result error
	if err := p.a.M.Up("gw", "net", func(err error) { result = err }); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(170 * time.Second)
	want := []time.Duration{0, 4 * time.Second, 11200 * time.Millisecond, 24160 * time.Millisecond,
		47488 * time.Millisecond, 89478400 * time.Microsecond}
	if len(times) != len(want) {
		t.Fatalf("sent at %v, want %v", times, want)
	}
	for i := range want {
		if d := times[i] - want[i]; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("send %d at %v, want %v", i, times[i], want[i])
		}
	}
	if result == nil {
		t.Error("up succeeded against a silent peer")
	}
	if s := p.a.M.Stats(); s.PeersDead != 1 || s.IKESAs != 0 {
		t.Errorf("peers dead %d, IKE SAs %d", s.PeersDead, s.IKESAs)
	}
}

// TestRetransmitScheduleCapped: with many tries and a cap, every
// retransmission waits the cap once the exponential wait passes it, even
// when the uncapped wait would no longer fit in a time.Duration (4 s ×
// 1.8ⁿ does from n = 37): none comes early and the peer is declared dead
// only after the whole schedule.
func TestRetransmitScheduleCapped(t *testing.T) {
	const tries, limit = 60, 10 * time.Second
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].KeyingTries = 1
		a.RetransmitTries, a.RetransmitLimit = tries, limit
	}})
	var times []time.Time
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		if d.From.Addr() == addrA {
			times = append(times, d.Sent)
		}
		return iketest.Drop
	}
	if err := p.a.M.Up("gw", "net", nil); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Hour)
	if len(times) != tries+1 {
		t.Fatalf("%d transmissions, want %d", len(times), tries+1)
	}
	for i := 4; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != limit {
			t.Fatalf("retransmission %d after %v, want %v", i, d, limit)
		}
	}
	if s := p.a.M.Stats(); s.PeersDead != 1 || s.IKESAs != 0 {
		t.Errorf("peers dead %d, IKE SAs %d", s.PeersDead, s.IKESAs)
	}
}

// TestReorderedResponses delays each IKE_AUTH datagram so that
// retransmissions overtake originals.
func TestReorderedRetransmissions(t *testing.T) {
	p := newPair(t, pairOpts{})
	n := 0
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		h, _, ok := d.IKE()
		if ok && h.Exchange == message.ExchangeIKEAuth && !h.IsResponse() {
			if n++; n == 1 {
				d.At = d.At.Add(10 * time.Second) // arrives after the retransmission
			}
		}
		return iketest.Deliver
	}
	p.up(p.a, "gw", "net")
	p.net.RunFor(20 * time.Second)
	p.established(p.a, 1)
	p.established(p.b, 1)
	if s := p.b.M.Stats(); s.ResponsesResent != 1 {
		t.Errorf("B resent %d responses for the late original", s.ResponsesResent)
	}
	if s := p.a.M.Stats(); s.Drops[ike.DropWrongMessageID] != 1 {
		t.Errorf("A dropped %d late responses", s.Drops[ike.DropWrongMessageID])
	}
	p.checkTraffic()
}

// TestLateInitCopy: a copy of the IKE_SA_INIT request that arrives after
// the IKE SA is up creates no new half-open SA.
func TestLateInitCopy(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	var first []byte
	for _, d := range p.net.Sent {
		if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeIKESAInit && !h.IsResponse() {
			first = d.Data
			break
		}
	}
	p.b.M.HandlePacket(first, netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500))
	p.net.Settle(time.Minute)
	if s := p.b.M.Stats(); s.HalfOpen != 0 || s.IKESAs != 1 || s.Drops[ike.DropWrongMessageID] != 1 {
		t.Errorf("half-open %d, IKE SAs %d, late copies dropped %d", s.HalfOpen, s.IKESAs, s.Drops[ike.DropWrongMessageID])
	}
	p.established(p.b, 1)
}
