package imxenet

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
)

// MAC is the register side of one ENET as the rings need it. The TamaGo
// board implements it over the controller's registers; tests fake it.
type MAC interface {
	// Attach programs the descriptor ring start registers (ENET_RDSR,
	// ENET_TDSR) with the rings' bus addresses.
	Attach(rxDesc, txDesc uint32)
	// StartRx writes ENET_RDAR: empty receive descriptors are available.
	StartRx()
	// StartTx writes ENET_TDAR: transmit descriptors are ready.
	StartTx()
	// Barrier completes every earlier store to ring memory before any
	// later store or register write (DSB on ARMv7).
	Barrier()
}

// Config describes one port.
type Config struct {
	// Name is the board's port name, e.g. "enet1".
	Name string
	// Addr is the port's Ethernet address, already programmed into the
	// MAC.
	Addr net.HardwareAddr
	// Ring is the number of descriptors in each direction.
	Ring int
	// TxWait bounds how long Write waits for the MAC to free a transmit
	// descriptor before dropping. Zero means DefaultTxWait.
	TxWait time.Duration
}

// DefaultTxWait is a few frame times at 10 Mbit/s (one 1518-octet frame
// takes 1.2 ms), enough for a running MAC to free a descriptor and short
// enough not to stall the goroutine that forwards the other port.
const DefaultTxWait = 10 * time.Millisecond

// Errors returned by NIC.
var (
	ErrClosed    = fmt.Errorf("imxenet: port closed: %w", net.ErrClosed)
	ErrTxBusy    = errors.New("imxenet: no free transmit descriptor; frames dropped")
	ErrFrameSize = errors.New("imxenet: frame outside 14..1514 octets; dropped")
)

// ethHeaderLen is the Ethernet II header: two addresses and the type.
const ethHeaderLen = 14

// Stats are a port's counters since it was opened.
type Stats struct {
	RxFrames uint64 // frames delivered to Read's caller
	RxOctets uint64 // their octets, FCS excluded
	// RxErrors counts frames the MAC flagged (CRC, overrun, length,
	// non-octet, truncated) or split over several buffers.
	RxErrors uint64
	RxRunts  uint64 // frames shorter than an Ethernet header
	RxTooBig uint64 // frames longer than the caller's buffer space
	TxFrames uint64 // frames handed to the MAC
	TxOctets uint64 // their octets, padding and FCS excluded
	TxBusy   uint64 // frames dropped: no transmit descriptor freed in time
	TxSize   uint64 // frames dropped: shorter than a header or over MaxFrameLen
	Wakeups  uint64 // receive interrupts signalled by the board
}

type counters struct {
	rxFrames, rxOctets, rxErrors, rxRunts, rxTooBig atomic.Uint64
	txFrames, txOctets, txBusy, txSize, wakeups     atomic.Uint64
}

// NIC is one ENET port as a batched frame device. One goroutine reads;
// any number may write, and each write completes in the caller's
// goroutine (no transmit goroutine: under interrupt-driven receive on
// TamaGo it would starve).
type NIC struct {
	name string
	addr net.HardwareAddr
	hw   MAC

	rxMu sync.Mutex
	rx   *ring

	txMu      sync.Mutex
	tx        *ring
	txWait    time.Duration
	txStalled bool // the last wait timed out; do not wait again until the MAC frees one

	ready     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	c counters
}

// New lays out both rings in rx and tx memory, attaches them to the MAC
// and starts reception. The MAC must already be initialised and enabled.
func New(cfg Config, hw MAC, rx, tx Memory) (*NIC, error) {
	if len(cfg.Addr) != 6 {
		return nil, fmt.Errorf("imxenet: %s: Ethernet address must be 6 octets", cfg.Name)
	}
	rxr, err := newRing(rx, cfg.Ring)
	if err != nil {
		return nil, err
	}
	txr, err := newRing(tx, cfg.Ring)
	if err != nil {
		return nil, err
	}
	wait := cfg.TxWait
	if wait <= 0 {
		wait = DefaultTxWait
	}
	n := &NIC{
		name:   cfg.Name,
		addr:   append(net.HardwareAddr(nil), cfg.Addr...),
		hw:     hw,
		rx:     rxr,
		tx:     txr,
		txWait: wait,
		ready:  make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	rxr.reset(bdRxEmpty)
	txr.reset(0)
	hw.Barrier()
	hw.Attach(rx.DescAddr, tx.DescAddr)
	hw.StartRx()
	return n, nil
}

// Name is the board's name for the port.
func (n *NIC) Name() string { return n.name }

// MAC is the port's Ethernet address.
func (n *NIC) MAC() net.HardwareAddr { return n.addr }

// MTU is the largest IP packet the port carries.
func (n *NIC) MTU() int { return MTU }

// Interrupt tells the port that the MAC signalled a received frame. The
// board calls it from its interrupt service goroutine after clearing the
// MAC's event, so it must not block.
func (n *NIC) Interrupt() {
	n.c.wakeups.Add(1)
	select {
	case n.ready <- struct{}{}:
	default:
	}
}

// Close makes a blocked and every later Read return ErrClosed.
func (n *NIC) Close() error {
	n.closeOnce.Do(func() { close(n.done) })
	return nil
}

// Read fills bufs with received frames, blocking until there is at least
// one, and returns how many it filled. Each frame is copied after the
// buffer's headroom and set as its packet: the exact frame as received,
// without FCS (a short frame keeps the sender's padding, so IP lengths
// come from the IP header). Read borrows the buffers; the caller owns them
// throughout.
func (n *NIC) Read(bufs []*ipsec.Buffer) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	for {
		select {
		case <-n.done:
			return 0, ErrClosed
		default:
		}
		if k := n.receive(bufs); k > 0 {
			return k, nil
		}
		select {
		case <-n.ready:
		case <-n.done:
			return 0, ErrClosed
		}
	}
}

