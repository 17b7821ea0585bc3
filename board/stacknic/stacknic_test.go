package stacknic

import (
	"errors"
	"net"
	"testing"

	"github.com/bitw-dev/bitw/board/ecm"
	"github.com/bitw-dev/bitw/board/imxenet"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

// The boards' ports must stay Ports.
var (
	_ Port = (*imxenet.NIC)(nil)
	_ Port = (*ecm.Port)(nil)
)

type port struct{ closed bool }

func (p *port) Read([]*ipsec.Buffer) (int, error) {
	if p.closed {
		return 0, imxenet.ErrClosed
	}
	return 0, nil
}
func (p *port) Write(b []*ipsec.Buffer) (int, error) { return len(b), nil }
func (p *port) MAC() net.HardwareAddr                { return net.HardwareAddr{2, 0xb1, 0x70, 0, 0, 9} }
func (p *port) MTU() int                             { return 1500 }
func (p *port) Close() error                         { p.closed = true; return nil }

func TestNICForwardsAndConvertsTheAddress(t *testing.T) {
	p := &port{}
	var n netstack.NIC = New(p)
	if n.MAC() != (netstack.MAC{2, 0xb1, 0x70, 0, 0, 9}) || n.MTU() != 1500 {
		t.Fatalf("MAC %s MTU %d", n.MAC(), n.MTU())
	}
	n.Close()
	// netstack accepts errors wrapping net.ErrClosed from boards.
	if _, err := n.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}
