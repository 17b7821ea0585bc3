package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopGrace is how long Stop waits after SIGTERM before SIGKILL.
const DefaultStopGrace = 5 * time.Second

// Process is a long-running program started inside a namespace. Its
// stdout and stderr go to LogPath.
type Process struct {
	Name    string
	NS      *Netns
	LogPath string
	// Grace is how long Stop waits after SIGTERM before SIGKILL.
	Grace time.Duration

	cmdline  string
	pid      int
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	logFile  *os.File
}

// Start runs args inside the namespace in the background, with output in
// a log file named after name under LogDir(t). Stop is registered as a
// cleanup; when the test failed, the cleanup also prints the log's tail.
func (n *Netns) Start(t T, name string, args ...string) *Process {
	t.Helper()
	return n.StartEnv(t, name, nil, args...)
}

// StartEnv is Start with extra environment variables (KEY=VALUE).
func (n *Netns) StartEnv(t T, name string, env []string, args ...string) *Process {
	t.Helper()
	logPath, f, err := createLog(LogDir(t), n.Name+"-"+name)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// The process outlives any one context; Stop ends it.
	cmd := n.Command(context.Background(), env, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Its own process group, so that Stop reaches helpers it forks, and
	// SIGKILL if the test binary dies first, so nothing outlives a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("[%s] start %s: %v", n.Name, strings.Join(args, " "), err)
	}
	p := &Process{
		Name:    name,
		NS:      n,
		LogPath: logPath,
		Grace:   DefaultStopGrace,
		cmdline: strings.Join(args, " "),
		pid:     cmd.Process.Pid,
		done:    make(chan struct{}),
		logFile: f,
	}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Logf("stopping %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("--- tail of %s (%s)\n%s", logPath, p.cmdline, p.Tail(60))
		}
	})
	return p
}

// createLog creates stem.log in dir, or stem-2.log and so on when a
// process of the same name already logged there.
func createLog(dir, stem string) (string, *os.File, error) {
	for i := 1; i < 1000; i++ {
		name := stem + ".log"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.log", stem, i)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return path, f, err
	}
	return "", nil, fmt.Errorf("no free log name for %s in %s", stem, dir)
}

// Pid is the process id ("ip netns exec" replaces itself with the program).
func (p *Process) Pid() int { return p.pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitErr is the result of the process's Wait; valid once Done is closed.
func (p *Process) ExitErr() error {
	<-p.done
	return p.waitErr
}

// Stop sends SIGTERM, waits up to Grace, then sends SIGKILL to the whole
// process group. It returns an error only when the process had to be
// killed or did not go away; an exit status after SIGTERM is not an error.
// Calling it again returns the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		if !p.Running() {
			return
		}
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
		grace := p.Grace
		if grace <= 0 {
			grace = DefaultStopGrace
		}
		select {
		case <-p.done:
			_ = syscall.Kill(-p.pid, syscall.SIGKILL) // stragglers in its group
			return
		case <-time.After(grace):
		}
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.Name, grace)
		case <-time.After(5 * time.Second):
			p.stopErr = fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.pid)
		}
	})
	return p.stopErr
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return errors.New(p.Name + " has exited")
	}
	return syscall.Kill(p.pid, sig)
}

// Log returns the whole log so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.LogPath)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// WaitLog waits until the log contains substr, the process exits, or the
// timeout passes.
func (p *Process) WaitLog(substr string, timeout time.Duration) error {
	return WaitFor(timeout, fmt.Sprintf("%s to log %q", p.Name, substr), func() (bool, error) {
		if strings.Contains(p.Log(), substr) {
			return true, nil
		}
		if !p.Running() {
			return false, fmt.Errorf("%w: %s exited (%v) before logging %q; log tail:\n%s", ErrStopWaiting, p.Name, p.waitErr, substr, p.Tail(20))
		}
		return false, nil
	})
}

// ErrStopWaiting, returned by a WaitFor condition, ends the wait at once
// with that error.
var ErrStopWaiting = errors.New("stop waiting")

// WaitFor polls cond until it returns true, returns an error wrapping
// ErrStopWaiting, or timeout passes. It polls every 20 ms at first and
// backs off to 200 ms. The timeout error names what was awaited and the
// condition's last error.
func WaitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	interval := 20 * time.Millisecond
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrStopWaiting) {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %v waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
		if interval < 200*time.Millisecond {
			interval *= 2
		}
	}
}
