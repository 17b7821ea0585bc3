// Package ecm carries Ethernet frames over a USB CDC Ethernet Control
// Model function (USB CDC ECM 1.2) and presents them as a batched NIC.
//
// The USB device controller driver (TamaGo's soc/nxp/usb on the USB
// armory) runs one goroutine per endpoint and calls an endpoint function
// per transfer: HostOut with each transfer the host sent on the bulk OUT
// endpoint (one frame, ended by a short or zero-length packet), HostIn
// whenever the bulk IN endpoint can take the next frame, and Notify for
// the interrupt endpoint. Read and Write meet those goroutines through
// bounded queues of preallocated frame slots; a full queue drops and
// counts. Unlike the ENET ports, a Write here only queues the frame: the
// driver's IN endpoint goroutine performs the transfer. That is how the
// driver is built, and a USB host takes frames only when it polls.
//
// The package holds no hardware access, so it is tested on the host.
package ecm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
)

// Frame geometry: an Ethernet frame without FCS, which ECM does not carry
// (USB CDC ECM 1.2, 3.3.1).
const (
	ethHeaderLen = 14
	// MaxFrameLen is the largest frame, a 1500-octet payload plus the
	// header, the value the functional descriptor announces as
	// wMaxSegmentSize.
	MaxFrameLen = 1514
	// MTU is the IP MTU of the port.
	MTU = 1500
	// transferLen is the OUT transfer requested from the driver: longer
	// than any frame, so an over-long one shows as such.
	transferLen = 1536
)

// NetworkConnection notification (USB CDC ECM 1.2, 6.3.1; USB CDC 1.2,
// 6.3 Table 20): bmRequestType, bNotificationCode, wValue, wIndex,
// wLength.
//
//	+--------+--------+-----------------+-----------------+-----------------+
//	| 0xA1   | 0x00   | wValue: 1 = up  | wIndex: iface   | wLength: 0      |
//	+--------+--------+-----------------+-----------------+-----------------+
const (
	notifyRequestType       = 0xa1
	notifyNetworkConnection = 0x00
	notifyConnected         = 1
	notifyLen               = 8
)

// Config describes the port.
type Config struct {
	// Name is the board's port name, e.g. "usb".
	Name string
	// Addr is the device's Ethernet address (bitw's side of the link).
	Addr net.HardwareAddr
	// ControlInterface is the number of the ECM communication interface,
	// which the link notification names.
	ControlInterface uint16
	// Queue is the number of frames each direction holds; zero means 32.
	Queue int
	// Poll bounds how long HostIn and Notify wait before returning
	// nothing, so the driver's endpoint goroutines see a bus reset; zero
	// means 100 ms.
	Poll time.Duration
}

// Errors returned by Port.
var (
	ErrClosed    = fmt.Errorf("ecm: port closed: %w", net.ErrClosed)
	ErrQueueFull = errors.New("ecm: transmit queue full (the USB host is not reading); frames dropped")
	ErrFrameSize = errors.New("ecm: frame outside 14..1514 octets; dropped")
)

// Stats are the port's counters.
type Stats struct {
	RxFrames, RxOctets uint64
	RxErrors           uint64 // transfers shorter than a header or longer than a frame
	RxDropped          uint64 // frames that found the receive queue full
	TxFrames, TxOctets uint64 // frames queued for the host
	TxDropped          uint64 // frames that found the transmit queue full
	TxSize             uint64 // frames of a bad size
}

type counters struct {
	rxFrames, rxOctets, rxErrors, rxDropped atomic.Uint64
	txFrames, txOctets, txDropped, txSize   atomic.Uint64
}

// Port is the ECM function's data path. One goroutine reads; any number
// may write.
type Port struct {
	name string
	addr net.HardwareAddr
	poll time.Duration

	rxFull, rxFree chan []byte
	txFull, txFree chan []byte
	out            []byte // the OUT transfer buffer, owned by the OUT goroutine
	inFlight       []byte // the frame HostIn last returned, owned by the IN goroutine
	inTimer        *time.Timer

	notification []byte
	notified     bool
	notifyTimer  *time.Timer

	done      chan struct{}
	closeOnce sync.Once
	c         counters
}

