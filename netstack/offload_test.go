package netstack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// tcpSeg is one TCP segment for the train tests.
type tcpSeg struct {
	seq, ack uint32
	flags    uint8
	window   uint16
	opts     []byte
	data     []byte
}

func (s tcpSeg) bytes(src, dst netip.Addr) []byte {
	t := make([]byte, 20+len(s.opts)+len(s.data))
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 5201)
	binary.BigEndian.PutUint32(t[4:], s.seq)
	binary.BigEndian.PutUint32(t[8:], s.ack)
	t[12] = byte((20+len(s.opts))/4) << 4
	t[13] = s.flags
	binary.BigEndian.PutUint16(t[14:], s.window)
	copy(t[20:], s.opts)
	copy(t[20+len(s.opts):], s.data)
	binary.BigEndian.PutUint16(t[16:], ^checksum.Checksum(t, pseudo(src, dst, 6, len(t))))
	return t
}

var (
	trainMACDst = netstack.MAC{2, 0, 0, 0, 0xa, 2}
	trainMACSrc = netstack.MAC{2, 0, 0, 0, 0xa, 1}
	tsOption    = []byte{1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0} // NOP NOP timestamps
)

// tcpFrames builds n in-order segments of mss octets (the last one last
// octets), IDs from id on, as a sender's TSO or a split offload frame
// would deliver them.
func tcpFrames(v6 bool, n, mss, last int, id uint16) [][]byte {
	var frames [][]byte
	seq := uint32(7_000_000)
	for i := range n {
		size := mss
		if i == n-1 {
			size = last
		}
		data := bytes.Repeat([]byte{byte(i + 1)}, size)
		flags := uint8(0x10)
		if i == n-1 {
			flags |= 0x08
		}
		seg := tcpSeg{seq: seq, ack: 99, flags: flags, window: 500, opts: tsOption, data: data}
		seq += uint32(size)
		frames = append(frames, tcpFrame(v6, seg, id+uint16(i), 0))
	}
	return frames
}

func tcpFrame(v6 bool, s tcpSeg, id uint16, tos uint8) []byte {
	if v6 {
		src, dst := netip.MustParseAddr("2001:db8:2::10"), netip.MustParseAddr("2001:db8:1::10")
		p := ipv6(src.String(), dst.String(), 63, 6, s.bytes(src, dst))
		return ether(trainMACDst, trainMACSrc, 0x86dd, p)
	}
	src, dst := netip.MustParseAddr("192.168.2.10"), netip.MustParseAddr("192.168.1.10")
	p := ipv4(src.String(), dst.String(), ip4opts{ttl: 63, df: true, id: id, proto: 6}, s.bytes(src, dst))
	if tos != 0 {
		p[1] = tos
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], ^checksum.Checksum(p[:20], 0))
	}
	return ether(trainMACDst, trainMACSrc, 0x0800, p)
}

// espUDPFrames builds n ESP-in-UDP packets (RFC 3948, zero checksum) of
// the same SA as the engine would: consecutive IDs and sequence numbers.
func espUDPFrames(n, size int) [][]byte {
	var frames [][]byte
	for i := range n {
		esp := make([]byte, size)
		binary.BigEndian.PutUint32(esp[0:], 0xc0ffee)
		binary.BigEndian.PutUint32(esp[4:], uint32(i+1))
		for k := 8; k < len(esp); k++ {
			esp[k] = byte(k * (i + 3))
		}
		u := make([]byte, 8+len(esp))
		binary.BigEndian.PutUint16(u[0:], 4500)
		binary.BigEndian.PutUint16(u[2:], 4500)
		binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
		copy(u[8:], esp)
		p := ipv4("203.0.113.1", "203.0.113.2", ip4opts{ttl: 64, df: true, id: uint16(0xfff0 + i), proto: 17}, u)
		frames = append(frames, ether(trainMACDst, trainMACSrc, 0x0800, p))
	}
	return frames
}

