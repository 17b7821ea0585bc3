package baremetal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bitw-dev/bitw/board/stacknic"
	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/hw/hwtest"
	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
)

const testPSK = "baremetal test pre-shared key, long enough"

// siteConfig is a gateway of design.md's topology with the given links.
func siteConfig(name, me, peer, red, local, remote, redLink, blackLink, start string) string {
	other := "gw-a"
	if name == "gw-a" {
		other = "gw-b"
	}
	return fmt.Sprintf(`[device]
name = %q
log_level = "info"

[interfaces.red]
link = %q
address = %q

[interfaces.black]
link = %q
address = "%s/24"

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

[secrets.ike-peer]
secret = %q
`, name, redLink, red, blackLink, me, peer, name, other, local, remote, start, testPSK)
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("/site/bitw.toml", []byte(src), config.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return cfg
}

func TestMapLinks(t *testing.T) {
	ports := []string{"enet1", "enet2"}
	for _, c := range []struct {
		red, black     string
		wantRed        string
		wantBlack      string
		notes          int
		wantErrContain string
	}{
		{red: "enet1", black: "enet2", wantRed: "enet1", wantBlack: "enet2"},
		// Roles swapped on purpose: the configuration decides.
		{red: "enet2", black: "enet1", wantRed: "enet2", wantBlack: "enet1"},
		// Host names (examples/site-a.toml) take the default ports.
		{red: "red0", black: "black0", wantRed: "enet1", wantBlack: "enet2", notes: 2},
		{red: "tap:red", black: "enet2", wantRed: "enet1", wantBlack: "enet2", notes: 1},
		// A name that is no port falls back to its role's port, which
		// the other interface already holds.
		{red: "enet2", black: "black0", wantErrContain: "both use port enet2"},
	} {
		cfg := parse(t, siteConfig("gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", c.red, c.black, "none"))
		links, notes, err := MapLinks(cfg, ports, "enet1", "enet2")
		if c.wantErrContain != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErrContain) {
				t.Errorf("%s/%s: err %v, want %q", c.red, c.black, err, c.wantErrContain)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s/%s: %v", c.red, c.black, err)
			continue
		}
		if links[cfg.Red.Link] != c.wantRed || links[cfg.Black.Link] != c.wantBlack || len(notes) != c.notes {
			t.Errorf("%s/%s: red %s, black %s, notes %q", c.red, c.black, links[cfg.Red.Link], links[cfg.Black.Link], notes)
		}
		for _, n := range notes {
			if !strings.Contains(n, "is not a port of this board (enet1, enet2); using enet") {
				t.Errorf("note %q does not say what happened", n)
			}
		}
	}
}

func keyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestLoadSite: the configuration and the files it names come from the
// image's site directory, and nothing outside it is reachable.
func TestLoadSite(t *testing.T) {
	base := siteConfig("gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "enet1", "enet2", "none")
	site := fstest.MapFS{
		"bitw.toml":       {Data: []byte(base + "\n[secrets.private-a]\nfile = \"keys/gw-a.key\"\n")},
		"keys/gw-a.key":   {Data: keyPEM(t)},
		"SOURCE":          {Data: []byte("config: x\n")},
		"outside/key.pem": {Data: keyPEM(t)},
	}
	cfg, err := LoadSite(site)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device.Name != "gw-a" || cfg.Red.Link.Name != "enet1" {
		t.Errorf("loaded %+v", cfg.Device)
	}
	for _, name := range []string{"/etc/ssl/private/gw-a.key", "../outside/key.pem", "missing.key"} {
		site["bitw.toml"] = &fstest.MapFile{Data: []byte(base + "\n[secrets.private-a]\nfile = \"" + name + "\"\n")}
		if _, err := LoadSite(site); err == nil {
			t.Errorf("file %q: loaded", name)
		} else if !strings.Contains(err.Error(), "bitw.toml:") {
			t.Errorf("file %q: error without FILE:LINE: %v", name, err)
		}
	}
	if _, err := LoadSite(fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "make firmware") {
		t.Errorf("empty site: %v", err)
	}
}

func TestTerminal(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(&out)
	for _, s := range []string{"a\nb\r\n", "c\r", "\nd\n\n"} {
		if n, err := term.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got, want := out.String(), "a\r\nb\r\nc\r\nd\r\n\r\n"; got != want {
		t.Errorf("terminal wrote %q, want %q", got, want)
	}
}

// fakeBoard is a board whose ports are in-memory links and whose console
// is a pipe the test types into.
type fakeBoard struct {
	ports     map[string]*nictest.NIC
	defaults  [2]string
	engines   []hw.Engine
	consoleIn *io.PipeReader
	typed     *io.PipeWriter
	out       *syncBuffer

	mu      sync.Mutex
	tunnels []bool
}

func (b *fakeBoard) Model() string { return "fake board" }
func (b *fakeBoard) Ports() []string {
	return []string{"enet1", "enet2"}
}
func (b *fakeBoard) DefaultPorts() (string, string) { return b.defaults[0], b.defaults[1] }
func (b *fakeBoard) Console() io.Reader             { return b.consoleIn }
func (b *fakeBoard) Facts() []string                { return []string{"entropy: the test's"} }
func (b *fakeBoard) Engines() []hw.Engine           { return b.engines }
func (b *fakeBoard) SetTunnelState(up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tunnels) == 0 || b.tunnels[len(b.tunnels)-1] != up {
		b.tunnels = append(b.tunnels, up)
	}
}
func (b *fakeBoard) tunnelStates() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bool(nil), b.tunnels...)
}

