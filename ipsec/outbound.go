package ipsec

import "encoding/binary"

// Outbound processes one packet from the red side (RFC 4301 §5.1). b
// holds an IPv4 or IPv6 packet; Outbound borrows it and, for
// VerdictForward, leaves the encapsulated packet in it, outer IP header
// first, to be sent toward NextHop. mtu is the largest outer packet the
// black link takes; when the result would be larger the packet is dropped
// with DropTooBig and MTU set to the largest inner packet that fits,
// before any encryption. mtu <= 0 leaves only the IP length limit of
// 65535 octets.
func (e *Engine) Outbound(b *Buffer, mtu int) OutResult {
	if mtu <= 0 || mtu > maxIPLen {
		mtu = maxIPLen
	}
	pkt := b.Bytes()
	var h ipHeader
	if !parseIP(pkt, &h, true) {
		return e.dropOut(DropMalformed)
	}
	if h.total < len(pkt) {
		b.Truncate(h.total) // link-layer padding
		pkt = pkt[:h.total]
	}
	// The first SPD entry that matches (RFC 4301 §5.1), the loop written
	// here to save a call per packet, and so is matchFlow's common case,
	// one selector a side.
	var ent *spdEntry
	spd := e.tables.Load().spd
	for i := range spd {
		l, r := spd[i].sel.local, spd[i].sel.remote
		var ok bool
		if len(l) == 1 && len(r) == 1 {
			ok = l[0].match(h.srcK, h.srcPort, h.famProto) && r[0].match(h.dstK, h.dstPort, h.famProto)
		} else {
			ok = matchFlow(l, r, &h.flow)
		}
		if ok {
			ent = &spd[i]
			break
		}
	}
	if ent == nil {
		return e.dropOut(DropPolicyDiscard)
	}
	switch ent.pol.Action {
	case ActionBypass:
		return OutResult{Verdict: VerdictBypass, NextHop: h.dstK.addr(h.v6)}
	case ActionProtect:
	default:
		return e.dropOut(DropPolicyDiscard)
	}
	sa := ent.sa
	if sa == nil {
		e.acquire(ent, &h.flow)
		return e.dropOut(DropNoSA)
	}
	if sa.ah != nil {
		return e.outboundAH(sa, b, &h, mtu)
	}
	if sa.fastOut {
		if p := e.outboundFast(sa, b, innerFactsOf(pkt, h.v6), mtu); p != nil {
			return OutResult{Verdict: VerdictForward, NextHop: p.dst}
		}
	}
	p, r, fit := e.outboundESP(sa, b, &h, mtu, false)
	switch {
	case r != DropNone:
		return e.dropOutMTU(r, fit)
	case sa.mode == ModeTunnel:
		return OutResult{Verdict: VerdictForward, NextHop: p.dst}
	}
	return OutResult{Verdict: VerdictForward, NextHop: h.dstK.addr(h.v6)}
}

// Dummy fills b, which must be empty, with an ESP dummy packet (RFC 4303
// §2.6: next header 59) of n zero octets of payload on the outbound ESP
// SA k, ready for the black port like an Outbound result. Senders use
// dummies to hide when traffic flows; receivers drop them by design.
func (e *Engine) Dummy(b *Buffer, k SAKey, n, mtu int) OutResult {
	if mtu <= 0 || mtu > maxIPLen {
		mtu = maxIPLen
	}
	e.mu.Lock()
	sa := e.sas[k]
	e.mu.Unlock()
	if sa == nil || sa.esp == nil || k.Dir != DirOut {
		return e.dropOut(DropNoSA)
	}
	if n < 0 || b.Len() != 0 {
		return e.dropOut(DropMalformed)
	}
	p := b.Extend(n)
	if p == nil {
		return e.dropOut(DropNoRoom)
	}
	clear(p)
	path, r, fit := e.outboundESP(sa, b, nil, mtu, true)
	if r != DropNone {
		return e.dropOutMTU(r, fit)
	}
	return OutResult{Verdict: VerdictForward, NextHop: path.dst}
}

// innerFacts are what a tunnel's outer header takes from the inner one:
// the TOS octet (DSCP and ECN), whether DF is set, and the family, which
// names the next header.
type innerFacts struct {
	tos    uint8
	df, v6 bool
}

