// Package qemu holds the QEMU tests of the TamaGo board layer. They build
// a firmware image with the TamaGo compiler and boot it under
// qemu-system-arm on TAP devices inside network namespaces, so they need
// root, the compiler and QEMU; scripts/qemu-e2e.sh runs them with
// BITW_QEMU=1.
package qemu

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// The bring-up image's addresses (test/qemu/bringup) and the host side of
// each link, in prefixes reserved for documentation so they cannot clash
// with a real network inside the test's namespaces.
const (
	redBoard   = "192.0.2.2"
	redHost    = "192.0.2.1/24"
	blackBoard = "198.51.100.2"
	blackHost  = "198.51.100.1/24"
	redTap     = "bitw-red"
	blackTap   = "bitw-black"
)

// Bounds on every wait, generous for a loaded two-core CI machine.
const (
	buildTimeout = 5 * time.Minute
	bootTimeout  = 60 * time.Second
	exitTimeout  = 30 * time.Second
	idleWindow   = 5 * time.Second
	// maxIdleCPU is the share of one host core QEMU may use while the
	// guest idles. Polling for frames costs a whole core (1.0); a guest
	// sleeping in WFI measures near 0. The bound only separates the two.
	maxIdleCPU = 0.25
)

// requirements skips the test, saying why, unless it can run here, and
// returns the repository root and the TamaGo go command.
func requirements(t *testing.T) (root string) {
	t.Helper()
	if os.Getenv("BITW_QEMU") != "1" {
		t.Skip("SKIPPED: set BITW_QEMU=1 to boot firmware under QEMU (scripts/qemu-e2e.sh does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root for network namespaces and TAP devices")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	compiler, err := harness.TamagoCompiler(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(compiler); err != nil {
		t.Skip("SKIPPED: TamaGo compiler not found at " + compiler)
	}
	for _, tool := range []string{"qemu-system-arm", "ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("SKIPPED: " + tool + " not found (scripts/install-deps.sh installs it)")
		}
	}
	return root
}

// buildImage builds the bring-up image with the firmware build line.
func buildImage(t *testing.T, root string) string {
	t.Helper()
	image := filepath.Join(t.TempDir(), "bringup.elf")
	// The tamago tool is built for the host; only its go command runs
	// with GOOS=tamago.
	tool, err := exec.Command("go", "tool", "-C", root, "-n", "github.com/usbarmory/tamago/cmd/tamago").Output()
	if err != nil {
		t.Fatalf("go tool -n tamago: %v", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(tool)), "build",
		"-tags", "mx6ullevk,linkramsize", "-trimpath",
		"-ldflags", "-T 0x80010000 -R 0x1000", "-o", image, "./test/qemu/bringup")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=tamago", "GOOSPKG=github.com/usbarmory/tamago", "GOARM=7", "GOARCH=arm")
	start := time.Now()
	if out, err := runBounded(cmd, buildTimeout); err != nil {
		t.Fatalf("building the bring-up image: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", filepath.Base(image), time.Since(start).Round(time.Millisecond))
	return image
}

func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("%s: no result after %v", cmd.Args[0], limit)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runBounded(exec.Command(args[0], args[1:]...), 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns creates a network namespace that the test deletes at its end.
func netns(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("bitwq-%s-%d", role, os.Getpid())
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	return name
}

// console is the firmware's UART: lines it printed, and its input.
type console struct {
	t     *testing.T
	in    io.WriteCloser
	lines chan string
}

func (c *console) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("console: %v", err)
	}
}

// expect waits for a line starting with prefix and returns it.
func (c *console) expect(prefix string, limit time.Duration) string {
	c.t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("console closed while waiting for %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			c.t.Fatalf("no console line %q within %v", prefix, limit)
		}
	}
}

