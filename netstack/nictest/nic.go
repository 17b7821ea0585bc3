// Package nictest provides in-memory Ethernet links and gVisor-backed test
// hosts, so that netstack (and whatever sits on it) can be tested in
// process: a NIC pair is a cable, a Host is a machine on one end of it.
package nictest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

// QueueLen is the number of frames a NIC buffers before the link drops.
const QueueLen = 4096

// NIC is one end of an in-memory link. It implements netstack.NIC; tests
// on the other end use WriteFrame and ReadFrame.
type NIC struct {
	mac    netstack.MAC
	mtu    int
	rx     chan []byte
	peer   *NIC
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool

	// Lost counts frames written to this end that the peer dropped, as a
	// wire would: its queue was full, it was closed, or the frame did not
	// fit its buffers.
	Lost atomic.Uint64

	offMu    sync.Mutex // guards the offload fields (offload.go)
	offloads netstack.TxOffloads
	offStats OffloadStats
}

// Pair returns the two ends of a link with the given IP MTU.
func Pair(mtu int, a, b netstack.MAC) (*NIC, *NIC) {
	x := &NIC{mac: a, mtu: mtu, rx: make(chan []byte, QueueLen), done: make(chan struct{})}
	y := &NIC{mac: b, mtu: mtu, rx: make(chan []byte, QueueLen), done: make(chan struct{})}
	x.peer, y.peer = y, x
	return x, y
}

// MAC implements netstack.NIC.
func (n *NIC) MAC() netstack.MAC { return n.mac }

// MTU implements netstack.NIC.
func (n *NIC) MTU() int { return n.mtu }

// Close implements netstack.NIC.
func (n *NIC) Close() error {
	n.once.Do(func() {
		n.closed.Store(true)
		close(n.done)
	})
	return nil
}

// Read implements netstack.NIC: it blocks for the first frame and takes
// whatever else is queued, up to len(bufs).
func (n *NIC) Read(bufs []*ipsec.Buffer) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	i := 0
	for i == 0 {
		var f []byte
		select {
		case f = <-n.rx:
		case <-n.done:
			return 0, netstack.ErrClosed
		}
		for {
			if fill(bufs[i], f) {
				i++
			} else {
				n.peer.Lost.Add(1)
			}
			if i == len(bufs) {
				return i, nil
			}
			more := false
			select {
			case f = <-n.rx:
				more = true
			default:
			}
			if !more {
				break
			}
		}
	}
	return i, nil
}

func fill(b *ipsec.Buffer, f []byte) bool {
	space := b.Space()
	if len(f) > len(space) {
		return false
	}
	b.SetPacket(b.Headroom(), copy(space, f))
	return true
}

// Write implements netstack.NIC: each frame is copied onto the wire.
func (n *NIC) Write(bufs []*ipsec.Buffer) (int, error) {
	if n.closed.Load() {
		return 0, netstack.ErrClosed
	}
	for _, b := range bufs {
		n.WriteFrame(b.Bytes())
	}
	return len(bufs), nil
}

// WriteFrame sends a copy of frame to the peer.
func (n *NIC) WriteFrame(frame []byte) {
	if n.peer.closed.Load() {
		n.Lost.Add(1)
		return
	}
	select {
	case n.peer.rx <- append([]byte(nil), frame...):
	default:
		n.Lost.Add(1)
	}
}

// ReadFrame returns the next frame that reached this end, or false after
// timeout (real time).
func (n *NIC) ReadFrame(timeout time.Duration) ([]byte, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-n.rx:
		return f, true
	case <-t.C:
		return nil, false
	case <-n.done:
		return nil, false
	}
}

// Pending is the number of frames waiting to be read at this end.
func (n *NIC) Pending() int { return len(n.rx) }
