// Package stacknic presents a board's Ethernet port as a netstack.NIC.
//
// Board drivers (board/imxenet, the USB armory's CDC-ECM port) do not
// import netstack, so that a board bring-up image links neither netstack
// nor gVisor. The firmware's composition root wraps each port it hands
// to netstack with New.
package stacknic

import (
	"net"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

// Port is a board port: netstack.NIC with the address as a
// net.HardwareAddr.
type Port interface {
	Read(bufs []*ipsec.Buffer) (int, error)
	Write(bufs []*ipsec.Buffer) (int, error)
	MAC() net.HardwareAddr
	MTU() int
	Close() error
}

// NIC is a Port as a netstack.NIC.
type NIC struct {
	Port
	mac netstack.MAC
}

var _ netstack.NIC = (*NIC)(nil)

// New wraps p. Its address must be 6 octets (MAC-48).
func New(p Port) *NIC {
	n := &NIC{Port: p}
	copy(n.mac[:], p.MAC())
	return n
}

// MAC is the port's address.
func (n *NIC) MAC() netstack.MAC { return n.mac }
