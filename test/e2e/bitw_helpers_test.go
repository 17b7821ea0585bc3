package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// Proposals of the bitw tunnels: what the benchmark uses, and what
// Debian 12's tshark can decrypt in both IKE and ESP.
const (
	bitwIKEProposal = "aes128gcm16-prfsha256-x25519"
	bitwESPProposal = "aes128gcm16"
)

var bitwTools = []string{"ping", "iperf3", "tcpdump", "tshark"}

// bitwSite is the tunnel every bitw test starts from: PSK, the proposals
// above, save_keys on so that tshark can check the black link.
func bitwSite(startAction string) harness.BitwSite {
	return harness.BitwSite{
		Proposals:    []string{bitwIKEProposal},
		ESPProposals: []string{bitwESPProposal},
		PSK:          testPSK,
		StartAction:  startAction,
		SaveKeys:     true,
	}
}

// swanSite is the strongSwan side of the same tunnel.
func swanSite(startAction string) harness.SiteToSite {
	return harness.SiteToSite{
		Proposals:    []string{bitwIKEProposal},
		ESPProposals: []string{bitwESPProposal},
		PSK:          testPSK,
		StartAction:  startAction,
	}
}

// counters are a Child SA's live counters, as either peer reports them.
type counters struct {
	SPIIn, SPIOut                            string
	BytesIn, BytesOut, PacketsIn, PacketsOut uint64
}

func (c counters) sub(o counters) counters {
	return counters{SPIIn: c.SPIIn, SPIOut: c.SPIOut, BytesIn: c.BytesIn - o.BytesIn, BytesOut: c.BytesOut - o.BytesOut,
		PacketsIn: c.PacketsIn - o.PacketsIn, PacketsOut: c.PacketsOut - o.PacketsOut}
}

func (c counters) String() string {
	return fmt.Sprintf("in %s %d B/%d pkts, out %s %d B/%d pkts", c.SPIIn, c.BytesIn, c.PacketsIn, c.SPIOut, c.BytesOut, c.PacketsOut)
}

// gatewayEnd is one end of the tunnel: a bitw or a strongSwan.
type gatewayEnd struct {
	name string
	bitw *harness.Bitw
	swan *harness.StrongSwan
}

// child waits for the INSTALLED Child SA and returns its counters.
func (e gatewayEnd) child(t *testing.T) counters {
	t.Helper()
	if e.bitw != nil {
		_, c, err := e.bitw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		return counters{c.SPIIn, c.SPIOut, c.BytesIn, c.BytesOut, c.PacketsIn, c.PacketsOut}
	}
	_, c, err := e.swan.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", e.name, err)
	}
	return counters{c.SPIIn, c.SPIOut, c.BytesIn, c.BytesOut, c.PacketsIn, c.PacketsOut}
}

// bitwKeys is what the bitw ends' save_keys wrote.
func bitwKeys(t *testing.T, ends ...gatewayEnd) harness.UAT {
	t.Helper()
	var u harness.UAT
	for _, e := range ends {
		if e.bitw == nil {
			continue
		}
		own, err := harness.ReadUATDir(e.bitw.Files.KeysDir)
		if err != nil {
			t.Fatalf("%s save_keys: %v", e.name, err)
		}
		u.Add(own)
	}
	if len(u.ESPSA) == 0 || len(u.IKEv2) == 0 {
		t.Fatalf("save_keys wrote %d ESP and %d IKE records", len(u.ESPSA), len(u.IKEv2))
	}
	return u
}

// icmpEchoLen is the inner IPv4 packet of `ping -s 56`: IP, ICMP
// header, 56 octets of data.
const icmpEchoLen = 20 + 8 + 56

