package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// NamePrefix starts the name of every namespace and runtime directory the
// harness creates: bte-PID-SEQ-ROLE.
const NamePrefix = "bte-"

// DefaultCommandTimeout bounds a command run through Run.
const DefaultCommandTimeout = 30 * time.Second

const netnsDir = "/run/netns"

var (
	prefixSeq atomic.Int64
	sweepOnce sync.Once
)

// NewPrefix returns a prefix unique to this process and call, such as
// "bte-4242-3-". Namespaces named with it never collide with parallel
// tests or other runs.
func NewPrefix() string {
	return fmt.Sprintf("%s%d-%d-", NamePrefix, os.Getpid(), prefixSeq.Add(1))
}

// Netns is a named network namespace.
type Netns struct {
	Name string
}

// NewNetns creates the namespace name, brings its loopback up and registers
// its removal with t. Removal first kills any process still inside it.
func NewNetns(t T, name string) *Netns {
	t.Helper()
	sweepOnce.Do(func() {
		for _, msg := range SweepStale() {
			t.Logf("sweep: %s", msg)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
	defer cancel()
	if out, err := runCmd(ctx, nil, nil, "ip", "netns", "add", name); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &Netns{Name: name}
	t.Cleanup(func() {
		if err := n.remove(); err != nil {
			t.Logf("removing namespace %s: %v", name, err)
		}
	})
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// remove kills what is left inside the namespace and deletes it.
func (n *Netns) remove() error {
	killNetnsPids(n.Name)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
	defer cancel()
	out, err := runCmd(ctx, nil, nil, "ip", "netns", "del", n.Name)
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// killNetnsPids sends SIGKILL to every process inside the namespace. Only
// harness namespaces are passed here, so these are processes the harness
// started.
func killNetnsPids(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := runCmd(ctx, nil, nil, "ip", "netns", "pids", name)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// SweepStale removes namespaces and runtime directories left by earlier
// runs that crashed: those named bte-PID-... whose PID no longer exists.
// It returns one line per removed object.
func SweepStale() []string {
	var done []string
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if stalePrefix(e.Name()) {
			n := &Netns{Name: e.Name()}
			if err := n.remove(); err != nil {
				done = append(done, fmt.Sprintf("namespace %s: %v", e.Name(), err))
			} else {
				done = append(done, "removed namespace "+e.Name())
			}
		}
	}
	tmp := os.TempDir()
	entries, _ = os.ReadDir(tmp)
	for _, e := range entries {
		if e.IsDir() && stalePrefix(e.Name()) {
			if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err == nil {
				done = append(done, "removed "+filepath.Join(tmp, e.Name()))
			}
		}
	}
	return done
}

// stalePrefix reports whether name is bte-PID-... for a PID that is gone.
func stalePrefix(name string) bool {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// Command returns a command that runs args inside the namespace with the
// given extra environment. The caller starts and waits for it.
func (n *Netns) Command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", n.Name}, args...)
	cmd := exec.CommandContext(ctx, ipPath(), full...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Exec runs args inside the namespace and returns its combined output.
func (n *Netns) Exec(ctx context.Context, args ...string) ([]byte, error) {
	return n.ExecEnv(ctx, nil, args...)
}

// ExecEnv is Exec with extra environment variables (KEY=VALUE).
func (n *Netns) ExecEnv(ctx context.Context, env []string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := n.Command(ctx, env, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", strings.Join(args, " "), ctx.Err())
	}
	return out.Bytes(), err
}

// Run runs args inside the namespace within DefaultCommandTimeout and
// returns the output; a failure fails the test.
func (n *Netns) Run(t T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
	defer cancel()
	out, err := n.Exec(ctx, args...)
	if err != nil {
		t.Fatalf("[%s] %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IPBatch runs iproute2 commands (one per line, without the leading "ip")
// in the namespace in a single invocation.
func (n *Netns) IPBatch(t T, lines ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
	defer cancel()
	in := strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := runCmd(ctx, nil, in, "ip", "-n", n.Name, "-batch", "-")
	if err != nil {
		t.Fatalf("[%s] ip -batch: %v\n%s\ncommands:\n%s", n.Name, err, out, strings.Join(lines, "\n"))
	}
}

// Sysctl sets kernel parameters (key=value) inside the namespace.
func (n *Netns) Sysctl(t T, settings ...string) {
	t.Helper()
	n.Run(t, append([]string{"sysctl", "-q", "-w"}, settings...)...)
}

func ipPath() string {
	if p, err := lookTool("ip"); err == nil {
		return p
	}
	return "ip"
}

// runCmd runs a command in the current namespace.
func runCmd(ctx context.Context, env []string, stdin *strings.Reader, name string, args ...string) ([]byte, error) {
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return out.Bytes(), err
}

func execCommand(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}
