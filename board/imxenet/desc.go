// Package imxenet drives the receive and transmit descriptor rings of the
// NXP i.MX6UL/ULL 10/100 Ethernet MAC (ENET) and exposes each MAC as a
// batched NIC that reads into and writes from ipsec.Buffer.
//
// TamaGo's soc/nxp/enet driver configures the MAC and its PHY; this
// package replaces only its per-frame path. That path (tamago v1.26.0)
// allocates a slice per received frame, rounds the frame length up to
// 8 octets, returns nil both for an empty ring and for a bad frame, and
// never sees a transmit descriptor still owned by the MAC (its busy test
// shifts a byte left by 8, which is always zero), so on hardware a full
// ring silently overwrites a frame in flight. Here the frame length is
// exact (the descriptor's length minus the FCS), nothing allocates per
// frame, bad frames are counted and skipped, and a busy transmit
// descriptor is waited for with a bound and then counted as a drop.
//
// The package holds no hardware access of its own: the memory the rings
// live in and the MAC's doorbell registers come from the caller (the
// TamaGo board layer, or a fake MAC in the host tests).
package imxenet

import "encoding/binary"

// Legacy (FEC-compatible) buffer descriptor, used while ENET_ECR[EN1588]
// is clear, in little-endian order because the board sets ENET_ECR[DBSWP]
// (IMX6ULLRM Rev 1, 22.6.13 "Legacy buffer descriptors"; receive fields
// p1014 Table 22-35, transmit status bits p1017 Table 22-37):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+-------------------------------+
//	|          Data Length          |        Status / Control       |
//	+-------------------------------+-------------------------------+
//	|                   Data Buffer Pointer                         |
//	+---------------------------------------------------------------+
const (
	descSize    = 8
	descOffLen  = 0
	descOffStat = 2
	descOffAddr = 4
)

// Status / control bits shared by both directions.
const (
	bdWrap = 1 << 13 // W: last descriptor of the ring
	bdLast = 1 << 11 // L: last buffer of a frame
)

// Receive status bits (Table 22-35).
const (
	bdRxEmpty     = 1 << 15 // E: owned by the MAC, waiting for a frame
	bdRxLength    = 1 << 5  // LG: frame longer than RCR[MAX_FL]
	bdRxNonOctet  = 1 << 4  // NO: frame not a whole number of octets
	bdRxCRC       = 1 << 2  // CR: CRC or frame error
	bdRxOverrun   = 1 << 1  // OV: receive FIFO overrun
	bdRxTruncated = 1 << 0  // TR: frame truncated at the buffer size
)

// Transmit status bits (Table 22-37).
const (
	bdTxReady = 1 << 15 // R: owned by the MAC until it has sent the buffer
	bdTxCRC   = 1 << 10 // TC: MAC appends the FCS
)

// Frame geometry. The MAC writes the FCS into the receive buffer and
// counts it in the descriptor length; it appends it on transmit.
const (
	// FCSLen is the Ethernet frame check sequence length.
	FCSLen = 4
	// MaxFrameLen is the largest frame, FCS excluded, that the MAC
	// accepts and sends: a 1500-octet payload and a 14-octet header
	// (RCR[MAX_FL] and FTRL are 1518 including the FCS).
	MaxFrameLen = 1514
	// MinFrameLen is the shortest frame, FCS excluded, put on the wire;
	// shorter frames are zero-padded up to it (IEEE 802.3 clause 3.2.8).
	MinFrameLen = 60
	// MTU is the IP MTU of the port.
	MTU = 1500
	// BufferSize is the receive buffer size programmed into ENET_MRBR
	// by the TamaGo driver: the 1518-octet maximum frame rounded up to
	// the 64-octet alignment the MAC requires of MRBR and of every
	// buffer address. Every ring buffer here has this size.
	BufferSize = 1536
	// BufferAlign is the alignment of descriptor rings and buffers.
	BufferAlign = 64
)

// desc is one 8-octet descriptor inside ring memory.
type desc []byte

func (d desc) length() int      { return int(binary.LittleEndian.Uint16(d[descOffLen:])) }
func (d desc) status() uint16   { return binary.LittleEndian.Uint16(d[descOffStat:]) }
func (d desc) setLength(n int)  { binary.LittleEndian.PutUint16(d[descOffLen:], uint16(n)) }
func (d desc) setAddr(a uint32) { binary.LittleEndian.PutUint32(d[descOffAddr:], a) }

// setStatus stores the low octet first and the high octet, which holds
// the ownership bit (E or R), last, so that the MAC never sees ownership
// before the rest of the status.
func (d desc) setStatus(s uint16) {
	d[descOffStat] = byte(s)
	d[descOffStat+1] = byte(s >> 8)
}
