// Package baremetal is the firmware's composition root on a board. It
// loads the configuration built into the image, maps the configuration's
// links onto the board's ports, self-tests the crypto engines (falling
// back to Go's), and runs firmware/runtime, the same composition as `bitw
// run` on Linux, with the board's NICs, its UART as log and console (the
// verbs of design.md plus poweroff), and the tunnel state on the board's
// LEDs.
//
// The TamaGo main package (firmware/*_tamago.go) supplies a Board built on
// board/mx6ullevk or board/usbarmory; the host tests supply in-memory
// ones, so everything here runs under a plain `go test`.
package baremetal

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/bitw-dev/bitw/board/stacknic"
	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/runtime"
)

// Exit statuses of Run. Under QEMU they become the emulator's exit status
// (semihosting); on a board the core halts. They follow the CLI's codes.
const (
	ExitPoweroff = 0 // the console's poweroff: SAs deleted with the peers
	ExitFailed   = 1 // the appliance could not start
	ExitConfig   = 2 // the built-in configuration is unusable
)

// Board is what the composition needs from a board.
type Board interface {
	// Model names the board, for the first console line.
	Model() string
	// Ports lists the board's port names; DefaultPorts says which of
	// them is red and which is black when the configuration names none.
	Ports() []string
	DefaultPorts() (red, black string)
	// OpenPort returns the named port, already brought up, and how it
	// is attached ("enet", "usb-ecm").
	OpenPort(name string) (stacknic.Port, string, error)
	// Console is the terminal's input; typed characters, unechoed.
	Console() io.Reader
	// Facts are lines about the platform for the console: the entropy
	// source, the clock, emulation.
	Facts() []string
	// Engines are the SoC's crypto engines, for hw.Select.
	Engines() []hw.Engine
	// SetTunnelState shows whether at least one tunnel is up (an LED);
	// boards without one ignore it.
	SetTunnelState(up bool)
}

// Options are the rest of what Run takes.
type Options struct {
	// Version is what the console and the status report.
	Version string
	// Out is the terminal's output (the UART); Run serialises writes
	// and ends lines with CR LF.
	Out io.Writer
	// Echo echoes typed characters (a UART behind a raw terminal).
	Echo bool
}

// SiteFile is the configuration's name inside the image's site
// directory; scripts/firmware.sh stages it there.
const SiteFile = "bitw.toml"

// SourceFile records which configuration was built in (its path and
// SHA-256), written by scripts/firmware.sh.
const SourceFile = "SOURCE"

// Run composes the appliance on b from the configuration in site and
// runs it until the console's poweroff. It returns the status to power
// off with.
func Run(b Board, site fs.FS, o Options) int {
	out := NewTerminal(o.Out)
	say := func(format string, args ...any) { fmt.Fprintf(out, "bitw: "+format+"\n", args...) }

	say("%s on %s", versionString(o.Version), b.Model())
	for _, f := range b.Facts() {
		say("%s", f)
	}
	if src, err := fs.ReadFile(site, SourceFile); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(src)), "\n") {
			say("built-in %s", line)
		}
	}

	// The engines first: an engine that fails its self-test never
	// carries traffic, and without trustworthy crypto nothing starts.
	engine, err := hw.Select(b.Engines(), hw.Soft(), func(line string) { fmt.Fprintln(out, line) })
	if err != nil {
		say("no trustworthy crypto engine: %v", err)
		return ExitFailed
	}
	// A hardware engine that passed carries the ESP transforms it
	// offers. The soft engine is Go's crypto, which the data plane uses
	// directly without one.
	var dataPlaneCrypto hw.Engine
	if engine.Name() != hw.Soft().Name() {
		dataPlaneCrypto = engine
	}

	cfg, err := LoadSite(site)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			say("%s", line)
		}
		return ExitConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(out, "%s:%d: warning: %s\n", w.File, w.Line, w.Msg)
	}
	defRed, defBlack := b.DefaultPorts()
	links, notes, err := MapLinks(cfg, b.Ports(), defRed, defBlack)
	if err != nil {
		say("%v", err)
		return ExitConfig
	}
	for _, n := range notes {
		say("%s", n)
	}

	ctx, powerOff := context.WithCancel(context.Background())
	defer powerOff()
	rt, err := runtime.New(cfg, runtime.Options{
		Stderr:  out,
		Version: o.Version,
		Crypto:  dataPlaneCrypto,
		OpenPort: func(l config.Link) (runtime.Port, error) {
			name, ok := links[l]
			if !ok {
				return runtime.Port{}, fmt.Errorf("link %s has no board port", l)
			}
			p, kind, err := b.OpenPort(name)
			if err != nil {
				return runtime.Port{}, err
			}
			return runtime.Port{NIC: stacknic.New(p), Kind: kind}, nil
		},
		Console: &runtime.Console{In: b.Console(), Out: out, Echo: o.Echo, PowerOff: powerOff},
		Tunnels: func(outbound int) { b.SetTunnelState(outbound > 0) },
	})
	if err != nil {
		say("%v", err)
		return ExitFailed
	}
	if err := rt.Run(ctx); err != nil {
		say("%v", err)
		return ExitFailed
	}
	say("powered off")
	return ExitPoweroff
}