func toBufs(frames [][]byte) []*ipsec.Buffer {
	bufs := make([]*ipsec.Buffer, len(frames))
	for i, f := range frames {
		b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
		b.SetPacket(b.Headroom(), copy(b.Space(), f))
		bufs[i] = b
	}
	return bufs
}

var allKinds = netstack.TxOffloads{Kinds: netstack.OffloadKindsOf(netstack.OffloadTCPv4, netstack.OffloadTCPv6, netstack.OffloadUDP), MaxFrames: 64}

// plan runs the planner and checks what it must always hold: the trains
// cover every frame in order, and splitting each train gives back its
// frames (the first one's headers were rewritten for the whole train).
func plan(t *testing.T, frames [][]byte, sealed bool, caps netstack.TxOffloads) []netstack.Train {
	t.Helper()
	bufs := toBufs(frames)
	s := make([]bool, len(bufs))
	for i := range s {
		s[i] = sealed
	}
	trains := netstack.PlanTrains(bufs, s, caps, nil)
	at := 0
	for _, tr := range trains {
		if tr.Frames < 1 || tr.Kind == netstack.OffloadNone && tr.Frames != 1 {
			t.Fatalf("train %+v", tr)
		}
		if tr.Kind == netstack.OffloadNone {
			if !bytes.Equal(bufs[at].Bytes(), frames[at]) {
				t.Fatalf("frame %d sent alone was changed", at)
			}
			at++
			continue
		}
		var got [][]byte
		for _, b := range bufs[at : at+tr.Frames] {
			got = append(got, b.Bytes())
		}
		segs, err := nictest.SegmentTrain(got, tr)
		if err != nil {
			t.Fatalf("train %+v at %d: %v", tr, at, err)
		}
		for k, seg := range segs {
			ip := seg[14:]
			if tr.Kind == netstack.OffloadUDP && !l4ChecksumOK(netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])), 17, seg[tr.TransportOffset:]) {
				t.Fatalf("train at %d: segment %d: bad UDP checksum", at, k)
			}
		}
		if err := nictest.CompareSegments(segs, frames[at:at+tr.Frames], tr); err != nil {
			t.Fatalf("train %+v at %d: %v", tr, at, err)
		}
		at += tr.Frames
	}
	if at != len(frames) {
		t.Fatalf("trains cover %d of %d frames", at, len(frames))
	}
	return trains
}

func kinds(trains []netstack.Train) (sizes []int) {
	for _, t := range trains {
		sizes = append(sizes, t.Frames)
	}
	return sizes
}

func TestTrainsTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		trains := plan(t, tcpFrames(v6, 10, 1348, 700, 100), false, allKinds)
		want := netstack.OffloadTCPv4
		if v6 {
			want = netstack.OffloadTCPv6
		}
		if len(trains) != 1 || trains[0].Kind != want || trains[0].Frames != 10 || trains[0].SegmentSize != 1348 {
			t.Fatalf("v6=%v: trains %+v", v6, trains)
		}
		// The IPv4 ID wraps like the segmenters' do.
		if tr := plan(t, tcpFrames(v6, 5, 1000, 1000, 0xfffe), false, allKinds); len(tr) != 1 {
			t.Fatalf("v6=%v: trains across the ID wrap %v", v6, kinds(tr))
		}
	}
}

