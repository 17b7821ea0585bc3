package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The firmware gateway (QEMUGateway): QEMU's mcimx6ul-evk machine with
// ENET1 on FirmwareRedTap and ENET2 on FirmwareBlackTap, both inside the
// gateway's namespace and bridged there to red0 and black0.
const (
	FirmwareRedTap    = "bitw-red"   // qemu/boot.sh's TAP for ENET1
	FirmwareBlackTap  = "bitw-black" // qemu/boot.sh's TAP for ENET2
	FirmwareRedPort   = "enet1"      // the board's port names, as the config uses them
	FirmwareBlackPort = "enet2"
	firmwareRedBridge = "br-red"
	firmwareBlkBridge = "br-black"
	// FirmwareBoard is the board the firmware gateway's image is built for.
	FirmwareBoard = "mx6ullevk"
)

// EnvQEMU must be "1" for the QEMU firmware tests to run
// (scripts/qemu-e2e.sh sets it).
const EnvQEMU = "BITW_QEMU"

// Bounds on the firmware's life: an image build (the TamaGo toolchain,
// gVisor included, on a busy two-core machine), the boot to the ready
// line, and QEMU's exit after poweroff (SAs are deleted first, 3 s at
// most).
const (
	FirmwareBuildTimeout = 10 * time.Minute
	FirmwareBootTimeout  = 60 * time.Second
	FirmwareExitTimeout  = 30 * time.Second
)

// firmwareBridges are the ip commands that put the TAPs where the veths
// end (see QEMUGateway).
func firmwareBridges(g *Gateway) []string {
	var cmds []string
	for _, b := range []struct{ bridge, veth, tap string }{
		{firmwareRedBridge, g.RedLink, FirmwareRedTap},
		{firmwareBlkBridge, g.BlackLink, FirmwareBlackTap},
	} {
		cmds = append(cmds,
			"tuntap add mode tap name "+b.tap,
			"link add "+b.bridge+" type bridge",
			"link set "+b.veth+" master "+b.bridge,
			"link set "+b.tap+" master "+b.bridge,
			"link set "+b.tap+" up",
			"link set "+b.bridge+" up")
	}
	return cmds
}

// RequireQEMU skips the test, saying why, unless QEMU firmware tests were
// asked for (BITW_QEMU=1), the process is root and the TamaGo compiler is
// installed. It returns the repository root. A missing tool, once the
// tests were asked for, fails the test.
func RequireQEMU(t testing.TB, tools ...string) string {
	t.Helper()
	if os.Getenv(EnvQEMU) != "1" {
		t.Skipf("SKIPPED: QEMU firmware test: set %s=1 (scripts/qemu-e2e.sh does)", EnvQEMU)
	}
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPED: QEMU firmware test: needs root for network namespaces and TAP devices")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	compiler, err := TamagoCompiler(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(compiler); err != nil {
		t.Skipf("SKIPPED: QEMU firmware test: TamaGo compiler not found at %s (qemu/README.md says how to get it)", compiler)
	}
	for _, tool := range append([]string{"ip", "sysctl", "qemu-system-arm", "go"}, tools...) {
		if _, err := lookTool(tool); err != nil {
			t.Fatalf("QEMU firmware test needs %q: %v (scripts/install-deps.sh installs it)", tool, err)
		}
	}
	return root
}

