package netstack

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxNeighbourQueue bounds Config.NeighbourQueue so that a flush fits a
// fixed array.
const maxNeighbourQueue = 64

// neighbour is one resolved entry of the fast path's table.
type neighbour struct {
	mac MAC
	// stale is gVisor's STALE state (RFC 4861 §7.3.2): usable, but the
	// first use should start reachability confirmation.
	stale  bool
	kicked atomic.Bool
}

// neighbourTable is the fast path's copy of gVisor's neighbour cache for
// one port. gVisor runs ARP and NDP and reports every change through its
// NUD dispatcher; readers take the current map without a lock, writers
// replace it (copy on write: changes are rare, lookups are per packet).
type neighbourTable struct {
	p   *port
	cur atomic.Pointer[map[netip.Addr]*neighbour]

	mu      sync.Mutex // serialises writers of cur; guards pending
	pending []pendingNeighbour
}

// pendingNeighbour holds the packets for one address under resolution.
type pendingNeighbour struct {
	t         *neighbourTable
	addr      netip.Addr
	inUse     bool
	held      []*ipsec.Buffer
	onResolve func(stack.LinkResolutionResult) // bound once, so holding allocates nothing
}

func (t *neighbourTable) init(p *port, slots, queue int) {
	t.p = p
	m := map[netip.Addr]*neighbour{}
	t.cur.Store(&m)
	queue = min(queue, maxNeighbourQueue)
	t.pending = make([]pendingNeighbour, slots)
	for i := range t.pending {
		pn := &t.pending[i]
		pn.t = t
		pn.held = make([]*ipsec.Buffer, 0, queue)
		pn.onResolve = pn.resolved
	}
}

// lookup returns the neighbour's MAC if it is known. A stale entry is still
// used (RFC 4861 §7.3.3), and its first use asks gVisor to confirm it.
func (t *neighbourTable) lookup(a netip.Addr) (MAC, bool) {
	e := (*t.cur.Load())[a]
	if e == nil {
		return MAC{}, false
	}
	if e.stale && !e.kicked.Load() && e.kicked.CompareAndSwap(false, true) {
		t.resolve(a, nil)
	}
	return e.mac, true
}

func (t *neighbourTable) set(a netip.Addr, mac MAC, stale bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.cur.Load()
	if e := old[a]; e != nil && e.mac == mac && e.stale == stale {
		return
	}
	m := maps.Clone(old)
	m[a] = &neighbour{mac: mac, stale: stale}
	t.cur.Store(&m)
}

func (t *neighbourTable) remove(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.cur.Load()
	if _, ok := old[a]; !ok {
		return
	}
	m := maps.Clone(old)
	delete(m, a)
	t.cur.Store(&m)
}

// resolve asks gVisor for a's link address; onResolve may run before
// resolve returns (known entry) or later on gVisor's goroutines.
func (t *neighbourTable) resolve(a netip.Addr, onResolve func(stack.LinkResolutionResult)) tcpip.Error {
	p := t.p
	var local netip.Addr
	proto := header.IPv4ProtocolNumber
	if a.Is4() {
		local = p.a.v4.Addr()
	} else {
		proto = header.IPv6ProtocolNumber
		local = p.a.v6.Addr()
		if a.IsLinkLocalUnicast() {
			local = p.a.linkLocal6
		}
	}
	if !local.IsValid() {
		return &tcpip.ErrNetworkUnreachable{}
	}
	return p.s.gv.GetLinkAddress(p.nicID, tcpAddr(a), tcpAddr(local), proto, onResolve)
}

// hold takes ownership of b (an IP packet) until a resolves. When the
// queue for a, or the set of pending neighbours, is full the packet is
// dropped and counted: the data path never waits for the control path.
func (t *neighbourTable) hold(a netip.Addr, b *ipsec.Buffer) {
	s := t.p.s
	t.mu.Lock()
	var slot, free *pendingNeighbour
	for i := range t.pending {
		pn := &t.pending[i]
		if pn.inUse && pn.addr == a {
			slot = pn
			break
		}
		if !pn.inUse && free == nil {
			free = pn
		}
	}
	start := false
	if slot == nil && free != nil {
		slot, start = free, true
		slot.inUse, slot.addr = true, a
	}
	if slot == nil || len(slot.held) == cap(slot.held) {
		t.mu.Unlock()
		s.ctr.drop(DropNeighbourQueueFull)
		b.Release()
		return
	}
	slot.held = append(slot.held, b)
	t.mu.Unlock()
	s.ctr.neighbourHeld.Add(1)
	if !start {
		return
	}
	switch err := t.resolve(a, slot.onResolve); err.(type) {
	case nil, *tcpip.ErrWouldBlock:
		// Resolved already (onResolve ran) or under way (it will run).
	default:
		slot.resolved(stack.LinkResolutionResult{Err: err})
	}
}

// resolved runs once per hold period, on whatever goroutine completed the
// resolution (the RX loop that received the reply, or a gVisor timer), and
// transmits the held packets from there.
func (pn *pendingNeighbour) resolved(res stack.LinkResolutionResult) {
	t := pn.t
	var held [maxNeighbourQueue]*ipsec.Buffer
	t.mu.Lock()
	n := copy(held[:], pn.held)
	clear(pn.held)
	pn.held = pn.held[:0]
	pn.inUse = false
	t.mu.Unlock()

	p := t.p
	p.s.txGate.RLock()
	defer p.s.txGate.RUnlock()
	if res.Err != nil || len(res.LinkAddress) != len(MAC{}) || p.s.closing.Load() {
		for _, b := range held[:n] {
			p.s.ctr.drop(DropNeighbourFailed)
			b.Release()
		}
		return
	}
	mac := MAC([]byte(res.LinkAddress))
	ready := held[:0]
	for _, b := range held[:n] {
		if p.pushEthernet(b, mac) {
			ready = append(ready, b)
		} else {
			p.s.ctr.drop(DropNoBuffer)
			b.Release()
		}
	}
	if len(ready) > 0 {
		p.write(ready)
	}
	for _, b := range ready {
		b.Release()
	}
}

// drain drops whatever is still held; Close calls it after gVisor stopped.
func (t *neighbourTable) drain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.pending {
		pn := &t.pending[i]
		for _, b := range pn.held {
			t.p.s.ctr.drop(DropNeighbourFailed)
			b.Release()
		}
		clear(pn.held)
		pn.held = pn.held[:0]
		pn.inUse = false
	}
}

// pushEthernet prepends the Ethernet header to an IP packet for dst.
func (p *port) pushEthernet(b *ipsec.Buffer, dst MAC) bool {
	typ := uint16(etherTypeIPv4)
	if pkt := b.Bytes(); len(pkt) > 0 && pkt[0]>>4 == 6 {
		typ = etherTypeIPv6
	}
	h := b.Push(EthernetHeaderLen)
	if h == nil {
		return false
	}
	putEthernet(h, dst, p.mac, typ)
	return true
}
