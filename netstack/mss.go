package netstack

import "encoding/binary"

// clampMSS lowers the MSS option of a TCP SYN that crosses a tunnel so
// that full-sized segments still fit the black MTU after encapsulation,
// sparing the hosts a round of PMTU discovery (the tunnel MTU problem of
// RFC 4459 §2; MSS semantics per RFC 6691).
func (l *rxLoop) clampMSS(pkt []byte) {
	s := l.s
	var seg []byte
	var mss int
	if pkt[0]>>4 == 4 {
		if s.mss4 == 0 || pkt[ip4Proto] != protoTCP || binary.BigEndian.Uint16(pkt[ip4FlagsFrag:])&ip4FragOffMask != 0 {
			return
		}
		seg, mss = pkt[int(pkt[ip4VerIHL]&0x0f)*4:], s.mss4
	} else {
		if s.mss6 == 0 {
			return
		}
		c, ok := walkIPv6(pkt)
		if !ok || c.proto != protoTCP || c.fragOff != 0 {
			return
		}
		seg, mss = pkt[c.off:], s.mss6
	}
	if clampTCPMSS(seg, uint16(mss)) {
		s.ctr.mssClamped.Add(1)
	}
}

// clampTCPMSS rewrites the MSS option of a SYN segment when it exceeds
// mss, and fixes the checksum incrementally (RFC 1624). The segment starts
// at an even offset from the pseudo-header, so an option value at an odd
// offset is folded in byte-swapped (RFC 1071 §2(B), byte-order
// independence).
func clampTCPMSS(seg []byte, mss uint16) bool {
	if len(seg) < tcpMinLen || seg[tcpFlags]&tcpFlagSYN == 0 {
		return false
	}
	doff := int(seg[tcpDataOff]>>4) * 4
	if doff < tcpMinLen || doff > len(seg) {
		return false
	}
	for i := tcpMinLen; i < doff; {
		switch seg[i] {
		case tcpOptEnd:
			return false
		case tcpOptNop:
			i++
			continue
		}
		if i+1 >= doff {
			return false
		}
		ol := int(seg[i+1])
		if ol < 2 || i+ol > doff {
			return false
		}
		if seg[i] == tcpOptMSS && ol == tcpOptMSSLen {
			old := binary.BigEndian.Uint16(seg[i+2:])
			if old <= mss {
				return false
			}
			binary.BigEndian.PutUint16(seg[i+2:], mss)
			o, n := old, mss
			if (i+2)%2 == 1 {
				o, n = o>>8|o<<8, n>>8|n<<8
			}
			sum := updateChecksum16(binary.BigEndian.Uint16(seg[tcpChecksum:]), o, n)
			binary.BigEndian.PutUint16(seg[tcpChecksum:], sum)
			return true
		}
		i += ol
	}
	return false
}
