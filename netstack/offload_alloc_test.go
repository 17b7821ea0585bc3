package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// trainSink is a sinkNIC that takes trains of every kind and counts them.
type trainSink struct {
	sinkNIC
	trains, trainFrames int64
}

func (n *trainSink) TxOffloads() TxOffloads {
	return TxOffloads{Kinds: OffloadKindsOf(OffloadTCPv4, OffloadTCPv6, OffloadUDP), MaxFrames: 64}
}

func (n *trainSink) WriteTrains(bufs []*ipsec.Buffer, trains []Train) (int, error) {
	for _, t := range trains {
		if t.Kind != OffloadNone {
			n.trains++
			n.trainFrames += int64(t.Frames)
		}
	}
	n.frames.Add(int64(len(bufs)))
	return len(bufs), nil
}

// trainTransitSetup is benchSetup with a black NIC that takes trains and
// the engine sealing ESP in UDP.
func trainTransitSetup(tb testing.TB, size int) (*Stack, *rxLoop, *trainSink, []byte) {
	s, l, _, frame := benchSetup(tb, benchEngine(tb, true), size)
	black := &trainSink{sinkNIC: sinkNIC{mac: benchBlackMAC}}
	s.ports[Black].nic, s.ports[Black].offload = black, black
	return s, l, black, frame
}

// TestTransitTrainAllocations: red to black in UDP trains, with the
// real engine, allocates nothing, and the sealed packets do form trains.
func TestTransitTrainAllocations(t *testing.T) {
	s, l, black, frame := trainTransitSetup(t, 1400)
	allocs := testing.AllocsPerRun(100, func() {
		for range 32 {
			forwardOne(s, l, frame)
		}
		l.flush()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 32", allocs)
	}
	if black.trains == 0 || black.trainFrames < 100*32 {
		t.Fatalf("%d trains of %d frames", black.trains, black.trainFrames)
	}
}

// tcpInner returns in-order TCP segments of size octets (IP packet) from
// 192.168.2.10 to 192.168.1.10, with valid checksums and counting IDs.
func tcpInner(size int) func(int) []byte {
	p := make([]byte, size)
	return func(i int) []byte {
		clear(p)
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(size))
		binary.BigEndian.PutUint16(p[4:], uint16(i))
		p[6] = 0x40
		p[8], p[9] = 64, protoTCP
		copy(p[12:], []byte{192, 168, 2, 10})
		copy(p[16:], []byte{192, 168, 1, 10})
		binary.BigEndian.PutUint16(p[10:], ^checksum.Checksum(p[:20], 0))
		tcp := p[20:]
		binary.BigEndian.PutUint16(tcp[0:], 5201)
		binary.BigEndian.PutUint16(tcp[2:], 40000)
		binary.BigEndian.PutUint32(tcp[4:], uint32(1+i*(size-40)))
		binary.BigEndian.PutUint32(tcp[8:], 77)
		tcp[12], tcp[13] = 5<<4, tcpFlagACK
		binary.BigEndian.PutUint16(tcp[14:], 1000)
		for k := 20; k < len(tcp); k++ {
			tcp[k] = byte(k + i)
		}
		binary.BigEndian.PutUint16(tcp[16:], ^checksum.Checksum(tcp, rawPseudoSum(p, false, protoTCP, len(tcp))))
		return p
	}
}

// TestDecapTrainAllocations: black to red, decrypting ESP in UDP and
// joining the TCP segments into trains, allocates nothing.
func TestDecapTrainAllocations(t *testing.T) {
	red := &trainSink{sinkNIC: sinkNIC{mac: benchRedMAC}}
	s, l, gen := decapSetupWith(t, 1400, red, true, tcpInner(1400))
	frames := gen(101 * 32)
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		for range 32 {
			forwardOne(s, l, frames[i])
			i++
		}
		l.flush()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 32", allocs)
	}
	if red.frames.Load() != int64(i) || red.trains == 0 || red.trainFrames < int64(i)/2 {
		t.Fatalf("%d of %d packets reached red, %d trains of %d frames (%+v)", red.frames.Load(), i, red.trains, red.trainFrames, s.Counters())
	}
}

// BenchmarkTransitTrainsESP1400 is BenchmarkTransitESP1400 with ESP in
// UDP and a black NIC that takes trains, in batches of 64.
func BenchmarkTransitTrainsESP1400(b *testing.B) {
	s, l, black, frame := trainTransitSetup(b, 1400)
	b.SetBytes(1400)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		forwardOne(s, l, frame)
		if i%64 == 63 {
			l.flush()
		}
	}
	l.flush()
	b.StopTimer()
	if black.frames.Load() != int64(b.N) {
		b.Fatalf("forwarded %d of %d", black.frames.Load(), b.N)
	}
}

// BenchmarkDecapTrainsESP1400 is BenchmarkDecapESP1400 with TCP inside
// and a red NIC that takes trains, in batches of 64.
func BenchmarkDecapTrainsESP1400(b *testing.B) {
	red := &trainSink{sinkNIC: sinkNIC{mac: benchRedMAC}}
	s, l, gen := decapSetupWith(b, 1400, red, true, tcpInner(1400))
	b.SetBytes(1400)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		frames := gen(min(4096, b.N-done))
		b.StartTimer()
		for k, f := range frames {
			forwardOne(s, l, f)
			if k%64 == 63 {
				l.flush()
			}
		}
		l.flush()
		done += len(frames)
	}
	b.StopTimer()
	if red.frames.Load() != int64(b.N) {
		b.Fatalf("decapsulated %d of %d", red.frames.Load(), b.N)
	}
}