func (b *fakeBoard) OpenPort(name string) (stacknic.Port, string, error) {
	n, ok := b.ports[name]
	if !ok {
		return nil, "", fmt.Errorf("no port %q", name)
	}
	return hwAddrPort{n}, "memory", nil
}

// hwAddrPort presents a nictest NIC the way board drivers do.
type hwAddrPort struct{ *nictest.NIC }

func (p hwAddrPort) MAC() net.HardwareAddr { m := p.NIC.MAC(); return net.HardwareAddr(m[:]) }

var _ stacknic.Port = hwAddrPort{}

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

// waitFor waits until the console output holds want after offset from,
// and returns the offset past it.
func (b *fakeBoard) waitFor(t *testing.T, from int, want string, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s := b.out.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			return from + i + len(want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("console: no %q within %v:\n%s", want, limit, b.out.String())
	return 0
}

func (b *fakeBoard) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(b.typed, line+"\r"); err != nil {
		t.Fatal(err)
	}
}

func newFakeBoard(red, black *nictest.NIC, engines ...hw.Engine) *fakeBoard {
	in, typed := io.Pipe()
	return &fakeBoard{
		ports:     map[string]*nictest.NIC{"enet1": red, "enet2": black},
		defaults:  [2]string{"enet1", "enet2"},
		engines:   engines,
		consoleIn: in,
		typed:     typed,
		out:       &syncBuffer{},
	}
}

