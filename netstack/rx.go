package netstack

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// maxFragments bounds the pieces one packet may be split into, so that
// fragmentation works in a fixed array.
const maxFragments = 64

// origin says where a packet came from, so that an ICMP error about it
// goes back the same way.
type origin struct {
	port      Port
	mac       MAC  // the neighbour that sent the frame
	linkBcast bool // the frame went to a broadcast or multicast MAC
	tunnel    bool // it arrived inside an SA: errors go back through Outbound
}

// rxLoop is the state of one port's RX goroutine: its batch of receive
// buffers and the frames it will transmit at the end of the batch.
type rxLoop struct {
	s     *Stack
	p     *port
	bufs  []*ipsec.Buffer
	have  int // bufs[:have] hold buffers ready for Read
	tx    [numPorts]txQueue
	frags [maxFragments]*ipsec.Buffer
	// spare keeps the buffers this loop transmitted, most recent last,
	// for its next reads: they are still in the CPU's caches, where the
	// pool hands out the buffer it got back longest ago.
	spare []*ipsec.Buffer
}

// txQueue holds the frames a batch produced for one port.
type txQueue struct {
	bufs []*ipsec.Buffer
	// sealed marks the frames that are ESP this device sealed: only
	// those may form UDP trains (offload.go).
	sealed []bool
	trains []Train
}

func (s *Stack) newRxLoop(p *port) *rxLoop {
	l := &rxLoop{s: s, p: p, bufs: make([]*ipsec.Buffer, s.batch), spare: make([]*ipsec.Buffer, 0, 2*s.batch)}
	for i := range l.tx {
		l.tx[i] = txQueue{
			bufs:   make([]*ipsec.Buffer, 0, s.batch),
			sealed: make([]bool, 0, s.batch),
			trains: make([]Train, 0, s.batch),
		}
	}
	return l
}

