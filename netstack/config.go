package netstack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Port names one of the device's two ports.
type Port uint8

const (
	// Red faces the protected network, in cleartext.
	Red Port = iota
	// Black faces the untrusted network and carries IKE and ESP.
	Black
	numPorts
)

func (p Port) String() string {
	switch p {
	case Red:
		return "red"
	case Black:
		return "black"
	}
	return "port?"
}

// PortConfig describes the device on one port. It mirrors the
// [interfaces.red] and [interfaces.black] sections of the config file.
type PortConfig struct {
	// Link is the board's name for the port (host runtime: a Linux
	// interface, or "tap:NAME"). The stack only reports it; the board
	// opens the NIC.
	Link string
	// Addresses are the device's own addresses on this port with their
	// on-link prefixes: at most one IPv4 and one IPv6 prefix. An IPv6
	// link-local address derived from the MAC is added when an IPv6
	// prefix is present.
	Addresses []netip.Prefix
	// Gateways are optional next hops for destinations off the port's
	// prefixes, at most one per address family, each inside a prefix.
	Gateways []netip.Addr
	// MTU is the port's IP MTU; zero takes the NIC's.
	MTU int
	// MAC is the device's address on the port; zero takes the NIC's.
	// With a promiscuous NIC it may differ from the board's own address.
	MAC MAC
}

// Config is everything New needs besides the two NICs and the data plane.
type Config struct {
	Red, Black PortConfig

	// Pool supplies every data-path buffer. Nil makes a pool of
	// DefaultPoolBuffers buffers of ipsec.DefaultBufferSize octets.
	Pool *ipsec.Pool
	// Clock drives gVisor's timers, the ICMP rate limiter and reassembly
	// timeouts. Nil takes the system clock.
	Clock tcpip.Clock
	// Rand seeds gVisor (ports, ISNs, IDs). Nil takes crypto/rand.
	Rand io.Reader
	// Logger receives rare events (port errors, start and stop), never
	// per-packet lines. Nil discards.
	Logger *slog.Logger

	// NoMSSClamp turns off TCP MSS clamping on SYNs that cross a tunnel.
	NoMSSClamp bool
	// ESPOverhead is the worst-case octets that encapsulation adds to an
	// inner packet, for the MSS clamp; zero computes it for the black
	// address family (see WorstCaseESPOverhead).
	ESPOverhead int

	// BatchSize is the number of frames one Read may return; zero takes
	// DefaultBatchSize.
	BatchSize int
	// NoSegmentOffload sends every frame on its own even when a NIC can
	// transmit trains of them (SegmentOffload).
	NoSegmentOffload bool
	// NoESPTrains sends ESP in UDP packet by packet even when the black
	// NIC takes UDP trains. A capture taken on a virtual link (or on the
	// sending host) shows a train as one frame, which Wireshark cannot
	// split into its ESP packets; whoever decrypts captures of the black
	// link (save_keys) wants one packet per frame.
	NoESPTrains bool
	// NeighbourQueue is the number of packets held per unresolved
	// neighbour and NeighbourPending the number of neighbours that may be
	// unresolved at once per port; beyond either, packets are dropped and
	// counted. Zero takes the defaults.
	NeighbourQueue   int
	NeighbourPending int
	// ICMPRate and ICMPBurst limit the ICMP errors the device originates
	// (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)): a token bucket of ICMPBurst
	// messages refilled at ICMPRate per second. Zero takes the defaults.
	ICMPRate  int
	ICMPBurst int
	// ReassemblySlots is the number of outer datagrams that may be in
	// reassembly at once and ReassemblyTimeout how long one may wait for
	// its missing fragments. Zero takes the defaults.
	ReassemblySlots   int
	ReassemblyTimeout time.Duration
}

// Tuning defaults. They are not protocol constants.
const (
	DefaultPoolBuffers       = 2048
	DefaultBatchSize         = 64
	DefaultNeighbourQueue    = 8
	DefaultNeighbourPending  = 16
	DefaultICMPRate          = 100
	DefaultICMPBurst         = 20
	DefaultReassemblySlots   = 8
	DefaultReassemblyTimeout = 15 * time.Second // RFC 791's suggested initial timer
)

// Worst-case ESP tunnel overhead over the inner packet: UDP encapsulation
// (RFC 3948, 8), the ESP header (RFC 4303 §2, 8), the longest IV (AES-CBC,
// 16), padding to a 16-octet block (at most 15), pad length and next header
// (2), and the longest ICV (HMAC-SHA-512-256, 32).
const espWorstCase = 8 + 8 + 16 + 15 + 2 + 32

// WorstCaseESPOverhead is the overhead the MSS clamp assumes for a black
// port of the given address family.
func WorstCaseESPOverhead(blackIPv6 bool) int {
	if blackIPv6 {
		return 40 + espWorstCase
	}
	return 20 + espWorstCase
}

type portAddrs struct {
	v4, v6     netip.Prefix // zero when absent
	gw4, gw6   netip.Addr
	linkLocal6 netip.Addr
}

func (pc *PortConfig) addrs(p Port, mac MAC) (portAddrs, error) {
	var a portAddrs
	for _, pfx := range pc.Addresses {
		if !pfx.IsValid() || pfx.Addr().Zone() != "" {
			return a, fmt.Errorf("netstack: %s: invalid address %v", p, pfx)
		}
		addr := pfx.Addr()
		if addr.IsUnspecified() || addr.IsMulticast() || addr.IsLoopback() || addr.IsLinkLocalUnicast() {
			return a, fmt.Errorf("netstack: %s: %v is not a unicast address", p, pfx)
		}
		switch {
		case addr.Is4():
			if a.v4.IsValid() {
				return a, fmt.Errorf("netstack: %s: more than one IPv4 address", p)
			}
			if pfx.Bits() > 30 {
				return a, fmt.Errorf("netstack: %s: IPv4 prefix %v leaves no room for neighbours", p, pfx)
			}
			a.v4 = pfx
		case addr.Is6() && !addr.Is4In6():
			if a.v6.IsValid() {
				return a, fmt.Errorf("netstack: %s: more than one IPv6 address", p)
			}
			if pfx.Bits() > 127 {
				return a, fmt.Errorf("netstack: %s: IPv6 prefix %v leaves no room for neighbours", p, pfx)
			}
			a.v6 = pfx
		default:
			return a, fmt.Errorf("netstack: %s: unsupported address %v", p, pfx)
		}
	}
	if !a.v4.IsValid() && !a.v6.IsValid() {
		return a, fmt.Errorf("netstack: %s: no address", p)
	}
	for _, gw := range pc.Gateways {
		switch {
		case gw.Is4() && a.v4.IsValid() && a.v4.Contains(gw) && gw != a.v4.Addr() && !a.gw4.IsValid():
			a.gw4 = gw
		case gw.Is6() && a.v6.IsValid() && a.v6.Contains(gw) && gw != a.v6.Addr() && !a.gw6.IsValid():
			a.gw6 = gw
		default:
			return a, fmt.Errorf("netstack: %s: gateway %v is not on-link, duplicates one, or is the device", p, gw)
		}
	}
	if a.v6.IsValid() {
		a.linkLocal6 = linkLocalFromMAC(mac)
	}
	return a, nil
}

// linkLocalFromMAC forms fe80::/64 with a modified EUI-64 interface
// identifier (RFC 4291 §2.5.1, appendix A).
func linkLocalFromMAC(m MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{
		0xfe, 0x80, 0, 0, 0, 0, 0, 0,
		m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5],
	})
}

var errNoNIC = errors.New("netstack: both NICs and a data plane are required")
