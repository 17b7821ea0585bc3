package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// TestBitwToBitw is the appliance on both sites (requirement b): gwA
// initiates, the tunnel carries pings and a TCP transfer that tshark
// decrypts from the black link with bitw's own save_keys, and both ends'
// counters account for the traffic. SIGTERM then deletes the SAs on
// both sides.
func TestBitwToBitw(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
	b := harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, bitwSite("none")))
	a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("start")))
	ikeA, _, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ikeB, childB, err := b.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !ikeA.Initiator || ikeB.Initiator || ikeA.Proposal != bitwIKEProposal || childB.Proposal != bitwESPProposal ||
		childB.Mode != "TUNNEL" || childB.Protocol != "ESP" || childB.Encap {
		t.Errorf("status: gwA %+v; gwB %+v", ikeA, ikeB)
	}
	checkTunnel(t, topo, gatewayEnd{name: "gwA bitw", bitw: a}, gatewayEnd{name: "gwB bitw", bitw: b})

	// SIGTERM: gwA deletes its SAs with gwB before it exits 0.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	waitNoSA(t, b, 5*time.Second)
}

// TestBitwToStrongSwan runs bitw against strongSwan 5.9 with
// kernel-libipsec (requirement a), bitw initiating and bitw responding.
// kernel-libipsec fakes a NAT, so ESP travels in UDP 4500.
func TestBitwToStrongSwan(t *testing.T) {
	harness.RequireE2E(t, append(bitwTools, "charon-systemd", "swanctl")...)
	bin := harness.BitwBinary(t)
	for _, role := range []string{"bitw-initiates", "bitw-responds"} {
		t.Run(role, func(t *testing.T) {
			topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.StrongSwanGateway})
			sw := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(swanSite("none")), nil)
			start := "start"
			if role == "bitw-responds" {
				start = "none"
			}
			a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite(start)))
			if role == "bitw-responds" {
				if err := sw.Initiate(harness.DefaultChildName, 15*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			ikeA, childA, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ikeB, childB, err := sw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ikeA.Initiator != (role == "bitw-initiates") || ikeB.Initiator == ikeA.Initiator {
				t.Errorf("roles: bitw initiator=%v, strongSwan initiator=%v", ikeA.Initiator, ikeB.Initiator)
			}
			if !childA.Encap || !childB.Encap || childB.EncrAlg != "AES_GCM_16" || childB.EncrKeySize != 128 {
				t.Errorf("Child SA: bitw %+v; strongSwan %+v", childA, childB)
			}
			checkTunnel(t, topo, gatewayEnd{name: "gwA bitw", bitw: a}, gatewayEnd{name: "gwB strongSwan", swan: sw})

			if err := a.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := harness.WaitFor(5*time.Second, "strongSwan to drop the SAs bitw deleted", func() (bool, error) {
				sas, err := sw.ListSAs()
				return err == nil && len(sas) == 0, err
			}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBitwWarnsKernelAddress: bitw owns its links, so an address the
// kernel holds on one of them is reported at start-up, naming the link
// and the address.
func TestBitwWarnsKernelAddress(t *testing.T) {
	harness.RequireE2E(t)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
	topo.GwA.NS.IPBatch(t, "addr add 198.51.100.77/32 dev "+harness.RedLink)
	a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("none")))
	if err := a.Proc.WaitLog("198.51.100.77", 5*time.Second); err != nil {
		t.Fatalf("no warning about the kernel's address on %s: %v\n%s", harness.RedLink, err, a.Proc.Tail(20))
	}
	for _, line := range strings.Split(a.Proc.Log(), "\n") {
		if strings.Contains(line, "198.51.100.77") {
			if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "link="+harness.RedLink) {
				t.Errorf("warning line: %s", line)
			}
			t.Logf("%s", line)
		}
	}
}

// TestBitwTrap: with start_action = trap nothing is negotiated until red
// traffic matches the child; the first packets are dropped and counted
// (no SA yet), the acquire brings the tunnel up, and the ping gets
// through.
func TestBitwTrap(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
	harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, bitwSite("none")))
	a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("trap")))
	time.Sleep(500 * time.Millisecond)
	if st, err := a.Status(); err != nil || len(st.IKESAs) != 0 {
		t.Fatalf("a trap negotiated without traffic: %+v %v", st, err)
	}
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)
	_, c, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	drops := bitwDrops(t, a)["ipsec"]
	t.Logf("Child SA %s/%s up on demand; gwA ipsec drops %v", c.SPIIn, c.SPIOut, drops)
	if drops["no_sa"] == 0 {
		t.Error("no packet was counted under no_sa before the SA existed")
	}
	if !strings.Contains(a.Proc.Log(), "msg=acquire") {
		t.Error("no acquire in gwA's log")
	}
}
