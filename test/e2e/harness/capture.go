package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Capture is a running tcpdump writing one link's traffic to a pcap file.
type Capture struct {
	Path string
	Link string
	proc *Process
}

// StartCapture runs tcpdump on link inside ns, writing every frame (up to
// snaplen bytes; 0 for whole frames) to a pcap file under LogDir(t). It
// returns once tcpdump is listening. Stop it before reading the file.
func (n *Netns) StartCapture(t T, link string, snaplen int) *Capture {
	t.Helper()
	path := filepath.Join(LogDir(t), fmt.Sprintf("%s-%s-%d.pcap", n.Name, link, time.Now().UnixNano()))
	if snaplen <= 0 {
		snaplen = 262144
	}
	// --immediate-mode hands every packet over at once (otherwise the
	// ring's block timer holds the last ones back and SIGTERM loses them),
	// -U writes each to the file at once, -n resolves nothing, and -B
	// raises the kernel buffer (KiB) so bursts are not dropped.
	p := n.Start(t, "tcpdump-"+link, "tcpdump", "-i", link, "-n", "--immediate-mode", "-U", "-B", "8192",
		"-s", strconv.Itoa(snaplen), "-w", path)
	if err := p.WaitLog("listening on", 10*time.Second); err != nil {
		t.Fatalf("capture on %s/%s: %v", n.Name, link, err)
	}
	return &Capture{Path: path, Link: link, proc: p}
}

// Stop ends the capture. A packet can already have passed the link while
// tcpdump has not yet read it from the kernel's ring, and SIGTERM would
// lose it; so Stop first asks for statistics (SIGUSR1) until every packet
// the filter accepted has been written, at most for 5 s, then sends
// SIGTERM. It reports a capture that is still incomplete or that the
// kernel dropped packets from.
func (c *Capture) Stop() error {
	_ = WaitFor(5*time.Second, "tcpdump to write what it received", func() (bool, error) {
		before := len(c.proc.Log())
		if err := c.proc.Signal(syscall.SIGUSR1); err != nil {
			return false, fmt.Errorf("%w: %v", ErrStopWaiting, err)
		}
		if err := WaitFor(time.Second, "tcpdump statistics", func() (bool, error) {
			return len(c.proc.Log()) > before, nil
		}); err != nil {
			return false, err
		}
		st, ok := lastTcpdumpStats(c.proc.Log()[before:])
		return ok && st.captured == st.received, nil
	})
	if err := c.proc.Stop(); err != nil {
		return err
	}
	st, ok := lastTcpdumpStats(c.proc.Log())
	switch {
	case !ok:
		return fmt.Errorf("capture %s: no statistics from tcpdump: %s", c.Path, c.proc.Tail(3))
	case st.dropped != 0 || st.captured != st.received:
		return fmt.Errorf("%w: %s: %d packets captured, %d received by filter, %d dropped by kernel",
			ErrIncompleteCapture, c.Path, st.captured, st.received, st.dropped)
	}
	return nil
}

// ErrIncompleteCapture is wrapped by Stop when the file lacks packets that
// passed the link; what it holds is still readable.
var ErrIncompleteCapture = errors.New("incomplete capture")

type tcpdumpStats struct{ captured, received, dropped int }

// tcpdump prints its counts on exit, one per line, and on SIGUSR1 on one
// line: "tcpdump: 15 packets captured, 15 packets received by filter, 0
// packets dropped by kernel".
var tcpdumpCounts = regexp.MustCompile(`(\d+) packets? captured[,\s]+(\d+) packets? received by filter[,\s]+(\d+) packets? dropped by kernel`)

func lastTcpdumpStats(log string) (tcpdumpStats, bool) {
	all := tcpdumpCounts.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return tcpdumpStats{}, false
	}
	m := all[len(all)-1]
	st := tcpdumpStats{}
	st.captured, _ = strconv.Atoi(m[1])
	st.received, _ = strconv.Atoi(m[2])
	st.dropped, _ = strconv.Atoi(m[3])
	return st, true
}

