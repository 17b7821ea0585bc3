// Package qemu is the end-to-end suite of the bitw firmware under QEMU:
// the mx6ullevk image, built with a configuration generated for
// design.md's topology, boots as gwA (harness.QEMUGateway: QEMU's ENET1
// and ENET2 on TAPs bridged where gwA's veths end), against strongSwan
// and against the host runtime as gwB. Each test pings, carries a TCP
// transfer bounded by size, checks the black link for cleartext, then
// takes the peer down and checks that red traffic dies at the firmware.
//
// scripts/qemu-e2e.sh (make test) runs it with BITW_QEMU=1 and BITW_BIN;
// without the TamaGo compiler or root it skips, saying why.
package qemu

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

const (
	testPSK     = "bitw QEMU firmware end-to-end pre-shared key"
	ikeProposal = "aes128gcm16-prfsha256-x25519"
	espProposal = "aes128gcm16"
	// transferBytes bounds each TCP transfer: emulated TCP runs at
	// 15-20 Mbit/s (tamago.md), so 4 MiB takes about two seconds.
	transferBytes = 4 << 20
	// transferBound is the most a transfer may take before iperf3 is
	// stopped, generous for a loaded machine.
	transferBound = 60 * time.Second
	// pings is how many echo requests the fail-closed check sends.
	pings = 10
	// idleWindow is how long QEMU's CPU use is sampled while the
	// tunnel is up and idle; maxIdleCPU separates WFI idling (near 0)
	// from polling (a whole core).
	idleWindow = 5 * time.Second
	maxIdleCPU = 0.25
	// captureSnaplen keeps the outer headers and the start of what
	// follows, where red addresses in clear would show.
	captureSnaplen = 256
)

var tools = []string{"ping", "iperf3", "tcpdump", "bash", "timeout"}

func firmwareSite(start string) harness.BitwSite {
	return harness.BitwSite{Proposals: []string{ikeProposal}, ESPProposals: []string{espProposal}, PSK: testPSK,
		StartAction: start, DPDDelay: 10 * time.Second}
}

// peer is gwB: strongSwan or a host-runtime bitw.
type peer struct {
	name string
	swan *harness.StrongSwan
	bitw *harness.Bitw
}

// child waits for gwB's Child SA and returns its byte counters.
func (p peer) child(t *testing.T) (in, out uint64) {
	t.Helper()
	if p.swan != nil {
		_, c, err := p.swan.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 20*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		return c.BytesIn, c.BytesOut
	}
	_, c, err := p.bitw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 20*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return c.BytesIn, c.BytesOut
}

func (p peer) stop(t *testing.T) {
	t.Helper()
	var err error
	if p.swan != nil {
		err = p.swan.Stop()
	} else {
		err = p.bitw.Stop()
	}
	if err != nil {
		t.Fatalf("stopping %s: %v", p.name, err)
	}
}

// TestFirmwareToStrongSwan: the firmware initiates to strongSwan 5.9
// (kernel-libipsec, so ESP travels in UDP 4500).
func TestFirmwareToStrongSwan(t *testing.T) {
	root := harness.RequireQEMU(t, append(tools, "charon-systemd", "swanctl")...)
	topo := harness.NewTopology(t, harness.Options{A: harness.QEMUGateway, B: harness.StrongSwanGateway})
	sw := harness.StartStrongSwan(t, topo.GwB.NS, topo.GwB.SwanctlConfig(harness.SiteToSite{
		Proposals: []string{ikeProposal}, ESPProposals: []string{espProposal}, PSK: testPSK}), nil)
	firmwareSuite(t, root, topo, peer{name: "strongSwan", swan: sw})
}

// TestFirmwareToBitw: the firmware initiates to the host runtime, the
// same composition on AF_PACKET links.
func TestFirmwareToBitw(t *testing.T) {
	root := harness.RequireQEMU(t, tools...)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.QEMUGateway, B: harness.BitwGateway})
	b := harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, firmwareSite("none")))
	firmwareSuite(t, root, topo, peer{name: "host bitw", bitw: b})
}