// receive drains at most one ring's worth of descriptors into bufs
// without blocking, gives every drained descriptor back to the MAC, and
// returns the number of buffers filled.
func (n *NIC) receive(bufs []*ipsec.Buffer) int {
	r := n.rx
	filled, recycled := 0, false
	for i := 0; i < r.count && filled < len(bufs); i++ {
		d := r.desc(r.next)
		st := d.status()
		if st&bdRxEmpty != 0 {
			break
		}
		if n.deliver(st, d.length(), r.buf(r.next), bufs[filled]) {
			filled++
		}
		d.setLength(0)
		d.setStatus(bdRxEmpty | r.wrapBit(r.next))
		r.advance()
		recycled = true
	}
	if recycled {
		n.hw.Barrier()
		n.hw.StartRx()
	}
	return filled
}

const rxErrorBits = bdRxLength | bdRxNonOctet | bdRxCRC | bdRxOverrun | bdRxTruncated

// deliver validates one received descriptor and copies its frame into b.
func (n *NIC) deliver(st uint16, length int, src []byte, b *ipsec.Buffer) bool {
	if st&bdLast == 0 || st&rxErrorBits != 0 || length > BufferSize {
		n.c.rxErrors.Add(1)
		return false
	}
	frame := length - FCSLen
	if frame < ethHeaderLen {
		n.c.rxRunts.Add(1)
		return false
	}
	off := b.Headroom()
	space := b.Space()
	if frame > len(space) {
		n.c.rxTooBig.Add(1)
		return false
	}
	copy(space, src[:frame])
	b.SetPacket(off, frame)
	n.c.rxFrames.Add(1)
	n.c.rxOctets.Add(uint64(frame))
	return true
}

// Write transmits the buffers' packets as Ethernet frames (FCS excluded),
// in order, and returns how many it handed to the MAC. A frame outside
// 14..MaxFrameLen octets is dropped (ErrFrameSize); when the MAC frees no
// descriptor within the port's TxWait, that frame and the rest are
// dropped (ErrTxBusy). Every drop is counted in Stats. Write borrows the
// buffers: the caller owns and releases them.
func (n *NIC) Write(bufs []*ipsec.Buffer) (int, error) {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	var err error
	sent, queued := 0, false
	for i, b := range bufs {
		frame := b.Bytes()
		if len(frame) < ethHeaderLen || len(frame) > MaxFrameLen {
			n.c.txSize.Add(1)
			err = ErrFrameSize
			continue
		}
		if !n.txFree() && !n.waitTx(queued) {
			n.c.txBusy.Add(uint64(len(bufs) - i))
			err = ErrTxBusy
			break
		}
		n.fill(frame)
		sent++
		queued = true
	}
	if queued {
		n.hw.Barrier()
		n.hw.StartTx()
	}
	return sent, err
}

func (n *NIC) txFree() bool {
	return n.tx.desc(n.tx.next).status()&bdTxReady == 0
}

// waitTx waits, bounded by TxWait, for the MAC to free the next transmit
// descriptor. After one timeout it no longer waits until a descriptor
// frees, so a dead link costs one TxWait, not one per frame.
func (n *NIC) waitTx(queued bool) bool {
	if n.txStalled {
		return false
	}
	if queued {
		// Start what this call already queued: the MAC may be idle.
		n.hw.Barrier()
		n.hw.StartTx()
	}
	deadline := time.Now().Add(n.txWait)
	for {
		runtime.Gosched()
		if n.txFree() {
			return true
		}
		if time.Now().After(deadline) {
			n.txStalled = true
			return false
		}
	}
}

// fill copies frame into the next transmit buffer, zero-pads it to the
// minimum frame, and hands the descriptor to the MAC.
func (n *NIC) fill(frame []byte) {
	t := n.tx
	n.txStalled = false
	buf := t.buf(t.next)
	copy(buf, frame)
	length := len(frame)
	if length < MinFrameLen {
		clear(buf[length:MinFrameLen])
		length = MinFrameLen
	}
	d := t.desc(t.next)
	d.setLength(length)
	n.hw.Barrier()
	d.setStatus(bdTxReady | bdLast | bdTxCRC | t.wrapBit(t.next))
	t.advance()
	n.c.txFrames.Add(1)
	n.c.txOctets.Add(uint64(len(frame)))
}

// Stats returns a snapshot of the port's counters.
func (n *NIC) Stats() Stats {
	return Stats{
		RxFrames: n.c.rxFrames.Load(),
		RxOctets: n.c.rxOctets.Load(),
		RxErrors: n.c.rxErrors.Load(),
		RxRunts:  n.c.rxRunts.Load(),
		RxTooBig: n.c.rxTooBig.Load(),
		TxFrames: n.c.txFrames.Load(),
		TxOctets: n.c.txOctets.Load(),
		TxBusy:   n.c.txBusy.Load(),
		TxSize:   n.c.txSize.Load(),
		Wakeups:  n.c.wakeups.Load(),
	}
}
