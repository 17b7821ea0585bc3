package e2e

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// The IKE proposals bitw's IKE tests negotiate with strongSwan; each runs
// here between two strongSwans to show the harness can drive it.
var ikeProposals = []string{
	"aes128-sha256-modp3072",
	"aes256-sha384-ecp384",
	"aes128gcm16-prfsha256-x25519",
	"chacha20poly1305-prfsha256-ecp256",
	"aes128ccm16-prfsha256-ecp256",
	"aes128-aesxcbc-modp3072",
}

const testPSK = "bitw-e2e-lab-psk-not-a-secret-0123456789"

var swanTools = []string{"charon-systemd", "swanctl", "ping", "iperf3", "tcpdump", "tshark", "nft", "ss"}

func TestStrongSwanToStrongSwan(t *testing.T) {
	harness.RequireE2E(t, swanTools...)
	for _, ike := range ikeProposals {
		t.Run(ike, func(t *testing.T) {
			t.Parallel()
			runStrongSwanPair(t, ike, false)
		})
	}
}

// TestStrongSwanToStrongSwanNAT puts gwB behind the masquerading router:
// gwB initiates, and both ends must detect the NAT and use UDP 4500.
func TestStrongSwanToStrongSwanNAT(t *testing.T) {
	harness.RequireE2E(t, swanTools...)
	runStrongSwanPair(t, "aes128gcm16-prfsha256-x25519", true)
}