// TestFirmwarePubkey: certificate authentication, with the certificate,
// key and CA files the configuration names built into the image, against
// the host runtime.
func TestFirmwarePubkey(t *testing.T) {
	root := harness.RequireQEMU(t, "ping")
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.QEMUGateway, B: harness.BitwGateway})
	pki := harness.NewPKI(t, "bitw QEMU test CA")
	site := func(g *harness.Gateway, start string) harness.BitwSite {
		s := firmwareSite(start)
		s.PSK, s.PKI = "", pki
		s.Identity = pki.Issue(t, g.Name, harness.ECDSAP256, []string{g.ID()}, []netip.Addr{g.Black4.Addr()})
		return s
	}
	harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, site(topo.GwB, "none")))
	image := harness.BuildFirmware(t, root, topo.GwA.FirmwareConfig(t, site(topo.GwA, "start")))
	fw := harness.StartFirmware(t, root, image, topo.GwA)
	build, err := os.ReadFile(filepath.Join(filepath.Dir(image), harness.FirmwareBuildLog))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"firmware.sh: embedding ca.pem", "firmware.sh: embedding gw-a.key", "firmware.sh: embedding gw-a.pem"} {
		if !strings.Contains(string(build), want) {
			t.Errorf("the build did not say %q:\n%s", want, build)
		}
	}
	if _, _, err := fw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)
	if status, err := fw.Poweroff(); err != nil || status != 0 {
		t.Errorf("poweroff: status %d, %v", status, err)
	}
}

