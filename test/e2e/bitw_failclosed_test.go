package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// bitwDrops reads the drop counters of a bitw's status (source ->
// reason -> count).
func bitwDrops(t *testing.T, b *harness.Bitw) map[string]map[string]uint64 {
	t.Helper()
	out, err := b.Ctl(10*time.Second, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Drops map[string]map[string]uint64 `json:"drops"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Drops
}

// redAttempts sends what a red host might: pings into the protected
// subnet, a TCP connection attempt and a UDP datagram there, and pings to
// an address no child covers and to the peer's black address. None may
// get through.
func redAttempts(t *testing.T, topo *harness.Topology, pings int) {
	t.Helper()
	h := topo.HostA.NS
	r, err := h.Ping(topo.HostB.Addr4, pings, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 0 {
		t.Errorf("%d pings to %s answered with the peer down", r.Received, topo.HostB.Addr4)
	}
	for _, dst := range []string{"198.51.100.7", topo.GwB.Black4.Addr().String()} {
		if r, err := h.Ping(netip.MustParseAddr(dst), 3, 100*time.Millisecond); err != nil || r.Received != 0 {
			t.Errorf("ping %s: %d replies, %v", dst, r.Received, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	script := fmt.Sprintf("timeout 2 bash -c 'exec 3<>/dev/tcp/%[1]s/5201' ; timeout 2 bash -c 'echo red-udp >/dev/udp/%[1]s/5353' ; true", topo.HostB.Addr4)
	if out, err := h.Exec(ctx, "bash", "-c", script); err != nil {
		t.Fatalf("TCP and UDP attempts: %v: %s", err, out)
	}
}

// TestBitwFailClosedPeerDown: with the peer silent, red traffic into the
// protected subnet, to an uncovered address and to the black network
// dies at gwA, and the black link carries only IKE. Once with
// start_action = start (no policy yet: the default DISCARD applies) and
// once with trap (the trap policy drops, counts and acquires).
func TestBitwFailClosedPeerDown(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	for _, start := range []string{"start", "trap"} {
		t.Run(start, func(t *testing.T) {
			topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
			a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite(start)))
			capture := topo.Wire.StartCapture(t, topo.WireA, 0)
			const pings = 20
			redAttempts(t, topo, pings)
			frames := capture.StopFrames(t)
			topo.CheckNoRedInClear(t, "black link", frames)
			arp := 0
			for _, f := range frames {
				if et, _, ok := f.Network(); ok && et == 0x0806 {
					arp++
				}
			}
			drops := bitwDrops(t, a)["ipsec"]
			t.Logf("black link: %d frames (%d ARP: gwA resolving the silent peer for IKE); gwA ipsec drops %v", len(frames), arp, drops)
			reason := "policy_discard"
			if start == "trap" {
				reason = "no_sa"
				if log := a.Proc.Log(); !strings.Contains(log, "msg=acquire") || !strings.Contains(log, "initiating IKE SA") {
					t.Error("the trap policy raised no acquire, or IKE did not initiate on it")
				}
			}
			// The pings into the protected subnet, plus the TCP SYNs and
			// the UDP datagram.
			if drops[reason] < pings+2 {
				t.Errorf("ipsec drops %v: want at least %d under %s", drops, pings+2, reason)
			}
		})
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// floodPing sends count echo requests at 1000 per second and returns how
// many were sent and answered. Unlike harness.Ping it never sends
// replacements for lost requests, so any loss shows.
func floodPing(ns *harness.Netns, dst netip.Addr, count int) (sent, got int, out string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count)*time.Millisecond+30*time.Second)
	defer cancel()
	b, runErr := ns.Exec(ctx, "ping", "-n", "-q", "-i", "0.001", "-c", strconv.Itoa(count), "-W", "2", dst.String())
	m := pingSummary.FindStringSubmatch(string(b))
	if m == nil {
		return 0, 0, string(b), fmt.Errorf("ping: %v: %s", runErr, b)
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	return sent, got, string(b), nil
}

// rekeyer drives rekeys on one end and reports the Child SA's SPIs.
type rekeyer interface {
	name() string
	rekey(t *testing.T, ike bool)
}

type bitwRekeyer struct {
	n string
	b *harness.Bitw
}

func (r bitwRekeyer) name() string { return r.n }

// rekey runs `bitw rekey`, which returns once the new SA is installed.
func (r bitwRekeyer) rekey(t *testing.T, ike bool) {
	t.Helper()
	target := harness.DefaultConnName
	if !ike {
		target += "/" + harness.DefaultChildName
	}
	if out, err := r.b.Ctl(20*time.Second, "rekey", "--timeout", "15s", target); err != nil {
		t.Fatalf("%s: rekey %s: %v: %s", r.n, target, err, out)
	}
}

type swanRekeyer struct {
	n string
	s *harness.StrongSwan
}

func (r swanRekeyer) name() string { return r.n }

// rekey asks charon and waits until the new SA shows.
func (r swanRekeyer) rekey(t *testing.T, ike bool) {
	t.Helper()
	ike0, child0, err := r.s.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ike {
		err = r.s.RekeyIKE(harness.DefaultConnName)
	} else {
		err = r.s.RekeyChild(harness.DefaultChildName)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(15*time.Second, r.n+" rekey", func() (bool, error) {
		i, c, err := r.s.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 5*time.Second)
		if err != nil {
			return false, err
		}
		if ike {
			return i.SPIi != ike0.SPIi, nil
		}
		return c.SPIIn != child0.SPIIn, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBitwRekeyNoLoss rekeys the Child SA and the IKE SA from each side
// while hostA pings hostB at 1000 packets per second: not one ping may be
// lost (make-before-break), and nothing red may show on the black link.
// Against a second bitw and against strongSwan.
func TestBitwRekeyNoLoss(t *testing.T) {
	harness.RequireE2E(t, append(bitwTools, "charon-systemd", "swanctl")...)
	bin := harness.BitwBinary(t)
	for _, peer := range []string{"bitw", "strongswan"} {
		t.Run(peer, func(t *testing.T) {
			kind := harness.BitwGateway
			if peer == "strongswan" {
				kind = harness.StrongSwanGateway
			}
			topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: kind})
			var b rekeyer
			var end gatewayEnd
			if peer == "bitw" {
				bw := harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, bitwSite("none")))
				b, end = bitwRekeyer{"gwB bitw", bw}, gatewayEnd{name: "gwB bitw", bitw: bw}
			} else {
				sw := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(swanSite("none")), nil)
				b, end = swanRekeyer{"gwB strongSwan", sw}, gatewayEnd{name: "gwB strongSwan", swan: sw}
			}
			bwA := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("start")))
			a := bitwRekeyer{"gwA bitw", bwA}
			first := end.child(t)
			topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 2)

			capture := topo.Wire.StartCapture(t, topo.WireA, 128)
			const count = 15000 // 15 s at 1000/s
			type pingResult struct {
				sent, got int
				out       string
				err       error
			}
			done := make(chan pingResult, 1)
			go func() {
				var r pingResult
				r.sent, r.got, r.out, r.err = floodPing(topo.HostA.NS, topo.HostB.Addr4, count)
				done <- r
			}()
			steps := []struct {
				who rekeyer
				ike bool
			}{{a, false}, {b, false}, {a, true}, {b, true}, {a, false}, {b, false}}
			for _, s := range steps {
				time.Sleep(1500 * time.Millisecond)
				what := "Child SA"
				if s.ike {
					what = "IKE SA"
				}
				t.Logf("%s rekeys the %s", s.who.name(), what)
				s.who.rekey(t, s.ike)
			}
			r := <-done
			if err := capture.Stop(); err != nil && !errors.Is(err, harness.ErrIncompleteCapture) {
				t.Fatal(err)
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			last := end.child(t)
			t.Logf("flood ping during %d rekeys: %d sent, %d answered; Child SA %s -> %s", len(steps), r.sent, r.got, first.SPIIn, last.SPIIn)
			if r.sent != count || r.got != r.sent {
				t.Errorf("lost %d of %d pings across the rekeys:\n%s", r.sent-r.got, r.sent, r.out)
			}
			if last.SPIIn == first.SPIIn {
				t.Error("the Child SA was never replaced")
			}
			frames, err := capture.Frames()
			if err != nil {
				t.Fatal(err)
			}
			topo.CheckNoRedInClear(t, "black link", frames)
			if len(frames) < r.sent {
				t.Logf("capture holds %d frames for %d pings (tcpdump dropped some under load)", len(frames), r.sent)
			}
			t.Logf("gwA drops after the rekeys: %v", bitwDrops(t, bwA))
		})
	}
}