func runStrongSwanPair(t *testing.T, ikeProposal string, nat bool) {
	topo := harness.NewTopology(t, harness.Options{A: harness.StrongSwanGateway, B: harness.StrongSwanGateway, NAT: nat})
	site := harness.SiteToSite{
		Proposals:    []string{ikeProposal},
		ESPProposals: []string{"aes128gcm16"},
		PSK:          testPSK,
	}
	a := harness.StartStrongSwan(t, topo.GwA.NS, topo.GwA.SwanctlConfig(site), nil)
	b := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(site), nil)

	// Capture where gwA meets the wire: IKE, then the pings.
	capture := topo.Wire.StartCapture(t, topo.WireA, 0)
	initiator, responder := a, b
	if nat {
		initiator, responder = b, a // behind masquerading NAT only gwB can open the path
	}
	if err := initiator.Initiate(harness.DefaultChildName, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ikeI, childI := waitChild(t, initiator)
	ikeR, childR := waitChild(t, responder)
	for _, c := range []harness.ChildSA{childI, childR} {
		if c.Mode != "TUNNEL" || c.Protocol != "ESP" || c.EncrAlg != "AES_GCM_16" || c.EncrKeySize != 128 {
			t.Errorf("CHILD_SA %s: mode %s protocol %s encr %s-%d, want TUNNEL ESP AES_GCM_16-128", c.Name, c.Mode, c.Protocol, c.EncrAlg, c.EncrKeySize)
		}
		if !c.Encap {
			t.Errorf("CHILD_SA %s: not UDP-encapsulated; kernel-libipsec always is", c.Name)
		}
	}
	if childI.SPIIn != childR.SPIOut || childI.SPIOut != childR.SPIIn {
		t.Errorf("SPIs disagree: initiator in %s out %s, responder in %s out %s", childI.SPIIn, childI.SPIOut, childR.SPIIn, childR.SPIOut)
	}
	if !ikeI.Initiator || ikeR.Initiator {
		t.Errorf("roles: initiator side says initiator=%v, responder side says %v", ikeI.Initiator, ikeR.Initiator)
	}
	if nat {
		if !ikeI.NATLocal || !ikeR.NATRemote {
			t.Errorf("NAT not detected: gwB nat-local=%v, gwA nat-remote=%v", ikeI.NATLocal, ikeR.NATRemote)
		}
		if ikeR.RemoteHost != harness.GwBBlack4.Addr().String() || ikeR.RemotePort != 4500 || ikeI.RemotePort != 4500 {
			t.Errorf("NAT-T endpoints: gwA sees %s[%d], gwB sends to port %d; want %s[4500] and 4500",
				ikeR.RemoteHost, ikeR.RemotePort, ikeI.RemotePort, harness.GwBBlack4.Addr())
		}
	}
	t.Logf("IKE_SA %s: %s/%s/%s/%s; CHILD_SA SPIs %s/%s", ikeI.Name, ikeI.EncrAlg, ikeI.IntegAlg, ikeI.PRFAlg, ikeI.DHGroup, childI.SPIIn, childI.SPIOut)

	const pings = 5
	if r := topo.HostA.NS.MustPing(t, topo.HostB.Addr4, pings); r.AvgRTT <= 0 {
		t.Errorf("ping reported no round-trip time:\n%s", r.Output)
	}
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	checkCapture(t, topo, capture.Path, a, b, pings)

	// A short bulk transfer, captured with headers only, must stay
	// encrypted too.
	bulk := topo.Wire.StartCapture(t, topo.WireA, 256)
	res, err := harness.Iperf3(t, topo.HostA.NS, topo.HostB.NS, topo.HostB.Addr4, harness.IperfOptions{Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("iperf3 hostA->hostB through strongSwan: %.0f Mbit/s, %d retransmits", res.ReceivedBps/1e6, res.Retransmits)
	if err := bulk.Stop(); errors.Is(err, harness.ErrIncompleteCapture) {
		t.Logf("checking what was captured: %v", err) // a loaded machine can drop some of a bulk capture
	} else if err != nil {
		t.Fatal(err)
	}
	frames, err := bulk.Frames()
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) < 100 {
		t.Errorf("bulk capture holds only %d frames", len(frames))
	}
	topo.CheckNoRedInClear(t, "black link", frames)
	_, child := waitChild(t, a)
	if child.BytesOut == 0 || child.PacketsIn == 0 {
		t.Errorf("gwA CHILD_SA counters did not move: %d bytes out, %d packets in", child.BytesOut, child.PacketsIn)
	}
}

func waitChild(t *testing.T, s *harness.StrongSwan) (harness.IKESA, harness.ChildSA) {
	t.Helper()
	ike, child, err := s.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return ike, child
}

// checkCapture decrypts the capture with the keys from gwA's charon log
// and checks that the ESP carried exactly the pings between the red hosts,
// that gwB's log yields the same ESP keys, and that IKE_AUTH decrypts
// where Wireshark knows the algorithms.
func checkCapture(t *testing.T, topo *harness.Topology, pcap string, a, b *harness.StrongSwan, pings int) {
	t.Helper()
	frames, err := harness.ReadPcap(pcap)
	if err != nil {
		t.Fatal(err)
	}
	topo.CheckNoRedInClear(t, "black link", frames)

	keysA, err := a.Keys()
	if err != nil {
		t.Fatal(err)
	}
	keysB, err := b.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keysA.ESP) != 2 || len(keysB.ESP) != 2 || len(keysA.IKE) != 1 || len(keysB.IKE) != 1 {
		t.Fatalf("keys from the charon logs: gwA %d ESP %d IKE, gwB %d ESP %d IKE; want 2 and 1 each",
			len(keysA.ESP), len(keysA.IKE), len(keysB.ESP), len(keysB.IKE))
	}
	// Both logs must agree on the key of every SPI: a check on the
	// parser's reading of who initiated the CHILD_SA.
	for _, ea := range keysA.ESP {
		found := false
		for _, eb := range keysB.ESP {
			if eb.SPI == ea.SPI {
				found = true
				if string(eb.EncrKey) != string(ea.EncrKey) {
					t.Errorf("SPI %08x: gwA's log and gwB's log give different keys", ea.SPI)
				}
			}
		}
		if !found {
			t.Errorf("SPI %08x from gwA's log is not in gwB's", ea.SPI)
		}
	}
	if ia, ib := keysA.IKE[0], keysB.IKE[0]; ia.SPIi != ib.SPIi || ia.SPIr != ib.SPIr || string(ia.SKei) != string(ib.SKei) ||
		ia.Encr == "" || ia.Encr != ib.Encr || ia.Integ != ib.Integ {
		t.Errorf("IKE keys differ between the logs: %x/%x %s/%s vs %x/%x %s/%s",
			ia.SPIi, ia.SPIr, ia.Encr, ia.Integ, ib.SPIi, ib.SPIr, ib.Encr, ib.Integ)
	}
	for _, e := range append(keysA.ESP, keysB.ESP...) {
		if e.Encr != "AES_GCM_16" || e.Integ != "" || len(e.EncrKey) != 20 {
			t.Errorf("ESP SPI %08x: %s/%s with a %d-byte key, want AES_GCM_16 with 16 bytes of key and 4 of salt", e.SPI, e.Encr, e.Integ, len(e.EncrKey))
		}
	}

	uat := keysA.UAT()
	for _, n := range uat.Notes {
		t.Logf("tshark: %s", n)
	}
	// Beside the capture, for opening it by hand (wireshark -C with a
	// profile holding these two files).
	if err := uat.WriteDir(filepath.Dir(pcap)); err != nil {
		t.Fatal(err)
	}
	decoded, err := harness.Decode(pcap, uat, "")
	if err != nil {
		t.Fatal(err)
	}
	hostA, hostB := topo.HostA.Addr4, topo.HostB.Addr4
	var requests, replies, esp, ikeAuth, ikeAuthDecrypted int
	for _, d := range decoded {
		if d.IKEExchange == harness.IKEExchangeAuth {
			ikeAuth++
			if d.IKEDecrypted && (d.HasPayload(harness.IKEPayloadIDi) || d.HasPayload(harness.IKEPayloadIDr)) {
				ikeAuthDecrypted++
			}
		}
		if d.ESPSPI == 0 {
			continue
		}
		esp++
		if !d.Decrypted {
			t.Errorf("frame %d: ESP SPI %08x not decrypted", d.Frame, d.ESPSPI)
			continue
		}
		in := d.Inner
		switch {
		case in.Proto == 1 && in.Src == hostA && in.Dst == hostB:
			requests++
		case in.Proto == 1 && in.Src == hostB && in.Dst == hostA:
			replies++
		default:
			t.Errorf("frame %d: ESP carries %v, not a ping between %s and %s", d.Frame, in, hostA, hostB)
		}
	}
	if requests < pings || replies < pings {
		t.Errorf("decrypted %d echo requests and %d replies in %d ESP frames; want at least %d each", requests, replies, esp, pings)
	}
	if ikeAuth != 2 {
		t.Errorf("capture holds %d IKE_AUTH messages, want 2", ikeAuth)
	}
	if len(uat.IKEv2) == 1 && ikeAuthDecrypted != ikeAuth {
		t.Errorf("tshark decrypted %d of %d IKE_AUTH messages with the logged IKE keys", ikeAuthDecrypted, ikeAuth)
	}
	t.Logf("capture: %d frames, %d ESP decrypted to %d requests + %d replies, IKE_AUTH decrypted %d/%d", len(decoded), esp, requests, replies, ikeAuthDecrypted, ikeAuth)
}

