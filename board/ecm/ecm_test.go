package ecm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
)

var devAddr = net.HardwareAddr{2, 0, 0, 0, 0, 0x10}

func newPort(t testing.TB, queue int) *Port {
	t.Helper()
	p, err := New(Config{Name: "usb", Addr: devAddr, ControlInterface: 0, Queue: queue, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
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

func packet(f []byte) *ipsec.Buffer {
	b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	copy(b.Extend(len(f)), f)
	return b
}

func TestHostToDevice(t *testing.T) {
	p := newPort(t, 4)
	next, _ := p.HostOut(frameOf(60, 1), nil)
	if len(next) != transferLen {
		t.Fatalf("next OUT transfer of %d octets, want %d", len(next), transferLen)
	}
	p.HostOut(frameOf(MaxFrameLen, 2), nil)
	p.HostOut(frameOf(13, 3), nil)            // shorter than a header
	p.HostOut(frameOf(MaxFrameLen+1, 4), nil) // longer than a frame
	bufs := buffers(4)
	n, err := p.Read(bufs)
	if err != nil || n != 2 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if !bytes.Equal(bufs[0].Bytes(), frameOf(60, 1)) || !bytes.Equal(bufs[1].Bytes(), frameOf(MaxFrameLen, 2)) ||
		bufs[0].Headroom() != ipsec.DefaultHeadroom {
		t.Fatal("frames corrupted")
	}
	if st := p.Stats(); st.RxFrames != 2 || st.RxErrors != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReceiveQueueFullDropsAndRecovers(t *testing.T) {
	p := newPort(t, 2)
	for i := range 3 {
		p.HostOut(frameOf(100, byte(i)), nil)
	}
	if p.Stats().RxDropped != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
	bufs := buffers(8)
	if n, _ := p.Read(bufs); n != 2 {
		t.Fatalf("Read = %d", n)
	}
	p.HostOut(frameOf(100, 9), nil)
	if n, _ := p.Read(bufs); n != 1 || !bytes.Equal(bufs[0].Bytes(), frameOf(100, 9)) {
		t.Fatal("slots not returned after Read")
	}
}

func TestDeviceToHost(t *testing.T) {
	p := newPort(t, 2)
	if n, err := p.Write([]*ipsec.Buffer{packet(frameOf(42, 1)), packet(frameOf(MaxFrameLen, 2))}); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	// Both slots are taken: the third frame is dropped.
	if n, err := p.Write([]*ipsec.Buffer{packet(frameOf(50, 3))}); n != 0 || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Write on a full queue = %d, %v", n, err)
	}
	f, _ := p.HostIn(nil, nil)
	if !bytes.Equal(f, frameOf(42, 1)) {
		t.Fatal("first frame wrong")
	}
	// The frame in flight still holds its slot until the next HostIn.
	if n, _ := p.Write([]*ipsec.Buffer{packet(frameOf(50, 4))}); n != 0 {
		t.Fatal("slot of the frame in flight was reused")
	}
	f, _ = p.HostIn(nil, nil)
	if !bytes.Equal(f, frameOf(MaxFrameLen, 2)) {
		t.Fatal("second frame wrong")
	}
	if n, _ := p.Write([]*ipsec.Buffer{packet(frameOf(50, 5))}); n != 1 {
		t.Fatal("slot not recycled")
	}
	if f, _ = p.HostIn(nil, nil); !bytes.Equal(f, frameOf(50, 5)) {
		t.Fatal("third frame wrong")
	}
	if f, _ = p.HostIn(nil, nil); f != nil {
		t.Fatalf("HostIn with nothing queued returned %d octets", len(f))
	}
	if st := p.Stats(); st.TxFrames != 3 || st.TxDropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if n, err := p.Write([]*ipsec.Buffer{packet(frameOf(13, 0))}); n != 0 || !errors.Is(err, ErrFrameSize) {
		t.Fatalf("short frame: %d, %v", n, err)
	}
}

func TestNotifyReportsConnectedOnce(t *testing.T) {
	p, err := New(Config{Name: "usb", Addr: devAddr, ControlInterface: 2, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := p.Notify(nil, nil)
	// bmRequestType A1, NETWORK_CONNECTION 00, wValue 1, wIndex 2, wLength 0.
	if got := hex.EncodeToString(n); got != "a100010002000000" {
		t.Fatalf("notification %s", got)
	}
	if n, _ = p.Notify(nil, nil); n != nil {
		t.Fatal("notified twice")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	p := newPort(t, 2)
	done := make(chan error)
	go func() {
		_, err := p.Read(buffers(1))
		done <- err
	}()
	p.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestDataPathAllocatesNothing(t *testing.T) {
	p := newPort(t, 4)
	in, out := frameOf(600, 1), []*ipsec.Buffer{packet(frameOf(600, 2))}
	rx := buffers(2)
	allocs := testing.AllocsPerRun(100, func() {
		p.HostOut(in, nil)
		if n, err := p.Read(rx); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
		rx[0].Reset(ipsec.DefaultHeadroom)
		if n, err := p.Write(out); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if f, _ := p.HostIn(nil, nil); len(f) != 600 {
			t.Fatal("HostIn")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.0f allocations per frame each way", allocs)
	}
}
