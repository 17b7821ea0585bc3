package runtime

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/control"
	"github.com/bitw-dev/bitw/firmware/status"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
)

// The in-memory version of design.md's topology:
//
//	hostA 192.168.1.10 -- red0 [gw-a] black0 203.0.113.1 -- 203.0.113.2 black0 [gw-b] red0 -- hostB 192.168.2.10
//
// Both gateways are whole runtimes (IKE, engine, netstack, control
// socket), joined by nictest links instead of AF_PACKET.
type lab struct {
	hostA, hostB *nictest.Host
	a, b         *gateway
}

type gateway struct {
	rt     *Runtime
	cfg    *config.Config
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// syncBuffer is a log sink the test reads while the runtime writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const labPSK = "runtime test pre-shared key, long enough"

func gatewayLine(gw string) string {
	if gw == "" {
		return ""
	}
	return fmt.Sprintf("gateway = %q", gw)
}

func peerName(name string) string {
	if name == "gw-a" {
		return "gw-b"
	}
	return "gw-a"
}

// siteConfig writes a gateway's configuration; extra is appended to the
// child's section, device to [device].
func siteConfig(t *testing.T, name, me, peer, red, local, remote, startAction, device, child string) *config.Config {
	return siteConfigGW(t, name, me, peer, red, local, remote, startAction, device, child, "")
}

// siteConfigGW is siteConfig with a black gateway (empty for none).
func siteConfigGW(t *testing.T, name, me, peer, red, local, remote, startAction, device, child, gateway string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`
[device]
name = %q
control = %q
log_level = "debug"
%s

[interfaces.red]
link = "red0"
address = %q

[interfaces.black]
link = "black0"
address = "%s/24"
%s

[connections.peer]
remote_addrs = [%q]
proposals = ["aes128gcm16-prfsha256-x25519"]
local = { auth = "psk", id = "%s.example" }
remote = { auth = "psk", id = "%s.example" }

[connections.peer.children.lan]
local_ts = [%q]
remote_ts = [%q]
esp_proposals = ["aes128gcm16"]
start_action = %q
%s

[secrets.ike-lab]
secret = %q
`, name, filepath.Join(dir, "c.sock"), device, red, me, gatewayLine(gateway), peer, name, peerName(name), local, remote, startAction, child, labPSK)
	path := filepath.Join(dir, "bitw.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	return cfg
}

type labOptions struct {
	startA, startB     string // start_action of each side
	deviceA, deviceB   string // extra [device] lines
	childA, childB     string // extra child lines
	noStartA, noStartB bool   // build but do not run
	blackGateways      bool   // each gateway routes off-link black traffic to the other
}

func newLab(t *testing.T, o labOptions) *lab {
	t.Helper()
	mac := func(b byte) netstack.MAC { return netstack.MAC{0x02, 0, 0, 0, 0, b} }
	hostANIC, redA := nictest.Pair(1500, mac(1), mac(2))
	blackA, blackB := nictest.Pair(1500, mac(3), mac(4))
	redB, hostBNIC := nictest.Pair(1500, mac(5), mac(6))
	l := &lab{}
	var err error
	l.hostA, err = nictest.NewHost(hostANIC, nictest.HostConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.10/24")}, Gateways: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.hostA.Close)
	l.hostB, err = nictest.NewHost(hostBNIC, nictest.HostConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.2.10/24")}, Gateways: []netip.Addr{netip.MustParseAddr("192.168.2.1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.hostB.Close)
	if o.startA == "" {
		o.startA = "start"
	}
	if o.startB == "" {
		o.startB = "none"
	}
	gwA, gwB := "", ""
	if o.blackGateways {
		gwA, gwB = "203.0.113.2", "203.0.113.1"
	}
	cfgA := siteConfigGW(t, "gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", o.startA, o.deviceA, o.childA, gwA)
	cfgB := siteConfigGW(t, "gw-b", "203.0.113.2", "203.0.113.1", "192.168.2.1/24", "192.168.2.0/24", "192.168.1.0/24", o.startB, o.deviceB, o.childB, gwB)
	l.b = startGateway(t, cfgB, redB, blackB, !o.noStartB)
	l.a = startGateway(t, cfgA, redA, blackA, !o.noStartA)
	return l
}

func startGateway(t *testing.T, cfg *config.Config, red, black *nictest.NIC, run bool) *gateway {
	t.Helper()
	g := &gateway{cfg: cfg, log: &syncBuffer{}, done: make(chan error, 1)}
	open := func(l config.Link) (Port, error) {
		switch l.Name {
		case "red0":
			return Port{NIC: red, Kind: "memory"}, nil
		case "black0":
			return Port{NIC: black, Kind: "memory"}, nil
		}
		return Port{}, fmt.Errorf("no link %s", l.Name)
	}
	rt, err := New(cfg, Options{Stderr: g.log, Version: "test", OpenPort: open, Control: HostControl, KeyLog: HostKeyLog, ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g.rt = rt
	if !run {
		return g
	}
	g.run(t)
	return g
}

func (g *gateway) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.rt.Run(ctx) }()
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", g.cfg.Device.Name, tail(g.log.String(), 60))
		}
	})
	select {
	case <-g.rt.Ready():
	case err := <-g.done:
		t.Fatalf("%s stopped before it was ready: %v\n%s", g.cfg.Device.Name, err, g.log.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not ready\n%s", g.cfg.Device.Name, g.log.String())
	}
}