// TestStrongSwanPubkey authenticates with certificates from the harness's
// CA, one ECDSA and one RSA pair.
func TestStrongSwanPubkey(t *testing.T) {
	harness.RequireE2E(t, "charon-systemd", "swanctl", "ping")
	for _, kt := range []harness.KeyType{harness.ECDSAP256, harness.RSA2048} {
		t.Run(kt.String(), func(t *testing.T) {
			t.Parallel()
			topo := harness.NewTopology(t, harness.Options{A: harness.StrongSwanGateway, B: harness.StrongSwanGateway})
			pki := harness.NewPKI(t, "bitw e2e CA")
			var peers []*harness.StrongSwan
			for _, g := range topo.Gateways() {
				id := pki.Issue(t, g.Name, kt, []string{g.ID()}, []netip.Addr{g.Black4.Addr()})
				site := harness.SiteToSite{
					Proposals:    []string{"aes256-sha384-ecp384"},
					ESPProposals: []string{"aes128gcm16"},
					PKI:          pki, Identity: id,
				}
				peers = append(peers, harness.StartStrongSwan(t, g.NS, g.SwanctlConfig(site), nil))
			}
			if err := peers[0].Initiate(harness.DefaultChildName, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			ike, _ := waitChild(t, peers[1])
			if ike.RemoteID != topo.GwA.ID() {
				t.Errorf("gwB authenticated %q, want %q", ike.RemoteID, topo.GwA.ID())
			}
			topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)
		})
	}
}