// Each rule that ends a train, as the kernel's GRO applies them (and
// stricter where a segmenter could not give the frame back).
func TestTrainsTCPBreaks(t *testing.T) {
	base := func() []tcpSeg {
		var s []tcpSeg
		seq := uint32(1000)
		for i := range 6 {
			s = append(s, tcpSeg{seq: seq, ack: 5, flags: 0x10, window: 300, opts: tsOption, data: bytes.Repeat([]byte{byte(i)}, 500)})
			seq += 500
		}
		return s
	}
	build := func(segs []tcpSeg, ids []uint16, tos []uint8) [][]byte {
		var f [][]byte
		for i, s := range segs {
			id := uint16(40 + i)
			if ids != nil {
				id = ids[i]
			}
			var t uint8
			if tos != nil {
				t = tos[i]
			}
			f = append(f, tcpFrame(false, s, id, t))
		}
		return f
	}
	for _, tc := range []struct {
		name string
		mod  func(s []tcpSeg) ([]uint16, []uint8)
		want []int
	}{
		{"all join", func(s []tcpSeg) ([]uint16, []uint8) { return nil, nil }, []int{6}},
		{"gap in sequence", func(s []tcpSeg) ([]uint16, []uint8) { from(s, 3, func(g *tcpSeg) { g.seq++ }); return nil, nil }, []int{3, 3}},
		{"one out of sequence", func(s []tcpSeg) ([]uint16, []uint8) { s[3].seq++; return nil, nil }, []int{3, 1, 2}},
		{"other ack", func(s []tcpSeg) ([]uint16, []uint8) { from(s, 2, func(g *tcpSeg) { g.ack++ }); return nil, nil }, []int{2, 4}},
		{"other window", func(s []tcpSeg) ([]uint16, []uint8) { from(s, 4, func(g *tcpSeg) { g.window++ }); return nil, nil }, []int{4, 2}},
		{"fin", func(s []tcpSeg) ([]uint16, []uint8) { s[5].flags |= 0x01; return nil, nil }, []int{5, 1}},
		{"syn", func(s []tcpSeg) ([]uint16, []uint8) { s[0].flags |= 0x02; return nil, nil }, []int{1, 5}},
		{"rst", func(s []tcpSeg) ([]uint16, []uint8) { s[2].flags |= 0x04; return nil, nil }, []int{2, 1, 3}},
		{"urg", func(s []tcpSeg) ([]uint16, []uint8) { s[2].flags |= 0x20; return nil, nil }, []int{2, 1, 3}},
		{"cwr later", func(s []tcpSeg) ([]uint16, []uint8) { s[3].flags |= 0x80; return nil, nil }, []int{3, 3}},
		{"cwr first", func(s []tcpSeg) ([]uint16, []uint8) { s[0].flags |= 0x80; return nil, nil }, []int{6}},
		{"ece differs", func(s []tcpSeg) ([]uint16, []uint8) { from(s, 1, func(g *tcpSeg) { g.flags |= 0x40 }); return nil, nil }, []int{1, 5}},
		{"psh ends", func(s []tcpSeg) ([]uint16, []uint8) { s[2].flags |= 0x08; return nil, nil }, []int{3, 3}},
		{"psh first", func(s []tcpSeg) ([]uint16, []uint8) { s[0].flags |= 0x08; return nil, nil }, []int{1, 5}},
		{"other timestamp", func(s []tcpSeg) ([]uint16, []uint8) {
			from(s, 3, func(g *tcpSeg) {
				g.opts = append([]byte(nil), tsOption...)
				g.opts[7] = 9
			})
			return nil, nil
		}, []int{3, 3}},
		{"short middle", func(s []tcpSeg) ([]uint16, []uint8) {
			s[2].data = s[2].data[:100]
			for i := 3; i < len(s); i++ {
				s[i].seq -= 400
			}
			return nil, nil
		}, []int{3, 3}},
		{"longer later", func(s []tcpSeg) ([]uint16, []uint8) {
			s[4].data = append(s[4].data, 1)
			s[5].seq++
			return nil, nil
		}, []int{4, 2}},
		{"no payload", func(s []tcpSeg) ([]uint16, []uint8) {
			s[3].data = nil
			for i := 4; i < len(s); i++ {
				s[i].seq -= 500
			}
			return nil, nil
		}, []int{3, 1, 2}},
		{"fixed IDs, DF", func(s []tcpSeg) ([]uint16, []uint8) { return []uint16{7, 7, 7, 7, 7, 7}, nil }, []int{6}},
		{"IDs jump", func(s []tcpSeg) ([]uint16, []uint8) { return []uint16{7, 8, 9, 20, 21, 22}, nil }, []int{3, 3}},
		{"ECN mark", func(s []tcpSeg) ([]uint16, []uint8) { return nil, []uint8{0, 0, 0, 3, 3, 3} }, []int{3, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			ids, tos := tc.mod(s)
			got := kinds(plan(t, build(s, ids, tos), false, allKinds))
			if !equalInts(got, tc.want) {
				t.Fatalf("trains %v, want %v", got, tc.want)
			}
		})
	}
}

