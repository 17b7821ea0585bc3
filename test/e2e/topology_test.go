package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

type ipAddrJSON struct {
	Ifname   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	AddrInfo []struct {
		Local string `json:"local"`
	} `json:"addr_info"`
}

func linkAddrs(t *testing.T, ns *harness.Netns, link string) ipAddrJSON {
	t.Helper()
	out := ns.Run(t, "ip", "-j", "addr", "show", "dev", link)
	var links []ipAddrJSON
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j addr show dev %s in %s: %v: %s", link, ns.Name, err, out)
	}
	return links[0]
}

// TestTopologyBitwGateway checks what the harness promises a bitw gateway:
// red0 and black0 up, with no kernel address at all (not even IPv6
// link-local) even when the topology has IPv6, while a strongSwan gateway
// on the other side gets its addresses and the MTU applies everywhere.
func TestTopologyBitwGateway(t *testing.T) {
	harness.RequireE2E(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.StrongSwanGateway, IPv6: true, MTU: 1400})
	for _, link := range []string{harness.RedLink, harness.BlackLink} {
		l := linkAddrs(t, topo.GwA.NS, link)
		if len(l.AddrInfo) != 0 {
			t.Errorf("bitw gateway's %s carries kernel addresses %+v", link, l.AddrInfo)
		}
		if !strings.Contains(strings.Join(l.Flags, ","), "UP") {
			t.Errorf("bitw gateway's %s is not up: %v", link, l.Flags)
		}
		if l.MTU != 1400 {
			t.Errorf("bitw gateway's %s has MTU %d, want 1400", link, l.MTU)
		}
	}
	var got []string
	for _, a := range linkAddrs(t, topo.GwB.NS, harness.BlackLink).AddrInfo {
		got = append(got, a.Local)
	}
	if joined := strings.Join(got, " "); !strings.Contains(joined, "203.0.113.2") || !strings.Contains(joined, "fd00:ff::2") {
		t.Errorf("strongSwan gateway's black0 has %v, want 203.0.113.2 and fd00:ff::2", got)
	}
	// Everything on the wire side is reachable from gwB; nothing answers
	// for gwA's addresses until bitw runs.
	if r, err := topo.GwB.NS.Ping(topo.GwA.Black4.Addr(), 2, 100*time.Millisecond); err != nil || r.Received != 0 {
		t.Errorf("something answered for the bitw gateway's black address: %+v %v", r, err)
	}
}

// TestStrongSwanProposalMismatch shows the harness reports a failed
// negotiation instead of hanging: the peers share no IKE proposal.
func TestStrongSwanProposalMismatch(t *testing.T) {
	harness.RequireE2E(t, "charon-systemd", "swanctl")
	topo := harness.NewTopology(t, harness.Options{A: harness.StrongSwanGateway, B: harness.StrongSwanGateway})
	a := harness.StartStrongSwan(t, topo.GwA.NS, topo.GwA.SwanctlConfig(harness.SiteToSite{
		Proposals: []string{"aes128-sha256-modp3072"}, PSK: testPSK}), nil)
	harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(harness.SiteToSite{
		Proposals: []string{"aes256-sha384-ecp384"}, PSK: testPSK}), nil)
	err := a.Initiate(harness.DefaultChildName, 10*time.Second)
	if err == nil {
		t.Fatal("initiate succeeded without a common IKE proposal")
	}
	if !strings.Contains(err.Error(), "NO_PROPOSAL_CHOSEN") {
		t.Errorf("initiate failed, but not with NO_PROPOSAL_CHOSEN: %v", err)
	}
	if _, _, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, time.Second); err == nil {
		t.Error("WaitChild found an SA that cannot exist")
	}
}
