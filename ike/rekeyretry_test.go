package ike_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// rekeyAttempts records A's CREATE_CHILD_SA requests (first
// transmissions) and when B's answers to them reached A.
type rekeyAttempts struct {
	sent     []time.Time // A's requests
	answered []time.Time // B's responses, as delivered
}

// waits are the delays between each answer and A's next request: the
// retry delays A chose.
func (r *rekeyAttempts) waits() []time.Duration {
	var out []time.Duration
	for i := 0; i+1 < len(r.sent) && i < len(r.answered); i++ {
		out = append(out, r.sent[i+1].Sub(r.answered[i]))
	}
	return out
}

// refusingPair is a pair where B keeps a CREATE_CHILD_SA request of its
// own outstanding for as long as the test runs (the network drops it and
// B retransmits every 10 s without giving up), so that B answers A's
// rekeys with TEMPORARY_FAILURE (RFC 7296 §2.25): its IKE SA rekey blocks
// A's Child SA rekeys, its Child SA rekey blocks A's IKE SA rekeys.
func refusingPair(t *testing.T, logs io.Writer, tweak func(a, b *ike.Config)) (*pair, *rekeyAttempts) {
	p := newPair(t, pairOpts{espProp: "aes128gcm16-ecp256", logTo: logs, tweak: func(a, b *ike.Config) {
		b.RetransmitTries, b.RetransmitLimit = 1000, 10*time.Second
		if tweak != nil {
			tweak(a, b)
		}
	}})
	p.up(p.a, "gw", "net")
	r := &rekeyAttempts{}
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		h, _, ok := d.IKE()
		if !ok || h.Exchange != message.ExchangeCreateChildSA {
			return iketest.Deliver
		}
		switch {
		case d.From.Addr() == addrB && !h.IsResponse():
			return iketest.Drop
		case d.From.Addr() == addrA && !h.IsResponse():
			r.sent = append(r.sent, d.Sent)
		case d.From.Addr() == addrB:
			r.answered = append(r.answered, d.At)
		}
		return iketest.Deliver
	}
	return p, r
}

// TestRekeyRetryBackoff: a rekey refused with TEMPORARY_FAILURE is tried
// again after a random delay whose window doubles from 1-2 s and stops
// growing at 16-32 s, for Child SAs and IKE SAs alike, and every refusal
// is answered by one request, not a burst.
func TestRekeyRetryBackoff(t *testing.T) {
	for _, c := range []struct {
		name   string
		block  string // what B starts and never finishes: "" its IKE SA rekey, else that child's
		target string // what A rekeys
	}{
		{"child", "", "net"},
		{"ike", "net", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, r := refusingPair(t, nil, nil)
			if err := p.b.M.Rekey("gw", c.block); err != nil {
				t.Fatal(err)
			}
			p.net.RunFor(time.Second)
			if err := p.a.M.Rekey("gw", c.target); err != nil {
				t.Fatal(err)
			}
			p.net.RunFor(6 * time.Minute)
			waits := r.waits()
			if n := p.a.M.Stats().ErrorNotifies[message.NotifyTemporaryFailure]; n != uint64(len(r.answered)) || n < 10 {
				t.Fatalf("A got %d TEMPORARY_FAILURE for %d answers; want one per answer, at least 10", n, len(r.answered))
			}
			if atCap := checkWindows(t, waits); atCap < 4 {
				t.Errorf("only %d retries at the cap: %v", atCap, waits)
			}
			t.Logf("retry delays: %v", waits)
		})
	}
}

// checkWindows fails unless the i-th retry delay (from 0) lies in
// [w/2, w), w = 2 s·2ⁱ up to 32 s, and returns how many had the largest
// window.
func checkWindows(t *testing.T, waits []time.Duration) (atCap int) {
	t.Helper()
	for i, w := range waits {
		hi := 32 * time.Second
		if i < 4 {
			hi = 2 * time.Second << i
		}
		if w < hi/2 || w >= hi {
			t.Errorf("retry %d after %v, want within [%v, %v)", i+1, w, hi/2, hi)
		}
		if hi == 32*time.Second {
			atCap++
		}
	}
	return atCap
}

// TestRekeyRetryLifetime: retries stop before the Child SA's hard
// lifetime: the last one starts at least a retransmission timeout
// before it, giving up is logged, and the SA ends at its lifetime.
func TestRekeyRetryLifetime(t *testing.T) {
	const life = 150 * time.Second
	var logs strings.Builder
	p, r := refusingPair(t, &logs, func(a, b *ike.Config) {
		a.Connections[0].Children[0].LifeTime = life
	})
	installed := p.clock.Now()
	if err := p.b.M.Rekey("gw", ""); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(time.Second)
	if err := p.a.M.Rekey("gw", "net"); err != nil {
		t.Fatal(err)
	}
	p.net.RunFor(5 * time.Minute)
	expiry := installed.Add(life)
	if len(r.sent) < 5 {
		t.Fatalf("only %d rekey requests", len(r.sent))
	}
	checkWindows(t, r.waits())
	last := r.sent[len(r.sent)-1]
	if !last.Before(expiry.Add(-ike.DefaultRetransmitTimeout).Add(time.Millisecond)) {
		t.Errorf("last rekey request at %v, the SA expires at %v", last.Sub(installed), life)
	}
	if st := p.a.M.Status(); len(st) != 1 || len(st[0].Children) != 0 {
		t.Errorf("want the IKE SA without its expired Child SA: %s", describe(st))
	}
	if !strings.Contains(logs.String(), "no time left to rekey again") {
		t.Error("giving up was not logged")
	}
	t.Logf("rekey requests at %v after install; the SA expired at %v", since(installed, r.sent), life)
}

func since(t0 time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(t0).Round(time.Millisecond)
	}
	return out
}
