//go:build tamago && arm

package imx6

import (
	"fmt"
	"net"

	"github.com/usbarmory/tamago/dma"
	"github.com/usbarmory/tamago/soc/nxp/enet"

	"github.com/bitw-dev/bitw/board/imxenet"
	"github.com/bitw-dev/bitw/board/tamago/mmio"
)

// DefaultRing is the number of descriptors per direction per port. Two
// ports at 64 entries use about 400 KB of DMA memory, which does not fit
// the 128 KB OCRAM TamaGo uses by default; see InitDMA.
const DefaultRing = 64

// enetMAC is the doorbell side of one ENET for imxenet. Register offsets
// and bits are TamaGo's, which cite IMX6ULLRM Rev 1, 22.5 "Memory
// map/register definition" (p879).
type enetMAC struct {
	base uint32
}

func (m enetMAC) Attach(rxDesc, txDesc uint32) {
	mmio.Write32(m.base+enet.ENETx_RDSR, rxDesc)
	mmio.Write32(m.base+enet.ENETx_TDSR, txDesc)
}

func (m enetMAC) StartRx() { mmio.Write32(m.base+enet.ENETx_RDAR, 1<<enet.RDAR_ACTIVE) }
func (m enetMAC) StartTx() { mmio.Write32(m.base+enet.ENETx_TDAR, 1<<enet.TDAR_ACTIVE) }
func (m enetMAC) Barrier() { mmio.Barrier() }

// OpenENET initialises one ENET controller as a port named name with
// Ethernet address addr and interrupt-driven reception through irqs.
//
// TamaGo's driver configures the MAC, its clocks and PHY (Init); the
// address is set first, or Init picks a random one. Its Start and
// per-frame Rx/Tx are not used: imxenet owns the descriptor rings, which
// live in the global DMA region (see InitDMA).
func OpenENET(eth *enet.ENET, name string, addr net.HardwareAddr, ring int, irqs *Interrupts) (*imxenet.NIC, error) {
	if eth == nil {
		return nil, fmt.Errorf("imx6: %s: this SoC has no such ENET", name)
	}
	if ring <= 0 {
		ring = DefaultRing
	}
	eth.MAC = append(net.HardwareAddr(nil), addr...)
	eth.Init()

	// The rings' buffers must match the receive buffer size the driver
	// programmed, or the MAC writes past them.
	if mrbr := mmio.Read32(eth.Base + enet.ENETx_MRBR); mrbr != imxenet.BufferSize {
		return nil, fmt.Errorf("imx6: %s: ENET_MRBR is %d, rings expect %d", name, mrbr, imxenet.BufferSize)
	}
	rx, tx := reserveRing(ring), reserveRing(ring)
	mac := enetMAC{base: eth.Base}
	nic, err := imxenet.New(imxenet.Config{Name: name, Addr: addr, Ring: ring}, mac, rx, tx)
	if err != nil {
		return nil, err
	}
	eir := eth.Base + enet.ENETx_EIR
	irqs.Handle(eth.IRQ, func() {
		// The ENET interrupt is level-triggered: clear the event
		// (write 1 to clear, only RXF, so a concurrent MDIO wait on
		// MII is not disturbed) before the reader drains the ring, so
		// a frame landing during the drain raises it again.
		mmio.Write32(eir, 1<<enet.IRQ_RXF)
		nic.Interrupt()
	})
	eth.EnableInterrupt(enet.IRQ_RXF)
	return nic, nil
}

// reserveRing takes one ring's descriptors and buffers from the global DMA
// region. A region too small panics in dma (at boot, on the console).
func reserveRing(count int) imxenet.Memory {
	descLen, bufLen := imxenet.MemorySize(count)
	descAddr, desc := dma.Reserve(descLen, imxenet.BufferAlign)
	bufsAddr, bufs := dma.Reserve(bufLen, imxenet.BufferAlign)
	return imxenet.Memory{Desc: desc, DescAddr: uint32(descAddr), Bufs: bufs, BufsAddr: uint32(bufsAddr)}
}