// twoBoardNet joins two boards' ports with in-memory links: hostA
// (192.168.1.10) on redA, blackA to blackB, and hostB (192.168.2.10),
// which answers hostA's pings, on redB.
// id keeps the MAC addresses of different tests apart.
func twoBoardNet(t *testing.T, id byte) (redA, blackA, blackB, redB *nictest.NIC, hostA *nictest.Host) {
	t.Helper()
	mac := func(b byte) netstack.MAC { return netstack.MAC{0x02, 0, 0, 0, id, b} }
	hostANIC, redA := nictest.Pair(1500, mac(1), mac(2))
	blackA, blackB = nictest.Pair(1500, mac(3), mac(4))
	redB, hostBNIC := nictest.Pair(1500, mac(5), mac(6))
	hostA, err := nictest.NewHost(hostANIC, nictest.HostConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.10/24")}, Gateways: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostA.Close() })
	hostB, err := nictest.NewHost(hostBNIC, nictest.HostConfig{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.2.10/24")}, Gateways: []netip.Addr{netip.MustParseAddr("192.168.2.1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostB.Close() })
	return redA, blackA, blackB, redB, hostA
}

// TestRunTwoBoards boots two firmware compositions on fake boards joined
// by in-memory links, with hosts behind them: the console shows the
// engine fallback and the ready line, the tunnel carries pings, status
// and the LED follow it, and poweroff deletes the SAs and returns 0.
func TestRunTwoBoards(t *testing.T) {
	redA, blackA, blackB, redB, hostA := twoBoardNet(t, 0)

	// gw-a's engine corrupts its ciphertext: the self-test must catch it
	// and fall back to the soft engine, saying so.
	broken := hwtest.New(hw.Soft(), "DCP")
	broken.Inject(hwtest.OpEncrypt, hwtest.Corrupt)
	a := newFakeBoard(redA, blackA, broken)
	b := newFakeBoard(redB, blackB)
	siteA := fstest.MapFS{"bitw.toml": {Data: []byte(siteConfig("gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "red0", "black0", "start"))},
		"SOURCE": {Data: []byte("config: examples/site-a.toml\n")}}
	siteB := fstest.MapFS{"bitw.toml": {Data: []byte(siteConfig("gw-b", "203.0.113.2", "203.0.113.1", "192.168.2.1/24", "192.168.2.0/24", "192.168.1.0/24", "enet1", "enet2", "none"))}}

	exitA, exitB := make(chan int, 1), make(chan int, 1)
	go func() { exitB <- Run(b, siteB, Options{Version: "test", Out: b.out}) }()
	bReady := b.waitFor(t, 0, "bitw: ready\r\n", 15*time.Second)
	go func() { exitA <- Run(a, siteA, Options{Version: "test", Out: a.out, Echo: true}) }()
	aRunning := true
	defer func() {
		// Power off what still runs (all of it when the test failed).
		boards := []*fakeBoard{b}
		exits := []chan int{exitB}
		if aRunning {
			boards, exits = append(boards, a), append(exits, exitA)
		}
		for i, x := range boards {
			go x.typed.Write([]byte("poweroff\r"))
			select {
			case <-exits[i]:
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no exit after poweroff", x.Model())
			}
		}
	}()

	pos := a.waitFor(t, 0, `bitw: built-in config: examples/site-a.toml`, 15*time.Second)
	pos = a.waitFor(t, pos, "crypto: DCP self-test failed: ", time.Second)
	pos = a.waitFor(t, pos, "; using soft engine\r\n", time.Second)
	pos = a.waitFor(t, pos, `bitw: interfaces.red: link "red0" is not a port of this board (enet1, enet2); using enet1, the board's red port`, time.Second)
	pos = a.waitFor(t, pos, "bitw: ready\r\n", 15*time.Second)

	deadline := time.Now().Add(15 * time.Second)
	for {
		if s := a.tunnelStates(); len(s) > 0 && s[len(s)-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel LED never lit:\n%s", a.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 3 {
		if err := hostA.Ping(netip.MustParseAddr("192.168.2.10"), 56, 5*time.Second, nil); err != nil {
			t.Fatalf("ping #%d through the tunnel: %v\n%s", i, err, a.out.String())
		}
	}

	a.typeLine(t, "status")
	pos = a.waitFor(t, pos, "status\r\n", 5*time.Second) // the echo
	pos = a.waitFor(t, pos, "lan: INSTALLED", 5*time.Second)
	b.typeLine(t, "status --json")
	b.waitFor(t, bReady, `"state":"INSTALLED"`, 5*time.Second)
	a.typeLine(t, "frobnicate")
	pos = a.waitFor(t, pos, "bitw: unknown command", 5*time.Second)

	a.typeLine(t, "poweroff")
	select {
	case code := <-exitA:
		aRunning = false
		if code != ExitPoweroff {
			t.Errorf("gw-a exited %d after poweroff", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("gw-a still running after poweroff:\n%s", a.out.String())
	}
	a.waitFor(t, pos, "bitw: powered off\r\n", time.Second)
	if s := a.tunnelStates(); len(s) < 2 || s[len(s)-1] {
		t.Errorf("tunnel LED states %v: want on, then off after the SAs were deleted", s)
	}
	// gw-a deleted its SAs with gw-b on the way out.
	bDone := b.out.String()
	b.typeLine(t, "status")
	b.waitFor(t, len(bDone), "gw-b: no IKE SAs", 5*time.Second)
	if out := a.out.String(); strings.Count(out, "\r\n") != strings.Count(out, "\n") {
		t.Errorf("console output has bare LFs")
	}
}

// TestRunEngineCarriesESP: an engine that passes its self-test carries
// the ESP SAs it can (AES-CBC with HMAC-SHA2-256-128) on both gateways,
// and the tunnel works through it.
func TestRunEngineCarriesESP(t *testing.T) {
	redA, blackA, blackB, redB, hostA := twoBoardNet(t, 1)

	engA, engB := hwtest.New(hw.Soft(), "DCP"), hwtest.New(hw.Soft(), "CAAM")
	a, b := newFakeBoard(redA, blackA, engA), newFakeBoard(redB, blackB, engB)
	cbc := func(src string) []byte {
		return []byte(strings.Replace(src, `esp_proposals = ["aes128gcm16"]`, `esp_proposals = ["aes128-sha256"]`, 1))
	}
	siteA := fstest.MapFS{"bitw.toml": {Data: cbc(siteConfig("gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "enet1", "enet2", "start"))}}
	siteB := fstest.MapFS{"bitw.toml": {Data: cbc(siteConfig("gw-b", "203.0.113.2", "203.0.113.1", "192.168.2.1/24", "192.168.2.0/24", "192.168.1.0/24", "enet1", "enet2", "none"))}}
	exitA, exitB := make(chan int, 1), make(chan int, 1)
	go func() { exitB <- Run(b, siteB, Options{Out: b.out}) }()
	b.waitFor(t, 0, "bitw: ready\r\n", 15*time.Second)
	go func() { exitA <- Run(a, siteA, Options{Out: a.out}) }()
	defer func() {
		for _, x := range []struct {
			b    *fakeBoard
			exit chan int
		}{{a, exitA}, {b, exitB}} {
			go x.b.typed.Write([]byte("poweroff\r"))
			select {
			case <-x.exit:
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no exit after poweroff", x.b.Model())
			}
		}
	}()
	a.waitFor(t, 0, "crypto: using DCP engine (aes128-cbc aes192-cbc aes256-cbc hmac-sha256), self-test passed", 15*time.Second)
	a.waitFor(t, 0, `msg="ESP AES-CBC with HMAC-SHA2-256-128 runs on the crypto engine" engine=DCP`, 15*time.Second)
	a.waitFor(t, 0, "bitw: ready\r\n", 15*time.Second)

	encA, encB := engA.Calls(hwtest.OpEncrypt), engB.Calls(hwtest.OpEncrypt)
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < 3; {
		if err := hostA.Ping(netip.MustParseAddr("192.168.2.10"), 56, 2*time.Second, nil); err == nil {
			i++
		} else if time.Now().After(deadline) {
			t.Fatalf("ping through the tunnel: %v\n%s", err, a.out.String())
		}
	}
	// Each echo request is encrypted by gw-a's engine and each reply by
	// gw-b's; the self-tests' own calls happened before.
	if da, db := engA.Calls(hwtest.OpEncrypt)-encA, engB.Calls(hwtest.OpEncrypt)-encB; da < 3 || db < 3 {
		t.Errorf("engines encrypted %d and %d packets for 3 pings each way", da, db)
	}
	if engA.Calls(hwtest.OpVerify) == 0 || engB.Calls(hwtest.OpDecrypt) == 0 {
		t.Error("the engines verified or decrypted nothing")
	}
}

// TestRunConfigError: a configuration the board cannot use ends the
// firmware with ExitConfig and the reason on the console.
func TestRunConfigError(t *testing.T) {
	red, _ := nictest.Pair(1500, netstack.MAC{2, 0, 0, 0, 0, 1}, netstack.MAC{2, 0, 0, 0, 0, 2})
	black, _ := nictest.Pair(1500, netstack.MAC{2, 0, 0, 0, 0, 3}, netstack.MAC{2, 0, 0, 0, 0, 4})
	b := newFakeBoard(red, black)
	site := fstest.MapFS{"bitw.toml": {Data: []byte(siteConfig("gw-a", "203.0.113.1", "203.0.113.2", "192.168.1.1/24", "192.168.1.0/24", "192.168.2.0/24", "enet2", "black0", "none"))}}
	if code := Run(b, site, Options{Out: b.out}); code != ExitConfig {
		t.Errorf("exit %d, want %d", code, ExitConfig)
	}
	b.waitFor(t, 0, "both use port enet2", time.Second)

	site = fstest.MapFS{"bitw.toml": {Data: []byte("[device]\nname = \"gw-a\"\nbogus = 1\n")}}
	if code := Run(b, site, Options{Out: b.out}); code != ExitConfig {
		t.Errorf("exit %d, want %d", code, ExitConfig)
	}
	b.waitFor(t, 0, "/site/bitw.toml:3:", time.Second)
}