// stop cancels the runtime once and waits for Run to return.
func (g *gateway) stop() error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		return err
	case <-time.After(20 * time.Second):
		return fmt.Errorf("%s: Run did not return after cancel", g.cfg.Device.Name)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// child returns the first Child SA of conn in the state wanted.
func child(st status.Status, name, state string) (status.IKESA, status.ChildSA, bool) {
	for _, sa := range st.IKESAs {
		for _, c := range sa.ChildSAs {
			if c.Name == name && c.State == state {
				return sa, c, true
			}
		}
	}
	return status.IKESA{}, status.ChildSA{}, false
}

func waitInstalled(t *testing.T, g *gateway) (status.IKESA, status.ChildSA) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if sa, c, ok := child(g.rt.Snapshot(), "lan", status.ChildInstalled); ok && sa.State == status.IKEEstablished {
			return sa, c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no INSTALLED child: %+v\n%s", g.cfg.Device.Name, g.rt.Snapshot(), tail(g.log.String(), 40))
	return status.IKESA{}, status.ChildSA{}
}

func ping(t *testing.T, h *nictest.Host, dst string, n int) {
	t.Helper()
	for i := range n {
		if err := h.Ping(netip.MustParseAddr(dst), 56, 3*time.Second, nil); err != nil {
			t.Fatalf("ping %s #%d: %v", dst, i, err)
		}
	}
}

// TestTwoGatewaysPSK brings up the tunnel from gw-a's start action and
// carries pings both ways; the status of each side accounts for them.
func TestTwoGatewaysPSK(t *testing.T) {
	l := newLab(t, labOptions{})
	saA, cA := waitInstalled(t, l.a)
	saB, cB := waitInstalled(t, l.b)
	if !saA.Initiator || saB.Initiator {
		t.Errorf("roles: gw-a initiator %v, gw-b initiator %v", saA.Initiator, saB.Initiator)
	}
	if cA.SPIIn != cB.SPIOut || cA.SPIOut != cB.SPIIn {
		t.Errorf("SPIs disagree: a in %v out %v, b in %v out %v", cA.SPIIn, cA.SPIOut, cB.SPIIn, cB.SPIOut)
	}
	ping(t, l.hostA, "192.168.2.10", 5)
	ping(t, l.hostB, "192.168.1.10", 5)
	_, cA, _ = child(l.a.rt.Snapshot(), "lan", status.ChildInstalled)
	_, cB, _ = child(l.b.rt.Snapshot(), "lan", status.ChildInstalled)
	// 10 echo requests and 10 replies cross each way.
	if cA.PacketsOut != 10 || cA.PacketsIn != 10 || cB.PacketsOut != 10 || cB.PacketsIn != 10 {
		t.Errorf("packet counters: a out %d in %d, b out %d in %d; want 10 each", cA.PacketsOut, cA.PacketsIn, cB.PacketsOut, cB.PacketsIn)
	}
	if cA.BytesOut != cB.BytesIn || cA.BytesIn != cB.BytesOut || cA.BytesOut == 0 {
		t.Errorf("byte counters: a out %d in %d, b out %d in %d", cA.BytesOut, cA.BytesIn, cB.BytesOut, cB.BytesIn)
	}
	if cA.Proposal != "aes128gcm16" || cA.Mode != status.ModeTunnel || cA.Protocol != status.ProtocolESP {
		t.Errorf("child: %+v", cA)
	}
	// The default lifetimes: rekey_time 4h and over_time 10% of it for
	// the IKE SA, rekey_time 1h less up to rand_time and life_time 1.1h
	// for the Child SAs.
	for _, sa := range []status.IKESA{saA, saB} {
		if sa.RekeySecs <= 3*3600 || sa.RekeySecs > 4*3600 || sa.ExpireSecs <= sa.RekeySecs || sa.ExpireSecs > 4*3600+24*60 {
			t.Errorf("IKE SA times: rekey in %ds, expires in %ds", sa.RekeySecs, sa.ExpireSecs)
		}
	}
	for _, c := range []status.ChildSA{cA, cB} {
		if c.RekeySecs <= 3000 || c.RekeySecs > 3600 || c.ExpireSecs <= c.RekeySecs || c.ExpireSecs > 3960 {
			t.Errorf("Child SA times: rekey in %ds, expires in %ds", c.RekeySecs, c.ExpireSecs)
		}
	}
	if len(cA.LocalTS) != 1 || cA.LocalTS[0] != "192.168.1.0/24" || len(cA.RemoteTS) != 1 || cA.RemoteTS[0] != "192.168.2.0/24" {
		t.Errorf("selectors: %v %v", cA.LocalTS, cA.RemoteTS)
	}
}

