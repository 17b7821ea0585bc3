//go:build linux

package host

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Network-namespace scaffolding for tests that need real links. Each test
// makes its own namespaces with a random suffix and deletes them after.

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs ip(8) from iproute2")
	}
}

// ip runs ip(8) and fails the test on error.
func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNS creates a namespace with loopback up and removes it at cleanup.
func newNS(t testing.TB, role string) string {
	t.Helper()
	name := fmt.Sprintf("bitwt-%s-%06x", role, rand.Uint32()&0xffffff)
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// vethPair creates a veth pair with one end in each namespace.
func vethPair(t testing.TB, nsA, a, nsB, b string) {
	t.Helper()
	ip(t, "-n", nsA, "link", "add", a, "type", "veth", "peer", "name", b, "netns", nsB)
}

// inNS runs f on an OS thread that has entered namespace ns. Sockets made
// there stay in ns after the thread leaves.
func inNS(t testing.TB, ns string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// The thread never returns to the pool: it exits with the
		// goroutine, so its namespace cannot leak into other work.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("enter %s: %v", ns, err)
	}
}
