package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/control"
	"github.com/bitw-dev/bitw/firmware/status"
)

// instance is a running bitw as far as the CLI can tell: a control server
// with a scripted handler.
type instance struct {
	mu    sync.Mutex
	calls []string
}

func (h *instance) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *instance) Snapshot() status.Status {
	return status.Status{Device: "gw-a", IKESAs: []status.IKESA{{Conn: "site-b", State: status.IKEEstablished,
		ChildSAs: []status.ChildSA{{Name: "lan", State: status.ChildInstalled, SPIIn: 0xc1a2b3c4, SPIOut: 0x0d0e0f10}}}}}
}

func (h *instance) Up(ctx context.Context, conn, child string) error {
	h.record("up " + conn + "/" + child)
	switch conn {
	case "site-b":
		return nil
	case "slow":
		<-ctx.Done()
		return ctx.Err()
	case "broken":
		return errors.New("peer answered NO_PROPOSAL_CHOSEN")
	}
	return control.Usagef("no connection %q", conn)
}

func (h *instance) Down(ctx context.Context, conn string) error {
	h.record("down " + conn)
	return nil
}

func (h *instance) Rekey(ctx context.Context, conn, child string) error {
	h.record("rekey " + conn + "/" + child)
	return nil
}

func (h *instance) SetLogLevel(l slog.Level) error {
	h.record("log " + l.String())
	return nil
}

