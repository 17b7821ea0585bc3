package imxenet

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
)

// fakeMAC plays the ENET's DMA engine over ring memory in plain slices,
// following the descriptor protocol: it fills receive descriptors that
// software marked empty and sends transmit descriptors marked ready, each
// in ring order, honouring W.
type fakeMAC struct {
	rx, tx           Memory
	rxDesc, txDesc   uint32
	rxNext, txNext   int
	count            int
	rxKicks, txKicks int
	stuck            bool // transmit descriptors are never completed
	discard          bool // count sent frames instead of keeping copies
	sent             int
	wire             [][]byte
}

func (f *fakeMAC) Attach(rxDesc, txDesc uint32) { f.rxDesc, f.txDesc = rxDesc, txDesc }
func (f *fakeMAC) StartRx()                     { f.rxKicks++ }
func (f *fakeMAC) Barrier()                     {}

func (f *fakeMAC) StartTx() {
	f.txKicks++
	if f.stuck {
		return
	}
	f.completeTx()
}

func (f *fakeMAC) completeTx() {
	for {
		d := desc(f.tx.Desc[f.txNext*descSize:])
		st := d.status()
		if st&bdTxReady == 0 {
			return
		}
		off := int(binaryAddr(d) - f.tx.BufsAddr)
		f.sent++
		if !f.discard {
			f.wire = append(f.wire, append([]byte(nil), f.tx.Bufs[off:off+d.length()]...))
		}
		d.setStatus(st &^ bdTxReady)
		f.txNext = f.step(f.txNext, st)
	}
}

func (f *fakeMAC) step(i int, st uint16) int {
	if st&bdWrap != 0 {
		return 0
	}
	return i + 1
}

func binaryAddr(d desc) uint32 {
	return uint32(d[descOffAddr]) | uint32(d[descOffAddr+1])<<8 | uint32(d[descOffAddr+2])<<16 | uint32(d[descOffAddr+3])<<24
}

// arrive delivers frame (FCS excluded) with extra status bits, as the MAC
// would; it reports false when no descriptor is empty (ring full).
func (f *fakeMAC) arrive(frame []byte, extra uint16) bool {
	d := desc(f.rx.Desc[f.rxNext*descSize:])
	st := d.status()
	if st&bdRxEmpty == 0 {
		return false
	}
	off := int(binaryAddr(d) - f.rx.BufsAddr)
	n := copy(f.rx.Bufs[off:off+BufferSize], frame)
	copy(f.rx.Bufs[off+n:], []byte{0xde, 0xad, 0xbe, 0xef})
	d.setLength(len(frame) + FCSLen)
	d.setStatus(st&bdWrap | bdLast | extra)
	f.rxNext = f.step(f.rxNext, st)
	return true
}

func memory(count int, base uint32) Memory {
	dl, bl := MemorySize(count)
	return Memory{Desc: make([]byte, dl), DescAddr: base, Bufs: make([]byte, bl), BufsAddr: base + 0x10000}
}

var testAddr = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}

func newTestNIC(t testing.TB, count int) (*NIC, *fakeMAC) {
	t.Helper()
	f := &fakeMAC{rx: memory(count, 0x90000000), tx: memory(count, 0x90100000), count: count}
	n, err := New(Config{Name: "enet1", Addr: testAddr, Ring: count, TxWait: time.Millisecond}, f, f.rx, f.tx)
	if err != nil {
		t.Fatal(err)
	}
	return n, f
}

func frameOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func buffers(n int) []*ipsec.Buffer {
	bufs := make([]*ipsec.Buffer, n)
	for i := range bufs {
		bufs[i] = ipsec.NewBuffer(ipsec.DefaultBufferSize)
	}
	return bufs
}

func TestNewAttachesAndStarts(t *testing.T) {
	n, f := newTestNIC(t, 4)
	if f.rxDesc != f.rx.DescAddr || f.txDesc != f.tx.DescAddr {
		t.Fatalf("rings attached at %#x/%#x, want %#x/%#x", f.rxDesc, f.txDesc, f.rx.DescAddr, f.tx.DescAddr)
	}
	if f.rxKicks != 1 {
		t.Fatalf("RDAR written %d times at start, want 1", f.rxKicks)
	}
	for i := 0; i < 4; i++ {
		d := desc(f.rx.Desc[i*descSize:])
		want := uint16(bdRxEmpty)
		if i == 3 {
			want |= bdWrap
		}
		if d.status() != want || binaryAddr(d) != f.rx.BufsAddr+uint32(i*BufferSize) {
			t.Fatalf("rx descriptor %d = status %#x addr %#x", i, d.status(), binaryAddr(d))
		}
	}
	if n.MTU() != 1500 || !bytes.Equal(n.MAC(), testAddr) || n.Name() != "enet1" {
		t.Fatalf("identity %s %d %s", n.Name(), n.MTU(), n.MAC())
	}
}

