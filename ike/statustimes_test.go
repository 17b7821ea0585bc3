package ike_test

import (
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
)

// TestStatusTimes: the status carries when each SA's rekey and hard
// lifetime timers will fire (zero when none is scheduled): rekey_time and
// rekey_time + over_time for IKE SAs, rekey_time and life_time for Child
// SAs, a rekey retry's time after a refusal, and no rekey time while one
// runs.
func TestStatusTimes(t *testing.T) {
	const ikeRekey, over = 4 * time.Hour, 20 * time.Minute
	const childRekey, life = 50 * time.Minute, time.Hour
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		conn := a.Connections[0]
		conn.RekeyTime, conn.OverTime = ikeRekey, over
		ch := conn.Children[0]
		ch.RekeyTime, ch.LifeTime = childRekey, life
	}})
	p.up(p.a, "gw", "net")
	s := p.established(p.a, 1)
	c := s.Children[0]
	for _, x := range []struct {
		what      string
		got, want time.Time
	}{
		{"IKE SA rekey", s.RekeyAt, s.Established.Add(ikeRekey)},
		{"IKE SA expiry", s.ExpireAt, s.Established.Add(ikeRekey + over)},
		{"Child SA rekey", c.RekeyAt, c.Installed.Add(childRekey)},
		{"Child SA expiry", c.ExpireAt, c.Installed.Add(life)},
	} {
		if !x.got.Equal(x.want) {
			t.Errorf("%s at %v, want %v", x.what, x.got, x.want)
		}
	}
	// B has no lifetimes configured.
	sb := p.established(p.b, 1)
	if cb := sb.Children[0]; !sb.RekeyAt.IsZero() || !sb.ExpireAt.IsZero() || !cb.RekeyAt.IsZero() || !cb.ExpireAt.IsZero() {
		t.Errorf("B schedules nothing, its status says IKE %v/%v, child %v/%v", sb.RekeyAt, sb.ExpireAt, cb.RekeyAt, cb.ExpireAt)
	}

	// While the rekey runs there is no rekey time; once it is done the
	// new Child SA has its own times and the old one is gone.
	p.net.RunUntil(childRekey, func() bool { return children(p.a, ike.ChildRekeying) == 1 })
	for _, sa := range p.a.M.Status() {
		for _, ch := range sa.Children {
			if ch.State == ike.ChildRekeying && (!ch.RekeyAt.IsZero() || !ch.ExpireAt.Equal(c.ExpireAt)) {
				t.Errorf("rekeying Child SA: rekey at %v, expiry at %v (want none and %v)", ch.RekeyAt, ch.ExpireAt, c.ExpireAt)
			}
		}
	}
	p.net.Settle(time.Minute)
	p.net.RunFor(time.Second)
	c2 := p.established(p.a, 1).Children[0]
	if c2.SPIIn == c.SPIIn || !c2.RekeyAt.Equal(c2.Installed.Add(childRekey)) || !c2.ExpireAt.Equal(c2.Installed.Add(life)) {
		t.Errorf("after the rekey: %+v", c2)
	}
}

// TestStatusRetryTime: after a refused rekey the status shows when the
// retry comes.
func TestStatusRetryTime(t *testing.T) {
	p, r := refusingPair(t, nil, nil)
	if err := p.b.M.Rekey("gw", ""); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Second)
	if err := p.a.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.RunUntil(time.Minute, func() bool { return len(r.answered) == 1 })
	p.net.Settle(time.Second)
	c := p.established(p.a, 1).Children[0]
	if c.RekeyAt.IsZero() {
		t.Fatal("no retry time in the status after a refused rekey")
	}
	p.net.RunUntil(time.Minute, func() bool { return len(r.sent) == 2 })
	if !r.sent[1].Equal(c.RekeyAt) {
		t.Errorf("the status said the retry comes at %v, it came at %v", c.RekeyAt, r.sent[1])
	}
}

// TestEventsDropped: a data-plane event that finds Run's queue full is
// dropped and counted in Stats.EventsDropped.
func TestEventsDropped(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { a.QueueLen = 2 }})
	p.a.M.Prepare()
	ev := ike.DataPlaneEvent{Kind: ike.EventSoftExpire, ReqID: 1}
	for i, want := range []bool{true, true, false, false} {
		if got := p.a.M.Event(ev); got != want {
			t.Errorf("event %d queued %v, want %v", i, got, want)
		}
	}
	if n := p.a.M.Stats().EventsDropped; n != 2 {
		t.Errorf("%d events dropped, want 2", n)
	}
}
