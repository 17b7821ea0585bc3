//go:build linux

// Command tapqemu opens one TAP device in each of two network namespaces
// and runs QEMU with them as its first and second NIC, passed as
// inherited file descriptors (-nic tap,fd=N,model=imx.enet). QEMU itself
// stays in the caller's namespace; only the TAPs live in the others.
//
//	tapqemu -red NETNS -black NETNS [-red-tap bitw-red] [-black-tap bitw-black] -- qemu-system-arm ARGS...
//
// NETNS is a name under /var/run/netns (as ip netns uses) or a path.
// A TAP that exists is used as it is; one that does not is created, and
// brought up, for as long as QEMU runs. No address is assigned.
//
// The exit status is QEMU's (which, with -semihosting, is the firmware's);
// SIGTERM or SIGINT stop QEMU and end with 128 plus the signal number.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	redNS := flag.String("red", "", "network namespace of the red TAP (ENET1)")
	blackNS := flag.String("black", "", "network namespace of the black TAP (ENET2)")
	redTap := flag.String("red-tap", "bitw-red", "red TAP name")
	blackTap := flag.String("black-tap", "bitw-black", "black TAP name")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tapqemu -red NETNS -black NETNS [-red-tap NAME] [-black-tap NAME] -- QEMU [ARGS...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *redNS == "" || *blackNS == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	red, err := openTap(*redNS, *redTap)
	if err != nil {
		fatal(err)
	}
	black, err := openTap(*blackNS, *blackTap)
	if err != nil {
		fatal(err)
	}
	os.Exit(run(flag.Args(), red, black))
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "tapqemu: %v\n", err)
	os.Exit(2)
}

// run starts QEMU with the TAPs as descriptors 3 and 4, relays SIGTERM
// and SIGINT to it, and returns its exit status.
func run(argv []string, red, black *os.File) int {
	args := append(argv[1:],
		"-nic", "tap,fd=3,model=imx.enet",
		"-nic", "tap,fd=4,model=imx.enet")
	cmd := exec.Command(argv[0], args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{red, black}

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	// QEMU holds the TAPs now.
	red.Close()
	black.Close()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var stoppedBy syscall.Signal
	for {
		select {
		case s := <-signals:
			stoppedBy = s.(syscall.Signal)
			cmd.Process.Signal(syscall.SIGTERM)
		case err := <-done:
			if stoppedBy != 0 {
				return 128 + int(stoppedBy)
			}
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return exit.ExitCode()
			}
			if err != nil {
				fatal(err)
			}
			return 0
		}
	}
}

// openTap opens (creating it if absent) TAP name inside network namespace
// ns and returns its descriptor.
func openTap(ns, name string) (*os.File, error) {
	path := ns
	if !strings.ContainsRune(ns, '/') {
		path = filepath.Join("/var/run/netns", ns)
	}
	target, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", ns, err)
	}
	defer target.Close()

	// Namespaces belong to threads: do all of it on one locked thread,
	// and return it to the original namespace before unlocking.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, err
	}
	defer home.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter network namespace %s: %w", ns, err)
	}
	defer func() {
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// A thread stuck in the wrong namespace must not be reused.
			panic(fmt.Sprintf("tapqemu: cannot return to the original network namespace: %v", err))
		}
	}()
	return attachTap(ns, name)
}

func attachTap(ns, name string) (*os.File, error) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(sock)
	flags, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("TAP name %q: %w", name, err)
	}
	existed := unix.IoctlIfreq(sock, unix.SIOCGIFFLAGS, flags) == nil

	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	req, _ := unix.NewIfreq(name)
	req.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, req); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TAP %s in %s: %w (is it a TAP, and not already held by another QEMU?)", name, ns, err)
	}
	if !existed {
		if err := unix.IoctlIfreq(sock, unix.SIOCGIFFLAGS, flags); err == nil {
			flags.SetUint16(flags.Uint16() | unix.IFF_UP)
			err = unix.IoctlIfreq(sock, unix.SIOCSIFFLAGS, flags)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("bring up TAP %s in %s: %w", name, ns, err)
		}
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}
