package imxenet

import (
	"errors"
	"fmt"
)

// Memory is the DMA memory of one ring: Count descriptors and Count
// buffers of BufferSize octets, with the bus addresses at which the MAC
// sees them. Both must be BufferAlign-aligned and must not be cached (on
// TamaGo the board carves them out above the runtime's RAM, which the MMU
// maps as device memory).
type Memory struct {
	Desc     []byte
	DescAddr uint32
	Bufs     []byte
	BufsAddr uint32
}

// MemorySize returns the octets of descriptors and of buffers a ring of
// count entries needs.
func MemorySize(count int) (desc, bufs int) {
	return count * descSize, count * BufferSize
}

// errMemory reports a ring memory that does not fit its count.
var errMemory = errors.New("imxenet: ring memory does not match its size or alignment")

// ring is one descriptor ring and the index of the next descriptor that
// software owns in turn.
type ring struct {
	mem   Memory
	count int
	next  int
}

func newRing(mem Memory, count int) (*ring, error) {
	descLen, bufLen := MemorySize(count)
	if count < 2 || len(mem.Desc) < descLen || len(mem.Bufs) < bufLen ||
		mem.DescAddr%BufferAlign != 0 || mem.BufsAddr%BufferAlign != 0 {
		return nil, fmt.Errorf("%w (%d entries)", errMemory, count)
	}
	return &ring{mem: mem, count: count}, nil
}

func (r *ring) desc(i int) desc { return desc(r.mem.Desc[i*descSize : (i+1)*descSize]) }

func (r *ring) buf(i int) []byte { return r.mem.Bufs[i*BufferSize : (i+1)*BufferSize] }

// wrapBit is W for the ring's last descriptor, else zero.
func (r *ring) wrapBit(i int) uint16 {
	if i == r.count-1 {
		return bdWrap
	}
	return 0
}

// reset points every descriptor at its buffer and gives it the initial
// status: owner plus W on the last one.
func (r *ring) reset(owner uint16) {
	for i := 0; i < r.count; i++ {
		d := r.desc(i)
		d.setLength(0)
		d.setAddr(r.mem.BufsAddr + uint32(i*BufferSize))
		d.setStatus(owner | r.wrapBit(i))
	}
	r.next = 0
}

func (r *ring) advance() {
	r.next++
	if r.next == r.count {
		r.next = 0
	}
}