// rxLoop reads batches from the port until the NIC closes. Every packet
// is finished (dropped, handed to gVisor, held for a neighbour, or queued
// for transmission) before the next Read, and queued frames go out
// synchronously at the end of the batch.
func (s *Stack) rxLoop(p *port) {
	defer s.wg.Done()
	l := s.newRxLoop(p)
	defer l.release()
	for !s.closing.Load() {
		l.refill()
		if l.have == 0 {
			pause()
			continue
		}
		n, err := p.nic.Read(l.bufs[:l.have])
		// Frames a NIC returns along with an error still count.
		n = min(max(n, 0), l.have)
		for i := range n {
			b := l.bufs[i]
			l.bufs[i] = nil
			l.handle(b)
		}
		copy(l.bufs, l.bufs[n:l.have])
		clear(l.bufs[l.have-n : l.have])
		l.have -= n
		l.flush()
		if p.id == Black {
			s.reasm.expire(s.clock.NowMonotonic(), &s.ctr)
		}
		if err != nil {
			if s.closing.Load() || errors.Is(err, ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			if c := p.ctr.rxErrors.Add(1); c&(c-1) == 0 {
				s.log.Warn("netstack: read failed", "port", p.id.String(), "err", err, "errors", c)
			}
			pause()
		}
	}
}

// refill tops the batch up, from the spare buffers first, then from the
// pool. Buffers a Read did not fill are still as they came (NIC.Read).
func (l *rxLoop) refill() {
	for l.have < len(l.bufs) && len(l.spare) > 0 {
		b := l.spare[len(l.spare)-1]
		l.spare[len(l.spare)-1] = nil
		l.spare = l.spare[:len(l.spare)-1]
		b.Reset(l.s.headroom)
		l.bufs[l.have] = b
		l.have++
	}
	for l.have < len(l.bufs) {
		b := l.s.pool.Get()
		if b == nil {
			break
		}
		l.bufs[l.have] = b
		l.have++
	}
}

// recycle takes back a buffer the loop is done with: into the spares
// while there is room, else to the pool.
func (l *rxLoop) recycle(b *ipsec.Buffer) {
	if len(l.spare) < cap(l.spare) {
		l.spare = append(l.spare, b)
		return
	}
	b.Release()
}

func (l *rxLoop) release() {
	l.flush()
	for i, b := range l.bufs[:l.have] {
		b.Release()
		l.bufs[i] = nil
	}
	l.have = 0
	for i, b := range l.spare {
		b.Release()
		l.spare[i] = nil
	}
	l.spare = l.spare[:0]
}

// enqueue queues a finished frame for p, flushing when the queue is full.
// sealed says that b is ESP the data plane sealed.
func (l *rxLoop) enqueue(p *port, b *ipsec.Buffer, sealed bool) {
	q := &l.tx[p.id]
	q.bufs = append(q.bufs, b)
	q.sealed = append(q.sealed, sealed)
	if len(q.bufs) == cap(q.bufs) {
		l.flushPort(p.id)
	}
}

func (l *rxLoop) flush() {
	for id := range l.tx {
		if len(l.tx[id].bufs) > 0 {
			l.flushPort(Port(id))
		}
	}
}

// flushPort transmits the port's queue, in trains when its NIC takes them.
func (l *rxLoop) flushPort(id Port) {
	q := &l.tx[id]
	p := l.s.ports[id]
	sent := false
	if p.offload != nil && len(q.bufs) > 1 {
		caps := p.offload.TxOffloads()
		if l.s.noESPTrains {
			caps.Kinds &^= OffloadKindsOf(OffloadUDP)
		}
		if caps.Kinds != 0 && caps.MaxFrames > 1 {
			q.trains = planTrains(q.bufs, q.sealed, caps, q.trains[:0])
			if len(q.trains) < len(q.bufs) {
				p.writeTrains(q.bufs, q.trains)
				sent = true
			}
			clear(q.trains)
			q.trains = q.trains[:0]
		}
	}
	if !sent {
		p.write(q.bufs)
	}
	for i, b := range q.bufs {
		l.recycle(b)
		q.bufs[i] = nil
	}
	q.bufs = q.bufs[:0]
	q.sealed = q.sealed[:0]
}

func (s *Stack) dropBuf(b *ipsec.Buffer, r DropReason) {
	s.ctr.drop(r)
	b.Release()
}

func pktType(dst MAC) tcpip.PacketType {
	switch {
	case dst == broadcastMAC:
		return tcpip.PacketBroadcast
	case dst.IsMulticast():
		return tcpip.PacketMulticast
	}
	return tcpip.PacketHost
}

// handle classifies one frame and takes ownership of b.
func (l *rxLoop) handle(b *ipsec.Buffer) {
	p, s := l.p, l.s
	frame := b.Bytes()
	p.ctr.rxPackets.Add(1)
	p.ctr.rxBytes.Add(uint64(len(frame)))
	if len(frame) < EthernetHeaderLen {
		s.dropBuf(b, DropRunt)
		return
	}
	dst := MAC(frame[ethDst : ethDst+6])
	o := origin{port: p.id, mac: MAC(frame[ethSrc : ethSrc+6]), linkBcast: dst.IsMulticast()}
	switch {
	case !o.linkBcast && dst != p.mac:
		s.dropBuf(b, DropNotForUs)
		return
	case o.mac.IsMulticast():
		s.dropBuf(b, DropMalformed)
		return
	}
	typ := binary.BigEndian.Uint16(frame[ethType:])
	b.Pull(EthernetHeaderLen)
	switch typ {
	case etherTypeARP:
		p.toLocal(b, header.ARPProtocolNumber, pktType(dst), true)
	case etherTypeIPv4:
		l.ip4(b, o, dst)
	case etherTypeIPv6:
		l.ip6(b, o, dst)
	default:
		s.dropBuf(b, DropEtherType)
	}
}

// validIPv4 checks an IPv4 header (RFC 1812 §5.2.2), trims link padding
// and returns the header length.
func validIPv4(b *ipsec.Buffer) (int, bool) {
	pkt := b.Bytes()
	if len(pkt) < ip4MinLen || pkt[ip4VerIHL]>>4 != 4 {
		return 0, false
	}
	ihl := int(pkt[ip4VerIHL]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(pkt[ip4TotalLen:]))
	if ihl < ip4MinLen || tot < ihl || tot > len(pkt) || !ip4HeaderValid(pkt[:ihl]) {
		return 0, false
	}
	b.Truncate(tot)
	return ihl, true
}

// validIPv6 checks the fixed header and trims link padding.
func validIPv6(b *ipsec.Buffer) bool {
	pkt := b.Bytes()
	if len(pkt) < ip6HeaderLen || pkt[0]>>4 != 6 {
		return false
	}
	tot := ip6HeaderLen + int(binary.BigEndian.Uint16(pkt[ip6PayloadLen:]))
	if tot > len(pkt) {
		return false
	}
	b.Truncate(tot)
	return true
}

// martian4 reports addresses that never appear in forwarded traffic:
// "this network", loopback, link-local (RFC 3927 §7), class E and the
// limited broadcast (RFC 1812 §5.3.7, §4.2.2.11). Multicast is separate.
func martian4(a netip.Addr) bool {
	b := a.As4()
	return b[0] == 0 || b[0] == 127 || b[0] >= 240 || b[0] == 169 && b[1] == 254
}

// directedBroadcast reports the broadcast address of the port's prefix.
func (p *port) directedBroadcast(a netip.Addr) bool {
	if !p.a.v4.IsValid() || !a.Is4() || !p.a.v4.Contains(a) {
		return false
	}
	host := 32 - p.a.v4.Bits()
	v := binary.BigEndian.Uint32(a.AsSlice())
	return v&(1<<host-1) == 1<<host-1
}

// owns reports whether a is one of the port's own addresses.
func (p *port) owns(a netip.Addr) bool {
	if a.Is4() {
		return p.a.v4.IsValid() && a == p.a.v4.Addr()
	}
	return p.a.v6.IsValid() && (a == p.a.v6.Addr() || a == p.a.linkLocal6)
}

func (s *Stack) owns(a netip.Addr) bool {
	return s.ports[Red].owns(a) || s.ports[Black].owns(a)
}

func (l *rxLoop) ip4(b *ipsec.Buffer, o origin, dstMAC MAC) {
	p, s := l.p, l.s
	ihl, ok := validIPv4(b)
	if !ok {
		s.dropBuf(b, DropMalformed)
		return
	}
	pkt := b.Bytes()
	src, dst := ip4Addr(pkt[ip4Src:]), ip4Addr(pkt[ip4Dst:])
	switch {
	case p.owns(dst):
		if p.id == Black {
			l.blackLocal4(b, o, ihl, dstMAC)
			return
		}
		p.toLocal(b, header.IPv4ProtocolNumber, pktType(dstMAC), true)
	case dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || p.directedBroadcast(dst) || isLinkLocalMulticast4(dst):
		p.toLocal(b, header.IPv4ProtocolNumber, pktType(dstMAC), true)
	case dst.IsMulticast() || p.other.directedBroadcast(dst):
		s.dropBuf(b, DropMulticast)
	case p.other.owns(dst):
		s.dropBuf(b, DropOtherPortAddress)
	case martian4(dst) || martian4(src) || src.IsMulticast() || s.owns(src):
		s.dropBuf(b, DropMartian)
	case o.linkBcast:
		s.dropBuf(b, DropLinkBroadcast)
	case ihl > ip4MinLen && hasSourceRoute(pkt[ip4MinLen:ihl]):
		s.dropBuf(b, DropSourceRoute)
	case p.id == Red:
		l.fromRed(b, o)
	default:
		l.fromBlackClear(b, o)
	}
}

// IPv4 option types that route a packet along a path its sender chose
// (RFC 791 §3.1: loose and strict source and record route).
const (
	ip4OptLSRR = 131
	ip4OptSSRR = 137
)

// hasSourceRoute reports a source route option: a router should drop
// such packets by default (RFC 7126 §4.3, §4.4), and a bump in the wire
// must not let a sender steer around it.
func hasSourceRoute(opts []byte) bool {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case ip4OptEnd:
			return false
		case ip4OptNop:
			i++
			continue
		case ip4OptLSRR, ip4OptSSRR:
			return true
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			return false
		}
		i += int(opts[i+1])
	}
	return false
}

