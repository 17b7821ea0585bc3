package ike_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike/iketest"
)

// TestChaos runs a Child SA's whole life (establish, rekeys from both
// sides, an IKE rekey, simultaneous rekeys) over a network that loses,
// duplicates and reorders datagrams, with make-before-break checked after
// every step. The peers must always converge on one IKE SA and one Child
// SA pair.
func TestChaos(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 4
	}
	if n, err := strconv.Atoi(os.Getenv("IKE_CHAOS_SEEDS")); err == nil {
		seeds = n
	}
	chaos(t, seeds, pairOpts{})
}

// TestChaosFollowupKE is TestChaos with ML-KEM-768 as an additional key
// exchange of the IKE and Child SAs, so every rekey runs IKE_FOLLOWUP_KE
// exchanges (RFC 9370 §2.2.4) over the lossy network.
func TestChaosFollowupKE(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 2
	}
	if n, err := strconv.Atoi(os.Getenv("IKE_CHAOS_SEEDS")); err == nil {
		seeds = n
	}
	chaos(t, seeds, pairOpts{ikeProp: "aes256gcm16-prfsha384-x25519-ke1_mlkem768", espProp: "aes256gcm16-x25519-ke1_mlkem768"})
}

func chaos(t *testing.T, seeds int, o pairOpts) {
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := newPair(t, o)
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			var lost, duped int
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				d.At = d.At.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
				switch r := rng.IntN(100); {
				case r < 10:
					lost++
					return iketest.Drop
				case r < 15:
					duped++
					return iketest.Duplicate
				}
				return iketest.Deliver
			}
			// A lost handshake is retried (keyingtries = 0): wait for the
			// outcome, not for the first attempt.
			if err := p.a.M.Up("gw", "net", nil); err != nil {
				t.Fatal(err)
			}
			p.net.RunFor(10 * time.Minute)
			p.watchTraffic()
			steps := []func(){
				func() { p.a.M.Rekey("gw", "net") },
				func() { p.b.M.Rekey("gw", "net") },
				func() { p.a.M.Rekey("gw", "") },
				func() { p.b.M.Rekey("gw", "") },
				func() { p.a.M.Rekey("gw", "net"); p.b.M.Rekey("gw", "net") },
				func() { p.a.M.Rekey("gw", ""); p.b.M.Rekey("gw", "") },
				func() { p.b.M.Rekey("gw", "net"); p.a.M.Rekey("gw", "") },
			}
			for i, step := range steps {
				step()
				p.net.RunFor(10 * time.Minute)
				sa, sb := p.a.M.Status(), p.b.M.Status()
				if len(sa) != 1 || len(sb) != 1 || len(sa[0].Children) != 1 || len(sb[0].Children) != 1 ||
					sa[0].SPIi != sb[0].SPIi || sa[0].Children[0].SPIIn != sb[0].Children[0].SPIOut {
					t.Fatalf("step %d: not converged:\nA %s\nB %s", i, describe(sa), describe(sb))
				}
				p.checkTraffic()
			}
			t.Logf("%d lost, %d duplicated", lost, duped)
		})
	}
}
