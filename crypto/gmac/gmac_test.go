package gmac

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

// The GCM specification's test cases with an empty plaintext (McGrew and
// Viega, "The Galois/Counter Mode of Operation", test cases 1, 7 and 13):
// zero keys of each size, a zero 96-bit IV and no data.
func TestGCMSpecEmptyPlaintext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keyLen int
		tag    string
	}{
		{"test case 1", 16, "58e2fccefa7e3061367f1d57a4e7455a"},
		{"test case 7", 24, "cd33b28ac773f74ba00ed1f312572435"},
		{"test case 13", 32, "530f8afbc74536b9a963b4f1c4cb738b"},
	} {
		g, err := New(make([]byte, tc.keyLen), 12)
		if err != nil {
			t.Fatal(err)
		}
		nonce := make([]byte, 12)
		want := testvec.MustHex(t, tc.tag)
		if got := g.Tag(nil, nonce, nil); !bytes.Equal(got, want) {
			t.Errorf("%s: tag %x, want %x", tc.name, got, want)
		}
		if !g.Verify(nonce, nil, want) {
			t.Errorf("%s: Verify rejected the tag", tc.name)
		}
	}
}

// TestWycheproof runs every test of aes_gmac_test.json. A valid test must
// produce its tag and verify; an invalid one must not verify, or have an IV
// size that New rejects (crypto/cipher refuses empty nonces). A valid test
// that New cannot handle fails.
func TestWycheproof(t *testing.T) {
	const file = "aes_gmac_test.json"
	var v testvec.MACWithIVFile
	testvec.Wycheproof(t, file, &v)
	var n testvec.Tally
	var rejectedAtNew int
	for _, g := range v.TestGroups {
		if g.TagSize != 8*TagSize {
			t.Fatalf("group with %d-bit tags: RFC 4543 uses only 128-bit tags; extend this test", g.TagSize)
		}
		for _, tc := range g.Tests {
			name := fmt.Sprintf("tcId %d (%s, %d-bit IV)", tc.TcID, tc.Comment, g.IVSize)
			n.Count(t, name, tc.Result)
			m, err := New(tc.Key, len(tc.IV))
			if err != nil {
				if tc.Result == testvec.Valid {
					t.Errorf("%s: New rejected a valid vector: %v", name, err)
				}
				rejectedAtNew++
				continue
			}
			if ok := m.Verify(tc.IV, tc.Msg, tc.Tag); ok != (tc.Result == testvec.Valid) {
				t.Errorf("%s: Verify = %v, want result %s", name, ok, tc.Result)
			}
			if tc.Result == testvec.Valid {
				if got := m.Tag(nil, tc.IV, tc.Msg); !bytes.Equal(got, tc.Tag) {
					t.Errorf("%s: tag %x, want %x", name, got, tc.Tag)
				}
			}
		}
	}
	n.RanAll(t, file, v.NumberOfTests)
	t.Logf("%s: %v (%d of them rejected by New for their IV size)", file, n, rejectedAtNew)
}

func TestVerifyRejectsMalformed(t *testing.T) {
	key := testvec.MustHex(t, "000102030405060708090a0b0c0d0e0f")
	g, err := New(key, 12)
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("salt+iv-8oct")
	data := []byte("ESP header, IV, payload and trailer")
	tag := g.Tag(nil, nonce, data)
	if !g.Verify(nonce, data, tag) {
		t.Fatal("Verify rejected its own tag")
	}
	for _, n := range []int{0, 1, 12, 15} {
		if g.Verify(nonce, data, tag[:n]) {
			t.Errorf("Verify accepted a %d-octet prefix of the tag", n)
		}
	}
	if g.Verify(nonce[:11], data, tag) || g.Verify(append(nonce, 0), data, tag) {
		t.Error("Verify accepted a nonce of the wrong length")
	}
	// A GCM encryption of one octet under the same key, nonce and
	// additional data is 17 octets: ciphertext and a valid GCM tag. It
	// must not pass as a GMAC tag.
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	if forged := gcm.Seal(nil, nonce, []byte{0x42}, data); g.Verify(nonce, data, forged) {
		t.Error("Verify accepted a GCM ciphertext with a non-empty message")
	}
	for i := range tag {
		bad := append([]byte{}, tag...)
		bad[i] ^= 0x80
		if g.Verify(nonce, data, bad) {
			t.Errorf("Verify accepted a tag with octet %d changed", i)
		}
	}
	if g.Verify(nonce, data[1:], tag) {
		t.Error("Verify accepted shortened data")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(make([]byte, 15), 12); err == nil {
		t.Error("New accepted a 15-octet key")
	}
	if _, err := New(make([]byte, 16), 0); err == nil {
		t.Error("New accepted an empty nonce")
	}
	g, err := New(make([]byte, 32), 12)
	if err != nil {
		t.Fatal(err)
	}
	if g.NonceSize() != 12 {
		t.Errorf("NonceSize %d", g.NonceSize())
	}
	got := g.Tag([]byte("hdr"), make([]byte, 12), nil)
	if len(got) != 3+TagSize || string(got[:3]) != "hdr" {
		t.Errorf("Tag did not append to dst: %x", got)
	}
}

func TestAllocs(t *testing.T) {
	g, err := New(make([]byte, 16), 12)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	data := make([]byte, 1400)
	tag := make([]byte, 0, TagSize)
	ok := false
	allocs := testing.AllocsPerRun(100, func() {
		tag = g.Tag(tag[:0], nonce, data)
		ok = g.Verify(nonce, data, tag)
	})
	if !ok {
		t.Fatal("Verify rejected the tag")
	}
	if allocs != 0 {
		t.Fatalf("Tag+Verify: %v allocations per run, want 0", allocs)
	}
}

func BenchmarkTag(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			g, err := New(make([]byte, 16), 12)
			if err != nil {
				b.Fatal(err)
			}
			nonce, data := make([]byte, 12), make([]byte, size)
			tag := make([]byte, 0, TagSize)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				tag = g.Tag(tag[:0], nonce, data)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			g, err := New(make([]byte, 16), 12)
			if err != nil {
				b.Fatal(err)
			}
			nonce, data := make([]byte, 12), make([]byte, size)
			tag := g.Tag(nil, nonce, data)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if !g.Verify(nonce, data, tag) {
					b.Fatal("Verify failed")
				}
			}
		})
	}
}