// RepoRoot finds the repository: the nearest directory above the working
// directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TamagoCompiler is where the tamago module's cmd/tamago expects the
// TamaGo go command for the module version in go.mod.
func TamagoCompiler(root string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-C", root, "-m", "-f", "{{.Version}}", "github.com/usbarmory/tamago").Output()
	if err != nil {
		return "", fmt.Errorf("tamago module version: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	return filepath.Join(cache, "tamago-go", "tamago-go"+version, "bin", "go"), nil
}

// FirmwareConfig writes the firmware's configuration for gateway g, like
// BitwConfig but with the board's port names as links and without what
// a board has no use for: no control socket (the console serves the
// verbs) and no save_keys (no file system). The log level defaults to
// info: every log line crosses the emulated UART.
func (g *Gateway) FirmwareConfig(t T, s BitwSite) string {
	t.Helper()
	dir := filepath.Join(LogDir(t), g.NS.Name+"-firmware")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("firmware config dir: %v", err)
	}
	if s.PKI != nil && s.Identity != nil {
		if err := s.PKI.WriteFiles(dir, s.Identity); err != nil {
			t.Fatalf("firmware certificates: %v", err)
		}
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	s.SaveKeys = false
	board := *g
	board.RedLink, board.BlackLink = FirmwareRedPort, FirmwareBlackPort
	path := filepath.Join(dir, "bitw.toml")
	if err := os.WriteFile(path, []byte(board.renderBitwConfig(s, BitwFiles{Config: path})), 0o600); err != nil {
		t.Fatalf("firmware config: %v", err)
	}
	return path
}

// FirmwareBuildLog is what scripts/firmware.sh printed, kept beside the
// image BuildFirmware made.
const FirmwareBuildLog = "build.log"

// BuildFirmware builds an mx6ullevk image with config built in, through
// scripts/firmware.sh (which also checks the configuration), into a
// directory of its own under LogDir(t), and returns the ELF's path; the
// script's output is in FirmwareBuildLog beside it.
func BuildFirmware(t T, root, config string) string {
	t.Helper()
	out := filepath.Join(LogDir(t), "firmware-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	ctx, cancel := context.WithTimeout(context.Background(), FirmwareBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "firmware.sh"), FirmwareBoard, config)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BITW_FIRMWARE_OUT="+out)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("building firmware for %s: %v\n%s", config, err, b)
	}
	if err := os.WriteFile(filepath.Join(out, FirmwareBuildLog), b, 0o644); err != nil {
		t.Fatalf("firmware build log: %v", err)
	}
	image := filepath.Join(out, "bitw-"+FirmwareBoard+".elf")
	t.Logf("built %s in %v", image, time.Since(start).Round(100*time.Millisecond))
	return image
}

// Firmware is a firmware image booted under QEMU by qemu/boot.sh for a
// QEMUGateway, its console on a pipe. Console output is kept in memory
// and in a log under LogDir(t).
type Firmware struct {
	NS      *Netns
	Image   string
	LogPath string
	// Started is when boot.sh was started; ReadyAfter is the wall-clock
	// time from then to the console's "bitw: ready" line.
	Started    time.Time
	ReadyAfter time.Duration

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	exit  int // QEMU's status, valid once done is closed
	err   error

	mu      sync.Mutex // guards lines and wakes waiters through changed
	lines   []string
	changed chan struct{}
	cmdMu   sync.Mutex // one console command at a time
}

// StartFirmware boots image on g (BootFirmware) and waits for the ready
// line.
func StartFirmware(t T, root, image string, g *Gateway) *Firmware {
	t.Helper()
	f := BootFirmware(t, root, image, g)
	if _, err := f.WaitLine(0, func(l string) bool { return l == "bitw: ready" }, FirmwareBootTimeout); err != nil {
		t.Fatalf("firmware on %s: %v\n%s", g.Name, err, f.Tail(40))
	}
	f.ReadyAfter = time.Since(f.Started)
	return f
}

// BootFirmware starts image on g with root's qemu/boot.sh, both TAPs in
// g's namespace, and returns at once. Cleanups power the firmware off (or
// kill QEMU) and print the console's tail when the test failed.
func BootFirmware(t T, root, image string, g *Gateway) *Firmware {
	t.Helper()
	if g.Kind != QEMUGateway {
		t.Fatalf("StartFirmware: %s is a %v gateway, not %v", g.Name, g.Kind, QEMUGateway)
	}
	logPath, logFile, err := createLog(LogDir(t), g.NS.Name+"-qemu")
	if err != nil {
		t.Fatalf("firmware log: %v", err)
	}
	f := &Firmware{NS: g.NS, Image: image, LogPath: logPath, done: make(chan struct{}), changed: make(chan struct{})}
	// Run inside the namespace: removing it then also ends a QEMU that
	// every other way failed to stop.
	f.cmd = g.NS.Command(context.Background(), nil, filepath.Join(root, "qemu", "boot.sh"), image, g.NS.Name, g.NS.Name)
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		t.Fatalf("console: %v", err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	f.cmd.Stderr = f.cmd.Stdout
	f.Started = time.Now()
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("qemu/boot.sh: %v", err)
	}
	go f.read(stdout, logFile)
	t.Cleanup(func() {
		if f.Running() {
			if _, err := f.Poweroff(); err != nil {
				t.Logf("firmware on %s: %v", g.Name, err)
			}
		}
		if t.Failed() {
			t.Logf("--- console of the firmware on %s (%s)\n%s", g.Name, logPath, f.Tail(80))
		}
	})
	return f
}

// Wait waits for QEMU to exit on its own and returns its status, the
// firmware's (semihosting).
func (f *Firmware) Wait(timeout time.Duration) (int, error) {
	select {
	case <-f.done:
		return f.exit, f.err
	case <-time.After(timeout):
		return 0, fmt.Errorf("QEMU still running after %v", timeout)
	}
}

// read collects console lines until QEMU exits, then records its status.
func (f *Firmware) read(stdout io.Reader, log *os.File) {
	s := bufio.NewScanner(stdout)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := strings.TrimRight(s.Text(), "\r")
		fmt.Fprintf(log, "%s %s\n", time.Now().Format("15:04:05.000"), line)
		f.mu.Lock()
		f.lines = append(f.lines, line)
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
	err := f.cmd.Wait()
	log.Close()
	f.exit, f.err = 0, nil
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		f.exit = exit.ExitCode()
	case err != nil:
		f.exit, f.err = -1, err
	}
	close(f.done)
}

