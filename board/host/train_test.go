//go:build linux

package host

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

func TestVnetForTrain(t *testing.T) {
	head := buildFrame(false, protoTCP, make([]byte, 100)) // CWR set
	for _, tc := range []struct {
		t    netstack.Train
		typ  uint8
		coff uint16
	}{
		{netstack.Train{Kind: netstack.OffloadTCPv4, Frames: 3, HeaderLen: 54, TransportOffset: 34, SegmentSize: 1448}, unix.VIRTIO_NET_HDR_GSO_TCPV4 | unix.VIRTIO_NET_HDR_GSO_ECN, 16},
		{netstack.Train{Kind: netstack.OffloadTCPv6, Frames: 3, HeaderLen: 74, TransportOffset: 54, SegmentSize: 1428}, unix.VIRTIO_NET_HDR_GSO_TCPV6, 16},
		{netstack.Train{Kind: netstack.OffloadUDP, Frames: 9, HeaderLen: 42, TransportOffset: 34, SegmentSize: 1416}, unix.VIRTIO_NET_HDR_GSO_UDP_L4, 6},
	} {
		h := head
		if tc.t.Kind == netstack.OffloadTCPv6 {
			h = buildFrame(true, protoTCP, make([]byte, 100))
			h[54+tcpFlagsOff] &^= tcpFlagCWR
		}
		var v [vnetHdrLen]byte
		vnetForTrain(&v, tc.t, h)
		got := parseVnet(v[:])
		want := vnetHdr{flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: tc.typ, gsoSize: uint16(tc.t.SegmentSize), csumStart: uint16(tc.t.TransportOffset), csumOffset: tc.coff}
		if got != want || binary.NativeEndian.Uint16(v[vnetHdrLenOff:]) != uint16(tc.t.HeaderLen) {
			t.Errorf("%v: % x: %+v, want %+v", tc.t.Kind, v, got, want)
		}
	}
}

// trainHead rewrites frames[0] into a train's first frame by
// netstack.Train's contract, written out again here: whole lengths, the
// IPv4 header checksum, PSH from the last frame, and the pseudo-header
// sum in the checksum field.
func trainHead(frames [][]byte, tr netstack.Train) {
	h := frames[0]
	whole := len(h) - tr.TransportOffset
	for _, f := range frames[1:] {
		whole += len(f) - tr.HeaderLen
	}
	ip := h[ethHeaderLen:]
	v6 := ip[0]>>4 == 6
	proto := uint8(protoTCP)
	if tr.Kind == netstack.OffloadUDP {
		proto = protoUDP
		binary.BigEndian.PutUint16(h[tr.TransportOffset+4:], uint16(whole))
	} else {
		// PSH goes with the last segment.
		h[tr.TransportOffset+tcpFlagsOff] |= frames[len(frames)-1][tr.TransportOffset+tcpFlagsOff] & tcpFlagPSH
	}
	if v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(whole))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(20+whole))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	}
	binary.BigEndian.PutUint16(h[tr.TransportOffset+tr.ChecksumOffset():], pseudoSum(ip, v6, proto, whole))
}

// splitFrames cuts a frame built by buildFrame (full checksums added)
// into the wire frames a sender's TSO would have produced, by the
// segmenter the port itself uses on receive.
func splitFrames(t *testing.T, f []byte, typ uint8, mss int) [][]byte {
	t.Helper()
	var s segmenter
	if !s.start(f, vnetHdr{gsoType: typ, gsoSize: uint16(mss), flags: unix.VIRTIO_NET_HDR_F_NEEDS_CSUM}) {
		t.Fatal("segmenter refused the frame")
	}
	var out [][]byte
	for s.active() {
		bufs := newBufs(8)
		for _, b := range bufs[:s.fill(bufs)] {
			out = append(out, append([]byte(nil), b.Bytes()...))
		}
	}
	return out
}

