//go:build tamago && usbarmory

package main

import (
	"io"
	"time"

	"github.com/bitw-dev/bitw/board/stacknic"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
	"github.com/bitw-dev/bitw/board/usbarmory"
	"github.com/bitw-dev/bitw/crypto/hw"
	hwimx6 "github.com/bitw-dev/bitw/crypto/hw/imx6"
)

// armory is the USB armory Mk II LAN: the USB CDC-ECM function (red, link
// usb) and its Ethernet (black, link eth); the blue LED shows whether a
// tunnel is up.
type armory struct {
	b *usbarmory.Board
	// mainAt is the time from reset (QEMU) or from TamaGo's early set-up
	// (silicon) to main: the console reports it.
	mainAt time.Duration
}

func openBoard() (*armory, error) {
	mainAt := imx6.Uptime()
	b, err := usbarmory.Open(usbarmory.Config{})
	if err != nil {
		return nil, err
	}
	return &armory{b: b, mainAt: mainAt}, nil
}

func (a *armory) Model() string   { return a.b.Model() }
func (a *armory) Ports() []string { return a.b.Ports() }
func (a *armory) DefaultPorts() (red, black string) {
	return usbarmory.DefaultRed, usbarmory.DefaultBlack
}
func (a *armory) Console() io.Reader     { return a.b.Console() }
func (a *armory) console() io.Writer     { return a.b.Console() }
func (a *armory) Facts() []string        { return platformFacts(a.b.Platform(), a.mainAt) }
func (a *armory) Engines() []hw.Engine   { return hwimx6.Engines() }
func (a *armory) SetTunnelState(up bool) { a.b.SetTunnelState(up) }

func (a *armory) OpenPort(name string) (stacknic.Port, string, error) {
	p, err := a.b.Port(name)
	if err != nil {
		return nil, "", err
	}
	kind := "enet"
	if name == usbarmory.PortUSB {
		kind = "usb-ecm"
	}
	return p, kind, nil
}

func poweroff(status int) { usbarmory.Poweroff(status) }
