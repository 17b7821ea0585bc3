//go:build mx6ullevk

// Package mx6ullevk is bitw's board layer for the NXP MCIMX6ULL-EVK and
// for QEMU's mcimx6ul-evk machine, which models the i.MX6UL EVK closely
// enough for TamaGo's image to run unchanged.
//
// Ports: ENET1 ("enet1") is the red port and ENET2 ("enet2") the black
// one by default; the configuration's links choose. Each is a batched
// NIC with interrupt-driven reception (board/imxenet). The console is
// UART1 (the EVK's debug USB connector J1901; QEMU's first -serial).
//
// Build with the TamaGo compiler and the tags mx6ullevk,linkramsize (the
// latter lets this package shrink the runtime's RAM to make room for
// DMA at the top of DDR). Under QEMU, start it with -semihosting: that
// is where entropy, the wall clock and the exit status come from.
//
// Status: exercised under QEMU 7.2 only (test/qemu). Nothing here has run
// on a real MCIMX6ULL-EVK yet.
package mx6ullevk

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	_ "github.com/usbarmory/tamago/board/nxp/mx6ullevk" // SoC and board init, PHYs, console output
	"github.com/usbarmory/tamago/soc/nxp/enet"
	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/board/imxenet"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
)

// Port names, as the configuration's interfaces.*.link use them.
const (
	PortENET1 = "enet1"
	PortENET2 = "enet2"
	// DefaultRed and DefaultBlack are the ports' default roles.
	DefaultRed   = PortENET1
	DefaultBlack = PortENET2
)

func init() {
	// Before any other package draws randomness: under QEMU this
	// replaces TamaGo's constant-seeded generator (see imx6.Setup).
	imx6.Setup()
}

// Config sets up the board.
type Config struct {
	// Addrs gives ports their Ethernet addresses by port name. A port
	// without one gets imx6.DefaultAddr.
	Addrs map[string]net.HardwareAddr
	// Ring is the descriptor count per direction per port; zero means
	// imx6.DefaultRing.
	Ring int
	// Echo makes the console echo what is typed (QEMU's stdio and most
	// serial terminals do not echo locally).
	Echo bool
}

// Board is the opened board. Open it once.
type Board struct {
	platform imx6.Platform
	irqs     *imx6.Interrupts
	console  *imx6.Console
	ports    map[string]*imxenet.NIC
}

var opened sync.Once

// ErrOpened reports a second Open.
var ErrOpened = errors.New("mx6ullevk: board already opened")

// Open brings up the console and both ENET ports and starts interrupt
// handling with WFI idling. It fails on an emulator without semihosting
// (no entropy), and when a configured address is not a 6-octet unicast
// address.
func Open(cfg Config) (*Board, error) {
	var b *Board
	var err error
	first := false
	opened.Do(func() {
		first = true
		b, err = open(cfg)
	})
	if !first {
		return nil, ErrOpened
	}
	return b, err
}

func open(cfg Config) (*Board, error) {
	p := imx6.Setup()
	if p.Err != nil {
		return nil, p.Err
	}
	for name, addr := range cfg.Addrs {
		if name != PortENET1 && name != PortENET2 {
			return nil, fmt.Errorf("mx6ullevk: no port %q (ports: %s, %s)", name, PortENET1, PortENET2)
		}
		if len(addr) != 6 || addr[0]&1 != 0 {
			return nil, fmt.Errorf("mx6ullevk: port %s: %v is not a unicast Ethernet address", name, addr)
		}
	}
	b := &Board{platform: p, irqs: imx6.NewInterrupts(), ports: make(map[string]*imxenet.NIC)}
	b.console = imx6.OpenConsole(imx6ul.UART1, imx6.UART1IRQ, b.irqs, cfg.Echo)
	for _, port := range []struct {
		name string
		eth  *enet.ENET
	}{{PortENET1, imx6ul.ENET1}, {PortENET2, imx6ul.ENET2}} {
		addr := cfg.Addrs[port.name]
		if addr == nil {
			addr = imx6.DefaultAddr(port.name)
		}
		nic, err := imx6.OpenENET(port.eth, port.name, addr, cfg.Ring, b.irqs)
		if err != nil {
			return nil, err
		}
		b.ports[port.name] = nic
	}
	b.irqs.Start()
	return b, nil
}

// Port returns the named port.
func (b *Board) Port(name string) (*imxenet.NIC, error) {
	if nic, ok := b.ports[name]; ok {
		return nic, nil
	}
	return nil, fmt.Errorf("mx6ullevk: no port %q (ports: %s, %s)", name, PortENET1, PortENET2)
}

// Ports lists the port names.
func (b *Board) Ports() []string { return []string{PortENET1, PortENET2} }

// Console is UART1.
func (b *Board) Console() *imx6.Console { return b.console }

// Clock is the board's time source.
func (b *Board) Clock() imx6.Clock { return imx6.Clock{} }

// Entropy is crypto/rand's reader, which on this board draws from the
// source Platform().Entropy names.
func (b *Board) Entropy() io.Reader { return rand.Reader }

// Platform tells what the board found at boot: emulated or not, the
// entropy source, whether the clock is real.
func (b *Board) Platform() imx6.Platform { return b.platform }

// Model names the board.
func (b *Board) Model() string {
	if b.platform.Emulated {
		return "QEMU mcimx6ul-evk (" + imx6ul.Model() + ")"
	}
	return "MCIMX6ULL-EVK (" + imx6ul.Model() + ")"
}

// UnexpectedInterrupts counts interrupts that arrived with no handler.
func (b *Board) UnexpectedInterrupts() uint64 { return b.irqs.Unexpected() }

// Poweroff ends the firmware with status: under QEMU the emulator exits
// with it (semihosting); the EVK has no software power switch, so there
// the core halts with interrupts masked.
func Poweroff(status int) {
	os.Exit(status)
}