// Trains written to one AF_PACKET port reach the port at the other end
// of a veth as one offload frame each, which Read splits back into the
// frames (reading it straight into one buffer per segment). The kernel
// thereby accepts the virtio headers, lengths and partial checksums.
func TestPacketTrainsOverVeth(t *testing.T) {
	needRoot(t)
	nsA, nsB := newNS(t, "ta"), newNS(t, "tb")
	vethPair(t, nsA, "t0", nsB, "t1")
	pa := openIn(t, nsA, "t0", Options{})
	pb := openIn(t, nsB, "t1", Options{})
	payload := make([]byte, 30000)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	for _, tc := range []struct {
		name   string
		v6     bool
		proto  uint8
		typ    uint8
		mss    int
		kind   netstack.OffloadKind
		hdrLen int
	}{
		{"tcp4", false, protoTCP, unix.VIRTIO_NET_HDR_GSO_TCPV4, 1400, netstack.OffloadTCPv4, 54},
		{"tcp6", true, protoTCP, unix.VIRTIO_NET_HDR_GSO_TCPV6, 1380, netstack.OffloadTCPv6, 74},
		{"udp4", false, protoUDP, unix.VIRTIO_NET_HDR_GSO_UDP_L4, 1416, netstack.OffloadUDP, 42},
		{"udp6", true, protoUDP, unix.VIRTIO_NET_HDR_GSO_UDP_L4, 1396, netstack.OffloadUDP, 62},
	} {
		t.Run(tc.name, func(t *testing.T) {
			big := buildFrame(tc.v6, tc.proto, payload)
			if tc.proto == protoTCP {
				big[tc.hdrLen-20+tcpFlagsOff] = 0x10 | tcpFlagPSH // ACK, PSH on the last segment
			}
			want := splitFrames(t, big, tc.typ, tc.mss)
			frames := make([][]byte, len(want))
			bufs := make([]*ipsec.Buffer, len(want))
			for i, f := range want {
				bufs[i] = ipsec.NewBuffer(ipsec.DefaultBufferSize)
				bufs[i].SetPacket(bufs[i].Headroom(), copy(bufs[i].Space(), f))
				frames[i] = bufs[i].Bytes()
			}
			tr := netstack.Train{Kind: tc.kind, Frames: len(bufs), HeaderLen: tc.hdrLen, TransportOffset: tc.hdrLen - 20, SegmentSize: tc.mss}
			if tc.proto == protoUDP {
				tr.TransportOffset = tc.hdrLen - 8
			}
			trainHead(frames, tr)
			before := pa.Stats()
			got := make(chan [][]byte, 1)
			go func() {
				var out [][]byte
				rb := newBufs(64)
				deadline := time.Now().Add(5 * time.Second)
				for len(out) < len(want) && time.Now().Before(deadline) {
					for _, b := range rb {
						b.Reset(ipsec.DefaultHeadroom)
					}
					n, err := pb.Read(rb)
					if err != nil {
						break
					}
					for _, b := range rb[:n] {
						if f := b.Bytes(); len(f) > 14 && binary.BigEndian.Uint16(f[12:]) == binary.BigEndian.Uint16(big[12:]) {
							out = append(out, append([]byte(nil), f...))
						}
					}
				}
				got <- out
			}()
			n, err := pa.(netstack.SegmentOffload).WriteTrains(bufs, []netstack.Train{tr})
			if err != nil || n != len(bufs) {
				t.Fatalf("WriteTrains: %d of %d, %v", n, len(bufs), err)
			}
			var out [][]byte
			select {
			case out = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("nothing read")
			}
			if s := pa.Stats(); s.TxTrains != before.TxTrains+1 || s.TxOffloadRefused != 0 {
				t.Fatalf("sender stats %+v", s)
			}
			if len(out) != len(want) {
				t.Fatalf("read %d frames, want %d (receiver %+v)", len(out), len(want), pb.Stats())
			}
			for i := range want {
				if !bytes.Equal(out[i], want[i]) {
					t.Fatalf("frame %d differs:\n got % x\nwant % x", i, out[i][:tc.hdrLen], want[i][:tc.hdrLen])
				}
			}
			if s := pb.Stats(); s.RxScattered == 0 {
				t.Fatalf("receiver did not read the offload frame into its buffers: %+v", s)
			}
		})
	}
}