// checkTunnel runs the checks of a working tunnel between a and b (a on
// gwA's side): SPIs agree, pings decrypt from the black link with bitw's
// own keys and nothing else crosses in clear, both ends count exactly the
// pings, and a bounded iperf3 transfer decrypts to the TCP flow it was,
// with both ends' byte counters covering what iperf3 sent.
func checkTunnel(t *testing.T, topo *harness.Topology, a, b gatewayEnd) {
	t.Helper()
	ca0, cb0 := a.child(t), b.child(t)
	if ca0.SPIIn != cb0.SPIOut || ca0.SPIOut != cb0.SPIIn {
		t.Fatalf("SPIs disagree: %s %s, %s %s", a.name, ca0, b.name, cb0)
	}

	const pings = 5
	capture := topo.Wire.StartCapture(t, topo.WireA, 0)
	ping, err := topo.HostA.NS.Ping(topo.HostB.Addr4, pings, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if ping.Received < pings {
		t.Fatalf("ping through the tunnel: %d of %d replies\n%s", ping.Received, ping.Transmitted, ping.Output)
	}
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	ca1, cb1 := a.child(t), b.child(t)
	da, db := ca1.sub(ca0), cb1.sub(cb0)
	t.Logf("ping: %d sent, %d replies; %s counted %s; %s counted %s", ping.Transmitted, ping.Received, a.name, da, b.name, db)
	sent, got := uint64(ping.Transmitted), uint64(ping.Received)
	if da.PacketsOut != sent || db.PacketsIn != sent || db.PacketsOut != sent || da.PacketsIn != got {
		t.Errorf("packet counters do not match the pings (%d requests, %d replies): %s %s; %s %s", sent, got, a.name, da, b.name, db)
	}
	if da.BytesOut != sent*icmpEchoLen || db.BytesIn != sent*icmpEchoLen || da.BytesIn != got*icmpEchoLen {
		t.Errorf("byte counters do not match %d-octet pings: %s %s; %s %s", icmpEchoLen, a.name, da, b.name, db)
	}

	keys := bitwKeys(t, a, b)
	frames, err := harness.ReadPcap(capture.Path)
	if err != nil {
		t.Fatal(err)
	}
	topo.CheckNoRedInClear(t, "black link", frames)
	decoded, err := harness.Decode(capture.Path, keys, "esp")
	if err != nil {
		t.Fatal(err)
	}
	var requests, replies int
	for _, d := range decoded {
		switch in := d.Inner; {
		case !d.Decrypted:
			t.Errorf("frame %d: ESP SPI %08x not decrypted with bitw's save_keys", d.Frame, d.ESPSPI)
		case in.Proto == 1 && in.Src == topo.HostA.Addr4 && in.Dst == topo.HostB.Addr4:
			requests++
		case in.Proto == 1 && in.Src == topo.HostB.Addr4 && in.Dst == topo.HostA.Addr4:
			replies++
		default:
			t.Errorf("frame %d: ESP carries %v, not a ping between the red hosts", d.Frame, in)
		}
	}
	if requests != int(sent) || replies != int(got) {
		t.Errorf("the black link carried %d echo requests and %d replies in ESP; ping sent %d and got %d", requests, replies, sent, got)
	}

	// A bounded TCP transfer, rate-limited so that the whole capture can
	// be decrypted.
	bulk := topo.Wire.StartCapture(t, topo.WireA, 0)
	res, err := harness.Iperf3(t, topo.HostA.NS, topo.HostB.NS, topo.HostB.Addr4, harness.IperfOptions{Duration: 2 * time.Second, Bitrate: "40M"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bulk.Stop(); errors.Is(err, harness.ErrIncompleteCapture) {
		t.Logf("checking what was captured: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	ca2, cb2 := a.child(t), b.child(t)
	da, db = ca2.sub(ca1), cb2.sub(cb1)
	t.Logf("iperf3: %d bytes sent, %.0f Mbit/s, %d retransmits; %s counted %s; %s counted %s",
		res.SentBytes, res.ReceivedBps/1e6, res.Retransmits, a.name, da, b.name, db)
	// The SAs count inner IP packets: payload plus IP and TCP headers
	// (and retransmissions), at most 10% above the payload with 1 kB
	// segments or larger.
	for _, v := range []struct {
		what string
		n    uint64
	}{{a.name + " out", da.BytesOut}, {b.name + " in", db.BytesIn}} {
		if v.n < res.SentBytes || float64(v.n) > 1.1*float64(res.SentBytes)+1e5 {
			t.Errorf("%s: %d bytes for %d bytes of TCP payload", v.what, v.n, res.SentBytes)
		}
	}
	if db.PacketsIn > da.PacketsOut || da.PacketsIn > db.PacketsOut {
		t.Errorf("a peer received more than the other sent: %s %s; %s %s", a.name, da, b.name, db)
	}
	frames, err = bulk.Frames()
	if err != nil {
		t.Fatal(err)
	}
	topo.CheckNoRedInClear(t, "black link", frames)
	decoded, err = harness.Decode(bulk.Path, bitwKeys(t, a, b), "esp")
	if err != nil {
		t.Fatal(err)
	}
	var toB, toA, bad int
	for _, d := range decoded {
		in := d.Inner
		switch {
		case !d.Decrypted:
			bad++
		case in.Proto == 6 && in.Src == topo.HostA.Addr4 && in.Dst == topo.HostB.Addr4:
			toB++
		case in.Proto == 6 && in.Src == topo.HostB.Addr4 && in.Dst == topo.HostA.Addr4:
			toA++
		default:
			bad++
			if bad < 5 {
				t.Errorf("frame %d: ESP carries %v, not the TCP flow between the red hosts", d.Frame, in)
			}
		}
	}
	// At least one segment per 1400 octets of payload crossed hostA ->
	// hostB (the capture may miss a few under load).
	if bad > 0 || uint64(toB)*1400 < res.SentBytes*9/10 || toA == 0 {
		t.Errorf("decrypted %d ESP frames hostA->hostB and %d back, %d not decrypted or foreign, for %d bytes sent", toB, toA, bad, res.SentBytes)
	}
	t.Logf("black link: %d ESP frames decrypted with bitw's keys: %d TCP segments hostA->hostB, %d back", len(decoded), toB, toA)
}

// waitNoSA polls a bitw's status until it holds no IKE SA.
func waitNoSA(t *testing.T, b *harness.Bitw, timeout time.Duration) {
	t.Helper()
	if err := harness.WaitFor(timeout, "no SAs in "+b.NS.Name, func() (bool, error) {
		st, err := b.Status()
		return err == nil && len(st.IKESAs) == 0, err
	}); err != nil {
		t.Fatal(err)
	}
}

// ctlJSON returns the raw output of a control verb, for error messages.
func ctlOut(b *harness.Bitw, verb string, args ...string) string {
	out, err := b.Ctl(10*time.Second, verb, args...)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}
