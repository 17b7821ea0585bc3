//go:build tamago && mx6ullevk

package main

import (
	"io"
	"time"

	"github.com/bitw-dev/bitw/board/mx6ullevk"
	"github.com/bitw-dev/bitw/board/stacknic"
	"github.com/bitw-dev/bitw/board/tamago/imx6"
	"github.com/bitw-dev/bitw/crypto/hw"
	hwimx6 "github.com/bitw-dev/bitw/crypto/hw/imx6"
)

// evk is the MCIMX6ULL-EVK, or QEMU's mcimx6ul-evk: ENET1 and ENET2.
type evk struct {
	b *mx6ullevk.Board
	// mainAt is the time from reset (QEMU) or from TamaGo's early set-up
	// (silicon) to main: the console reports it.
	mainAt time.Duration
}

func openBoard() (*evk, error) {
	mainAt := imx6.Uptime()
	b, err := mx6ullevk.Open(mx6ullevk.Config{})
	if err != nil {
		return nil, err
	}
	return &evk{b: b, mainAt: mainAt}, nil
}

func (e *evk) Model() string                     { return e.b.Model() }
func (e *evk) Ports() []string                   { return e.b.Ports() }
func (e *evk) DefaultPorts() (red, black string) { return mx6ullevk.DefaultRed, mx6ullevk.DefaultBlack }
func (e *evk) Console() io.Reader                { return e.b.Console() }
func (e *evk) console() io.Writer                { return e.b.Console() }
func (e *evk) Facts() []string                   { return platformFacts(e.b.Platform(), e.mainAt) }
func (e *evk) Engines() []hw.Engine              { return hwimx6.Engines() }

// SetTunnelState: the EVK has no LED for it; status shows the tunnels.
func (e *evk) SetTunnelState(bool) {}

func (e *evk) OpenPort(name string) (stacknic.Port, string, error) {
	p, err := e.b.Port(name)
	if err != nil {
		return nil, "", err
	}
	return p, "enet", nil
}

func poweroff(status int) { mx6ullevk.Poweroff(status) }
