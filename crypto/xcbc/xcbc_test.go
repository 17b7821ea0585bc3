package xcbc

import (
	"bytes"
	"fmt"
	"hash"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

var _ hash.Hash = (*MAC)(nil)

const rfcKey = "000102030405060708090a0b0c0d0e0f"

// rfc3566Cases are the test cases of RFC 3566 §4.6. Messages are prefixes
// of 00 01 02 ..., except case 7, which is 1000 zero octets.
var rfc3566Cases = []struct {
	name  string
	msg   []byte
	mac   string
	mac96 string
}{
	{"#1 0-byte", counting(0), "75f0251d528ac01c4573dfd584d79f29", "75f0251d528ac01c4573dfd5"},
	{"#2 3-byte", counting(3), "5b376580ae2f19afe7219ceef172756f", "5b376580ae2f19afe7219cee"},
	{"#3 16-byte", counting(16), "d2a246fa349b68a79998a4394ff7a263", "d2a246fa349b68a79998a439"},
	{"#4 20-byte", counting(20), "47f51b4564966215b8985c63055ed308", "47f51b4564966215b8985c63"},
	{"#5 32-byte", counting(32), "f54f0ec8d2b9f3d36807734bd5283fd4", "f54f0ec8d2b9f3d36807734b"},
	{"#6 34-byte", counting(34), "becbb3bccdb518a30677d5481fb6b4d8", "becbb3bccdb518a30677d548"},
	{"#7 1000-byte", make([]byte, 1000), "f0dafee895db30253761103b5d84528f", "f0dafee895db30253761103b"},
}

func counting(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestRFC3566(t *testing.T) {
	m, err := New(testvec.MustHex(t, rfcKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rfc3566Cases {
		m.Reset()
		m.Write(tc.msg)
		got := m.Sum(nil)
		if want := testvec.MustHex(t, tc.mac); !bytes.Equal(got, want) {
			t.Errorf("test case %s: AES-XCBC-MAC %x, want %x", tc.name, got, want)
		}
		if want := testvec.MustHex(t, tc.mac96); !bytes.Equal(got[:12], want) {
			t.Errorf("test case %s: AES-XCBC-MAC-96 %x, want %x", tc.name, got[:12], want)
		}
	}
}

// TestChunkedWrites feeds every RFC 3566 message in chunks of every size
// from 1 to 40 octets, with a Sum between chunks that must not disturb the
// state.
func TestChunkedWrites(t *testing.T) {
	m, err := New(testvec.MustHex(t, rfcKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rfc3566Cases {
		want := testvec.MustHex(t, tc.mac)
		for chunk := 1; chunk <= 40; chunk++ {
			m.Reset()
			for off := 0; off < len(tc.msg); off += chunk {
				m.Write(tc.msg[off:min(off+chunk, len(tc.msg))])
				m.Sum(nil)
			}
			if got := m.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("test case %s in %d-octet chunks: %x, want %x", tc.name, chunk, got, want)
			}
		}
	}
}

// RFC 4434 §5: AES-XCBC-PRF-128 with 16-, 10- and 18-octet keys.
func TestRFC4434(t *testing.T) {
	msg := counting(20)
	for _, tc := range []struct{ key, out string }{
		{"000102030405060708090a0b0c0d0e0f", "47f51b4564966215b8985c63055ed308"},
		{"00010203040506070809", "0fa087af7d866e7653434e602fdde835"},
		{"000102030405060708090a0b0c0d0e0fedcb", "8cd3c93ae598a9803006ffb67c40e9e4"},
	} {
		key := testvec.MustHex(t, tc.key)
		m, err := NewPRF128(key)
		if err != nil {
			t.Fatalf("%d-octet key: %v", len(key), err)
		}
		m.Write(msg)
		if got, want := m.Sum(nil), testvec.MustHex(t, tc.out); !bytes.Equal(got, want) {
			t.Errorf("%d-octet key: PRF %x, want %x", len(key), got, want)
		}
	}
}

func TestNewRejectsKeySizes(t *testing.T) {
	for _, n := range []int{0, 15, 17, 24, 32} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-octet key", n)
		}
	}
	m, err := New(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if m.Size() != 16 || m.BlockSize() != 16 {
		t.Fatalf("Size %d BlockSize %d", m.Size(), m.BlockSize())
	}
}

func TestAllocs(t *testing.T) {
	m, err := New(testvec.MustHex(t, rfcKey))
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 1400)
	tag := make([]byte, 0, Size)
	allocs := testing.AllocsPerRun(100, func() {
		m.Write(msg[:37])
		m.Write(msg[37:])
		tag = m.Sum(tag[:0])
		m.Reset()
	})
	if allocs != 0 {
		t.Fatalf("Write+Sum+Reset: %v allocations per run, want 0", allocs)
	}
}

func BenchmarkXCBC(b *testing.B) {
	for _, size := range []int{16, 64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m, err := New(make([]byte, KeySize))
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, size)
			tag := make([]byte, 0, Size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset()
				m.Write(msg)
				tag = m.Sum(tag[:0])
			}
		})
	}
}
