// Package iketest drives ike.Managers deterministically for tests: a
// manual clock, a seeded random source, an in-memory network that
// delivers datagrams in time order with scripted loss, duplication,
// reordering and NAT, and a fake installer that records what the data
// plane would hold and checks make-before-break across rekeys.
//
// Nothing here is safe for concurrent use except Clock; a test drives the
// Managers from one goroutine through Network.
package iketest

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
)

// Clock is a manual clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (never backwards).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Rand is a deterministic random source for one Manager.
func Rand(seed uint64) io.Reader {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// Verdict is what a Network filter does with a datagram.
type Verdict uint8

const (
	Deliver   Verdict = iota // as scheduled (the filter may change At)
	Drop                     // lose it
	Duplicate                // deliver it twice
)

// Datagram is one UDP datagram in flight.
type Datagram struct {
	Seq      uint64
	From, To netip.AddrPort
	Data     []byte
	At       time.Time // delivery time
	Sent     time.Time
}

// IKE parses the datagram's IKE header, skipping the non-ESP marker on
// the NAT-T port. ok is false for keepalives and non-IKE data.
func (d *Datagram) IKE() (h message.Header, first message.PayloadType, ok bool) {
	b := d.Data
	if d.To.Port() == ike.PortNATT || d.From.Port() == ike.PortNATT {
		if len(b) < 4 || binary.BigEndian.Uint32(b) != 0 {
			return h, 0, false
		}
		b = b[4:]
	}
	h, first, err := message.ParseHeader(b)
	return h, first, err == nil
}

// Node is a Manager attached to the network at one address.
type Node struct {
	Addr      netip.Addr
	M         *ike.Manager
	Installer *Installer
}

// Network is an in-memory IP network between Managers.
type Network struct {
	Clock   *Clock
	Latency time.Duration
	// Filter, if set, sees every datagram when it is sent.
	Filter func(d *Datagram) Verdict
	// AfterDeliver, if set, runs after every delivered datagram and
	// every timer tick: the place for invariant checks.
	AfterDeliver func()
	// NAT, if set, translates datagrams from its inside prefix.
	NAT *NAT
	// Sent records every datagram sent (after NAT), for assertions.
	Sent []Datagram

	nodes map[netip.Addr]*Node
	queue []*Datagram
	seq   uint64
}

// NewNetwork returns an empty network with a 5 ms one-way latency.
func NewNetwork(clock *Clock) *Network {
	return &Network{Clock: clock, Latency: 5 * time.Millisecond, nodes: map[netip.Addr]*Node{}}
}

// Sender returns the ike.Sender of a node at addr.
func (n *Network) Sender() ike.Sender { return sender{n} }

type sender struct{ n *Network }

func (s sender) Send(data []byte, local, remote netip.AddrPort) error {
	s.n.send(data, local, remote)
	return nil
}

// Attach connects a Manager at addr.
func (n *Network) Attach(addr netip.Addr, m *ike.Manager, inst *Installer) *Node {
	node := &Node{Addr: addr, M: m, Installer: inst}
	n.nodes[addr] = node
	return node
}

func (n *Network) send(data []byte, local, remote netip.AddrPort) {
	d := &Datagram{From: local, To: remote, Data: append([]byte(nil), data...), Sent: n.Clock.Now()}
	d.At = d.Sent.Add(n.Latency)
	if n.NAT != nil && !n.NAT.outbound(d) {
		return
	}
	n.Sent = append(n.Sent, *d)
	v := Deliver
	if n.Filter != nil {
		v = n.Filter(d)
	}
	switch v {
	case Drop:
		return
	case Duplicate:
		dup := *d
		dup.Data = append([]byte(nil), d.Data...)
		n.push(&dup)
	}
	n.push(d)
}

func (n *Network) push(d *Datagram) {
	n.seq++
	d.Seq = n.seq
	i := sort.Search(len(n.queue), func(i int) bool {
		q := n.queue[i]
		return q.At.After(d.At) || (q.At.Equal(d.At) && q.Seq > d.Seq)
	})
	n.queue = append(n.queue, nil)
	copy(n.queue[i+1:], n.queue[i:])
	n.queue[i] = d
}

// Pending is the number of datagrams in flight.
func (n *Network) Pending() int { return len(n.queue) }

// Step delivers the next datagram or runs the next timers, whichever is
// due first, unless that is after deadline. It reports whether anything
// happened.
func (n *Network) Step(deadline time.Time) bool {
	var next time.Time
	have := false
	if len(n.queue) > 0 {
		next, have = n.queue[0].At, true
	}
	for _, node := range n.nodes {
		if t, ok := node.M.NextDeadline(); ok && (!have || t.Before(next)) {
			next, have = t, true
		}
	}
	if !have || next.After(deadline) {
		return false
	}
	n.Clock.Set(next)
	now := n.Clock.Now()
	if len(n.queue) > 0 && !n.queue[0].At.After(now) {
		d := n.queue[0]
		n.queue = n.queue[1:]
		if n.NAT != nil && !n.NAT.inbound(d) {
			return true
		}
		if node := n.nodes[d.To.Addr()]; node != nil {
			node.M.HandlePacket(d.Data, d.To, d.From)
		}
	} else {
		for _, node := range n.sortedNodes() {
			if t, ok := node.M.NextDeadline(); ok && !t.After(now) {
				node.M.Tick()
			}
		}
	}
	if n.AfterDeliver != nil {
		n.AfterDeliver()
	}
	return true
}

func (n *Network) sortedNodes() []*Node {
	out := make([]*Node, 0, len(n.nodes))
	for _, node := range n.nodes {
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// RunUntil steps until cond holds or limit (virtual time) passes, and
// reports whether cond held.
func (n *Network) RunUntil(limit time.Duration, cond func() bool) bool {
	deadline := n.Clock.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if !n.Step(deadline) {
			n.Clock.Set(deadline)
			return cond()
		}
	}
}

// RunFor steps through d of virtual time.
func (n *Network) RunFor(d time.Duration) {
	deadline := n.Clock.Now().Add(d)
	for n.Step(deadline) {
	}
	n.Clock.Set(deadline)
}

// Settle delivers until nothing is in flight, at most limit of virtual
// time (timers keep running meanwhile).
func (n *Network) Settle(limit time.Duration) bool {
	return n.RunUntil(limit, func() bool { return len(n.queue) == 0 })
}

// NAT is a masquerading router: datagrams from Inside to elsewhere leave
// from Public with a port of their own; answers to that port go back.
type NAT struct {
	Inside netip.Prefix
	Public netip.Addr
	out    map[netip.AddrPort]netip.AddrPort // inside -> public
	in     map[netip.AddrPort]netip.AddrPort // public -> inside
	next   uint16
}

// NewNAT returns a NAT with ports from 30000.
func NewNAT(inside netip.Prefix, public netip.Addr) *NAT {
	return &NAT{Inside: inside, Public: public, out: map[netip.AddrPort]netip.AddrPort{},
		in: map[netip.AddrPort]netip.AddrPort{}, next: 30000}
}

// Rebind forgets every mapping, as a NAT that restarted: the next
// datagrams leave from new ports.
func (t *NAT) Rebind() {
	clear(t.out)
	clear(t.in)
	t.next += 1000
}

func (t *NAT) outbound(d *Datagram) bool {
	if !t.Inside.Contains(d.From.Addr()) || t.Inside.Contains(d.To.Addr()) {
		return true
	}
	pub, ok := t.out[d.From]
	if !ok {
		pub = netip.AddrPortFrom(t.Public, t.next)
		t.next++
		t.out[d.From] = pub
		t.in[pub] = d.From
	}
	d.From = pub
	return true
}

func (t *NAT) inbound(d *Datagram) bool {
	if d.To.Addr() != t.Public {
		return true
	}
	priv, ok := t.in[d.To]
	if !ok {
		return false
	}
	d.To = priv
	return true
}