// TestFirmwareFatalError: a configuration that passes `bitw check` but
// that the board cannot honour (both interfaces on ENET2) stops the
// firmware with the reason on the console, and QEMU exits with the
// firmware's status, 2 (a configuration error).
func TestFirmwareFatalError(t *testing.T) {
	root := harness.RequireQEMU(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.QEMUGateway, B: harness.RouterGateway})
	config := topo.GwA.FirmwareConfig(t, firmwareSite("start"))
	src, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	// Red on ENET2; black on a name that is no port, which falls back
	// to the black default, ENET2 again.
	broken := strings.Replace(string(src), `link = "enet2"`, `link = "black0"`, 1)
	broken = strings.Replace(broken, `link = "enet1"`, `link = "enet2"`, 1)
	if err := os.WriteFile(config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	fw := harness.BootFirmware(t, root, harness.BuildFirmware(t, root, config), topo.GwA)
	line, err := fw.WaitLine(0, func(l string) bool { return strings.Contains(l, "would both use port") }, harness.FirmwareBootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	status, err := fw.Wait(harness.FirmwareExitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("console: %s; QEMU exited with status %d", line, status)
	if status != 2 {
		t.Errorf("QEMU exited with status %d, want the firmware's 2", status)
	}
	if _, err := fw.WaitLine(0, func(l string) bool { return l == "bitw: ready" }, 0); err == nil {
		t.Error("the firmware printed the ready line with an unusable configuration")
	}
}

func firmwareSuite(t *testing.T, root string, topo *harness.Topology, gwB peer) {
	image := harness.BuildFirmware(t, root, topo.GwA.FirmwareConfig(t, firmwareSite("start")))
	// Headers are enough to find red traffic in clear (CleartextLeaks),
	// and short frames keep tcpdump up with the transfer.
	capture := topo.Wire.StartCapture(t, topo.WireA, captureSnaplen)
	fw := harness.StartFirmware(t, root, image, topo.GwA)
	t.Logf("firmware: %q after %v (wall clock from qemu/boot.sh)", "bitw: ready", fw.ReadyAfter.Round(time.Millisecond))
	// QEMU models neither the DCP nor the CAAM: the boot self-test must
	// have said that the soft engine took over.
	if line, err := fw.WaitLine(0, func(l string) bool { return strings.HasPrefix(l, "crypto: ") }, time.Second); err != nil {
		t.Errorf("no crypto engine line on the console: %v", err)
	} else if !strings.HasSuffix(line, "using soft engine") {
		t.Errorf("crypto engine line %q: want the fallback to the soft engine", line)
	} else {
		t.Logf("console: %s", line)
	}

	ikeA, childA, err := fw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !ikeA.Initiator || ikeA.Proposal != ikeProposal || childA.Proposal != espProposal || childA.Mode != "TUNNEL" || childA.Protocol != "ESP" {
		t.Errorf("firmware status: %+v", ikeA)
	}
	t.Logf("firmware: tunnel up %v after boot.sh started; Child SA in %s out %s, ESP in UDP: %v",
		time.Since(fw.Started).Round(time.Millisecond), childA.SPIIn, childA.SPIOut, childA.Encap)
	gwB.child(t)

	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 5)
	topo.HostB.NS.MustPing(t, topo.HostA.Addr4, 5)

	// A bounded TCP transfer each way; the firmware's Child SA must
	// account for at least the payload iperf3 sent through it.
	_, before, _ := fw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second)
	peerIn0, peerOut0 := gwB.child(t)
	// The SAs count inner IP packets, headers included, so they carried
	// at least the payload the receivers got.
	var got [2]uint64
	for i, reverse := range []bool{false, true} {
		r, err := harness.Iperf3(t, topo.HostA.NS, topo.HostB.NS, topo.HostB.Addr4,
			harness.IperfOptions{Bytes: transferBytes, Duration: transferBound, Reverse: reverse})
		if err != nil {
			t.Fatal(err)
		}
		dir := "hostA -> hostB (firmware encrypts)"
		if reverse {
			dir = "hostB -> hostA (firmware decrypts)"
		}
		t.Logf("iperf3 -n %d through firmware <-> %s, %s: %d bytes received at %.1f Mbit/s, %d retransmits",
			transferBytes, gwB.name, dir, r.ReceivedBytes, r.ReceivedBps/1e6, r.Retransmits)
		got[i] = r.ReceivedBytes
	}
	_, after, err := fw.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	peerIn1, peerOut1 := gwB.child(t)
	out, in := after.BytesOut-before.BytesOut, after.BytesIn-before.BytesIn
	t.Logf("Child SA bytes during the transfers: firmware out %d (%d packets), in %d (%d packets); %s in %d, out %d",
		out, after.PacketsOut-before.PacketsOut, in, after.PacketsIn-before.PacketsIn, gwB.name, peerIn1-peerIn0, peerOut1-peerOut0)
	if out < got[0] || in < got[1] || peerIn1-peerIn0 < got[0] || peerOut1-peerOut0 < got[1] {
		t.Errorf("the Child SAs carried less than the %d and %d bytes of payload iperf3 received", got[0], got[1])
	}

	frames := capture.StopFrames(t)
	topo.CheckNoRedInClear(t, "black link", frames)
	esp := 0
	for _, f := range frames {
		if _, payload, ok := f.Network(); ok {
			if p, ok := harness.ParseIP(payload); ok && (p.Proto == 50 || p.Proto == 17 && len(p.Payload) >= 8 && p.Payload[2] == 0x11 && p.Payload[3] == 0x94) {
				esp++
			}
		}
	}
	t.Logf("black link while the tunnel was up: %d frames, %d of them ESP or to UDP 4500, none with red traffic in clear", len(frames), esp)
	if esp == 0 {
		t.Error("no ESP on the black link: the traffic did not go through the tunnel")
	}

	consoleVerbs(t, topo, fw)
	idleCPU(t, fw)
	timedThroughput(t, topo, fw, gwB.name)

	// The peer goes away (deleting its SAs); red traffic must then die
	// at the firmware, counted, with nothing red on the black link.
	gwB.stop(t)
	if err := harness.WaitFor(15*time.Second, "the firmware to drop the SAs the peer deleted", func() (bool, error) {
		st, err := fw.Status()
		if err != nil {
			return false, err
		}
		for _, sa := range st.IKESAs {
			for _, c := range sa.ChildSAs {
				if c.State == "INSTALLED" {
					return false, fmt.Errorf("still %s/%s %s", sa.Conn, c.Name, c.State)
				}
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	dropsBefore := redDrops(t, fw)
	capture = topo.Wire.StartCapture(t, topo.WireA, 0)
	redAttempts(t, topo)
	frames = capture.StopFrames(t)
	topo.CheckNoRedInClear(t, "black link, peer down", frames)
	dropped := redDrops(t, fw) - dropsBefore
	t.Logf("peer down: black link carried %d frames, none with red traffic; the firmware dropped %d red packets (policy_discard + no_sa)", len(frames), dropped)
	if dropped < pings+2 {
		t.Errorf("the firmware counted %d red drops with the peer down; want at least %d (the pings, a TCP SYN, a UDP datagram)", dropped, pings+2)
	}

	status, err := fw.Poweroff()
	if err != nil || status != 0 {
		t.Errorf("poweroff: QEMU exited with status %d (%v), want 0", status, err)
	}
	if _, err := fw.WaitLine(0, func(l string) bool { return l == "bitw: powered off" }, time.Second); err != nil {
		t.Errorf("no power-off line: %v", err)
	}
}

// consoleVerbs drives the firmware through the verbs of its console:
// rekeys of the Child SA and the IKE SA, the log level, down and up,
// each answered on the console and visible in the status; the tunnel
// carries pings afterwards.
func consoleVerbs(t *testing.T, topo *harness.Topology, fw *harness.Firmware) {
	t.Helper()
	conn, child := harness.DefaultConnName, harness.DefaultConnName+"/"+harness.DefaultChildName
	do := func(cmd, want string) {
		t.Helper()
		verb := strings.Fields(cmd)[0]
		reply, err := fw.Command(cmd, func(l string) bool { return l == want || strings.HasPrefix(l, "bitw: "+verb) }, 40*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if reply != want {
			t.Fatalf("console %q: %q, want %q", cmd, reply, want)
		}
		t.Logf("console: %s -> %s", cmd, reply)
	}
	ike0, child0, err := fw.WaitChild(conn, harness.DefaultChildName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	do("rekey "+child+" --timeout 30s", child+": rekeyed")
	do("rekey "+conn+" --timeout 30s", conn+": rekeyed")
	do("log debug", "log level debug")
	do("log info", "log level info")
	st, err := fw.StatusJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), `"spi_i":"`) || strings.Contains(string(st), child0.SPIIn) {
		t.Errorf("after the rekeys the status still shows Child SA %s (IKE SA was %+v): %s", child0.SPIIn, ike0, st)
	}
	do("down "+conn, conn+": down")
	if b, err := fw.Status(); err != nil || len(b.IKESAs) != 0 {
		t.Errorf("after down: %+v, %v", b.IKESAs, err)
	}
	do("up "+child+" --timeout 30s", child+": up")
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 3)
}

// EnvIperfSeconds, when set to a number of seconds, adds a timed iperf3
// run each way after the checks: the steady-state throughput that
// docs/performance.md reports (a byte-bounded run ends before the
// sender's socket buffer drains, so it measures less exactly).
const EnvIperfSeconds = "BITW_QEMU_IPERF_SECONDS"

func timedThroughput(t *testing.T, topo *harness.Topology, fw *harness.Firmware, peerName string) {
	t.Helper()
	v := os.Getenv(EnvIperfSeconds)
	if v == "" {
		return
	}
	secs, err := strconv.Atoi(v)
	if err != nil || secs <= 0 || secs > 120 {
		t.Fatalf("%s=%q: want whole seconds, 1 to 120", EnvIperfSeconds, v)
	}
	pid, err := fw.QEMUPid()
	if err != nil {
		t.Fatal(err)
	}
	for _, reverse := range []bool{false, true} {
		ticks0, err := harness.CPUTicks(pid)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r, err := harness.Iperf3(t, topo.HostA.NS, topo.HostB.NS, topo.HostB.Addr4,
			harness.IperfOptions{Duration: time.Duration(secs) * time.Second, Reverse: reverse, Port: 5202})
		if err != nil {
			t.Fatal(err)
		}
		ticks1, err := harness.CPUTicks(pid)
		if err != nil {
			t.Fatal(err)
		}
		dir := "hostA -> hostB (firmware encrypts)"
		if reverse {
			dir = "hostB -> hostA (firmware decrypts)"
		}
		t.Logf("iperf3 -t %d through firmware <-> %s, %s: %.1f Mbit/s received (%d bytes), %d retransmits; QEMU used %.0f%% of a host core",
			secs, peerName, dir, r.ReceivedBps/1e6, r.ReceivedBytes, r.Retransmits, float64(ticks1-ticks0)/time.Since(start).Seconds())
	}
}

// redDrops sums the firmware's drops of red traffic without an SA.
func redDrops(t *testing.T, fw *harness.Firmware) uint64 {
	t.Helper()
	drops, err := fw.Drops()
	if err != nil {
		t.Fatal(err)
	}
	return drops["ipsec"]["policy_discard"] + drops["ipsec"]["no_sa"]
}

// redAttempts sends what a red host might: pings into the protected
// subnet, a TCP connection attempt and a UDP datagram there, and pings to
// an uncovered address and to the peer's black address. None may get an
// answer.
func redAttempts(t *testing.T, topo *harness.Topology) {
	t.Helper()
	h := topo.HostA.NS
	r, err := h.Ping(topo.HostB.Addr4, pings, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 0 {
		t.Errorf("%d pings to %s answered with the peer down", r.Received, topo.HostB.Addr4)
	}
	for _, dst := range []netip.Addr{netip.MustParseAddr("198.51.100.7"), topo.GwB.Black4.Addr()} {
		if r, err := h.Ping(dst, 3, 100*time.Millisecond); err != nil || r.Received != 0 {
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

// idleCPU samples QEMU's CPU use while the tunnel idles: the firmware
// sleeps in WFI between interrupts and timers, where polling would cost
// a whole host core.
func idleCPU(t *testing.T, fw *harness.Firmware) {
	t.Helper()
	pid, err := fw.QEMUPid()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let the last transfer's frames settle
	before, err := harness.CPUTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(idleWindow)
	after, err := harness.CPUTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	share := float64(after-before) / 100 / elapsed.Seconds()
	t.Logf("idle: QEMU used %d ticks of CPU in %v with the tunnel up: %.1f%% of one core", after-before, elapsed.Round(time.Millisecond), 100*share)
	if share > maxIdleCPU {
		t.Errorf("an idle firmware costs %.0f%% of a host core: it does not sleep between interrupts", 100*share)
	}
}
