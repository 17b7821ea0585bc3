package e2e

import (
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// TestStrongSwanRekey drives a CHILD_SA rekey from each side, an IKE
// rekey and a CHILD_SA rekey under the new IKE_SA, checks that traffic
// still flows and that every ESP packet and IKE message decrypts with the
// keys from the log, then terminates and checks both sides let go.
func TestStrongSwanRekey(t *testing.T) {
	harness.RequireE2E(t, swanTools...)
	topo := harness.NewTopology(t, harness.Options{A: harness.StrongSwanGateway, B: harness.StrongSwanGateway})
	site := harness.SiteToSite{Proposals: []string{"aes128-sha256-modp3072"}, ESPProposals: []string{"aes128gcm16"}, PSK: testPSK}
	a := harness.StartStrongSwan(t, topo.GwA.NS, topo.GwA.SwanctlConfig(site), nil)
	b := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(site), nil)
	capture := topo.Wire.StartCapture(t, topo.WireA, 0)
	if err := a.Initiate(harness.DefaultChildName, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ike0, _ := waitChild(t, a)
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 2)

	rekeyChild := func(s *harness.StrongSwan) {
		t.Helper()
		_, prev := waitChild(t, a)
		if err := s.RekeyChild(harness.DefaultChildName); err != nil {
			t.Fatal(err)
		}
		if err := harness.WaitFor(10*time.Second, "a rekeyed CHILD_SA", func() (bool, error) {
			_, c := waitChild(t, a)
			return c.SPIIn != prev.SPIIn && c.SPIOut != prev.SPIOut, nil
		}); err != nil {
			t.Fatal(err)
		}
		topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 2)
	}
	rekeyChild(b)
	rekeyChild(a)
	if err := a.RekeyIKE(harness.DefaultConnName); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitFor(10*time.Second, "a rekeyed IKE_SA", func() (bool, error) {
		ike, _ := waitChild(t, a)
		return ike.SPIi != ike0.SPIi, nil
	}); err != nil {
		t.Fatal(err)
	}
	rekeyChild(b) // under the new IKE_SA
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}

	keys, err := a.Keys() // while the IKE_SA still exists: its SPIs come from --list-sas
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.ESP) != 8 || len(keys.IKE) != 2 {
		t.Errorf("gwA's log gave %d ESP SAs and %d IKE SAs, want 8 (4 CHILD_SAs) and 2", len(keys.ESP), len(keys.IKE))
	}
	decoded, err := harness.Decode(capture.Path, keys.UAT(), "esp || isakmp")
	if err != nil {
		t.Fatal(err)
	}
	spis := map[uint32]bool{}
	exchanges := map[int]int{}
	for _, d := range decoded {
		if d.IKEExchange != 0 {
			exchanges[d.IKEExchange]++
			if d.IKEExchange != harness.IKEExchangeSA && !d.IKEDecrypted {
				t.Errorf("frame %d: IKE exchange %d not decrypted (payloads %v)", d.Frame, d.IKEExchange, d.IKEPayloads)
			}
			continue
		}
		if !d.Decrypted {
			t.Errorf("frame %d: ESP SPI %08x not decrypted", d.Frame, d.ESPSPI)
		}
		spis[d.ESPSPI] = true
	}
	if len(spis) != 8 {
		t.Errorf("pings used %d SPIs, want 8 (both directions of 4 CHILD_SAs)", len(spis))
	}
	t.Logf("IKE messages by exchange type: %v; ESP SPIs seen: %d", exchanges, len(spis))

	if err := a.Terminate(harness.DefaultConnName, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*harness.StrongSwan{a, b} {
		if err := harness.WaitFor(5*time.Second, "no SAs left in "+s.NS.Name, func() (bool, error) {
			sas, err := s.ListSAs()
			return err == nil && len(sas) == 0, err
		}); err != nil {
			t.Error(err)
		}
	}
}
