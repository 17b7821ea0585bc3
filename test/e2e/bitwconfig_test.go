package e2e

import (
	"context"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// TestBitwConfigCheck runs "bitw check" on the configs the harness writes
// for bitw gateways, so that a drift between the harness and the config
// contract shows up before any tunnel test.
func TestBitwConfigCheck(t *testing.T) {
	harness.RequireE2E(t)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway, NAT: true, IPv6: true})
	pki := harness.NewPKI(t, "bitw e2e CA")
	for _, g := range topo.Gateways() {
		id := pki.Issue(t, g.Name, harness.ECDSAP256, []string{g.ID()}, []netip.Addr{g.Black4.Addr()})
		for name, site := range map[string]harness.BitwSite{
			"psk": {Proposals: []string{"aes128gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes128gcm16"}, PSK: testPSK,
				StartAction: "start", DPDDelay: 10 * time.Second, RekeyTime: time.Hour, ChildRekeyTime: 20 * time.Minute, SaveKeys: true},
			"pubkey": {Proposals: []string{"aes256-sha384-ecp384"}, ESPProposals: []string{"aes256gcm16"}, PKI: pki, Identity: id},
		} {
			files := g.BitwConfig(t, site)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, bin, "check", "-c", files.Config).CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s %s: bitw check: %v\n%s", g.Name, name, err, out)
			}
		}
	}
}