func versionString(v string) string {
	if v == "" {
		return "bitw (unversioned)"
	}
	return "bitw " + v
}

// sitePrefix is the directory Parse sees the configuration in. It is
// absolute, so that Parse anchors the relative paths of certificate and
// key files there without asking the platform for a working directory.
const sitePrefix = "/site/"

// LoadSite parses the configuration built into the image. The files it
// names (certificates, keys) are read from site too; a name outside it is
// an error, since the image holds nothing else.
func LoadSite(site fs.FS) (*config.Config, error) {
	data, err := fs.ReadFile(site, SiteFile)
	if err != nil {
		return nil, fmt.Errorf("no configuration built in (%w): build images with `make firmware`", err)
	}
	return config.Parse(sitePrefix+SiteFile, data, config.Options{ReadFile: func(name string) ([]byte, error) {
		rel, ok := strings.CutPrefix(name, sitePrefix)
		if !ok || !fs.ValidPath(rel) {
			return nil, fmt.Errorf("%s is not in the image: firmware images embed only files beside their configuration", name)
		}
		return fs.ReadFile(site, rel)
	}})
}

// MapLinks decides which board port each configured interface uses. A
// link that names a board port gets that port. Any other link (a Linux
// interface such as red0, a tap:NAME) gets the board's default port for
// its role, with a note for the console: so examples/site-a.toml, written
// for the host runtime, runs unchanged on a board. Both interfaces on one
// port is an error.
func MapLinks(cfg *config.Config, ports []string, defRed, defBlack string) (map[config.Link]string, []string, error) {
	isPort := func(name string) bool {
		for _, p := range ports {
			if p == name {
				return true
			}
		}
		return false
	}
	links := make(map[config.Link]string, 2)
	var notes []string
	var chosen [2]string
	for i, side := range []struct {
		role string
		link config.Link
		def  string
	}{{"red", cfg.Red.Link, defRed}, {"black", cfg.Black.Link, defBlack}} {
		port := side.link.Name
		if side.link.Kind != config.LinkDevice || !isPort(port) {
			port = side.def
			notes = append(notes, fmt.Sprintf("interfaces.%s: link %q is not a port of this board (%s); using %s, the board's %s port",
				side.role, side.link.String(), strings.Join(ports, ", "), port, side.role))
		}
		chosen[i] = port
		links[side.link] = port
	}
	if chosen[0] == chosen[1] || cfg.Red.Link == cfg.Black.Link {
		return nil, nil, fmt.Errorf("interfaces.red and interfaces.black would both use port %s", chosen[0])
	}
	return links, notes, nil
}

// Terminal serialises writes to a raw terminal and ends every line with
// CR LF, which a terminal in raw mode needs to return to the first
// column; a CR LF already there stays as it is. The log, the console's
// replies and the ready line all go through one.
type Terminal struct {
	mu   sync.Mutex
	w    io.Writer
	last byte
	buf  []byte
}

// NewTerminal wraps w.
func NewTerminal(w io.Writer) *Terminal { return &Terminal{w: w} }

// Write writes p with bare LFs turned into CR LF. It reports len(p) on
// success.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.buf[:0]
	for _, c := range p {
		if c == '\n' && t.last != '\r' {
			t.buf = append(t.buf, '\r')
		}
		t.buf = append(t.buf, c)
		t.last = c
	}
	if _, err := t.w.Write(t.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
