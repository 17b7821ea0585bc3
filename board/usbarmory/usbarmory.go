//go:build usbarmory

// Package usbarmory is bitw's board layer for the USB armory Mk II LAN
// (NXP i.MX6UL).
//
// UNTESTED: nothing in this package has run on a USB armory, and QEMU has
// no model of it. It builds with the TamaGo compiler (tags
// usbarmory,linkramsize), shares its interrupt, ENET, console, entropy and
// DMA code with board/mx6ullevk, which is exercised under QEMU, and its
// USB function follows the CDC ECM specification with TamaGo's USB device
// driver; each of those is unverified here until someone boots it.
//
// Ports: "usb" is the red port, a USB CDC Ethernet (ECM) function towards
// the host the armory is plugged into; "eth" is the black port, the
// LAN model's 100 Mbit/s Ethernet (ENET2 with a DP83825I PHY). The
// console is UART2 (test pads on the LAN model). The blue LED shows
// whether a tunnel is up (SetTunnelState); the white LED is lit once the
// board is open.
package usbarmory

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	mk2 "github.com/usbarmory/tamago/board/usbarmory/mk2"
	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/board/ecm"
	"github.com/bitw-dev/bitw/board/imxenet"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
	"github.com/bitw-dev/bitw/ipsec"
)

// Port names, as the configuration's interfaces.*.link use them.
const (
	PortUSB = "usb"
	PortETH = "eth"
	// DefaultRed and DefaultBlack are the ports' default roles.
	DefaultRed   = PortUSB
	DefaultBlack = PortETH
)

func init() {
	// Before any other package draws randomness (see imx6.Setup).
	imx6.Setup()
}

// NIC is a port: the methods netstack.NIC needs, with the address as a
// net.HardwareAddr (board/stacknic adapts it).
type NIC interface {
	Read(bufs []*ipsec.Buffer) (int, error)
	Write(bufs []*ipsec.Buffer) (int, error)
	MAC() net.HardwareAddr
	MTU() int
	Close() error
}

var (
	_ NIC = (*imxenet.NIC)(nil)
	_ NIC = (*ecm.Port)(nil)
)

// Config sets up the board.
type Config struct {
	// Addrs gives ports their Ethernet addresses by port name; a port
	// without one gets imx6.DefaultAddr. For "usb" it is bitw's side.
	Addrs map[string]net.HardwareAddr
	// HostAddr is the address the USB host's interface takes, announced
	// in the ECM descriptor; nil means imx6.DefaultAddr("usb-host").
	HostAddr net.HardwareAddr
	// Ring is the ENET descriptor count per direction; zero means
	// imx6.DefaultRing.
	Ring int
	// Echo makes the console echo what is typed.
	Echo bool
}

// Board is the opened board. Open it once.
type Board struct {
	platform imx6.Platform
	irqs     *imx6.Interrupts
	console  *imx6.Console
	usb      *ecm.Port
	eth      *imxenet.NIC
}

var opened sync.Once

// ErrOpened reports a second Open.
var ErrOpened = errors.New("usbarmory: board already opened")

// Open brings up the console, the USB function and the Ethernet port,
// and starts interrupt handling with WFI idling.
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
		if name != PortUSB && name != PortETH {
			return nil, fmt.Errorf("usbarmory: no port %q (ports: %s, %s)", name, PortUSB, PortETH)
		}
		if len(addr) != 6 || addr[0]&1 != 0 {
			return nil, fmt.Errorf("usbarmory: port %s: %v is not a unicast Ethernet address", name, addr)
		}
	}
	addr := func(port string) net.HardwareAddr {
		if a := cfg.Addrs[port]; a != nil {
			return a
		}
		return imx6.DefaultAddr(port)
	}
	host := cfg.HostAddr
	if host == nil {
		host = imx6.DefaultAddr("usb-host")
	}

	b := &Board{platform: p, irqs: imx6.NewInterrupts()}
	b.console = imx6.OpenConsole(imx6ul.UART2, imx6.UART2IRQ, b.irqs, cfg.Echo)
	var err error
	if b.eth, err = imx6.OpenENET(imx6ul.ENET2, PortETH, addr(PortETH), cfg.Ring, b.irqs); err != nil {
		return nil, err
	}
	if b.usb, err = openECM(imx6ul.USB1, addr(PortUSB), host, b.irqs); err != nil {
		return nil, err
	}
	b.irqs.Start()
	mk2.LED("white", true)
	mk2.LED("blue", false)
	return b, nil
}

// Port returns the named port.
func (b *Board) Port(name string) (NIC, error) {
	switch name {
	case PortUSB:
		return b.usb, nil
	case PortETH:
		return b.eth, nil
	}
	return nil, fmt.Errorf("usbarmory: no port %q (ports: %s, %s)", name, PortUSB, PortETH)
}

// Ports lists the port names.
func (b *Board) Ports() []string { return []string{PortUSB, PortETH} }

// SetTunnelState lights the blue LED while at least one tunnel is up.
func (b *Board) SetTunnelState(up bool) {
	mk2.LED("blue", up)
}

// Console is UART2.
func (b *Board) Console() *imx6.Console { return b.console }

// Clock is the board's time source; nothing sets it at boot (imx6.Clock).
func (b *Board) Clock() imx6.Clock { return imx6.Clock{} }

// Entropy is crypto/rand's reader (the CAAM TRNG-seeded DRBG on this
// i.MX6UL, see Platform().Entropy).
func (b *Board) Entropy() io.Reader { return rand.Reader }

// Platform tells what the board found at boot.
func (b *Board) Platform() imx6.Platform { return b.platform }

// Model names the board.
func (b *Board) Model() string {
	_, name := mk2.Model()
	return "USB armory Mk II " + name + " (" + imx6ul.Model() + ")"
}

// UnexpectedInterrupts counts interrupts that arrived with no handler.
func (b *Board) UnexpectedInterrupts() uint64 { return b.irqs.Unexpected() }

// Poweroff ends the firmware with status. The armory cannot switch itself
// off: the core halts with interrupts masked (under an emulator with
// semihosting, the emulator exits with status).
func Poweroff(status int) {
	mk2.LED("white", false)
	os.Exit(status)
}