func innerFactsOf(pkt []byte, v6 bool) innerFacts {
	a := (*[ipv4Flags + 1]byte)(pkt) // one bounds check for every field
	if v6 {
		// An IPv6 packet is never fragmented en route, so its outer
		// IPv4 header says DF too (RFC 4301 §8.1 leaves DF to the SA).
		return innerFacts{tos: a[0]<<4 | a[1]>>4, df: true, v6: true}
	}
	return innerFacts{tos: a[ipv4TOS], df: a[ipv4Flags]&ipv4FlagDF != 0}
}

// maxIPLen is the largest packet an IPv4 total length (or an IPv6
// payload length with its header, conservatively) describes.
const maxIPLen = 0xffff

func outerHeaderLen(p *path) int {
	if p.v4 {
		return ipv4MinLen
	}
	return ipv6Len
}

// outboundESP encapsulates the packet in b in ESP. A dummy packet has no
// IP header of its own (h is nil): it is framed like a tunnel packet with
// next header 59 in either mode, since its outer header is all a receiver
// sees. It returns the path the packet was built for, whose destination
// is the next hop in tunnel mode, or the reason to drop it, not yet
// counted, with the largest inner packet that fits for DropTooBig. (The
// caller builds the OutResult: returning one costs more than the header.)
func (e *Engine) outboundESP(sa *assoc, b *Buffer, h *ipHeader, mtu int, dummy bool) (*path, DropReason, int) {
	c := sa.esp
	p := sa.path.Load()
	n := b.tail - b.head
	tunnel := sa.mode == ModeTunnel || dummy
	udp := p.udpLen
	// hdr is the IP header in front of ESP: the new outer header in
	// tunnel mode, the packet's own in transport mode.
	var hdr, payload int
	var nh uint8
	if tunnel {
		hdr, payload, nh = p.hdrLen, n, protoIPv4
		switch {
		case dummy:
			nh = protoNoNext
		case h.v6:
			nh = protoIPv6
		}
	} else {
		if r := transportCheck(h, p); r != DropNone {
			return nil, r, 0
		}
		hdr, payload, nh = h.l4, n-h.l4, h.proto
	}
	pre := udp + espHeaderLen + c.ivLen
	padded := roundUp(payload+espTrailerLen, c.align)
	fixed := hdr + pre + c.icvLen
	if fixed+padded > mtu {
		fit := (mtu-fixed)/c.align*c.align - espTrailerLen
		if !tunnel {
			fit += hdr
		}
		return nil, DropTooBig, max(fit, 0)
	}
	tail := padded - payload + c.icvLen
	tfc := 0
	if sa.tfc {
		room := min(mtu-fixed-padded, b.Tailroom()-tail-c.tailSlack)
		tfc = max(room/c.align*c.align, 0)
	}
	head := pre
	if tunnel {
		head += hdr
	}
	if b.head < head || len(b.buf)-b.tail < tail+tfc+c.tailSlack {
		return nil, DropNoRoom, 0
	}
	// account's work, its common case inline: no byte or packet limits,
	// the SA live.
	var seq uint64
	if sa.countLimits || sa.state.Load()&(stateHard|stateExhausted) != 0 {
		var r DropReason
		if seq, r = e.account(sa, n); r != DropNone {
			return nil, r, 0
		}
	} else {
		sa.outBytes.Add(uint64(n))
		var ok bool
		if seq, ok = sa.nextSeq(); !ok {
			return nil, e.seqExhausted(sa, n), 0
		}
	}

	// The finished packet will be buf[start:end], its ESP header at esp:
	// in tunnel mode right before the inner packet, in transport mode
	// after the packet's own header, which moves down to make room.
	buf := b.buf
	start, end := b.head-head, b.tail+tfc+tail
	esp := b.head - espHeaderLen - c.ivLen
	if tunnel {
		var in innerFacts
		if !dummy {
			in = innerFactsOf(buf[b.head:b.tail], h.v6)
		}
		sa.writeOuter(buf[start:start+hdr], p, end-start, seq, in)
		if udp != 0 {
			writeUDP(buf[esp-udpLen:esp], p.encap, end-esp+udpLen)
		}
	} else {
		copy(buf[start:start+hdr], buf[b.head:b.head+hdr])
		esp = start + hdr + udp
		pk := buf[start:end]
		if udp != 0 {
			writeUDP(pk[hdr:], p.encap, len(pk)-hdr)
			pk[h.nhOff] = protoUDP
		} else {
			pk[h.nhOff] = protoESP
		}
		setIPLength(pk, h.v6)
	}

	// Trailer (RFC 4303 §2.4-2.6): TFC padding, then padding 1, 2, 3...,
	// pad length and next header. Short padding, all that counter modes
	// need, goes in as one word; the octets it writes past the trailer
	// belong to the ICV, which sealing writes afterwards.
	pad := padded - payload - espTrailerLen
	t := buf[b.tail+tfc : end]
	if uint(pad) < uint(len(trailerWords)) && len(t) >= 8 {
		binary.LittleEndian.PutUint64(t, trailerWords[pad]|uint64(nh)<<(8*(pad+1)&63))
	} else {
		for i := range t[:pad] {
			t[i] = byte(i + 1)
		}
		t[pad] = byte(pad)
		t[pad+1] = nh
	}
	if tfc > 0 {
		clear(buf[b.tail : b.tail+tfc])
	}

	eh := (*[espHeaderLen + 8]byte)(buf[esp:])
	binary.BigEndian.PutUint32(eh[espSPI:], sa.key.SPI)
	binary.BigEndian.PutUint32(eh[espSeq:], uint32(seq))
	if c.kind == kindAEAD {
		// seal's common case inline (GCM-12/16, ChaCha20-Poly1305):
		// IV = sequence number.
		binary.BigEndian.PutUint64(eh[espHeaderLen:], seq)
		ad := eh[:espHeaderLen]
		if sa.esn {
			ad = aad(eh[:], seq, true, &b.scratch)
		}
		pt := buf[esp+espHeaderLen+8 : end-c.icvLen]
		c.aead.Seal(pt[:0], c.nonce(&b.scratch, eh[espHeaderLen:]), pt, ad)
	} else {
		if c.writeIV(buf[esp+espHeaderLen:esp+espHeaderLen+c.ivLen], seq) != nil {
			return nil, DropRandom, 0
		}
		// seal may borrow the 4 octets before the ESP header (UDP or IP
		// header, restored).
		if !c.seal(buf[esp-4:end], 4, seq, sa.esn, &b.scratch) {
			return nil, DropCrypto, 0
		}
	}
	b.head, b.tail = start, end
	if udp != 0 && !p.v4 {
		setUDP6Checksum(buf[start:end], hdr)
	}
	return p, DropNone, 0
}