// isLinkLocalMulticast4 is 224.0.0.0/24, which is never forwarded
// (RFC 5771 §4).
func isLinkLocalMulticast4(a netip.Addr) bool {
	b := a.As4()
	return b[0] == 224 && b[1] == 0 && b[2] == 0
}

func (l *rxLoop) ip6(b *ipsec.Buffer, o origin, dstMAC MAC) {
	p, s := l.p, l.s
	if !validIPv6(b) {
		s.dropBuf(b, DropMalformed)
		return
	}
	pkt := b.Bytes()
	src, dst := ip6Addr(pkt[ip6Src:]), ip6Addr(pkt[ip6Dst:])
	switch {
	case p.owns(dst):
		if p.id == Black {
			l.blackLocal6(b, o, dstMAC)
			return
		}
		p.toLocal(b, header.IPv6ProtocolNumber, pktType(dstMAC), true)
	case dst.IsMulticast():
		// Link-local scope (ff02::/16) carries NDP and MLD; gVisor
		// filters the groups it joined. Wider scopes would need a
		// multicast router.
		if pkt[ip6Dst+1]&0x0f == 0x02 {
			p.toLocal(b, header.IPv6ProtocolNumber, pktType(dstMAC), true)
			return
		}
		s.dropBuf(b, DropMulticast)
	case p.other.owns(dst):
		s.dropBuf(b, DropOtherPortAddress)
	case martian6(src) || martian6(dst) || src.IsMulticast() || s.owns(src):
		s.dropBuf(b, DropMartian)
	case o.linkBcast:
		s.dropBuf(b, DropLinkBroadcast)
	case p.id == Red:
		l.fromRed(b, o)
	default:
		l.fromBlackClear(b, o)
	}
}