// Kernel TCP crosses two gateways whose ports send trains: gwB's red port
// hands hostB's kernel offload frames. A capture on hostB's own link, with
// virtio headers, sees what hostB's TCP receives: every IPv4 header
// checksum holds, every offload frame asks for checksum completion from
// the TCP header with the right pseudo-header sum, and plain frames carry
// full checksums that verify.
func TestGatewaysTrainsChecksumsAtHost(t *testing.T) {
	g := newGatewayNet(t)
	capt := startCapture(t, g.hostB, "eth0")
	if err := g.transfer(t, "5003", 16<<20); err != nil {
		t.Fatalf("TCP across the gateways: %v\na=%+v\nb=%+v", err, g.a.Counters(), g.b.Counters())
	}
	ca, cb := g.a.Counters(), g.b.Counters()
	if ca.Black.TxTrains == 0 || cb.Red.TxTrains == 0 {
		t.Fatalf("no trains: gwA black %+v, gwB red %+v", ca.Black, cb.Red)
	}
	r := capt.stop()
	t.Logf("gwA black: %d trains of %d frames; gwB red: %d trains of %d frames; hostB saw %d offload frames (%d octets of TCP payload) and %d plain data frames",
		ca.Black.TxTrains, ca.Black.TxTrainFrames, cb.Red.TxTrains, cb.Red.TxTrainFrames, r.gso, r.gsoPayload, r.plain)
	if r.bad != "" {
		t.Fatal(r.bad)
	}
	if r.gso == 0 {
		t.Fatalf("hostB received no offload frames: %+v", r)
	}
}

// capture reads hostB's link with an AF_PACKET socket that asks for
// virtio headers, and checks the TCP data frames from hostA.
type capture struct {
	fd   int
	done chan captureResult
}

type captureResult struct {
	gso, plain, gsoPayload int
	bad                    string
}

func startCapture(t *testing.T, ns, link string) *capture {
	var fd int
	var err error
	inNS(t, ns, func() {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		var idx int
		idx, err = ifIndex(link)
		if err != nil {
			return
		}
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: idx})
	})
	if err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Usec: 100000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	c := &capture{fd: fd, done: make(chan captureResult, 1)}
	go c.run()
	return c
}

func ifIndex(link string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(link)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

func (c *capture) stop() captureResult {
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	r := <-c.done
	unix.Close(c.fd)
	return r
}

func (c *capture) run() {
	var r captureResult
	buf := make([]byte, vnetHdrLen+65536+ethHeaderLen)
	hostA, hostB := netip.MustParseAddr("192.168.1.10").As4(), netip.MustParseAddr("192.168.2.10").As4()
	idle := 0
	for idle < 50 {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				idle++
				continue
			}
			break
		}
		idle = 0
		if n < vnetHdrLen+ethHeaderLen+40 || r.bad != "" {
			continue
		}
		h := parseVnet(buf[:vnetHdrLen])
		f := buf[vnetHdrLen:n]
		ip := f[ethHeaderLen:]
		if binary.BigEndian.Uint16(f[ethTypeOff:]) != etherTypeIPv4 || ip[9] != protoTCP || [4]byte(ip[12:16]) != hostA || [4]byte(ip[16:20]) != hostB {
			continue
		}
		ihl := int(ip[0]&15) * 4
		l4 := ip[ihl:]
		data := len(l4) - int(l4[12]>>4)*4
		switch {
		case checksum.Checksum(ip[:ihl], 0) != 0xffff || int(binary.BigEndian.Uint16(ip[2:])) != len(ip):
			r.bad = "IPv4 header with a bad checksum or length"
		case h.gsoType != unix.VIRTIO_NET_HDR_GSO_NONE:
			r.gso++
			r.gsoPayload += data
			if h.gsoType&^unix.VIRTIO_NET_HDR_GSO_ECN != unix.VIRTIO_NET_HDR_GSO_TCPV4 || h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 ||
				int(h.csumStart) != ethHeaderLen+ihl || h.csumOffset != 16 || h.gsoSize == 0 ||
				binary.BigEndian.Uint16(l4[16:]) != pseudoSum(ip, false, protoTCP, len(l4)) {
				r.bad = "offload frame without the partial TCP checksum a segmenter needs"
			}
		case data == 0:
		case h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0:
			r.plain++
			if binary.BigEndian.Uint16(l4[16:]) != pseudoSum(ip, false, protoTCP, len(l4)) {
				r.bad = "partial checksum frame with a wrong pseudo-header sum"
			}
		default:
			r.plain++
			if checksum.Checksum(l4, pseudoSum(ip, false, protoTCP, len(l4))) != 0xffff {
				r.bad = "TCP segment with a bad checksum"
			}
		}
	}
	c.done <- r
}