// outboundFast is outboundESP for SAs with fastOut set: tunnel mode, an
// AEAD of kindAEAD, no TFC padding, no byte or packet limits. It returns
// the path for a packet it encapsulated, or nil, having changed nothing,
// for one it leaves to outboundESP: one that does not fit or that finds
// the SA expired or its sequence numbers used up. TestOutboundFastPath
// holds its packets byte for byte to outboundESP's.
func (e *Engine) outboundFast(sa *assoc, b *Buffer, in innerFacts, mtu int) *path {
	c := sa.esp
	p := sa.path.Load()
	n := b.tail - b.head
	head := p.hdrLen + p.udpLen + espHeaderLen + 8
	padded := roundUp(n+espTrailerLen, c.align)
	start, end := b.head-head, b.tail+padded-n+c.icvLen
	if head+padded+c.icvLen > mtu || start < 0 || end > len(b.buf) || sa.state.Load()&(stateHard|stateExhausted) != 0 {
		return nil
	}
	seq, ok := sa.nextSeq()
	if !ok {
		return nil
	}
	sa.outBytes.Add(uint64(n))
	buf := b.buf
	esp := b.head - espHeaderLen - 8
	if p.v4 {
		// writeOuter's IPv4 case inline, which saves a call and the
		// spills around it.
		h := (*[ipv4MinLen]byte)(buf[start:])
		binary.LittleEndian.PutUint64(h[0:8], binary.LittleEndian.Uint64(p.hdr[0:8]))
		binary.LittleEndian.PutUint64(h[8:16], binary.LittleEndian.Uint64(p.hdr[8:16]))
		binary.LittleEndian.PutUint32(h[16:20], binary.LittleEndian.Uint32(p.hdr[16:20]))
		tos := in.tos&sa.tosKeep | sa.tosSet
		total := uint16(end - start)
		id := uint16(seq) + sa.ipIDBase
		flags := sa.dfSet
		if in.df {
			flags |= sa.dfCopy
		}
		h[ipv4TOS] = tos
		binary.BigEndian.PutUint16(h[ipv4TotalLen:], total)
		binary.BigEndian.PutUint16(h[ipv4ID:], id)
		h[ipv4Flags] = flags
		sum := p.sum + uint32(tos) + uint32(total) + uint32(id) + uint32(flags)<<8
		binary.BigEndian.PutUint16(h[ipv4Checksum:], checksumFold(sum))
	} else {
		sa.writeOuter(buf[start:esp], p, end-start, seq, in)
	}
	if p.udpLen != 0 {
		writeUDP(buf[esp-udpLen:esp], p.encap, end-esp+udpLen)
	}
	nh := uint8(protoIPv4)
	if in.v6 {
		nh = protoIPv6
	}
	pad := padded - n - espTrailerLen
	if t := buf[b.tail:end]; uint(pad) < uint(len(trailerWords)) && len(t) >= 8 {
		binary.LittleEndian.PutUint64(t, trailerWords[pad]|uint64(nh)<<(8*(pad+1)&63))
	} else {
		for i := range t[:pad] {
			t[i] = byte(i + 1)
		}
		t[pad] = byte(pad)
		t[pad+1] = nh
	}
	eh := (*[espHeaderLen + 8]byte)(buf[esp:])
	binary.BigEndian.PutUint32(eh[espSPI:], sa.key.SPI)
	binary.BigEndian.PutUint32(eh[espSeq:], uint32(seq))
	binary.BigEndian.PutUint64(eh[espHeaderLen:], seq)
	ad := eh[:espHeaderLen]
	if sa.esn {
		ad = aad(eh[:], seq, true, &b.scratch)
	}
	pt := buf[b.head : end-c.icvLen]
	c.aead.Seal(pt[:0], c.nonce(&b.scratch, eh[espHeaderLen:]), pt, ad)
	b.head, b.tail = start, end
	if p.udpLen != 0 && !p.v4 {
		setUDP6Checksum(buf[start:end], p.hdrLen)
	}
	return p
}