// TestControlSocketVerbs drives the running gateway through its control
// socket as the CLI does: status, rekey, down, up, log.
func TestControlSocketVerbs(t *testing.T) {
	l := newLab(t, labOptions{})
	_, before := waitInstalled(t, l.a)
	sock := l.a.cfg.Device.Control
	do := func(req control.Request) control.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := control.Do(ctx, sock, req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		return resp
	}
	if r := do(control.Request{Verb: control.VerbStatus, JSON: true}); !r.OK || r.Status == nil || len(r.Status.IKESAs) != 1 {
		t.Fatalf("status: %+v", r)
	}
	if r := do(control.Request{Verb: control.VerbRekey, Conn: "peer", Child: "lan"}); !r.OK {
		t.Fatalf("rekey: %+v", r)
	}
	_, after := waitInstalled(t, l.a)
	if after.SPIIn == before.SPIIn || after.SPIOut == before.SPIOut {
		t.Errorf("rekey kept the SPIs: %v/%v", after.SPIIn, after.SPIOut)
	}
	ping(t, l.hostA, "192.168.2.10", 2)
	ikeBefore, _ := waitInstalled(t, l.a)
	if r := do(control.Request{Verb: control.VerbRekey, Conn: "peer"}); !r.OK {
		t.Fatalf("IKE rekey: %+v", r)
	}
	ikeAfter, _ := waitInstalled(t, l.a)
	if ikeAfter.SPIi == ikeBefore.SPIi {
		t.Errorf("IKE rekey kept SPI %v", ikeAfter.SPIi)
	}
	ping(t, l.hostA, "192.168.2.10", 2)
	if r := do(control.Request{Verb: control.VerbUp, Conn: "nope"}); r.OK || !r.Usage {
		t.Errorf("up of an unknown connection: %+v", r)
	}
	if r := do(control.Request{Verb: control.VerbUp, Conn: "peer", Child: "nope"}); r.OK || !r.Usage {
		t.Errorf("up of an unknown child: %+v", r)
	}
	if r := do(control.Request{Verb: control.VerbDown, Conn: "peer"}); !r.OK {
		t.Fatalf("down: %+v", r)
	}
	if st := l.a.rt.Snapshot(); len(st.IKESAs) != 0 {
		t.Errorf("after down: %+v", st.IKESAs)
	}
	if err := l.hostA.Ping(netip.MustParseAddr("192.168.2.10"), 56, 500*time.Millisecond, nil); err == nil {
		t.Error("ping crossed with the tunnel down")
	}
	if r := do(control.Request{Verb: control.VerbUp, Conn: "peer", Child: "lan"}); !r.OK {
		t.Fatalf("up: %+v", r)
	}
	ping(t, l.hostA, "192.168.2.10", 2)
	if r := do(control.Request{Verb: control.VerbLog, Level: "warn"}); !r.OK {
		t.Fatalf("log: %+v", r)
	}
	if l.a.rt.level.Level().String() != "WARN" {
		t.Errorf("level %v after log warn", l.a.rt.level.Level())
	}
}

// TestBypassPolicy: with no tunnel, a [policy] bypass rule lets ICMP
// between the sites cross in clear while the default DISCARD stops TCP;
// default = "bypass" lets everything cross. Each gateway's black gateway
// is the other, so cleartext has a route.
func TestBypassPolicy(t *testing.T) {
	icmp := "\n[policy]\nbypass = [{ local = \"%s\", remote = \"%s\", proto = \"icmp\" }]\n"
	l := newLab(t, labOptions{startA: "none", blackGateways: true,
		deviceA: fmt.Sprintf(icmp, "192.168.1.0/24", "192.168.2.0/24"),
		deviceB: fmt.Sprintf(icmp, "192.168.2.0/24", "192.168.1.0/24")})
	ping(t, l.hostA, "192.168.2.10", 3)
	ln, err := l.hostB.ListenTCP(netip.MustParseAddrPort("192.168.2.10:7"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if c, err := l.hostA.DialTCP(ctx, netip.MustParseAddrPort("192.168.2.10:7")); err == nil {
		c.Close()
		t.Fatal("TCP crossed without a tunnel or a bypass rule")
	}
	if d := l.a.rt.Snapshot().Drops[status.SourceIPsec]["policy_discard"]; d == 0 {
		t.Errorf("no policy_discard counted: %v", l.a.rt.Snapshot().Drops)
	}

	open := newLab(t, labOptions{startA: "none", blackGateways: true, deviceA: "\n[policy]\ndefault = \"bypass\"\n", deviceB: "\n[policy]\ndefault = \"bypass\"\n"})
	ln2, err := open.hostB.ListenTCP(netip.MustParseAddrPort("192.168.2.10:7"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	c, err := open.hostA.DialTCP(ctx2, netip.MustParseAddrPort("192.168.2.10:7"))
	if err != nil {
		t.Fatalf("TCP with default = bypass: %v", err)
	}
	c.Close()
}
