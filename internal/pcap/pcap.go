// Package pcap reads classic libpcap capture files, enough for tests to
// replay captured exchanges (Ethernet and Linux cooked captures, IPv4 and
// IPv6, UDP and ESP). It is test support, not a general capture library.
package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// Link types (tcpdump.org linktypes).
const (
	LinkEthernet = 1
	LinkRaw      = 101
	LinkLinuxSLL = 113
)

// Packet is one captured packet, decoded down to its IP header.
type Packet struct {
	Data     []byte // from the IP header on
	Src, Dst netip.Addr
	Proto    uint8  // IP protocol of the transport header
	Payload  []byte // after the IP header (IPv6 extension headers are not skipped)
	SrcPort  uint16 // UDP only
	DstPort  uint16 // UDP only
	UDPData  []byte // UDP payload, for UDP packets
}

// ReadFile reads every packet of a classic pcap file.
func ReadFile(path string) ([]Packet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, errors.New("pcap: file too short")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("pcap: not a classic pcap file (pcapng is not supported)")
	}
	link := bo.Uint32(b[20:])
	var out []Packet
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, errors.New("pcap: truncated record header")
		}
		incl := int(bo.Uint32(b[off+8:]))
		off += 16
		if off+incl > len(b) {
			return nil, errors.New("pcap: truncated record")
		}
		frame := b[off : off+incl]
		off += incl
		ip, err := stripLink(link, frame)
		if err != nil {
			return nil, err
		}
		if ip == nil {
			continue
		}
		p, err := decodeIP(ip)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func stripLink(link uint32, f []byte) ([]byte, error) {
	var etype uint16
	switch link {
	case LinkRaw:
		return f, nil
	case LinkEthernet:
		if len(f) < 14 {
			return nil, errors.New("pcap: short Ethernet frame")
		}
		etype, f = binary.BigEndian.Uint16(f[12:]), f[14:]
	case LinkLinuxSLL:
		if len(f) < 16 {
			return nil, errors.New("pcap: short SLL frame")
		}
		etype, f = binary.BigEndian.Uint16(f[14:]), f[16:]
	default:
		return nil, fmt.Errorf("pcap: unsupported link type %d", link)
	}
	if etype != 0x0800 && etype != 0x86dd {
		return nil, nil
	}
	return f, nil
}

func decodeIP(b []byte) (Packet, error) {
	p := Packet{Data: b}
	if len(b) < 1 {
		return p, errors.New("pcap: empty IP packet")
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, errors.New("pcap: short IPv4 header")
		}
		ihl := int(b[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || total > len(b) {
			return p, errors.New("pcap: bad IPv4 lengths")
		}
		p.Data = b[:total]
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.Proto = b[9]
		p.Payload = b[ihl:total]
	case 6:
		if len(b) < 40 {
			return p, errors.New("pcap: short IPv6 header")
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(b) {
			return p, errors.New("pcap: bad IPv6 length")
		}
		p.Data = b[:40+plen]
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.Proto = b[6]
		p.Payload = b[40 : 40+plen]
	default:
		return p, errors.New("pcap: not IPv4 or IPv6")
	}
	if p.Proto == 17 {
		if len(p.Payload) < 8 {
			return p, errors.New("pcap: short UDP header")
		}
		p.SrcPort = binary.BigEndian.Uint16(p.Payload)
		p.DstPort = binary.BigEndian.Uint16(p.Payload[2:])
		p.UDPData = p.Payload[8:]
	}
	return p, nil
}
