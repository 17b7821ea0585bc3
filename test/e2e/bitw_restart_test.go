package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// TestBitwRestartRecovers kills one gateway without warning (SIGKILL: no
// DELETE reaches the peer), starts it again, and requires traffic to flow
// again within 3 x dpd_delay, with nobody running a command.
//
// "both-start": both sides are configured as the demo's examples are
// (start_action = start, dpd_action = restart), and each side in turn is
// restarted: the restarted side initiates with INITIAL_CONTACT, which
// replaces the survivor's stale SAs.
//
// "dpd": gwB only responds (start_action = none) and is restarted; gwA
// must find out by dead peer detection (dpd_delay 5 s, dpd_timeout 5 s)
// and, by its dpd_action = restart, initiate again.
func TestBitwRestartRecovers(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	t.Run("both-start", func(t *testing.T) {
		runRestart(t, bin, "start", "", []string{"gwB", "gwA"})
	})
	t.Run("dpd", func(t *testing.T) {
		runRestart(t, bin, "none", `dpd_timeout = "5s"`, []string{"gwB"})
	})
}

func runRestart(t *testing.T, bin, startB, connExtra string, victims []string) {
	const dpd = 5 * time.Second
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
	files := map[string]harness.BitwFiles{}
	gws := map[string]*harness.Gateway{"gwA": topo.GwA, "gwB": topo.GwB}
	running := map[string]*harness.Bitw{}
	for _, name := range []string{"gwB", "gwA"} {
		start := "start"
		if name == "gwB" {
			start = startB
		}
		site := bitwSite(start)
		site.DPDDelay, site.DPDAction, site.ConnExtra = dpd, "restart", connExtra
		files[name] = gws[name].BitwConfig(t, site)
		running[name] = harness.StartBitw(t, bin, gws[name], files[name])
	}
	for _, b := range running {
		if _, _, err := b.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)

	for _, victim := range victims {
		old := running[victim]
		if err := old.Proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-old.Proc.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not die", victim)
		}
		// The survivor still holds the old SAs: red traffic goes into an
		// SA the restarted side no longer knows, and must not leak.
		time.Sleep(time.Second)
		restarted := time.Now()
		running[victim] = harness.StartBitw(t, bin, gws[victim], files[victim])
		bound := 3 * dpd
		err := harness.WaitFor(bound, "traffic through the tunnel after restarting "+victim, func() (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err := topo.HostA.NS.Exec(ctx, "ping", "-n", "-c", "1", "-W", "1", topo.HostB.Addr4.String())
			return err == nil, err
		})
		took := time.Since(restarted)
		if err != nil {
			t.Fatalf("%s restarted: no traffic within 3 x dpd_delay (%v): %v\nsurvivor status: %s", victim, bound, err,
				ctlOut(running[other(victim)], "status"))
		}
		t.Logf("%s restarted: traffic flows again after %v (bound %v)", victim, took.Round(10*time.Millisecond), bound)
		// Both sides settle on one IKE SA: the old one went with the
		// restarted side's INITIAL_CONTACT or with DPD.
		if err := harness.WaitFor(bound, "one IKE SA on each side", func() (bool, error) {
			for _, b := range running {
				st, err := b.Status()
				if err != nil || len(st.IKESAs) != 1 {
					return false, err
				}
			}
			return true, nil
		}); err != nil {
			t.Errorf("%v\ngwA: %s\ngwB: %s", err, ctlOut(running["gwA"], "status"), ctlOut(running["gwB"], "status"))
		}
		topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)
	}
}

func other(gw string) string {
	if gw == "gwA" {
		return "gwB"
	}
	return "gwA"
}