// Running reports whether QEMU has not exited yet.
func (f *Firmware) Running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// Lines returns the number of console lines so far: the position to
// wait from for what a later action prints.
func (f *Firmware) Lines() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lines)
}

// Log returns the console from line from on.
func (f *Firmware) Log(from int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines[min(from, len(f.lines)):]...)
}

// Tail returns the last n console lines.
func (f *Firmware) Tail(n int) string {
	lines := f.Log(0)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLine waits for a console line at or after index from that match
// accepts, and returns it. It fails when QEMU exits or the timeout passes.
func (f *Firmware) WaitLine(from int, match func(string) bool, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		for _, l := range f.lines[min(from, len(f.lines)):] {
			if match(l) {
				f.mu.Unlock()
				return l, nil
			}
		}
		from = len(f.lines)
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-f.done:
			// Lines printed just before the exit are already in.
			f.mu.Lock()
			for _, l := range f.lines[min(from, len(f.lines)):] {
				if match(l) {
					f.mu.Unlock()
					return l, nil
				}
			}
			f.mu.Unlock()
			return "", fmt.Errorf("QEMU exited with status %d (%v) while waiting on the console", f.exit, f.err)
		case <-deadline:
			return "", fmt.Errorf("no matching console line within %v", timeout)
		}
	}
}

// Command types line on the console and returns the first reply line that
// match accepts. Log lines arrive in between, so the caller says what
// the reply looks like.
func (f *Firmware) Command(line string, match func(string) bool, timeout time.Duration) (string, error) {
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	from := f.Lines()
	if _, err := io.WriteString(f.stdin, line+"\r"); err != nil {
		return "", fmt.Errorf("console: %v", err)
	}
	reply, err := f.WaitLine(from, match, timeout)
	if err != nil {
		return "", fmt.Errorf("console %q: %w", line, err)
	}
	return reply, nil
}

// StatusJSON runs "status --json" on the console and returns the
// document.
func (f *Firmware) StatusJSON() ([]byte, error) {
	reply, err := f.Command("status --json", func(l string) bool { return strings.HasPrefix(l, `{"device":`) }, 10*time.Second)
	return []byte(reply), err
}

// Status runs "status --json" and parses the fields of design.md.
func (f *Firmware) Status() (BitwStatus, error) {
	var st BitwStatus
	b, err := f.StatusJSON()
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("status --json: %v: %.300s", err, b)
	}
	return st, nil
}

// Drops reads the status's drop counters (source -> reason -> count).
func (f *Firmware) Drops() (map[string]map[string]uint64, error) {
	b, err := f.StatusJSON()
	if err != nil {
		return nil, err
	}
	var st struct {
		Drops map[string]map[string]uint64 `json:"drops"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status --json: %v", err)
	}
	return st.Drops, nil
}

// WaitChild polls the status until conn is ESTABLISHED with child
// INSTALLED.
func (f *Firmware) WaitChild(conn, child string, timeout time.Duration) (BitwIKEState, BitwChildState, error) {
	var gi BitwIKEState
	var gc BitwChildState
	err := WaitFor(timeout, fmt.Sprintf("firmware %s/%s INSTALLED", conn, child), func() (bool, error) {
		if !f.Running() {
			return false, fmt.Errorf("%w: QEMU exited: %s", ErrStopWaiting, f.Tail(10))
		}
		st, err := f.Status()
		if err != nil {
			return false, err
		}
		var ok bool
		gi, gc, ok = st.installed(conn, child)
		if !ok {
			return false, fmt.Errorf("status: %+v", st.IKESAs)
		}
		return true, nil
	})
	return gi, gc, err
}

// Poweroff types poweroff, on which the firmware deletes its SAs with the
// peers, and returns QEMU's exit status: the firmware's, through
// semihosting. When the console does not get QEMU to exit, QEMU is killed
// and an error returned.
func (f *Firmware) Poweroff() (int, error) {
	if f.Running() {
		f.cmdMu.Lock()
		io.WriteString(f.stdin, "poweroff\r")
		f.cmdMu.Unlock()
	}
	select {
	case <-f.done:
		return f.exit, f.err
	case <-time.After(FirmwareExitTimeout):
	}
	// SIGTERM reaches boot.sh's helper, which stops QEMU.
	syscall.Kill(-f.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
	return f.exit, fmt.Errorf("QEMU still ran %v after poweroff and was stopped", FirmwareExitTimeout)
}

// QEMUPid finds the qemu-system-arm process of this boot (boot.sh's
// helper runs it as its child).
func (f *Firmware) QEMUPid() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := f.cmd.Process.Pid
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) && bytes.Contains(stat[:i], []byte("(qemu-system")) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no qemu-system child of %d", parent)
}

// CPUTicks is the user plus system time a process (all its threads) has
// used, in clock ticks of 1/100 s, from /proc/PID/stat fields 14 and 15
// (proc(5)).
func CPUTicks(pid int) (int64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return utime + stime, nil
}