func TestNewRejectsBadGeometry(t *testing.T) {
	f := &fakeMAC{}
	good := memory(4, 0x90000000)
	cases := map[string]struct {
		cfg    Config
		rx, tx Memory
	}{
		"short address":    {Config{Addr: testAddr[:5], Ring: 4}, good, good},
		"ring too small":   {Config{Addr: testAddr, Ring: 1}, good, good},
		"memory too small": {Config{Addr: testAddr, Ring: 8}, good, good},
		"misaligned":       {Config{Addr: testAddr, Ring: 4}, Memory{Desc: good.Desc, DescAddr: 0x90000008, Bufs: good.Bufs, BufsAddr: good.BufsAddr}, good},
	}
	for name, c := range cases {
		if _, err := New(c.cfg, f, c.rx, c.tx); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestReadExactFramesInOrder(t *testing.T) {
	n, f := newTestNIC(t, 4)
	sizes := []int{42, 61, MaxFrameLen}
	for i, s := range sizes {
		if !f.arrive(frameOf(s, byte(i)), 0) {
			t.Fatal("ring full")
		}
	}
	bufs := buffers(8)
	k, err := n.Read(bufs)
	if err != nil || k != 3 {
		t.Fatalf("Read = %d, %v; want 3 frames", k, err)
	}
	for i, s := range sizes {
		if !bytes.Equal(bufs[i].Bytes(), frameOf(s, byte(i))) {
			t.Fatalf("frame %d: got %d octets, want %d exact", i, bufs[i].Len(), s)
		}
		if bufs[i].Headroom() != ipsec.DefaultHeadroom {
			t.Fatalf("frame %d: headroom %d, want %d", i, bufs[i].Headroom(), ipsec.DefaultHeadroom)
		}
	}
	st := n.Stats()
	if st.RxFrames != 3 || st.RxOctets != uint64(42+61+MaxFrameLen) {
		t.Fatalf("stats %+v", st)
	}
	if f.rxKicks != 2 {
		t.Fatalf("RDAR written %d times, want once at start and once after the drain", f.rxKicks)
	}
}

func TestReadWrapsAroundTheRing(t *testing.T) {
	n, f := newTestNIC(t, 4)
	bufs := buffers(3)
	for round := 0; round < 5; round++ {
		for i := 0; i < 3; i++ {
			if !f.arrive(frameOf(60+round, byte(10*round+i)), 0) {
				t.Fatalf("round %d: ring full: descriptors were not given back", round)
			}
		}
		k, err := n.Read(bufs)
		if err != nil || k != 3 {
			t.Fatalf("round %d: Read = %d, %v", round, k, err)
		}
		for i := 0; i < 3; i++ {
			if !bytes.Equal(bufs[i].Bytes(), frameOf(60+round, byte(10*round+i))) {
				t.Fatalf("round %d frame %d out of order or corrupt", round, i)
			}
		}
	}
	if d := desc(f.rx.Desc[3*descSize:]); d.status()&bdWrap == 0 {
		t.Fatal("last descriptor lost W when given back")
	}
}

func TestReadBatchesAtMostLenBufs(t *testing.T) {
	n, f := newTestNIC(t, 8)
	for i := 0; i < 5; i++ {
		f.arrive(frameOf(100, byte(i)), 0)
	}
	bufs := buffers(2)
	var got []int
	for len(got) < 3 {
		k, err := n.Read(bufs)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if got[0] != 2 || got[1] != 2 || got[2] != 1 {
		t.Fatalf("batches %v, want [2 2 1]", got)
	}
}

func TestReadSkipsAndCountsBadFrames(t *testing.T) {
	n, f := newTestNIC(t, 8)
	f.arrive(frameOf(80, 1), 0)
	f.arrive(frameOf(80, 2), bdRxCRC)
	f.arrive(frameOf(80, 3), bdRxOverrun)
	f.arrive(frameOf(10, 4), 0) // shorter than a header
	// A frame without L (spread over buffers) is an error too.
	f.arrive(frameOf(80, 5), 0)
	d := desc(f.rx.Desc[4*descSize:])
	d.setStatus(d.status() &^ bdLast)
	f.arrive(frameOf(80, 6), 0)

	bufs := buffers(4)
	k, err := n.Read(bufs)
	if err != nil || k != 2 {
		t.Fatalf("Read = %d, %v; want the 2 good frames", k, err)
	}
	if !bytes.Equal(bufs[0].Bytes(), frameOf(80, 1)) || !bytes.Equal(bufs[1].Bytes(), frameOf(80, 6)) {
		t.Fatal("good frames corrupted around bad ones")
	}
	st := n.Stats()
	if st.RxErrors != 3 || st.RxRunts != 1 {
		t.Fatalf("stats %+v, want 3 errors and 1 runt", st)
	}
}

func TestReadCountsFrameLongerThanBuffer(t *testing.T) {
	n, f := newTestNIC(t, 4)
	f.arrive(frameOf(1000, 1), 0)
	f.arrive(frameOf(100, 2), 0)
	small := ipsec.NewBuffer(ipsec.DefaultHeadroom + 500)
	k, err := n.Read([]*ipsec.Buffer{small})
	if err != nil || k != 1 || !bytes.Equal(small.Bytes(), frameOf(100, 2)) {
		t.Fatalf("Read = %d, %v, %d octets", k, err, small.Len())
	}
	if n.Stats().RxTooBig != 1 {
		t.Fatalf("stats %+v", n.Stats())
	}
}

func TestReadBlocksUntilInterruptOrClose(t *testing.T) {
	n, _ := newTestNIC(t, 4)
	done := make(chan error)
	go func() {
		_, err := n.Read(buffers(1))
		done <- err
	}()
	// A wake-up without a frame must not end Read.
	n.Interrupt()
	select {
	case err := <-done:
		t.Fatalf("Read returned %v with no frame", err)
	default:
	}
	n.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if _, err := n.Read(buffers(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read on closed port = %v", err)
	}
	if n.Stats().Wakeups != 1 {
		t.Fatalf("wakeups %d", n.Stats().Wakeups)
	}
}

func packets(frames ...[]byte) []*ipsec.Buffer {
	bufs := make([]*ipsec.Buffer, len(frames))
	for i, f := range frames {
		b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
		copy(b.Extend(len(f)), f)
		bufs[i] = b
	}
	return bufs
}

func TestWriteSendsPaddedFramesInOrder(t *testing.T) {
	n, f := newTestNIC(t, 4)
	frames := [][]byte{frameOf(42, 1), frameOf(MaxFrameLen, 2), frameOf(60, 3)}
	for round := 0; round < 3; round++ {
		k, err := n.Write(packets(frames...))
		if err != nil || k != 3 {
			t.Fatalf("round %d: Write = %d, %v", round, k, err)
		}
	}
	if len(f.wire) != 9 {
		t.Fatalf("%d frames on the wire, want 9", len(f.wire))
	}
	for i, w := range f.wire {
		want := frames[i%3]
		if len(want) < MinFrameLen {
			want = append(append([]byte(nil), want...), make([]byte, MinFrameLen-len(want))...)
		}
		if !bytes.Equal(w, want) {
			t.Fatalf("wire frame %d: %d octets differ from the %d written", i, len(w), len(want))
		}
	}
	if st := n.Stats(); st.TxFrames != 9 || st.TxOctets != 3*uint64(42+MaxFrameLen+60) {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriteDropsBadSizes(t *testing.T) {
	n, f := newTestNIC(t, 4)
	k, err := n.Write(packets(frameOf(13, 1), frameOf(100, 2), frameOf(MaxFrameLen+1, 3)))
	if k != 1 || !errors.Is(err, ErrFrameSize) {
		t.Fatalf("Write = %d, %v", k, err)
	}
	if len(f.wire) != 1 || !bytes.Equal(f.wire[0], frameOf(100, 2)) || n.Stats().TxSize != 2 {
		t.Fatalf("wire %d frames, stats %+v", len(f.wire), n.Stats())
	}
}

func TestWriteBoundsTheWaitForAStuckMAC(t *testing.T) {
	n, f := newTestNIC(t, 4)
	f.stuck = true
	k, err := n.Write(packets(frameOf(100, 1), frameOf(100, 2), frameOf(100, 3), frameOf(100, 4), frameOf(100, 5), frameOf(100, 6)))
	if k != 4 || !errors.Is(err, ErrTxBusy) || n.Stats().TxBusy != 2 {
		t.Fatalf("Write = %d, %v, stats %+v; want 4 queued and 2 dropped", k, err, n.Stats())
	}
	if f.txKicks == 0 {
		t.Fatal("queued frames were not started before waiting")
	}
	// Still stuck: the next frame is dropped without another wait.
	if k, err := n.Write(packets(frameOf(100, 7))); k != 0 || !errors.Is(err, ErrTxBusy) || n.Stats().TxBusy != 3 {
		t.Fatalf("stalled Write = %d, %v", k, err)
	}
	// The MAC recovers: the four queued frames go out, then new ones.
	f.stuck = false
	f.completeTx()
	if k, err := n.Write(packets(frameOf(100, 8))); k != 1 || err != nil {
		t.Fatalf("Write after recovery = %d, %v", k, err)
	}
	if len(f.wire) != 5 || !bytes.Equal(f.wire[4], frameOf(100, 8)) {
		t.Fatalf("wire has %d frames", len(f.wire))
	}
}

func TestReadWriteAllocateNothing(t *testing.T) {
	n, f := newTestNIC(t, 8)
	in := frameOf(600, 9)
	rx := buffers(4)
	tx := packets(frameOf(600, 1), frameOf(600, 2))
	f.discard = true
	allocs := testing.AllocsPerRun(100, func() {
		f.arrive(in, 0)
		f.arrive(in, 0)
		if k, err := n.Read(rx); k != 2 || err != nil {
			t.Fatalf("Read = %d, %v", k, err)
		}
		for _, b := range rx {
			b.Reset(ipsec.DefaultHeadroom)
		}
		if k, err := n.Write(tx); k != 2 || err != nil {
			t.Fatalf("Write = %d, %v", k, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.0f allocations per receive+transmit cycle, want 0", allocs)
	}
}

func BenchmarkReadWrite(b *testing.B) {
	n, f := newTestNIC(b, 64)
	in := frameOf(1400, 9)
	rx := buffers(1)
	f.discard = true
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		f.arrive(in, 0)
		if _, err := n.Read(rx); err != nil {
			b.Fatal(err)
		}
		if _, err := n.Write(rx); err != nil {
			b.Fatal(err)
		}
		rx[0].Reset(ipsec.DefaultHeadroom)
	}
}

// FuzzReceiveDescriptor feeds Read descriptors with any status and length
// the MAC could write: Read must never panic, and must deliver exactly
// length-FCS octets or count the frame.
func FuzzReceiveDescriptor(f *testing.F) {
	f.Add(uint16(bdLast), uint16(64), []byte("seed frame"))
	f.Add(uint16(bdLast|bdRxCRC), uint16(1518), []byte{})
	f.Add(uint16(0), uint16(3), []byte{1})
	f.Add(uint16(0xffff), uint16(0xffff), []byte{2})
	f.Fuzz(func(t *testing.T, status, length uint16, payload []byte) {
		n, m := newTestNIC(t, 2)
		d := desc(m.rx.Desc)
		copy(m.rx.Bufs, payload)
		d.setLength(int(length))
		d.setStatus(status &^ bdRxEmpty)
		// A second, valid frame proves the ring keeps going.
		m.rxNext = 1
		m.arrive(frameOf(60, 7), 0)
		bufs := buffers(2)
		k, err := n.Read(bufs)
		if err != nil || k < 1 || k > 2 {
			t.Fatalf("Read = %d, %v", k, err)
		}
		if k == 2 && bufs[0].Len() != int(length)-FCSLen {
			t.Fatalf("delivered %d octets for descriptor length %d", bufs[0].Len(), length)
		}
		if !bytes.Equal(bufs[k-1].Bytes(), frameOf(60, 7)) {
			t.Fatal("valid frame after the fuzzed one was lost")
		}
		st := n.Stats()
		if st.RxFrames+st.RxErrors+st.RxRunts+st.RxTooBig != 2 {
			t.Fatalf("a frame went uncounted: %+v", st)
		}
	})
}
