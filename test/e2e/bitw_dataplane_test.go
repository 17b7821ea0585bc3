package e2e

import (
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// pingOut runs ping with extra arguments in ns and returns its output;
// a non-zero exit (no reply) is not an error here.
func pingOut(t *testing.T, ns *harness.Netns, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, _ := ns.Exec(ctx, append([]string{"ping", "-n"}, args...)...)
	return string(out)
}

// synMSS returns the MSS options of the TCP SYNs (and SYN-ACKs) in
// frames that come from the addresses in from, by IP version.
func synMSS(frames []harness.Frame, from ...netip.Addr) (v4, v6 []int) {
	for _, f := range frames {
		_, nw, ok := f.Network()
		if !ok {
			continue
		}
		ip, ok := harness.ParseIP(nw)
		if !ok || ip.Proto != 6 || len(ip.Payload) < 20 || !slices.Contains(from, ip.Src) {
			continue
		}
		tcp := ip.Payload
		if tcp[13]&0x02 == 0 { // SYN
			continue
		}
		opts := tcp[20:min(int(tcp[12]>>4)*4, len(tcp))]
		for len(opts) > 0 {
			kind := opts[0]
			if kind == 0 {
				break
			}
			if kind == 1 {
				opts = opts[1:]
				continue
			}
			if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
				break
			}
			if kind == 2 && opts[1] == 4 {
				mss := int(binary.BigEndian.Uint16(opts[2:4]))
				if ip.Src.Is4() {
					v4 = append(v4, mss)
				} else {
					v6 = append(v6, mss)
				}
			}
			opts = opts[opts[1]:]
		}
	}
	return v4, v6
}