// trailerWords[n] is the ESP trailer with n octets of padding, as a
// little-endian word: 1, 2, ... n, then the pad length; the next header
// goes into the octet after.
var trailerWords = [7]uint64{0x00, 0x0101, 0x020201, 0x03030201, 0x0404030201, 0x050504030201, 0x06060504030201}

// setUDP6Checksum fills in the UDP checksum of ESP-in-UDP over IPv6. RFC
// 3948's zero checksum is an IPv4 rule: IPv6 receivers drop UDP with a
// zero checksum (RFC 8200 §8.1) unless told otherwise (RFC 6936), so it is
// computed, at the price of one pass over the packet.
func setUDP6Checksum(pkt []byte, udpOff int) {
	seg := pkt[udpOff:]
	sum := checksumAdd(0, pkt[ipv6Src:ipv6Dst+16])
	sum += protoUDP + uint32(len(seg))
	sum = checksumAdd(sum, seg)
	ck := checksumFold(sum)
	if ck == 0 {
		ck = 0xffff
	}
	binary.BigEndian.PutUint16(seg[udpChecksum:], ck)
}

// transportCheck rejects packets transport mode cannot carry: fragments
// (RFC 4301 §7 leaves them to tunnel mode) and packets of the other
// address family than the SA.
func transportCheck(h *ipHeader, p *path) DropReason {
	if h.fragment {
		return DropFragment
	}
	if h.v6 != p.dst.Is6() {
		return DropNextHeader
	}
	return DropNone
}

// account checks the SA's state and hard limits for an outbound packet of
// n octets, counts it and issues its sequence number. A packet that would
// take the SA past a hard limit is dropped; the one that reaches it is the
// last one sent, and the SA expires with it. The limits are exact for one
// sender; concurrent senders at the boundary may stop one packet early.
func (e *Engine) account(sa *assoc, n int) (uint64, DropReason) {
	if st := sa.state.Load(); st&(stateHard|stateExhausted) != 0 {
		if st&stateExhausted != 0 {
			return 0, DropSeqExhausted
		}
		return 0, DropHardExpired
	}
	hard := &sa.life.Hard
	bytes := sa.outBytes.Add(uint64(n))
	if hard.Bytes != 0 && bytes > hard.Bytes {
		sa.outBytes.Add(-uint64(n))
		e.expire(sa, LimitBytes)
		return 0, DropHardExpired
	}
	seq, ok := sa.nextSeq()
	if !ok {
		return 0, e.seqExhausted(sa, n)
	}
	if sa.countLimits {
		e.counted(sa, bytes, seq-sa.initialSeq)
	}
	return seq, DropNone
}

