package runtime

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/status"
)

// TestInactivity runs inactivity end to end: the runtime samples the
// engine's per-SA counters and IKE closes the Child SA once it has been
// idle that long. Pings every half second keep a 3 s inactivity from
// firing for 6 s; then the idle Child SA goes on both gateways, and since
// gw-a traps the child, the next packet brings it back.
func TestInactivity(t *testing.T) {
	l := newLab(t, labOptions{startA: "trap", childA: `inactivity = "3s"`})
	hostB := netip.MustParseAddr("192.168.2.10")
	// The trap drops the first packet while it negotiates.
	pingUntilAnswered := func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for l.hostA.Ping(hostB, 56, time.Second, nil) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("no answer through the trap\n%s", tail(l.a.log.String(), 40))
			}
		}
	}
	pingUntilAnswered()
	_, first := waitInstalled(t, l.a)

	for range 12 {
		ping(t, l.hostA, "192.168.2.10", 1)
		time.Sleep(500 * time.Millisecond)
	}
	if _, c, ok := child(l.a.rt.Snapshot(), "lan", status.ChildInstalled); !ok || c.SPIIn != first.SPIIn {
		t.Fatalf("a Child SA carrying traffic was closed (before %v, now %+v)\n%s", first.SPIIn, c, tail(l.a.log.String(), 40))
	}

	gone := func(g *gateway) bool {
		for _, sa := range g.rt.Snapshot().IKESAs {
			if len(sa.ChildSAs) > 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(15 * time.Second)
	for !gone(l.a) || !gone(l.b) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle Child SA is still there: a %+v, b %+v\n%s", l.a.rt.Snapshot().IKESAs, l.b.rt.Snapshot().IKESAs, tail(l.a.log.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sas := l.a.rt.Snapshot().IKESAs; len(sas) != 1 || sas[0].State != status.IKEEstablished {
		t.Errorf("the IKE SA should stay: %+v", sas)
	}

	pingUntilAnswered()
	if _, again := waitInstalled(t, l.a); again.SPIIn == first.SPIIn {
		t.Error("the same Child SA came back")
	}
}
