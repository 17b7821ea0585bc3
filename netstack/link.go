package netstack

import (
	"sync"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linkEndpoint is gVisor's view of one port. Inbound, the RX loop injects
// the frames it classified as local; outbound, gVisor's frames are copied
// into pool buffers and written to the NIC synchronously, from whichever
// goroutine gVisor sends them on.
type linkEndpoint struct {
	p  *port
	mu sync.RWMutex
	d  stack.NetworkDispatcher
}

var _ stack.LinkEndpoint = (*linkEndpoint)(nil)

func (e *linkEndpoint) MTU() uint32 { return uint32(e.p.mtu) }

// SetMTU is ignored: the MTU comes from the config and the board.
func (e *linkEndpoint) SetMTU(uint32) {}

func (e *linkEndpoint) MaxHeaderLength() uint16 { return EthernetHeaderLen }

func (e *linkEndpoint) LinkAddress() tcpip.LinkAddress {
	return tcpip.LinkAddress(e.p.mac[:])
}

// SetLinkAddress is ignored: the MAC is fixed at New.
func (e *linkEndpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities asks gVisor for ARP/NDP and full checksums: the wire gets
// finished frames.
func (e *linkEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}

func (e *linkEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.d = d
	e.mu.Unlock()
}

func (e *linkEndpoint) IsAttached() bool { return e.dispatcher() != nil }

func (e *linkEndpoint) dispatcher() stack.NetworkDispatcher {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.d
}

// Wait has nothing to wait for: the endpoint owns no goroutine.
func (e *linkEndpoint) Wait() {}

func (e *linkEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

func (e *linkEndpoint) AddHeader(pkt *stack.PacketBuffer) {
	h := pkt.LinkHeader().Push(EthernetHeaderLen)
	src := pkt.EgressRoute.LocalLinkAddress
	if len(src) != len(MAC{}) {
		src = tcpip.LinkAddress(e.p.mac[:])
	}
	copy(h[ethSrc:], src)
	copy(h[ethDst:], pkt.EgressRoute.RemoteLinkAddress)
	h[ethType], h[ethType+1] = byte(pkt.NetworkProtocolNumber>>8), byte(pkt.NetworkProtocolNumber)
}

func (e *linkEndpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(EthernetHeaderLen)
	return ok
}

// Close has nothing to release; Stack.Close closes the NIC.
func (e *linkEndpoint) Close() {}

func (e *linkEndpoint) SetOnCloseAction(func()) {}

// WritePackets copies each of gVisor's frames into a pool buffer and
// transmits it at once. It borrows the list, as LinkWriter allows.
func (e *linkEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	p := e.p
	p.s.txGate.RLock()
	defer p.s.txGate.RUnlock()
	if p.s.closing.Load() {
		return 0, &tcpip.ErrClosedForSend{}
	}
	sent := 0
	for _, pkt := range pkts.AsSlice() {
		b := p.s.pool.Get()
		if b == nil {
			p.s.ctr.drop(DropNoBuffer)
			if sent == 0 {
				return 0, &tcpip.ErrNoBufferSpace{}
			}
			return sent, nil
		}
		space := b.Space()
		if pkt.Size() > len(space) || pkt.Size() > p.mtu+EthernetHeaderLen {
			b.Release()
			p.s.ctr.drop(DropLocalStack)
			continue
		}
		n := 0
		for _, v := range pkt.AsSlices() {
			n += copy(space[n:], v)
		}
		b.SetPacket(b.Headroom(), n)
		if !p.localSourceAllowed(b.Bytes()) {
			b.Release()
			p.s.ctr.drop(DropLocalStack)
			continue
		}
		p.s.ctr.fromLocal.Add(1)
		p.writeOne(b)
		b.Release()
		sent++
	}
	return sent, nil
}

// localSourceAllowed keeps the local stack's packets on their own port: a
// frame leaving black must carry a black source address (or be ARP), so
// that no packet from the red address, nor any forwarded one, can leave
// black outside an SA even if gVisor's routing were wrong.
func (p *port) localSourceAllowed(frame []byte) bool {
	if len(frame) < EthernetHeaderLen {
		return false
	}
	ip := frame[EthernetHeaderLen:]
	switch uint16(frame[ethType])<<8 | uint16(frame[ethType+1]) {
	case etherTypeARP:
		return true
	case etherTypeIPv4:
		return len(ip) >= ip4MinLen && p.a.v4.IsValid() && ip4Addr(ip[ip4Src:]) == p.a.v4.Addr()
	case etherTypeIPv6:
		if len(ip) < ip6HeaderLen || !p.a.v6.IsValid() {
			return false
		}
		src := ip6Addr(ip[ip6Src:])
		// DAD probes come from the unspecified address (RFC 4862 §5.4.2).
		return src == p.a.v6.Addr() || src == p.a.linkLocal6 || src.IsUnspecified()
	}
	return false
}

// toLocal hands a packet to gVisor. b holds the IP (or ARP) packet; when
// withLink is set the Ethernet header still sits in the headroom in front
// of it and goes along as the link header. toLocal releases b.
func (p *port) toLocal(b *ipsec.Buffer, proto tcpip.NetworkProtocolNumber, pktType tcpip.PacketType, withLink bool) {
	if withLink {
		b.Push(EthernetHeaderLen)
	}
	p.toLocalBytes(b.Bytes(), proto, pktType, withLink)
	b.Release()
}

func (p *port) toLocalBytes(data []byte, proto tcpip.NetworkProtocolNumber, pktType tcpip.PacketType, withLink bool) {
	d := p.ep.dispatcher()
	if d == nil || p.s.closing.Load() {
		p.s.ctr.drop(DropLocalStack)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(data)})
	if withLink && !p.ep.ParseHeader(pkt) {
		pkt.DecRef()
		p.s.ctr.drop(DropLocalStack)
		return
	}
	pkt.PktType = pktType
	p.s.ctr.toLocal.Add(1)
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// writeOne transmits a single frame outside an RX batch.
func (p *port) writeOne(b *ipsec.Buffer) {
	one := [1]*ipsec.Buffer{b}
	p.write(one[:])
}

// write transmits frames and counts them; the caller still owns bufs.
func (p *port) write(bufs []*ipsec.Buffer) {
	n, _ := p.nic.Write(bufs)
	if n < 0 {
		n = 0
	}
	for i, b := range bufs {
		if i < n {
			p.ctr.txPackets.Add(1)
			p.ctr.txBytes.Add(uint64(b.Len()))
		} else {
			p.ctr.txErrors.Add(1)
			p.s.ctr.drop(DropTxError)
		}
	}
}

// writeTrains transmits frames grouped into trains (SegmentOffload) and
// counts them like write, frame by frame, and the trains the NIC took.
func (p *port) writeTrains(bufs []*ipsec.Buffer, trains []Train) {
	n, _ := p.offload.WriteTrains(bufs, trains)
	n = max(n, 0)
	done := 0
	for _, t := range trains {
		if done+t.Frames > n {
			break
		}
		done += t.Frames
		if t.Kind != OffloadNone {
			p.ctr.txTrains.Add(1)
			p.ctr.txTrainFrames.Add(uint64(t.Frames))
		}
	}
	for i, b := range bufs {
		if i < n {
			p.ctr.txPackets.Add(1)
			p.ctr.txBytes.Add(uint64(b.Len()))
		} else {
			p.ctr.txErrors.Add(1)
			p.s.ctr.drop(DropTxError)
		}
	}
}

// nudDispatcher mirrors gVisor's neighbour tables into each port's
// lock-free table, which the fast path reads.
type nudDispatcher struct{ s *Stack }

func (d nudDispatcher) OnNeighborAdded(id tcpip.NICID, e stack.NeighborEntry) { d.update(id, e) }

func (d nudDispatcher) OnNeighborChanged(id tcpip.NICID, e stack.NeighborEntry) { d.update(id, e) }

func (d nudDispatcher) OnNeighborRemoved(id tcpip.NICID, e stack.NeighborEntry) {
	if p := d.s.portOf(id); p != nil {
		if a, ok := fromTCPAddr(e.Addr); ok {
			p.neigh.remove(a)
		}
	}
}

func (d nudDispatcher) update(id tcpip.NICID, e stack.NeighborEntry) {
	p := d.s.portOf(id)
	a, ok := fromTCPAddr(e.Addr)
	if p == nil || !ok {
		return
	}
	switch e.State {
	case stack.Reachable, stack.Stale, stack.Delay, stack.Probe, stack.Static:
		if len(e.LinkAddr) == len(MAC{}) {
			p.neigh.set(a, MAC([]byte(e.LinkAddr)), e.State == stack.Stale)
			return
		}
	}
	p.neigh.remove(a)
}
