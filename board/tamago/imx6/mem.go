//go:build tamago && arm

package imx6

import (
	"fmt"

	"github.com/usbarmory/tamago/dma"
)

// DMASize is the DDR carved out for DMA at its top: the ENET rings
// (about 200 KB per port at DefaultRing) and USB buffers, with room to
// spare. It is a whole number of MiB because the MMU maps memory in 1 MiB
// sections: everything above the runtime's RAM is mapped as uncached
// device memory, which is what the rings need.
const DMASize = 4 << 20

// InitDMA makes [ramStart+ramSize, +DMASize) the global DMA region. The
// board declares ramSize (goos.RamSize, with the linkramsize build tag)
// as its DDR size minus DMASize, so the Go runtime never uses that memory.
// Without this, TamaGo keeps DMA in the 128 KB OCRAM, which two ENETs with
// useful rings overflow.
func InitDMA(ramStart, ramSize uint) {
	if err := dma.Init(ramStart+ramSize, DMASize); err != nil {
		panic(fmt.Sprintf("imx6: DMA region %#x+%#x: %v", ramStart+ramSize, DMASize, err))
	}
}
