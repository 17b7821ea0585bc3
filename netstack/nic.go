package netstack

import (
	"errors"
	"fmt"

	"github.com/bitw-dev/bitw/ipsec"
)

// EthernetHeaderLen is the length of an untagged Ethernet II header
// (IEEE 802.3 clause 3.1.1: destination, source, EtherType).
const EthernetHeaderLen = 14

// MAC is an IEEE 802 MAC-48 address.
type MAC [6]byte

// IsZero reports whether m is the all-zero address (unset).
func (m MAC) IsZero() bool { return m == MAC{} }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC parses the colon-separated form "02:00:00:00:00:01".
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("netstack: bad MAC %q", s)
	}
	for i := range m {
		if i > 0 && s[3*i-1] != ':' {
			return m, fmt.Errorf("netstack: bad MAC %q", s)
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return m, fmt.Errorf("netstack: bad MAC %q", s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ErrClosed is returned by NIC.Read and NIC.Write after Close. Boards may
// return an error wrapping net.ErrClosed instead; the stack accepts both.
var ErrClosed = errors.New("netstack: NIC closed")

// NIC is one Ethernet port as a board drives it, with batched I/O in the
// style of wireguard-go's tun.Device. Frames begin at the Ethernet
// destination address and exclude the FCS. Boards complete checksums that
// the sender left partial and split segmentation-offload frames, so every
// frame Read returns is a plain wire frame of at most MTU()+14 octets.
type NIC interface {
	// Read blocks until at least one frame has arrived and returns how
	// many of bufs it filled. Each buffer comes in reset, with headroom
	// reserved; Read writes the frame at the start of Space() and sets it
	// with SetPacket, so the frame begins after the headroom. The
	// buffers beyond the n it filled stay as they came: the caller hands
	// them to the next Read as they are. Only one goroutine calls Read.
	// After Close it returns ErrClosed (or net.ErrClosed).
	Read(bufs []*ipsec.Buffer) (n int, err error)

	// Write transmits the frames in order and returns how many it handed
	// to the hardware. It borrows bufs: the caller still owns them, and
	// may reuse them, once Write returns. Write is safe for concurrent
	// use, because the RX loops of both ports and gVisor's timers all
	// transmit synchronously.
	Write(bufs []*ipsec.Buffer) (n int, err error)

	// MAC is the port's hardware address.
	MAC() MAC

	// MTU is the largest IP packet the link carries: the Ethernet payload,
	// without the 14-octet header.
	MTU() int

	// Close stops the port and unblocks Read.
	Close() error
}