// TestBitwDataPlane checks the router duties of the tunnel between two
// bitw gateways in a dual-stack topology: IPv6 inside IPv4 ESP, MSS
// clamping of both families, fragments, pre-fragmentation of packets with
// DF clear, ICMP "fragmentation needed" for those with DF set, and ICMP
// time exceeded from either gateway; all the while the black link
// carries nothing red in clear.
func TestBitwDataPlane(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway, IPv6: true})
	harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, bitwSite("none")))
	a := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("start")))
	_, child, err := a.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(child.LocalTS) != 2 || len(child.RemoteTS) != 2 {
		t.Errorf("dual-stack selectors: local %v remote %v", child.LocalTS, child.RemoteTS)
	}
	black := topo.Wire.StartCapture(t, topo.WireA, 256)
	hostB := topo.HostB.NS.StartCapture(t, harness.HostLink, 256)
	hostA := topo.HostA.NS.StartCapture(t, harness.HostLink, 256)

	hA := topo.HostA.NS
	hA.MustPing(t, topo.HostB.Addr4, 3)
	hA.MustPing(t, topo.HostB.Addr6, 3)
	for _, dst := range []netip.Addr{topo.HostB.Addr4, topo.HostB.Addr6} {
		res, err := harness.Iperf3(t, hA, topo.HostB.NS, dst, harness.IperfOptions{Duration: time.Second, Bitrate: "20M"})
		if err != nil {
			t.Fatalf("TCP to %s: %v", dst, err)
		}
		t.Logf("TCP to %s: %.0f Mbit/s", dst, res.ReceivedBps/1e6)
	}

	// Fragments: 3000-octet pings leave hostA in fragments; each crosses
	// on its own (RFC 4301 §7.1). IPv4 fragments that do not fit the SA
	// are fragmented further (DF is clear on them); IPv6 ones are
	// answered with packet-too-big, as no router fragments IPv6, so the
	// first pings teach hostA (requests) and hostB (replies) the
	// tunnel's path MTU.
	if out := pingOut(t, hA, "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", topo.HostB.Addr4.String()); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("fragmented pings to %s:\n%s", topo.HostB.Addr4, out)
	}
	if out := pingOut(t, hA, "-c", "3", "-i", "0.3", "-W", "1", "-s", "3000", topo.HostB.Addr6.String()); !strings.Contains(out, "Packet too big: mtu=14") {
		t.Errorf("first 3000-octet IPv6 pings: no packet-too-big with the tunnel's MTU:\n%s", out)
	}
	if out := pingOut(t, hA, "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", topo.HostB.Addr6.String()); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("fragmented pings to %s after learning the path MTU:\n%s", topo.HostB.Addr6, out)
	}
	// 1478 octets do not fit the SA behind a 1500-octet black link: with
	// DF clear gwA fragments before encrypting (RFC 4459 §3.4) ...
	if out := pingOut(t, hA, "-c", "3", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "1450", topo.HostB.Addr4.String()); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("1478-octet pings with DF clear:\n%s", out)
	}
	// ... and with DF set it answers "fragmentation needed" with the
	// tunnel's MTU (RFC 4301 §8.2), which ping reports.
	if out := pingOut(t, hA, "-c", "2", "-i", "0.5", "-W", "1", "-M", "do", "-s", "1450", topo.HostB.Addr4.String()); !strings.Contains(out, "mtu = 14") && !strings.Contains(out, "mtu=14") {
		t.Errorf("1478-octet pings with DF set: no fragmentation-needed with the tunnel MTU:\n%s", out)
	}
	// Time exceeded: TTL 1 dies at gwA, TTL 2 at gwB (behind the tunnel).
	if out := pingOut(t, hA, "-c", "1", "-W", "2", "-t", "1", topo.HostB.Addr4.String()); !strings.Contains(out, "From "+topo.GwA.Red4.Addr().String()) || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("TTL 1: want time exceeded from gwA:\n%s", out)
	}
	if out := pingOut(t, hA, "-c", "1", "-W", "2", "-t", "2", topo.HostB.Addr4.String()); !strings.Contains(out, "From "+topo.GwB.Red4.Addr().String()) || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("TTL 2: want time exceeded from gwB through the tunnel:\n%s", out)
	}
	if out := pingOut(t, hA, "-c", "1", "-W", "2", "-t", "1", topo.HostB.Addr6.String()); !strings.Contains(out, "From "+topo.GwA.Red6.Addr().String()) || !strings.Contains(out, "Time exceeded") {
		t.Errorf("hop limit 1: want time exceeded from gwA:\n%s", out)
	}

	// SYNs from hostA as they reach hostB, SYN-ACKs from hostB as they
	// reach hostA: each clamped by the gateway that encrypted it.
	var v4, v6 []int
	for _, c := range []struct {
		capture *harness.Capture
		from    []netip.Addr
	}{{hostB, []netip.Addr{topo.HostA.Addr4, topo.HostA.Addr6}}, {hostA, []netip.Addr{topo.HostB.Addr4, topo.HostB.Addr6}}} {
		if err := c.capture.Stop(); err != nil {
			t.Fatal(err)
		}
		frames, err := c.capture.Frames()
		if err != nil {
			t.Fatal(err)
		}
		m4, m6 := synMSS(frames, c.from...)
		v4, v6 = append(v4, m4...), append(v6, m6...)
	}
	t.Logf("MSS of the SYNs and SYN-ACKs after the tunnel: IPv4 %v, IPv6 %v", v4, v6)
	if len(v4) < 4 || len(v6) < 4 {
		t.Errorf("too few SYNs captured: IPv4 %v IPv6 %v", v4, v6)
	}
	// netstack's clamp: the black MTU less the worst-case ESP overhead
	// (with an IPv6 black address, an IPv6 outer header), less the inner
	// IP and TCP headers.
	for _, m := range v4 {
		if m > 1359 {
			t.Errorf("IPv4 SYN with MSS %d crossed: want at most 1359", m)
		}
	}
	for _, m := range v6 {
		if m > 1339 {
			t.Errorf("IPv6 SYN with MSS %d crossed: want at most 1339", m)
		}
	}

	frames := black.StopFrames(t)
	topo.CheckNoRedInClear(t, "black link", frames)
}
