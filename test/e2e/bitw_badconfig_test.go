package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// crashed reports whether a bitw run ended the way only a bug ends it: a
// Go panic or runtime fatal error, a signal, or an exit status outside
// the CLI contract (0, 1, 2).
func crashed(err error, stderr string) string {
	for _, s := range []string{"panic:", "fatal error:", "goroutine ", "SIGSEGV"} {
		if strings.Contains(stderr, s) {
			return "printed " + s
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		if c := ee.ExitCode(); c != 1 && c != 2 {
			return fmt.Sprintf("exit status %d", c)
		}
	} else if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err.Error()
	}
	return ""
}

// mutate returns a variant of a valid configuration: lines dropped,
// doubled or swapped, bytes flipped, the file cut short, values replaced
// by ones of the wrong type or out of range, keys invented.
func mutate(r *rand.Rand, base string) string {
	lines := strings.Split(base, "\n")
	pick := func() int { return r.IntN(len(lines)) }
	wrong := []string{`""`, `0`, `-1`, `99999999999999999999`, `true`, `[]`, `{}`, `"%any"`, `"0.0.0.0/0"`, `"::/0"`,
		`"1h1h"`, `"-5s"`, `["a", 1]`, `"\u0000"`, `"` + strings.Repeat("x", 5000) + `"`, `[[[[[[[[[[]]]]]]]]]]`,
		`"203.0.113.1/33"`, `"256.1.1.1"`, `"aes999gcm16"`, `1e309`, `nan`, `inf`, `0x10`, `1979-05-27T07:32:00Z`}
	for range 1 + r.IntN(3) {
		switch r.IntN(9) {
		case 0:
			i := pick()
			lines = append(lines[:i], lines[i+1:]...)
		case 1:
			i := pick()
			lines = append(lines[:i+1], lines[i:]...)
		case 2:
			i, j := pick(), pick()
			lines[i], lines[j] = lines[j], lines[i]
		case 3:
			i := pick()
			if k := strings.Index(lines[i], "="); k > 0 {
				lines[i] = lines[i][:k+1] + " " + wrong[r.IntN(len(wrong))]
			}
		case 4:
			b := []byte(strings.Join(lines, "\n"))
			if len(b) == 0 {
				break
			}
			for range 1 + r.IntN(4) {
				b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
			}
			lines = strings.Split(string(b), "\n")
		case 5:
			if s := strings.Join(lines, "\n"); s != "" {
				lines = strings.Split(s[:r.IntN(len(s))], "\n")
			}
		case 6:
			i := pick()
			lines = append(lines[:i], append([]string{fmt.Sprintf("unknown_key_%d = %s", r.IntN(100), wrong[r.IntN(len(wrong))])}, lines[i:]...)...)
		case 7:
			i := pick()
			lines = append(lines[:i], append([]string{[]string{"[device]", "[policy]", "[interfaces.red]", "[connections.site-b]",
				"[connections.site-b.children.lan]", "[secrets.ike-x]", "[pools.p]", "[[device]]", "[management]"}[r.IntN(9)]}, lines[i:]...)...)
		case 8:
			i := pick()
			lines[i] = strings.Repeat("[", r.IntN(3)) + lines[i] + strings.Repeat("]", r.IntN(3))
		}
		if len(lines) == 0 {
			lines = []string{""}
		}
	}
	return strings.Join(lines, "\n")
}

// TestBitwBadConfigs feeds bitw configuration files that are broken in
// many ways: `bitw check` must answer every one with exit 0 or with
// FILE:LINE: why and exit 2, and `bitw run` must refuse the broken ones
// (exit 2) and fail cleanly (exit 1) on valid ones it cannot run, here in
// a namespace without the links. Nothing may crash.
func TestBitwBadConfigs(t *testing.T) {
	harness.RequireE2E(t)
	bin := harness.BitwBinary(t)
	example, err := os.ReadFile("../../examples/site-a.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	// The control socket goes to the test's directory, not /run/bitw.
	base := strings.Replace(string(example), "[device]\n", fmt.Sprintf("[device]\ncontrol = %q\n", sock), 1)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x636f6e66))
	cases := map[string]string{
		"empty":  "",
		"binary": string(bytes.Repeat([]byte{0, 0xff, 0x7f, '[', '"'}, 200)),
		// firmware/config refuses nesting beyond 16 levels before the
		// TOML parser, whose cost grows with the square of the depth.
		"nested arrays": "[device]\nname = " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n",
		"long line":     "[device]\nname = \"" + strings.Repeat("a", 512<<10) + "\"\n",
		"utf-8 mess":    "[device]\nnamé = \"\xff\xfe\"\n[интерфейсы]\n",
		"no sections":   "name = \"gw\"\n",
	}
	for i := range 400 {
		cases[fmt.Sprintf("mutant-%03d", i)] = mutate(r, base)
	}

	run := func(ctx context.Context, ns *harness.Netns, args ...string) (string, error) {
		var cmd *exec.Cmd
		if ns != nil {
			cmd = ns.Command(ctx, nil, append([]string{bin}, args...)...)
		} else {
			cmd = exec.CommandContext(ctx, bin, args...)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 2 * time.Second
		err := cmd.Run()
		return stderr.String(), err
	}
	valid := 0
	var runnable []string
	for name, text := range cases {
		file := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		stderr, err := run(ctx, nil, "check", "-c", file)
		cancel()
		if why := crashed(err, stderr); why != "" {
			t.Errorf("bitw check %s: %s (kept as %s)\n%.2000s", name, why, file, stderr)
			continue
		}
		if err == nil {
			valid++
			if strings.Contains(text, sock) {
				runnable = append(runnable, file)
			}
			continue
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.HasPrefix(stderr, file+":") {
			t.Errorf("bitw check %s: %v, want exit 2 and FILE:LINE: why:\n%.500s", name, err, stderr)
		}
	}
	t.Logf("bitw check: %d files, %d valid", len(cases), valid)

	// bitw run in a namespace without red0 or black0: valid files fail
	// on the ports (exit 1), broken ones on the configuration (exit 2).
	ns := harness.NewNetns(t, harness.NewPrefix()+"cfg")
	extra := map[string]string{
		"missing link":       strings.Replace(base, `link = "red0"`, `link = "no-such-link0"`, 1),
		"save_keys is file":  strings.Replace(base, "[device]\n", fmt.Sprintf("[device]\nsave_keys = %q\n", filepath.Join(dir, "empty.toml")), 1),
		"same link twice":    strings.Replace(base, `link = "black0"`, `link = "red0"`, 1),
		"control unwritable": strings.Replace(base, sock, "/proc/bitw-test/c.sock", 1),
	}
	for name, text := range extra {
		file := filepath.Join(dir, "run-"+strings.ReplaceAll(name, " ", "-")+".toml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		runnable = append(runnable, file)
	}
	for i, file := range runnable {
		if i >= 40 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		stderr, err := run(ctx, ns, "run", "-c", file)
		cancel()
		if why := crashed(err, stderr); why != "" {
			t.Errorf("bitw run %s: %s\n%.2000s", file, why, stderr)
			continue
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || err == nil {
			t.Errorf("bitw run %s: did not fail without its links (%v):\n%.500s", file, err, stderr)
		}
	}
	t.Logf("bitw run: %d files refused without a crash", min(len(runnable), 40))
}