// Frames reads the capture file. Call Stop first.
func (c *Capture) Frames() ([]Frame, error) { return ReadPcap(c.Path) }

// StopFrames stops the capture and returns its frames, ending the test
// when either fails.
func (c *Capture) StopFrames(t testing.TB) []Frame {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	frames, err := c.Frames()
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// Frame is one captured frame.
type Frame struct {
	Time     time.Time
	LinkType uint32
	Data     []byte // as captured, link header included
	OrigLen  int
}

// Link types this reader understands beyond handing out the bytes.
const (
	LinkTypeEthernet = 1
	LinkTypeRaw      = 101
	LinkTypeLinuxSLL = 113
)

// ReadPcap reads a classic pcap file (what tcpdump -w writes).
func ReadPcap(path string) ([]Frame, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePcap(b)
}

func parsePcap(b []byte) ([]Frame, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: shorter than its file header")
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	case 0x4d3cb2a1:
		bo, nano = binary.BigEndian, true
	default:
		return nil, errors.New("pcap: not a classic pcap file")
	}
	link := bo.Uint32(b[20:])
	var frames []Frame
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			return frames, errors.New("pcap: truncated record header")
		}
		sec, frac := bo.Uint32(b[off:]), bo.Uint32(b[off+4:])
		incl, orig := int(bo.Uint32(b[off+8:])), int(bo.Uint32(b[off+12:]))
		off += 16
		if incl < 0 || incl > len(b)-off {
			return frames, errors.New("pcap: truncated record")
		}
		ns := int64(frac) * 1000
		if nano {
			ns = int64(frac)
		}
		frames = append(frames, Frame{Time: time.Unix(int64(sec), ns), LinkType: link, Data: b[off : off+incl], OrigLen: orig})
		off += incl
	}
	return frames, nil
}

// EtherType and IP protocol numbers the checker looks at.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	protoUDP  = 17
	protoESP  = 50
	portIKE   = 500
	portNATT  = 4500
)

// Network returns the frame's EtherType and its network-layer bytes.
func (f Frame) Network() (etherType uint16, payload []byte, ok bool) {
	d := f.Data
	switch f.LinkType {
	case LinkTypeEthernet:
		if len(d) < 14 {
			return 0, nil, false
		}
		et, off := binary.BigEndian.Uint16(d[12:]), 14
		for et == etherVLAN && len(d) >= off+4 {
			et, off = binary.BigEndian.Uint16(d[off+2:]), off+4
		}
		return et, d[off:], true
	case LinkTypeLinuxSLL:
		if len(d) < 16 {
			return 0, nil, false
		}
		return binary.BigEndian.Uint16(d[14:]), d[16:], true
	case LinkTypeRaw:
		if len(d) == 0 {
			return 0, nil, false
		}
		if d[0]>>4 == 6 {
			return etherIPv6, d, true
		}
		return etherIPv4, d, true
	}
	return 0, nil, false
}

// IPPacket is the part of an IP header the checks need.
type IPPacket struct {
	Src, Dst netip.Addr
	Proto    uint8  // transport protocol (IPv6: the first Next Header)
	Payload  []byte // after the fixed header
}

// ParseIP decodes an IPv4 or IPv6 header.
func ParseIP(b []byte) (IPPacket, bool) {
	if len(b) < 1 {
		return IPPacket{}, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return IPPacket{}, false
		}
		return IPPacket{
			Src:     netip.AddrFrom4([4]byte(b[12:16])),
			Dst:     netip.AddrFrom4([4]byte(b[16:20])),
			Proto:   b[9],
			Payload: b[ihl:],
		}, true
	case 6:
		if len(b) < 40 {
			return IPPacket{}, false
		}
		return IPPacket{
			Src:     netip.AddrFrom16([16]byte(b[8:24])),
			Dst:     netip.AddrFrom16([16]byte(b[24:40])),
			Proto:   b[6],
			Payload: b[40:],
		}, true
	}
	return IPPacket{}, false
}