func startInstance(t *testing.T, path string) *instance {
	t.Helper()
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &instance{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&control.Server{Verbs: &control.Verbs{Handler: h, Version: "v9"}}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

func runIn(runDir string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, Env{Stdout: &out, Stderr: &errb, Version: "v1", RunDir: runDir})
	return code, out.String(), errb.String()
}

func TestRemoteVerbs(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "gw-a.sock")
	h := startInstance(t, sock)
	empty := filepath.Join(dir, "empty")
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"status", "-s", sock}, 0, "gw-a: 1 IKE SA\nsite-b: ESTABLISHED", ""},
		{[]string{"status", "--json", "-s", sock}, 0, `{"device":"gw-a","ike_sas":[{"conn":"site-b"`, ""},
		{[]string{"status", "-s=" + sock, "--json"}, 0, `{"device":"gw-a"`, ""},
		{[]string{"up", "site-b/lan", "-s", sock}, 0, "site-b/lan: up\n", ""},
		{[]string{"up", "-s", sock, "site-b", "--timeout", "5s"}, 0, "site-b: up\n", ""},
		{[]string{"up", "nope", "-s", sock}, 2, "", "bitw: up nope: no connection \"nope\"\n"},
		{[]string{"up", "broken", "-s", sock}, 1, "", "bitw: up broken: peer answered NO_PROPOSAL_CHOSEN\n"},
		{[]string{"up", "slow", "--timeout", "50ms", "-s", sock}, 1, "", "bitw: up slow: not done after 50ms\n"},
		{[]string{"down", "site-b", "-s", sock}, 0, "site-b: down\n", ""},
		{[]string{"rekey", "site-b/lan", "-s", sock}, 0, "site-b/lan: rekeyed\n", ""},
		{[]string{"log", "debug", "-s", sock}, 0, "log level debug\n", ""},
		{[]string{"log", "loud", "-s", sock}, 2, "", `bitw: log: unknown level "loud"`},
		{[]string{"up", "-s", sock}, 2, "", "bitw: up needs one argument"},
		{[]string{"down", "a/b", "-s", sock}, 2, "", "down takes a connection, not a child"},
		{[]string{"status", "-s"}, 2, "", "bitw: status: -s needs an argument"},
		{[]string{"status", "-s", ""}, 2, "", "bitw: -s needs a socket path"},
		{[]string{"status", "-s", sock, "-c", "x.toml"}, 2, "", "-c and -s both name the instance"},
		{[]string{"status", "-h"}, 0, "usage: bitw COMMAND", ""},
		{[]string{"status", "-s", filepath.Join(empty, "x.sock")}, 1, "", "no such socket"},
	} {
		code, out, errs := runIn(empty, tc.args...)
		if code != tc.code || !strings.HasPrefix(out, tc.stdout) || !strings.Contains(errs, tc.stderr) || (tc.stderr == "") != (errs == "") {
			t.Errorf("bitw %q: exit %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
	}
	h.mu.Lock()
	calls := strings.Join(h.calls, ",")
	h.mu.Unlock()
	want := "up site-b/lan,up site-b/,up nope/,up broken/,up slow/,down site-b,rekey site-b/lan,log DEBUG"
	if calls != want {
		t.Errorf("handler calls %s, want %s", calls, want)
	}
}

// TestRemoteStatusJSON: the JSON on stdout is the contract document.
func TestRemoteStatusJSON(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gw-a.sock")
	startInstance(t, sock)
	code, out, errs := runIn("", "status", "--json", "-s", sock)
	if code != 0 || errs != "" || !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	child := doc["ike_sas"].([]any)[0].(map[string]any)["child_sas"].([]any)[0].(map[string]any)
	if doc["device"] != "gw-a" || child["spi_in"] != "c1a2b3c4" || child["spi_out"] != "0d0e0f10" {
		t.Errorf("status JSON %s", out)
	}
}

// TestSocketFromConfig: -c reads [device] control through the full loader.
func TestSocketFromConfig(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "gw-a.sock")
	startInstance(t, sock)
	src, err := os.ReadFile("../../examples/site-a.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "gw-a.toml")
	text := strings.Replace(string(src), `name = "gw-a"`, "name = \"gw-a\"\ncontrol = \""+sock+"\"", 1)
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runIn("", "up", "-c", cfgFile, "site-b/lan"); code != 0 || out != "site-b/lan: up\n" || errs != "" {
		t.Errorf("up -c: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(strings.Replace(text, `mode = "tunnel"`, `mode = "beet"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runIn("", "status", "-c", bad)
	if code != 2 || out != "" || !strings.HasPrefix(errs, bad+":") || !strings.Contains(errs, "beet") {
		t.Errorf("status -c with a bad config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The loader's default: /run/bitw/<name>.sock.
	cfg, err := config.Load("../../examples/site-a.toml")
	if err != nil || cfg.Device.Control != "/run/bitw/gw-a.sock" {
		t.Errorf("default control socket %q, %v", cfg.Device.Control, err)
	}
}

// TestSocketDiscovery: with neither -c nor -s, the only socket in the run
// directory is used; none or several is a usage error.
func TestSocketDiscovery(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	if code, _, errs := runIn(runDir, "status"); code != 2 || !strings.Contains(errs, "no control socket in "+runDir) {
		t.Errorf("missing run dir: exit %d, stderr %q", code, errs)
	}
	startInstance(t, filepath.Join(runDir, "gw-a.sock"))
	// Files that are not sockets do not count.
	if err := os.WriteFile(filepath.Join(runDir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(runDir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runIn(runDir, "status"); code != 0 || !strings.HasPrefix(out, "gw-a: 1 IKE SA") {
		t.Errorf("one socket: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	startInstance(t, filepath.Join(runDir, "gw-c.sock"))
	code, _, errs := runIn(runDir, "status")
	if code != 2 || errs != "bitw: several control sockets in "+runDir+" (gw-a.sock, gw-c.sock); choose one with -s SOCKET or -c FILE\n" {
		t.Errorf("two sockets: exit %d, stderr %q", code, errs)
	}
}

func TestRun(t *testing.T) {
	code, out, errs := runIn("", "run", "-c", "../../examples/site-a.toml")
	if code != 1 || out != "" || errs != "bitw: run: the runtime is not built into this binary\n" {
		t.Errorf("run without a runtime: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	var got *config.Config
	var errb bytes.Buffer
	env := Env{Stdout: &bytes.Buffer{}, Stderr: &errb, Run: func(ctx context.Context, cfg *config.Config, env Env) error {
		got = cfg
		if ctx.Err() != nil {
			return errors.New("context ended before the runtime started")
		}
		return nil
	}}
	if code := Main([]string{"run", "-c", "../../examples/site-a.toml"}, env); code != 0 || got == nil || got.Device.Name != "gw-a" {
		t.Errorf("run: exit %d, config %v, stderr %q", code, got, errb.String())
	}
	env.Run = func(context.Context, *config.Config, Env) error { return errors.New("red0: no such interface") }
	errb.Reset()
	if code := Main([]string{"run", "-c", "../../examples/site-a.toml"}, env); code != 1 || errb.String() != "bitw: red0: no such interface\n" {
		t.Errorf("failing runtime: exit %d, stderr %q", code, errb.String())
	}
}

// TestRemoteInterrupted: a client whose context ends (Ctrl-C) stops
// waiting at once.
func TestRemoteInterrupted(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gw-a.sock")
	startInstance(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var errb bytes.Buffer
	req, err := control.ParseCommand([]string{"up", "slow"})
	if err != nil {
		t.Fatal(err)
	}
	code := send(ctx, sock, req, Env{Stdout: &bytes.Buffer{}, Stderr: &errb})
	if code != 1 || !strings.Contains(errb.String(), "context deadline exceeded") {
		t.Errorf("interrupted up: exit %d, stderr %q", code, errb.String())
	}
}
