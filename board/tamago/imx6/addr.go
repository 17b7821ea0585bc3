//go:build tamago && arm

package imx6

import (
	"crypto/rand"
	"crypto/sha256"
	"net"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
)

// DefaultAddr returns the Ethernet address a port gets when the
// configuration names none: locally administered and unicast (first
// octet 0x02). On silicon it is derived from the SoC's fused unique ID
// and the port name, so it is stable across boots and distinct between
// boards. An emulated SoC has no unique ID (it reads as zero in every
// QEMU instance), so there the address is random on every boot.
func DefaultAddr(port string) net.HardwareAddr {
	addr := make(net.HardwareAddr, 6)
	addr[0] = 0x02
	if platform.Emulated {
		rand.Read(addr[1:])
		return addr
	}
	uid := imx6ul.UniqueID()
	h := sha256.New()
	h.Write([]byte("bitw ethernet address\x00"))
	h.Write(uid[:])
	h.Write([]byte(port))
	copy(addr[1:], h.Sum(nil))
	return addr
}