// Leak is a frame on the black network that exposes red traffic.
type Leak struct {
	Index  int // frame number, from 1 like Wireshark
	Reason string
}

func (l Leak) String() string { return fmt.Sprintf("frame %d: %s", l.Index, l.Reason) }

// CleartextLeaks checks frames captured on the black network for red
// traffic in clear. A frame leaks when its IP source or destination lies
// in a red prefix, or when a frame that is not ciphertext carries one of
// the red addresses in its bytes: non-IP frames (ARP), and IP packets
// other than ESP, ESP in UDP 4500 and IKE. Ciphertext is not searched:
// random bytes would match an address now and then.
func CleartextLeaks(frames []Frame, redPrefixes []netip.Prefix, redAddrs []netip.Addr) []Leak {
	var leaks []Leak
	inRed := func(a netip.Addr) bool {
		for _, p := range redPrefixes {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	search := func(b []byte) (netip.Addr, bool) {
		for _, a := range redAddrs {
			if bytes.Contains(b, a.AsSlice()) {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	for i, f := range frames {
		et, nw, ok := f.Network()
		if !ok {
			if a, found := search(f.Data); found {
				leaks = append(leaks, Leak{i + 1, fmt.Sprintf("undecoded frame carries %s", a)})
			}
			continue
		}
		if et != etherIPv4 && et != etherIPv6 {
			if a, found := search(nw); found {
				leaks = append(leaks, Leak{i + 1, fmt.Sprintf("EtherType %#04x frame carries %s", et, a)})
			}
			continue
		}
		ip, ok := ParseIP(nw)
		if !ok {
			if a, found := search(nw); found {
				leaks = append(leaks, Leak{i + 1, fmt.Sprintf("malformed IP packet carries %s", a)})
			}
			continue
		}
		if inRed(ip.Src) || inRed(ip.Dst) {
			leaks = append(leaks, Leak{i + 1, fmt.Sprintf("IP packet %s -> %s (proto %d) in clear", ip.Src, ip.Dst, ip.Proto)})
			continue
		}
		if ciphertext(ip) {
			continue
		}
		if a, found := search(ip.Payload); found {
			leaks = append(leaks, Leak{i + 1, fmt.Sprintf("%s -> %s proto %d carries %s in clear", ip.Src, ip.Dst, ip.Proto, a)})
		}
	}
	return leaks
}

// ciphertext reports whether the packet is ESP, ESP in UDP (RFC 3948) or
// an IKE message past IKE_SA_INIT, whose body is encrypted.
func ciphertext(ip IPPacket) bool {
	switch ip.Proto {
	case protoESP:
		return true
	case protoUDP:
		if len(ip.Payload) < 8 {
			return false
		}
		sport, dport := binary.BigEndian.Uint16(ip.Payload), binary.BigEndian.Uint16(ip.Payload[2:])
		body := ip.Payload[8:]
		if sport == portNATT || dport == portNATT {
			if len(body) == 1 && body[0] == 0xff { // NAT keepalive
				return true
			}
			if len(body) >= 4 && binary.BigEndian.Uint32(body) != 0 {
				return true // ESP: a non-zero SPI
			}
			if len(body) >= 4 {
				body = body[4:] // IKE behind the non-ESP marker
			}
		}
		if sport == portIKE || dport == portIKE || sport == portNATT || dport == portNATT {
			return ikeEncrypted(body)
		}
	}
	return false
}

// ikeEncrypted reports whether an IKEv2 message's first payload is SK
// (46) or SKF (53), RFC 7296 section 3.1 and RFC 7383.
func ikeEncrypted(msg []byte) bool {
	return len(msg) >= 28 && (msg[16] == 46 || msg[16] == 53)
}
