package cmac

import (
	"bytes"
	"crypto/aes"
	"crypto/des"
	"crypto/subtle"
	"fmt"
	"hash"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

var _ hash.Hash = (*MAC)(nil)

// rfc4493Key and rfc4493Msg are the key and the 64-octet message whose
// prefixes RFC 4493 §4 and RFC 4494 §4 use.
const (
	rfc4493Key = "2b7e151628aed2a6abf7158809cf4f3c"
	rfc4493Msg = "6bc1bee22e409f96e93d7e117393172a" +
		"ae2d8a571e03ac9c9eb76fac45af8e51" +
		"30c81c46a35ce411e5fbc1191a0a52ef" +
		"f69f2445df4f9b17ad2b417be66c3710"
)

func newAESCMAC(t testing.TB, key []byte) *MAC {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRFC4493Subkeys(t *testing.T) {
	b, err := aes.NewCipher(testvec.MustHex(t, rfc4493Key))
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := subkeys(b)
	if got, want := k1[:], testvec.MustHex(t, "fbeed618357133667c85e08f7236a8de"); !bytes.Equal(got, want) {
		t.Errorf("K1 = %x, want %x", got, want)
	}
	if got, want := k2[:], testvec.MustHex(t, "f7ddac306ae266ccf90bc11ee46d513b"); !bytes.Equal(got, want) {
		t.Errorf("K2 = %x, want %x", got, want)
	}
}

// RFC 4493 §4 examples 1-4 and RFC 4494 §4 (AES-CMAC-96, the same inputs).
var rfc4493Examples = []struct {
	msgLen int
	tag    string
	cmac96 string
	name   string
}{
	{0, "bb1d6929e95937287fa37d129b756746", "bb1d6929e95937287fa37d12", "Example 1: len = 0"},
	{16, "070a16b46b4d4144f79bdd9dd04a287c", "070a16b46b4d4144f79bdd9d", "Example 2: len = 16"},
	{40, "dfa66747de9ae63030ca32611497c827", "dfa66747de9ae63030ca3261", "Example 3: len = 40"},
	{64, "51f0bebf7e3b9d92fc49741779363cfe", "51f0bebf7e3b9d92fc497417", "Example 4: len = 64"},
}

func TestRFC4493(t *testing.T) {
	m := newAESCMAC(t, testvec.MustHex(t, rfc4493Key))
	msg := testvec.MustHex(t, rfc4493Msg)
	for _, ex := range rfc4493Examples {
		m.Reset()
		m.Write(msg[:ex.msgLen])
		got := m.Sum(nil)
		if want := testvec.MustHex(t, ex.tag); !bytes.Equal(got, want) {
			t.Errorf("%s: tag %x, want %x", ex.name, got, want)
		}
		// RFC 4494: AES-CMAC-96 is the first 96 bits of the tag.
		if want := testvec.MustHex(t, ex.cmac96); !bytes.Equal(got[:12], want) {
			t.Errorf("%s: AES-CMAC-96 %x, want %x", ex.name, got[:12], want)
		}
	}
}

// TestSplitWrites checks that the tag does not depend on how the message is
// cut into Writes, across every split of the RFC 4493 message around the
// block boundaries, and that Sum leaves the state alone.
func TestSplitWrites(t *testing.T) {
	m := newAESCMAC(t, testvec.MustHex(t, rfc4493Key))
	msg := testvec.MustHex(t, rfc4493Msg)
	for _, ex := range rfc4493Examples {
		want := testvec.MustHex(t, ex.tag)
		in := msg[:ex.msgLen]
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				m.Reset()
				m.Write(in[:i])
				m.Sum(nil) // must not disturb the state
				m.Write(in[i:j])
				m.Write(in[j:])
				if got := m.Sum(nil); !bytes.Equal(got, want) {
					t.Fatalf("%s split at %d,%d: %x, want %x", ex.name, i, j, got, want)
				}
			}
		}
		// One octet at a time.
		m.Reset()
		for i := range in {
			m.Write(in[i : i+1])
		}
		if got := m.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("%s octet by octet: %x, want %x", ex.name, got, want)
		}
	}
}

func TestSumAppends(t *testing.T) {
	m := newAESCMAC(t, testvec.MustHex(t, rfc4493Key))
	got := m.Sum([]byte("prefix"))
	want := append([]byte("prefix"), testvec.MustHex(t, rfc4493Examples[0].tag)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("Sum(prefix) = %x, want %x", got, want)
	}
	if m.Size() != 16 || m.BlockSize() != 16 {
		t.Fatalf("Size %d BlockSize %d", m.Size(), m.BlockSize())
	}
}

// RFC 4615 §4: AES-CMAC-PRF-128 with 18-, 16- and 10-octet keys.
func TestRFC4615(t *testing.T) {
	msg := testvec.MustHex(t, "000102030405060708090a0b0c0d0e0f10111213")
	for _, tc := range []struct{ key, out string }{
		{"000102030405060708090a0b0c0d0e0fedcb", "84a348a4a45d235babfffc0d2b4da09a"},
		{"000102030405060708090a0b0c0d0e0f", "980ae87b5f4c9c5214f5b6a8455e4c2d"},
		{"00010203040506070809", "290d9e112edb09ee141fcf64c0b72f3d"},
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

func TestNewRejectsOtherBlockSizes(t *testing.T) {
	b, err := des.NewCipher(make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(b); err == nil {
		t.Fatal("New accepted a cipher with an 8-octet block")
	}
}

// TestWycheproof runs every test of aes_cmac_test.json. Keys that AES
// rejects count as rejected; they must be invalid vectors.
func TestWycheproof(t *testing.T) {
	const file = "aes_cmac_test.json"
	var v testvec.MACFile
	testvec.Wycheproof(t, file, &v)
	var n testvec.Tally
	var rejected int
	for _, g := range v.TestGroups {
		for _, tc := range g.Tests {
			name := fmt.Sprintf("tcId %d (%s)", tc.TcID, tc.Comment)
			n.Count(t, name, tc.Result)
			b, err := aes.NewCipher(tc.Key)
			if err != nil {
				if tc.Result == testvec.Valid {
					t.Errorf("%s: valid key rejected: %v", name, err)
				}
				rejected++
				continue
			}
			m, err := New(b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			m.Write(tc.Msg)
			tag := m.Sum(nil)[:g.TagSize/8]
			ok := subtle.ConstantTimeCompare(tag, tc.Tag) == 1
			if ok != (tc.Result == testvec.Valid) {
				t.Errorf("%s: verified %v, want result %s (tag %x, vector %x)", name, ok, tc.Result, tag, tc.Tag)
			}
		}
	}
	n.RanAll(t, file, v.NumberOfTests)
	t.Logf("%s: %v (%d of them rejected at key setup)", file, n, rejected)
}

func TestAllocs(t *testing.T) {
	m := newAESCMAC(t, testvec.MustHex(t, rfc4493Key))
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

func BenchmarkCMAC(b *testing.B) {
	for _, size := range []int{16, 64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m := newAESCMAC(b, make([]byte, 16))
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