// cpuTicks is the user plus system time QEMU (all its threads) has used,
// in clock ticks, from /proc/PID/stat fields 14 and 15 (proc(5)).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// childOf finds the process whose parent is pid (boot.sh becomes the TAP
// helper, which runs QEMU as its child).
func childOf(t *testing.T, pid int, name string) int {
	t.Helper()
	for range 100 {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			child, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
			if err != nil {
				continue
			}
			fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if ppid, _ := strconv.Atoi(fields[1]); ppid == pid && strings.Contains(string(stat), "("+name) {
				return child
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s child of %d", name, pid)
	return 0
}

// TestBringUp boots the board layer's bring-up image with ENET1 and ENET2
// on TAPs in two namespaces, pings it on both, checks that QEMU idles
// while the guest does, and powers it off with a status.
func TestBringUp(t *testing.T) {
	root := requirements(t)
	image := buildImage(t, root)
	redNS, blackNS := netns(t, "red"), netns(t, "black")

	cmd := exec.Command(filepath.Join(root, "qemu", "boot.sh"), image, redNS, blackNS)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := false
	t.Cleanup(func() {
		if waited {
			return
		}
		// Stop QEMU through the script, as a user would; the reader
		// goroutine logs until QEMU is gone.
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(exitTimeout):
			cmd.Process.Kill()
			<-exited
		}
	})
	c := &console{t: t, in: stdin, lines: make(chan string, 1024)}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			line := strings.TrimRight(s.Text(), "\r")
			t.Logf("console: %s", line)
			select {
			case c.lines <- line:
			default: // nobody is waiting for lines any more
			}
		}
		close(c.lines)
		exited <- cmd.Wait()
	}()

	first := c.expect("bringup: ", bootTimeout)
	firstAt := time.Since(start)
	c.expect("bringup: ready", bootTimeout)
	t.Logf("host: first console line %v after boot.sh started (%q); ready after %v",
		firstAt.Round(time.Millisecond), first, time.Since(start).Round(time.Millisecond))

	// sent[i] and received[i] count the echoes of port i (enet1, enet2).
	var sent, received [2]int
	for i, link := range []struct{ ns, tap, host, board string }{
		{redNS, redTap, redHost, redBoard},
		{blackNS, blackTap, blackHost, blackBoard},
	} {
		run(t, "ip", "-n", link.ns, "addr", "add", link.host, "dev", link.tap)
		// Three echoes, then twenty full-size ones (1514-octet frames)
		// back to back, which batches receive and fills transmit
		// descriptors. -w, a deadline, makes ping wait for its count of
		// replies (sending more if it must); without it ping gives up
		// on the last reply after two round-trip times, which a loaded
		// host exceeds.
		for _, args := range [][]string{
			{"-c", "3", "-w", "20"},
			{"-c", "20", "-i", "0.01", "-s", "1472", "-w", "20"},
		} {
			out := run(t, append([]string{"ip", "netns", "exec", link.ns, "ping"}, append(args, link.board)...)...)
			tx, rx := pingCounts(t, out)
			t.Logf("%s: ping %s: %d sent, %d received; %s", link.ns, strings.Join(args, " "), tx, rx, lastLine(out))
			if want, _ := strconv.Atoi(args[1]); rx < want {
				t.Errorf("%s: %d of %d echoes answered before the deadline:\n%s", link.ns, rx, want, out)
			}
			sent[i] += tx
			received[i] += rx
		}
	}

	qemuPid := childOf(t, cmd.Process.Pid, "qemu-system")
	time.Sleep(time.Second) // let the last replies and ARP traffic settle
	before, t0 := cpuTicks(t, qemuPid), time.Now()
	time.Sleep(idleWindow)
	used, elapsed := cpuTicks(t, qemuPid)-before, time.Since(t0)
	share := float64(used) / 100 / elapsed.Seconds() // USER_HZ is 100 on Linux
	t.Logf("host: idle QEMU used %d ticks in %v: %.1f%% of one core", used, elapsed.Round(time.Millisecond), 100*share)
	if share > maxIdleCPU {
		t.Errorf("idle guest costs %.0f%% of a host core; WFI idling is not working", 100*share)
	}

	// A runtime timer must wake the core from WFI on time: a broken
	// alarm shows as a sleep that lasts until the next 34 s clamp.
	c.send("sleep 500")
	slept := time.Now()
	line := c.expect("bringup: slept ", 10*time.Second)
	t.Logf("host: %q arrived %v after the command", line, time.Since(slept).Round(time.Millisecond))

	c.send("stats")
	for i, port := range []string{"enet1", "enet2"} {
		line := c.expect("bringup: "+port+" {", 10*time.Second)
		// Every reply the host got came from the board, and the board
		// answered no more requests than the host sent; frames in
		// flight when ping stopped fall in between.
		replies := counter(t, line, "EchoReplies")
		if replies < received[i] || replies > sent[i] {
			t.Errorf("%s answered %d echoes; the host sent %d and got %d back", port, replies, sent[i], received[i])
		}
		for _, name := range []string{"RxErrors", "RxRunts", "RxTooBig", "TxBusy", "TxSize", "Malformed"} {
			if n := counter(t, line, name); n != 0 {
				t.Errorf("%s: %s = %d", port, name, n)
			}
		}
	}
	if line := c.expect("bringup: unexpected interrupts", 10*time.Second); !strings.HasPrefix(line, "bringup: unexpected interrupts 0,") {
		t.Errorf("%s", line)
	}

	const status = 7
	c.send(fmt.Sprintf("poweroff %d", status))
	c.expect(fmt.Sprintf("bringup: poweroff %d", status), 10*time.Second)
	select {
	case err := <-exited:
		waited = true
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != status {
			t.Fatalf("boot.sh exited %d, want the firmware's %d", code, status)
		}
		t.Logf("host: boot.sh exited with the firmware's status %d", code)
	case <-time.After(exitTimeout):
		t.Fatalf("QEMU still running %v after poweroff", exitTimeout)
	}
}

// pingCounts reads "N packets transmitted, M received" from ping's
// summary.
func pingCounts(t *testing.T, out string) (sent, received int) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if n, err := fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &received); err == nil && n == 2 {
			return sent, received
		}
	}
	t.Fatalf("no ping summary in:\n%s", out)
	return 0, 0
}

// counter reads NAME:VALUE from a line of stats the image printed.
func counter(t *testing.T, line, name string) int {
	t.Helper()
	i := strings.Index(line, name+":")
	if i < 0 {
		t.Fatalf("no %s in %q", name, line)
	}
	var v int
	fmt.Sscanf(line[i+len(name)+1:], "%d", &v)
	return v
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