// martian6 reports addresses a router must not forward: unspecified,
// loopback, IPv4-mapped (RFC 4291 §2.5.2, §2.5.3, §2.5.5.2) and
// link-local, whose scope ends at the link (RFC 4291 §2.5.6).
func martian6(a netip.Addr) bool {
	return a.IsUnspecified() || a.IsLoopback() || a.Is4In6() || a.IsLinkLocalUnicast()
}

// ip6Chain locates the parts of an IPv6 header chain the frame path needs.
type ip6Chain struct {
	proto   uint8 // upper-layer protocol, or what follows a non-first fragment
	off     int   // its offset
	fragHdr int   // offset of the Fragment header; -1 when absent
	fragNH  int   // offset of the Next Header field that names it
	fragOff int   // the fragment's offset in octets
}

// maxExtHeaders bounds the walk over extension headers.
const maxExtHeaders = 8

// walkIPv6 follows the extension headers (RFC 8200 §4) up to the upper
// layer. Past a non-first fragment there are no headers to follow.
func walkIPv6(pkt []byte) (ip6Chain, bool) {
	c := ip6Chain{fragHdr: -1}
	nh, off, nhField := pkt[ip6NextHeader], ip6HeaderLen, ip6NextHeader
	for range maxExtHeaders {
		switch nh {
		case protoHopByHop, protoRouting, protoDestOpts:
			if off+2 > len(pkt) {
				return c, false
			}
			nhField, nh, off = off, pkt[off], off+(int(pkt[off+1])+1)*8
			if off > len(pkt) {
				return c, false
			}
		case protoFragment:
			if off+ip6FragHeaderLen > len(pkt) || c.fragHdr >= 0 {
				return c, false
			}
			c.fragHdr, c.fragNH = off, nhField
			c.fragOff = int(binary.BigEndian.Uint16(pkt[off+ip6FragOffset:])>>3) * 8
			nhField, nh, off = off, pkt[off], off+ip6FragHeaderLen
			if c.fragOff != 0 {
				c.proto, c.off = nh, off
				return c, true
			}
		default:
			c.proto, c.off = nh, off
			return c, true
		}
	}
	return c, false
}