// seqExhausted takes back the n octets counted for a packet that found
// the sequence numbers used up, and stops the SA.
//
//go:noinline
func (e *Engine) seqExhausted(sa *assoc, n int) DropReason {
	sa.outBytes.Add(-uint64(n))
	if sa.setState(stateExhausted) {
		e.saEvent(EventSeqExhausted, sa, LimitNone)
	}
	return DropSeqExhausted
}

// counted applies the lifetimes to an SA's counts after a packet: the
// packet that reaches a hard limit is the last, and the soft limit is
// reported once.
func (e *Engine) counted(sa *assoc, bytes, packets uint64) {
	if hard := &sa.life.Hard; hard.Bytes|hard.Packets != 0 {
		if l := hard.exceeded(bytes, packets, 0); l != LimitNone {
			e.expire(sa, l)
		}
	}
	if sa.state.Load()&stateSoft == 0 {
		if l := sa.life.Soft.exceeded(bytes, packets, 0); l != LimitNone && sa.setState(stateSoft) {
			e.saEvent(EventSoftExpire, sa, l)
		}
	}
}

// expire marks the SA hard-expired and reports it once.
func (e *Engine) expire(sa *assoc, l Limit) {
	if sa.setState(stateHard) {
		e.saEvent(EventHardExpire, sa, l)
	}
}

// writeUDP fills a UDP header for ESP-in-UDP of length n (header
// included). The checksum is zero (RFC 3948 §2.1); setUDP6Checksum
// replaces it over IPv6.
func writeUDP(u []byte, enc UDPEncap, n int) {
	binary.BigEndian.PutUint16(u[udpSrcPort:], enc.SrcPort)
	binary.BigEndian.PutUint16(u[udpDstPort:], enc.DstPort)
	binary.BigEndian.PutUint16(u[udpLength:], uint16(n))
	binary.BigEndian.PutUint16(u[udpChecksum:], 0)
}

// writeOuter builds the tunnel's outer header for a packet of total
// octets (RFC 4301 §5.1.2): DSCP copied or set, ECN per RFC 6040, TTL or
// hop limit from the SA, DF per policy, and an IPv4 ID derived from the
// sequence number, which does not repeat within 65536 packets of the SA.
func (sa *assoc) writeOuter(o []byte, p *path, total int, seq uint64, in innerFacts) {
	tos := in.tos&sa.tosKeep | sa.tosSet
	if p.v4 {
		h := (*[ipv4MinLen]byte)(o)
		// The template in three word copies, which stay inline where
		// an array copy would call memmove.
		binary.LittleEndian.PutUint64(h[0:8], binary.LittleEndian.Uint64(p.hdr[0:8]))
		binary.LittleEndian.PutUint64(h[8:16], binary.LittleEndian.Uint64(p.hdr[8:16]))
		binary.LittleEndian.PutUint32(h[16:20], binary.LittleEndian.Uint32(p.hdr[16:20]))
		id := uint16(seq) + sa.ipIDBase
		flags := sa.dfSet
		if in.df {
			flags |= sa.dfCopy
		}
		h[ipv4TOS] = tos
		binary.BigEndian.PutUint16(h[ipv4TotalLen:], uint16(total))
		binary.BigEndian.PutUint16(h[ipv4ID:], id)
		h[ipv4Flags] = flags
		// The path's sum covers the fixed fields; add the others.
		sum := p.sum + uint32(tos) + uint32(total) + uint32(id) + uint32(flags)<<8
		binary.BigEndian.PutUint16(h[ipv4Checksum:], checksumFold(sum))
		return
	}
	h := (*[ipv6Len]byte)(o)
	*h = p.hdr
	h[0] |= tos >> 4
	h[1] = tos << 4
	binary.BigEndian.PutUint16(h[ipv6PayloadLen:], uint16(total-ipv6Len))
}

// setIPLength rewrites the length field of the IP header at the start of
// pkt to cover all of pkt, and the IPv4 header checksum.
func setIPLength(pkt []byte, v6 bool) {
	if v6 {
		binary.BigEndian.PutUint16(pkt[ipv6PayloadLen:], uint16(len(pkt)-ipv6Len))
		return
	}
	binary.BigEndian.PutUint16(pkt[ipv4TotalLen:], uint16(len(pkt)))
	setIPv4Checksum(pkt[:int(pkt[0]&0x0f)*4])
}
