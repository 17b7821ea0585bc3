package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// buildBitw builds the bitw binary as users do (go build -o bitw
// ./firmware), with extra go build flags.
func buildBitw(t *testing.T, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// go test puts its own go command first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "bitw")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/bitw-dev/bitw/firmware")
	cmd := exec.Command(goTool, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBitw(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running bitw: %v", err)
	}
	return code, out.String(), errb.String()
}

// TestBinary runs the built binary against the contract: check exits 0 on
// the examples, and 2 with FILE:LINE: why lines on stderr for a bad file.
func TestBinary(t *testing.T) {
	bin := buildBitw(t)
	for _, f := range []string{"../../examples/site-a.toml", "../../examples/site-b.toml"} {
		if code, out, errs := runBitw(t, bin, "check", "-c", f); code != 0 || errs != "" || !strings.Contains(out, "ok") {
			t.Errorf("check %s: exit %d, stdout %q, stderr %q", f, code, out, errs)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	src, err := os.ReadFile("../../examples/site-a.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Break two values and add an unknown key; each must be reported with
	// its own line.
	text := strings.Replace(string(src), `dpd_delay = "10s"`, `dpd_delay = "10 seconds"`, 1)
	text = strings.Replace(text, `mode = "tunnel"`, "mode = \"beet\"\nfrobnicate = true", 1)
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBitw(t, bin, "check", "-c", bad)
	if code != 2 || out != "" {
		t.Fatalf("bad config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	wantLines := []int{lineOf(text, "dpd_delay"), lineOf(text, `mode = "beet"`), lineOf(text, "frobnicate")}
	format := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+): \S.*$`)
	if len(lines) != len(wantLines) {
		t.Fatalf("want %d errors, got:\n%s", len(wantLines), errs)
	}
	for i, l := range lines {
		m := format.FindStringSubmatch(l)
		if m == nil || m[1] != itoa(wantLines[i]) {
			t.Errorf("line %q: want %s:%d: why", l, bad, wantLines[i])
		}
	}
	none := filepath.Join(t.TempDir(), "none.sock")
	if code, _, errs := runBitw(t, bin, "up", "site-b", "-s", none); code != 1 || errs != "bitw: no bitw instance at "+none+": no such socket\n" {
		t.Errorf("up without an instance: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runBitw(t, bin, "up", "-s", none); code != 2 || !strings.HasPrefix(errs, "bitw: up needs one argument") {
		t.Errorf("up without a connection: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runBitw(t, bin); code != 2 || !strings.HasPrefix(errs, "usage: bitw") {
		t.Errorf("no verb: exit %d, stderr %q", code, errs)
	}
	if code, out, _ := runBitw(t, bin, "version"); code != 0 || !strings.HasPrefix(out, "bitw ") {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
}

// TestBinaryVersionStamp checks the -ldflags -X override that release
// builds use.
func TestBinaryVersionStamp(t *testing.T) {
	bin := buildBitw(t, "-ldflags", "-X main.version=v9.8.7-test")
	if code, out, _ := runBitw(t, bin, "version"); code != 0 || out != "bitw v9.8.7-test\n" {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
}

func lineOf(text, substr string) int {
	return strings.Count(text[:strings.Index(text, substr)], "\n") + 1
}

func itoa(n int) string { return strconv.Itoa(n) }
