//go:build tamago && arm

// Package imx6 holds the on-chip crypto engines of the NXP i.MX6UL
// family behind crypto/hw's Engine interface, on TamaGo's drivers:
//
//   - the DCP of the i.MX6ULL and i.MX6ULZ (MCIMX6ULL-EVK, USB armory
//     Mk II): AES-128-CBC with four key slots, and SHA-256, from which
//     HMAC-SHA-256 is built over whole ipad and opad blocks (RFC 2104 §2);
//   - the CAAM of the i.MX6UL (USB armory Mk II LAN): AES-CBC with
//     128-, 192- and 256-bit keys, SHA-256 (HMAC the same way) and its
//     true random number generator.
//
// The SoC, not the board, decides: one board tag (usbarmory) covers the
// Mk II with an i.MX6ULZ and the Mk II LAN with an i.MX6UL, so Engines
// asks TamaGo which SoC it found.
//
// UNTESTED ON HARDWARE: nothing here has run on a DCP or a CAAM. QEMU
// models neither, and TamaGo's drivers build only with the TamaGo
// compiler, so the host tests exercise crypto/hw's wrappers against a
// fake engine instead. The firmware must therefore pass these engines
// through hw.Select, whose known-answer self-test keeps a faulty engine
// off the data path and falls back to the soft engine with a console
// line.
//
// Both engines are whole-buffer engines with one hardware queue: a call
// takes the engine's lock, copies its input into a DMA work area reserved
// once at start-up, runs one driver command per step and copies the
// result out. bitw allocates nothing per call; TamaGo's drivers v1.26.0
// still build each command's descriptor on the heap (WorkPacket.Bytes,
// Command.Bytes) and allocate the digest they return.
package imx6

import (
	"fmt"
	"sync"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/crypto/hw"
)

var (
	enginesOnce sync.Once
	engines     []hw.Engine
)

// Engines returns the crypto engines of this SoC, for hw.Select, in the
// order to try them: the DCP on an i.MX6ULL or i.MX6ULZ, the CAAM on an
// i.MX6UL, nothing on an SoC TamaGo does not name. On an emulated SoC
// (QEMU) the engine the model would have is returned as hw.Absent,
// without touching its registers, so the self-test fails at once and the
// console says why the soft engine carries the traffic. The first call
// initialises the hardware and reserves the DMA work area (the board
// package must have set up the DMA region); later calls return the same
// engines.
func Engines() []hw.Engine {
	enginesOnce.Do(func() { engines = probe() })
	return engines
}

func probe() []hw.Engine {
	model := imx6ul.Model()
	switch model {
	case "i.MX6ULL", "i.MX6ULZ":
		switch {
		case !imx6ul.Native:
			return []hw.Engine{hw.Absent("DCP", fmt.Sprintf("emulated %s: QEMU models no DCP", model))}
		case imx6ul.DCP == nil:
			return []hw.Engine{hw.Absent("DCP", "TamaGo did not set up the DCP of this "+model)}
		}
		return []hw.Engine{newDCP(imx6ul.DCP)}
	case "i.MX6UL":
		switch {
		case !imx6ul.Native:
			return []hw.Engine{hw.Absent("CAAM", fmt.Sprintf("emulated %s: QEMU models no CAAM", model))}
		case imx6ul.CAAM == nil:
			return []hw.Engine{hw.Absent("CAAM", "TamaGo did not set up the CAAM of this "+model)}
		}
		return []hw.Engine{newCAAM(imx6ul.CAAM)}
	}
	return nil
}