// from applies f to the segments from i on.
func from(s []tcpSeg, i int, f func(*tcpSeg)) {
	for k := i; k < len(s); k++ {
		f(&s[k])
	}
}

// Without DF, fragments may be made of the packets, so their IDs must
// come back exactly: a fixed ID is no train.
func TestTrainsFixedIDWithoutDF(t *testing.T) {
	f := tcpFrames(false, 4, 500, 500, 9)
	for _, fr := range f {
		ip := fr[14:]
		ip[6] = 0 // DF off
		binary.BigEndian.PutUint16(ip[4:], 9)
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	}
	if got := kinds(plan(t, f, false, allKinds)); !equalInts(got, []int{1, 1, 1, 1}) {
		t.Fatalf("trains %v", got)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A segment whose checksum fails stays out of every train, as GRO would
// leave it: the train's checksum is computed over what is sent, and must
// not vouch for a corrupt segment.
func TestTrainsSkipBadChecksum(t *testing.T) {
	for _, bad := range []int{0, 2, 5} {
		f := tcpFrames(false, 6, 800, 800, 1)
		f[bad][len(f[bad])-1] ^= 0xff
		want := map[int][]int{0: {1, 5}, 2: {2, 1, 3}, 5: {5, 1}}[bad]
		if got := kinds(plan(t, f, false, allKinds)); !equalInts(got, want) {
			t.Fatalf("corrupt segment %d: trains %v, want %v", bad, got, want)
		}
	}
}

func TestTrainsLimits(t *testing.T) {
	// 64 KiB of IP packet at most: 1400-octet segments, 46 of them.
	if got := kinds(plan(t, tcpFrames(false, 60, 1400, 1400, 1), false, allKinds)); !equalInts(got, []int{46, 14}) {
		t.Fatalf("trains %v", got)
	}
	few := allKinds
	few.MaxFrames = 4
	if got := kinds(plan(t, tcpFrames(false, 10, 100, 100, 1), false, few)); !equalInts(got, []int{4, 4, 2}) {
		t.Fatalf("MaxFrames 4: trains %v", got)
	}
	few.MaxFrames = 1
	if got := kinds(plan(t, tcpFrames(false, 3, 100, 100, 1), false, few)); !equalInts(got, []int{1, 1, 1}) {
		t.Fatalf("MaxFrames 1: trains %v", got)
	}
	tcp4 := netstack.TxOffloads{Kinds: netstack.OffloadKindsOf(netstack.OffloadTCPv4), MaxFrames: 64}
	if got := kinds(plan(t, tcpFrames(true, 3, 100, 100, 1), false, tcp4)); !equalInts(got, []int{1, 1, 1}) {
		t.Fatalf("IPv6 on a TCPv4-only NIC: trains %v", got)
	}
}

func TestTrainsESPInUDP(t *testing.T) {
	trains := plan(t, espUDPFrames(20, 1416), true, allKinds)
	if len(trains) != 1 || trains[0].Kind != netstack.OffloadUDP || trains[0].SegmentSize != 1416 || trains[0].HeaderLen != 14+20+8 {
		t.Fatalf("trains %+v", trains)
	}
	// UDP this device did not seal (bypass traffic) travels alone.
	if got := kinds(plan(t, espUDPFrames(4, 500), false, allKinds)); !equalInts(got, []int{1, 1, 1, 1}) {
		t.Fatalf("unsealed UDP: trains %v", got)
	}
	// A shorter packet ends a train; another SA's packets start one.
	f := espUDPFrames(6, 600)
	short := espUDPFrames(6, 200)
	f[2] = short[2]
	if got := kinds(plan(t, f, true, allKinds)); !equalInts(got, []int{3, 3}) {
		t.Fatalf("short packet: trains %v", got)
	}
	f = espUDPFrames(6, 600)
	for _, fr := range f[3:] {
		binary.BigEndian.PutUint16(fr[14+20:], 4501) // another source port
	}
	if got := kinds(plan(t, f, true, allKinds)); !equalInts(got, []int{3, 3}) {
		t.Fatalf("other port: trains %v", got)
	}
}

// The frame path forms trains on a NIC that takes them: two gateways with
// real engines, ESP in UDP, and gVisor hosts whose TCP checks every
// checksum. gwA's black port sends UDP trains and gwB's red port TCP
// trains; nictest's NICs check each train against the contract and split
// it as a kernel would.
func TestEngineTwoGatewaysTrains(t *testing.T) {
	n := newEngineNetWith(t, "aes128gcm16", true, allKinds)
	black, red := n.transferOverTrains(t)
	if black.Kinds[netstack.OffloadUDP] == 0 || red.Kinds[netstack.OffloadTCPv4] == 0 {
		t.Fatalf("no trains: gwA black %+v, gwB red %+v", black, red)
	}
}

// With NoESPTrains (save_keys), ESP in UDP leaves packet by packet; TCP
// toward red still travels in trains.
func TestEngineNoESPTrains(t *testing.T) {
	n := newEngineNetWith(t, "aes128gcm16", true, allKinds, func(c *netstack.Config) { c.NoESPTrains = true })
	black, red := n.transferOverTrains(t)
	if black.Trains != 0 || red.Kinds[netstack.OffloadTCPv4] == 0 {
		t.Fatalf("gwA black %+v, gwB red %+v", black, red)
	}
}

// transferOverTrains carries 1.2 MB of TCP from hostA to hostB and
// returns what gwA's black NIC and gwB's red NIC saw of trains, having
// checked that no train broke the contract.
func (n *engineNet) transferOverTrains(t *testing.T) (black, red nictest.OffloadStats) {
	payload := bytes.Repeat([]byte("train payload 0123456789abcdef "), 40000)
	transferTCP(t, n.clk, n.ha, n.hb, "192.168.2.10:9000", payload, 60*time.Second)
	if c := n.cleartext.Load(); c != 0 {
		t.Fatalf("%d cleartext frames on black", c)
	}
	black, red = n.a.blackNIC.Offloads(), n.b.redNIC.Offloads()
	if black.Violations != 0 || red.Violations != 0 || n.a.redNIC.Offloads().Violations != 0 || n.b.blackNIC.Offloads().Violations != 0 {
		t.Fatalf("trains broke the contract: black %+v red %+v", black, red)
	}
	ca, cb := n.a.s.Counters(), n.b.s.Counters()
	if ca.Black.TxTrains != black.Trains || cb.Red.TxTrainFrames != red.TrainFrames {
		t.Fatalf("counters disagree with the NICs: a %+v b %+v", ca.Black, cb.Red)
	}
	t.Logf("gwA black: %d UDP trains of %d frames; gwB red: %d TCP trains of %d frames", black.Trains, black.TrainFrames, red.Trains, red.TrainFrames)
	return black, red
}

// joinFrames packs frames for FuzzPlanTrains: each behind a 2-octet
// length.
func joinFrames(frames [][]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzPlanTrains: any queue of frames is covered by the trains in order,
// without a panic, and every train splits back into its frames.
func FuzzPlanTrains(f *testing.F) {
	f.Add(joinFrames(tcpFrames(false, 5, 300, 120, 9)), false)
	f.Add(joinFrames(tcpFrames(true, 4, 200, 200, 0)), false)
	f.Add(joinFrames(espUDPFrames(4, 160)), true)
	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		var frames [][]byte
		for len(data) >= 2 && len(frames) < 70 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) || n > ipsec.DefaultBufferSize-ipsec.DefaultHeadroom {
				break
			}
			frames = append(frames, data[:n])
			data = data[n:]
		}
		if len(frames) == 0 {
			return
		}
		plan(t, frames, sealed, allKinds)
	})
}
