package ipsec

import "errors"

// Headroom and tailroom every data-path buffer reserves, so that ESP and AH
// encapsulation happens in place. Headroom covers Ethernet (14), an outer
// IPv6 header (40), UDP (8), an ESP header (8) and the largest IV (16), or
// AH with the largest ICV, rounded up. Tailroom covers the largest padding
// (255), the ESP trailer (2) and the largest ICV (32).
const (
	DefaultHeadroom = 128
	DefaultTailroom = 256 + 2 + 32
	// DefaultBufferSize holds a 1500-octet MTU frame with both reserves,
	// with room for jumbo-free TFC padding up to the MTU.
	DefaultBufferSize = 2048
)

// Buffer holds one packet at buf[head:tail] inside a fixed backing array,
// with headroom before it and tailroom after it. A Buffer is owned by one
// goroutine at a time; APIs say whether they borrow it or take ownership.
type Buffer struct {
	buf  []byte
	head int
	tail int
	pool *Pool
	// scratch is per-packet working space for the data path (nonces,
	// AAD, a received ICV). It lives here because the Buffer already is
	// on the heap and owned by one goroutine, so handing it to crypto
	// interfaces allocates nothing.
	scratch scratch
}

// NewBuffer returns a buffer of size octets, empty, with DefaultHeadroom
// reserved (or all of it, when size is smaller).
func NewBuffer(size int) *Buffer {
	b := &Buffer{buf: make([]byte, size)}
	b.Reset(DefaultHeadroom)
	return b
}

// Bytes returns the packet. The slice aliases the buffer.
func (b *Buffer) Bytes() []byte { return b.buf[b.head:b.tail] }

// Len is the packet length.
func (b *Buffer) Len() int { return b.tail - b.head }

// Headroom is the free space before the packet.
func (b *Buffer) Headroom() int { return b.head }

// Tailroom is the free space after the packet.
func (b *Buffer) Tailroom() int { return len(b.buf) - b.tail }

// Cap is the size of the backing array.
func (b *Buffer) Cap() int { return len(b.buf) }

// Reset empties the buffer and places the (empty) packet headroom octets
// into it.
func (b *Buffer) Reset(headroom int) {
	if headroom > len(b.buf) {
		headroom = len(b.buf)
	}
	if headroom < 0 {
		headroom = 0
	}
	b.head, b.tail = headroom, headroom
}

// Push grows the packet at the front by n octets and returns them. It
// returns nil, leaving the buffer unchanged, when the headroom is short.
func (b *Buffer) Push(n int) []byte {
	if n < 0 || n > b.head {
		return nil
	}
	b.head -= n
	return b.buf[b.head : b.head+n]
}

// Pull removes n octets from the front. It reports false, leaving the
// buffer unchanged, when the packet is shorter than n.
func (b *Buffer) Pull(n int) bool {
	if n < 0 || n > b.tail-b.head {
		return false
	}
	b.head += n
	return true
}

// Extend grows the packet at the end by n octets and returns them. It
// returns nil, leaving the buffer unchanged, when the tailroom is short.
func (b *Buffer) Extend(n int) []byte {
	if n < 0 || n > len(b.buf)-b.tail {
		return nil
	}
	b.tail += n
	return b.buf[b.tail-n : b.tail]
}

// Truncate shortens the packet to n octets. It reports false when the
// packet is shorter than n.
func (b *Buffer) Truncate(n int) bool {
	if n < 0 || n > b.tail-b.head {
		return false
	}
	b.tail = b.head + n
	return true
}

// SetPacket makes the packet the n octets starting at offset off of the
// backing array; I/O code reads a frame into Space() and then calls this.
func (b *Buffer) SetPacket(off, n int) bool {
	if off < 0 || n < 0 || off+n > len(b.buf) {
		return false
	}
	b.head, b.tail = off, off+n
	return true
}

// Space returns the backing array from the current packet start to its
// end, for I/O that reads a packet in place after Reset.
func (b *Buffer) Space() []byte { return b.buf[b.head:] }

// Release returns the buffer to its pool, if it came from one. The caller
// gives up ownership.
func (b *Buffer) Release() {
	if b.pool != nil {
		b.pool.put(b)
	}
}

// Pool is a bounded set of buffers allocated once. Get never allocates:
// when every buffer is in use it returns nil and the caller drops and
// counts the packet.
type Pool struct {
	free     chan *Buffer
	headroom int
}

// ErrPoolSize reports an impossible pool geometry.
var ErrPoolSize = errors.New("ipsec: pool needs a positive count and a buffer larger than its headroom")

// NewPool allocates count buffers of size octets in one slab. Each buffer
// comes out of Get reset with the given headroom.
func NewPool(count, size, headroom int) (*Pool, error) {
	if count <= 0 || size <= headroom || headroom < 0 {
		return nil, ErrPoolSize
	}
	p := &Pool{free: make(chan *Buffer, count), headroom: headroom}
	slab := make([]byte, count*size)
	bufs := make([]Buffer, count)
	for i := range bufs {
		bufs[i] = Buffer{buf: slab[i*size : (i+1)*size : (i+1)*size], pool: p}
		p.free <- &bufs[i]
	}
	return p, nil
}

// Get takes a buffer, reset with the pool's headroom, or returns nil when
// the pool is exhausted.
func (p *Pool) Get() *Buffer {
	select {
	case b := <-p.free:
		b.Reset(p.headroom)
		return b
	default:
		return nil
	}
}

// Available is the number of free buffers, for metrics.
func (p *Pool) Available() int { return len(p.free) }

func (p *Pool) put(b *Buffer) {
	select {
	case p.free <- b:
	default:
		// More returns than buffers: a double Release. That is a
		// programmer error, and silently growing the pool would hide it.
		panic("ipsec: buffer released twice")
	}
}