// New makes a port with its frame slots allocated once.
func New(cfg Config) (*Port, error) {
	if len(cfg.Addr) != 6 {
		return nil, fmt.Errorf("ecm: %s: Ethernet address must be 6 octets", cfg.Name)
	}
	queue := cfg.Queue
	if queue <= 0 {
		queue = 32
	}
	poll := cfg.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	p := &Port{
		name:   cfg.Name,
		addr:   append(net.HardwareAddr(nil), cfg.Addr...),
		poll:   poll,
		rxFull: make(chan []byte, queue), rxFree: make(chan []byte, queue),
		txFull: make(chan []byte, queue), txFree: make(chan []byte, queue),
		out:          make([]byte, transferLen),
		notification: make([]byte, notifyLen),
		done:         make(chan struct{}),
	}
	slab := make([]byte, 2*queue*MaxFrameLen)
	for i := range queue {
		p.rxFree <- slab[2*i*MaxFrameLen : (2*i+1)*MaxFrameLen : (2*i+1)*MaxFrameLen]
		p.txFree <- slab[(2*i+1)*MaxFrameLen : (2*i+2)*MaxFrameLen : (2*i+2)*MaxFrameLen]
	}
	n := p.notification
	n[0], n[1] = notifyRequestType, notifyNetworkConnection
	binary.LittleEndian.PutUint16(n[2:], notifyConnected)
	binary.LittleEndian.PutUint16(n[4:], cfg.ControlInterface)
	p.inTimer = stoppedTimer()
	p.notifyTimer = stoppedTimer()
	return p, nil
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// Name is the board's name for the port.
func (p *Port) Name() string { return p.name }

// MAC is the device's Ethernet address.
func (p *Port) MAC() net.HardwareAddr { return p.addr }

// MTU is the largest IP packet the port carries.
func (p *Port) MTU() int { return MTU }

// Close makes Read return ErrClosed and the endpoint functions return
// nothing.
func (p *Port) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

// HostOut is the bulk OUT endpoint function: buf is one transfer from the
// host, a frame. It returns the buffer for the next transfer.
func (p *Port) HostOut(buf []byte, _ error) ([]byte, error) {
	if len(buf) < ethHeaderLen || len(buf) > MaxFrameLen {
		p.c.rxErrors.Add(1)
		return p.out, nil
	}
	select {
	case slot := <-p.rxFree:
		slot = slot[:len(buf)]
		copy(slot, buf)
		p.rxFull <- slot // never blocks: as many places as slots
	default:
		p.c.rxDropped.Add(1)
	}
	return p.out, nil
}

// HostIn is the bulk IN endpoint function: it returns the next frame for
// the host, or nothing after the poll interval.
func (p *Port) HostIn(_ []byte, _ error) ([]byte, error) {
	if p.inFlight != nil {
		// The driver has sent it by now: it calls again only after
		// the previous transfer completed.
		p.txFree <- p.inFlight[:MaxFrameLen]
		p.inFlight = nil
	}
	p.inTimer.Reset(p.poll)
	defer p.inTimer.Stop()
	select {
	case f := <-p.txFull:
		p.inFlight = f
		return f, nil
	case <-p.inTimer.C:
	case <-p.done:
	}
	return nil, nil
}

// Notify is the interrupt IN endpoint function: it reports the link
// connected once, then returns nothing after each poll interval.
func (p *Port) Notify(_ []byte, _ error) ([]byte, error) {
	if !p.notified {
		p.notified = true
		return p.notification, nil
	}
	p.notifyTimer.Reset(p.poll)
	defer p.notifyTimer.Stop()
	select {
	case <-p.notifyTimer.C:
	case <-p.done:
	}
	return nil, nil
}

// Read fills bufs with frames from the host, blocking until there is at
// least one, and returns how many it filled. Each frame is written after
// the buffer's headroom and set as its packet. Read borrows the buffers.
func (p *Port) Read(bufs []*ipsec.Buffer) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	for {
		var f []byte
		select {
		case f = <-p.rxFull:
		case <-p.done:
			return 0, ErrClosed
		}
		n := 0
		for {
			if p.deliver(f, bufs[n]) {
				n++
			}
			if n == len(bufs) {
				return n, nil
			}
			select {
			case f = <-p.rxFull:
				continue
			default:
			}
			break
		}
		if n > 0 {
			return n, nil
		}
		// Every frame so far was too long for its buffer: block for
		// one that fits.
	}
}

func (p *Port) deliver(f []byte, b *ipsec.Buffer) bool {
	defer func() { p.rxFree <- f[:MaxFrameLen] }()
	off, space := b.Headroom(), b.Space()
	if len(f) > len(space) {
		p.c.rxDropped.Add(1)
		return false
	}
	copy(space, f)
	b.SetPacket(off, len(f))
	p.c.rxFrames.Add(1)
	p.c.rxOctets.Add(uint64(len(f)))
	return true
}

// Write queues the frames for the host, in order, and returns how many
// it queued. A frame of a bad size, or one that finds the queue full, is
// dropped and counted. Write borrows the buffers.
func (p *Port) Write(bufs []*ipsec.Buffer) (int, error) {
	var err error
	n := 0
	for _, b := range bufs {
		f := b.Bytes()
		if len(f) < ethHeaderLen || len(f) > MaxFrameLen {
			p.c.txSize.Add(1)
			err = ErrFrameSize
			continue
		}
		select {
		case slot := <-p.txFree:
			slot = slot[:len(f)]
			copy(slot, f)
			p.txFull <- slot
			n++
			p.c.txFrames.Add(1)
			p.c.txOctets.Add(uint64(len(f)))
		default:
			p.c.txDropped.Add(1)
			err = ErrQueueFull
		}
	}
	return n, err
}

// Stats returns a snapshot of the counters.
func (p *Port) Stats() Stats {
	return Stats{
		RxFrames: p.c.rxFrames.Load(), RxOctets: p.c.rxOctets.Load(),
		RxErrors: p.c.rxErrors.Load(), RxDropped: p.c.rxDropped.Load(),
		TxFrames: p.c.txFrames.Load(), TxOctets: p.c.txOctets.Load(),
		TxDropped: p.c.txDropped.Load(), TxSize: p.c.txSize.Load(),
	}
}