// forDataPlane reports what Inbound takes: ESP, AH and UDP to 4500 (ESP
// or IKE behind the non-ESP marker, RFC 3948 §2).
func forDataPlane(proto uint8, l4 []byte) bool {
	switch proto {
	case protoESP, protoAH:
		return true
	case protoUDP:
		return len(l4) >= udpHeaderLen && binary.BigEndian.Uint16(l4[udpDstPort:]) == natTPort
	}
	return false
}

func (l *rxLoop) blackLocal4(b *ipsec.Buffer, o origin, ihl int, dstMAC MAC) {
	pkt := b.Bytes()
	if binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])&(ip4FlagMF|ip4FragOffMask) != 0 {
		s := l.s
		d, why := s.reasm.add4(pkt, ihl, s.clock.NowMonotonic(), &s.ctr)
		s.ctr.fragmentsIn.Add(1)
		b.Release()
		l.reassembled(d, why, o)
		return
	}
	if forDataPlane(pkt[ip4Proto], pkt[ihl:]) {
		l.inbound(b, o)
		return
	}
	l.p.toLocal(b, header.IPv4ProtocolNumber, pktType(dstMAC), true)
}

func (l *rxLoop) blackLocal6(b *ipsec.Buffer, o origin, dstMAC MAC) {
	s := l.s
	pkt := b.Bytes()
	c, ok := walkIPv6(pkt)
	if !ok {
		s.dropBuf(b, DropMalformed)
		return
	}
	if c.fragHdr >= 0 {
		d, why := s.reasm.add6(pkt, c, s.clock.NowMonotonic(), &s.ctr)
		s.ctr.fragmentsIn.Add(1)
		b.Release()
		l.reassembled(d, why, o)
		return
	}
	if forDataPlane(c.proto, pkt[c.off:]) {
		l.inbound(b, o)
		return
	}
	l.p.toLocal(b, header.IPv6ProtocolNumber, pktType(dstMAC), true)
}

// reassembled continues with a datagram the reassembler completed: the
// data plane gets it in a pool buffer, gVisor a copy of the bytes (IKE
// messages may exceed a pool buffer).
func (l *rxLoop) reassembled(d []byte, why DropReason, o origin) {
	s := l.s
	if d == nil {
		if why != DropNone {
			s.ctr.drop(why)
		}
		return
	}
	defer s.reasm.release()
	s.ctr.reassembled.Add(1)
	netProto := header.IPv4ProtocolNumber
	var proto uint8
	var l4off int
	if d[0]>>4 == 6 {
		netProto = header.IPv6ProtocolNumber
		c, ok := walkIPv6(d)
		if !ok || c.fragHdr >= 0 {
			s.ctr.drop(DropMalformed)
			return
		}
		proto, l4off = c.proto, c.off
	} else {
		proto, l4off = d[ip4Proto], int(d[ip4VerIHL]&0x0f)*4
	}
	if !forDataPlane(proto, d[l4off:]) {
		l.p.toLocalBytes(d, netProto, tcpip.PacketHost, false)
		return
	}
	b := s.pool.Get()
	if b == nil {
		s.ctr.drop(DropNoBuffer)
		return
	}
	if len(d) > len(b.Space())-EthernetHeaderLen {
		s.dropBuf(b, DropReassemblyTooBig)
		return
	}
	b.SetPacket(b.Headroom(), copy(b.Space(), d))
	l.inbound(b, o)
}

// inbound runs ESP/AH/NAT-T traffic for the device through the data plane.
func (l *rxLoop) inbound(b *ipsec.Buffer, o origin) {
	s := l.s
	res := s.dp.Inbound(b)
	switch res.Verdict {
	case ipsec.VerdictForward:
		s.ctr.decapsulated.Add(1)
		o.tunnel = true
		l.toRed(b, o)
	case ipsec.VerdictLocal:
		proto := header.IPv4ProtocolNumber
		if pkt := b.Bytes(); len(pkt) > 0 && pkt[0]>>4 == 6 {
			proto = header.IPv6ProtocolNumber
		}
		l.p.toLocal(b, proto, tcpip.PacketHost, false)
	case ipsec.VerdictDrop:
		s.ctr.dropDataPlane(res.Reason)
		b.Release()
	default:
		s.dropBuf(b, DropUnexpectedVerdict)
	}
}