// A train the kernel refuses is counted, and its kind is no longer
// offered: the next ones would be refused too. gso_size 0xffff
// (GSO_BY_FRAGS) is one the kernel never takes from a packet socket.
// A train whose frames cannot hold its headers goes frame by frame.
func TestPacketRefusedTrainWithdrawsKind(t *testing.T) {
	needRoot(t)
	nsA, nsB := newNS(t, "ra"), newNS(t, "rb")
	vethPair(t, nsA, "r0", nsB, "r1")
	pa := openIn(t, nsA, "r0", Options{})
	so := pa.(netstack.SegmentOffload)
	frames := splitFrames(t, buildFrame(false, protoUDP, make([]byte, 3000)), unix.VIRTIO_NET_HDR_GSO_UDP_L4, 1400)
	bufs := make([]*ipsec.Buffer, len(frames))
	for i, f := range frames {
		bufs[i] = ipsec.NewBuffer(ipsec.DefaultBufferSize)
		bufs[i].SetPacket(bufs[i].Headroom(), copy(bufs[i].Space(), f))
	}
	bad := netstack.Train{Kind: netstack.OffloadUDP, Frames: len(bufs), HeaderLen: 42, TransportOffset: 34, SegmentSize: 0xffff}
	if n, err := so.WriteTrains(bufs, []netstack.Train{bad}); n != len(bufs) || err != nil {
		t.Fatalf("WriteTrains: %d, %v", n, err)
	}
	s := pa.Stats()
	if s.TxOffloadRefused != 1 || s.TxErrors != uint64(len(bufs)) || so.TxOffloads().Kinds.Has(netstack.OffloadUDP) || !so.TxOffloads().Kinds.Has(netstack.OffloadTCPv4) {
		t.Fatalf("stats %+v, offloads %+v", s, so.TxOffloads())
	}
	short := netstack.Train{Kind: netstack.OffloadUDP, Frames: len(bufs), HeaderLen: 5000, TransportOffset: 34, SegmentSize: 1400}
	if n, err := so.WriteTrains(bufs, []netstack.Train{short}); n != len(bufs) || err != nil {
		t.Fatalf("WriteTrains: %d, %v", n, err)
	}
	if s2 := pa.Stats(); s2.TxErrors != s.TxErrors || s2.TxTrains != s.TxTrains || s2.TxFrames != s.TxFrames+uint64(len(bufs)) {
		t.Fatalf("a train that does not fit its frames: stats %+v, before %+v", s2, s)
	}
}

// Sending a train and reading the offload frame back, one buffer per
// segment, allocates nothing.
func TestPacketTrainAllocations(t *testing.T) {
	needRoot(t)
	nsA, nsB := newNS(t, "aa"), newNS(t, "ab")
	vethPair(t, nsA, "q0", nsB, "q1")
	pa := openIn(t, nsA, "q0", Options{})
	pb := openIn(t, nsB, "q1", Options{})
	frames := splitFrames(t, buildFrame(false, protoUDP, make([]byte, 20000)), unix.VIRTIO_NET_HDR_GSO_UDP_L4, 1400)
	bufs := make([]*ipsec.Buffer, len(frames))
	raw := make([][]byte, len(frames))
	for i, f := range frames {
		bufs[i] = ipsec.NewBuffer(ipsec.DefaultBufferSize)
		bufs[i].SetPacket(bufs[i].Headroom(), copy(bufs[i].Space(), f))
		raw[i] = bufs[i].Bytes()
	}
	tr := netstack.Train{Kind: netstack.OffloadUDP, Frames: len(bufs), HeaderLen: 42, TransportOffset: 34, SegmentSize: 1400}
	trainHead(raw, tr)
	trains := []netstack.Train{tr}
	so := pa.(netstack.SegmentOffload)
	rb := newBufs(64)
	var failed bool
	// A lost frame would leave Read waiting: closing the port ends it.
	stop := time.AfterFunc(30*time.Second, func() { pb.Close() })
	defer stop.Stop()
	allocs := testing.AllocsPerRun(50, func() {
		if n, err := so.WriteTrains(bufs, trains); n != len(bufs) || err != nil {
			failed = true
			return
		}
		for got := 0; got < len(bufs); {
			for _, b := range rb {
				b.Reset(ipsec.DefaultHeadroom)
			}
			n, err := pb.Read(rb)
			if err != nil {
				failed = true
				return
			}
			for _, b := range rb[:n] {
				if f := b.Bytes(); len(f) > 23 && f[23] == protoUDP {
					got++
				}
			}
		}
	})
	if failed {
		t.Fatalf("write or read failed: a %+v b %+v", pa.Stats(), pb.Stats())
	}
	if allocs != 0 {
		t.Fatalf("%.1f allocations per train sent and read", allocs)
	}
	if s := pb.Stats(); s.RxScattered < 50 {
		t.Fatalf("receiver %+v", s)
	}
}
