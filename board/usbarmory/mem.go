//go:build usbarmory && linkramsize

package usbarmory

import (
	_ "unsafe" // go:linkname

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/board/tamago/imx6"
)

// The USB armory Mk II (LAN included) has 512 MiB of DDR3 from
// imx6ul.MMDC_BASE. The runtime gets all but its top imx6.DMASize, the
// DMA region for the ENET rings and USB transfers.
const ddrSize = 512 << 20

//go:linkname ramSize runtime/goos.RamSize
var ramSize uint = ddrSize - imx6.DMASize

func init() {
	imx6.InitDMA(imx6ul.MMDC_BASE, ramSize)
}
