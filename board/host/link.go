//go:build linux

package host

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"golang.org/x/sys/unix"
)

// Options tune how a port is opened. The zero value is what bitw run uses.
type Options struct {
	// RingFrames is the number of slots in the AF_PACKET receive ring;
	// zero takes DefaultRingFrames. A slot holds one MTU-sized frame
	// (2 KiB at MTU 1500); larger offload frames take the socket queue.
	RingFrames int
	// SocketBuffer sizes the socket's send (and fallback receive) buffer
	// with SO_SNDBUFFORCE/SO_RCVBUFFORCE; zero takes DefaultSocketBuffer.
	SocketBuffer int
	// QdiscBypass sends straight to the driver (PACKET_QDISC_BYPASS),
	// skipping the kernel's queueing discipline.
	QdiscBypass bool
	// KeepOffloads leaves GRO, GSO and TSO as they are.
	KeepOffloads bool
	// NoSegmentOffload sends every frame on its own: the port offers
	// netstack no trains (netstack.SegmentOffload), and Open turns the
	// link's segmentation offloads off as well as its receive
	// coalescing.
	NoSegmentOffload bool
	// KeepKernelIPv6 leaves the kernel's IPv6 on the link; by default it
	// is disabled there so that the kernel neither autoconfigures a
	// link-local address nor answers neighbour discovery beside bitw.
	KeepKernelIPv6 bool
	// MAC overrides the port's address. A TAP port otherwise derives a
	// locally administered one from its name, because the interface's own
	// address belongs to the kernel's side of the TAP.
	MAC netstack.MAC
}

// Tuning defaults.
const (
	DefaultRingFrames   = 2048 // 4 MiB at MTU 1500: the receive buffer design.md found enough
	DefaultSocketBuffer = 4 << 20
	// DefaultBatch is the number of frames one sendmmsg carries.
	DefaultBatch = 64
)

// Info reports what Open found and changed, for the caller to log.
type Info struct {
	Link  string
	Name  string
	Index int
	MTU   int
	MAC   netstack.MAC
	Kind  string // "af_packet" or "tap"
	// KernelAddrs are addresses the kernel holds on the link. bitw owns
	// its links, so the caller should warn: the kernel would answer ARP
	// and send port-unreachable beside bitw's stack.
	KernelAddrs []netip.Prefix
	// OffloadsOff lists the offloads Open turned off.
	OffloadsOff []string
	// Notes are non-fatal problems worth a log line (a forced buffer size
	// refused, an offload that could not be changed, ...).
	Notes []string
}

// Stats are a port's driver-level counters.
type Stats struct {
	RxFrames          uint64 // wire frames returned by Read (after splitting)
	RxGSOFrames       uint64 // segmentation-offload frames split
	RxScattered       uint64 // of those, read from the socket straight into one buffer per segment
	RxChecksums       uint64 // partial checksums completed
	RxTruncated       uint64 // frames larger than a ring slot or a buffer
	RxBadOffload      uint64 // offload frames that could not be split (dropped)
	RxVLAN            uint64 // frames whose VLAN tag the hardware stripped (dropped)
	RxRingFull        uint64 // times the kernel reported ring losses
	TxFrames          uint64 // frames handed to the kernel (a train counts each of its frames)
	TxErrors          uint64
	TxTrains          uint64 // segmentation-offload frames handed to the kernel
	TxOffloadRefused  uint64 // trains the kernel refused; their kind is no longer offered
	KernelRingDrops   uint64 // PACKET_STATISTICS tp_drops, read on demand
	KernelRingPackets uint64 // PACKET_STATISTICS tp_packets, read on demand
}

// Port is one opened link: a netstack.NIC with its report and counters.
type Port interface {
	netstack.NIC
	Info() Info
	Stats() Stats
}

// Open opens link: "tap:NAME" for a TAP device (created if absent), any
// other name for an existing interface over AF_PACKET.
func Open(link string, opts Options) (Port, error) {
	if name, ok := strings.CutPrefix(link, "tap:"); ok {
		return openTap(link, name, opts)
	}
	return openPacket(link, opts)
}

// errClosed wraps the stack's error so that both errors.Is(err,
// netstack.ErrClosed) and errors.Is(err, net.ErrClosed) hold.
var errClosed = fmt.Errorf("%w (%w)", netstack.ErrClosed, net.ErrClosed)

func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// prepareLink brings the link up, keeps the kernel's IPv6 off it and its
// offloads off, and collects what the caller should know.
func prepareLink(name string, opts Options, info *Info) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("host: %s: control socket: %w", name, err)
	}
	defer unix.Close(fd)
	if !opts.KeepKernelIPv6 {
		path := "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"
		if err := os.WriteFile(path, []byte("1\n"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			info.Notes = append(info.Notes, fmt.Sprintf("could not disable the kernel's IPv6: %v", err))
		}
	}
	// The kernel sees every frame bitw sees. Should forwarding be on in
	// this namespace, it must not route what arrives on bitw's link: that
	// would carry red traffic around the tunnel in clear.
	fwd := "/proc/sys/net/ipv4/conf/" + name + "/forwarding"
	if err := os.WriteFile(fwd, []byte("0\n"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		info.Notes = append(info.Notes, fmt.Sprintf("could not turn off the kernel's IPv4 forwarding on the link: %v", err))
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("host: %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("host: %s: get flags: %w", name, err)
	}
	if ifr.Uint16()&unix.IFF_UP == 0 {
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("host: %s: bring up: %w", name, err)
		}
	}
	if !opts.KeepOffloads {
		off, err := disableOffloads(fd, name, !opts.NoSegmentOffload)
		info.OffloadsOff = off
		if err != nil {
			info.Notes = append(info.Notes, err.Error())
		}
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("host: %s: %w", name, err)
	}
	info.Name, info.Index, info.MTU = ifi.Name, ifi.Index, ifi.MTU
	if len(ifi.HardwareAddr) == len(netstack.MAC{}) {
		info.MAC = netstack.MAC(ifi.HardwareAddr)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("host: %s: list addresses: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(n.IP)
			ones, _ := n.Mask.Size()
			info.KernelAddrs = append(info.KernelAddrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return nil
}

// tapMAC derives a stable locally administered unicast address from the
// TAP's name (IEEE 802: U/L bit set, I/G bit clear).
func tapMAC(name string) netstack.MAC {
	h := fnv.New64a()
	h.Write([]byte("bitw tap " + name))
	s := h.Sum64()
	m := netstack.MAC{byte(s >> 40), byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
	m[0] = m[0]&^0x01 | 0x02
	return m
}

// setPacket places a received frame of n octets at the start of b's space.
func setPacket(b *ipsec.Buffer, n int) { b.SetPacket(b.Headroom(), n) }
