package ccm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

func newAESCCM(t testing.TB, key []byte, tagSize, nonceSize int) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(b, tagSize, nonceSize)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type kat struct {
	name                    string
	key, nonce, aad, pt, ct []byte // ct includes the tag
	tagSize                 int
}

// checkKAT seals and opens one known answer, both into fresh buffers and
// in place.
func checkKAT(t *testing.T, v kat) {
	t.Helper()
	a := newAESCCM(t, v.key, v.tagSize, len(v.nonce))
	if got := a.Seal(nil, v.nonce, v.pt, v.aad); !bytes.Equal(got, v.ct) {
		t.Errorf("%s: Seal = %x, want %x", v.name, got, v.ct)
	}
	if got, err := a.Open(nil, v.nonce, v.ct, v.aad); err != nil || !bytes.Equal(got, v.pt) {
		t.Errorf("%s: Open = %x, %v; want %x", v.name, got, err, v.pt)
	}
	buf := make([]byte, len(v.pt), len(v.ct))
	copy(buf, v.pt)
	sealed := a.Seal(buf[:0], v.nonce, buf, v.aad)
	if &sealed[0] != &buf[0] || !bytes.Equal(sealed, v.ct) {
		t.Errorf("%s: in-place Seal = %x, want %x", v.name, sealed, v.ct)
	}
	opened, err := a.Open(sealed[:0], v.nonce, sealed, v.aad)
	if err != nil || !bytes.Equal(opened, v.pt) {
		t.Errorf("%s: in-place Open = %x, %v; want %x", v.name, opened, err, v.pt)
	}
}

func TestRFC3610(t *testing.T) {
	// RFC 3610 §8 packet vectors: the packet's first len(aad) octets are
	// the cleartext header (additional data), the rest is the payload.
	key1 := "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	key2 := "d7828d13b2b0bdc325a76236df93cc6b"
	for _, v := range []struct {
		n                       int
		key, nonce, aad, pt, ct string
		tagSize                 int
	}{
		{1, key1, "00000003020100a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e", "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0", 8},
		{2, key1, "00000004030201a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916", 8},
		{3, key1, "00000005040302a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5", 8},
		{4, key1, "00000006050403a0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e", "a28c6865939a9a79faaa5c4c2a9d4a91cdac8c96c861b9c9e61ef1", 8},
		{7, key1, "00000009080706a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e", "0135d1b2c95f41d5d1d4fec185d166b8094e999dfed96c048c56602c97acbb7490", 10},
		{12, key1, "0000000e0d0c0ba0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e1f20", "c0ffa0d6f05bdb67f24d43a4338d2aa4bed7b20e43cd1aa31662e7ad65d6db", 10},
		{13, key2, "00412b4ea9cdbe3c9696766cfa", "0be1a88bace018b1", "08e8cf97d820ea258460e96ad9cf5289054d895ceac47c", "4cb97f86a2a4689a877947ab8091ef5386a6ffbdd080f8e78cf7cb0cddd7b3", 8},
		{17, key2, "00f8b678094e3b3c9696766cfa", "77b60f011c03e1525899bcae", "e88b6a46c78d63e52eb8c546efb5de6f75e9cc0d", "5545ff1a085ee2efbf52b2e04bee1e2336c73e3f762c0c7744fe7e3c", 8},
		{21, key2, "0027ca0c7120bc3c9696766cfa", "44a3aa3aae6475ca", "a434a8e58500c6e41530538862d686ea9e81301b5ae4226bfa", "f2beed7bc5098e83feb5b31608f8e29c38819a89c8e776f1544d4151a4ed3a8b87b9ce", 10},
		{24, key2, "008d493b30ae8b3c9696766cfa", "6e37a6ef546d955d34ab6059", "abf21c0b02feb88f856df4a37381bce3cc128517d4", "f32905b88a641b04b9c9ffb58cc390900f3da12ab16dce9e82efa16da62059", 10},
	} {
		checkKAT(t, kat{
			name:    fmt.Sprintf("RFC 3610 packet vector #%d", v.n),
			key:     testvec.MustHex(t, v.key),
			nonce:   testvec.MustHex(t, v.nonce),
			aad:     testvec.MustHex(t, v.aad),
			pt:      testvec.MustHex(t, v.pt),
			ct:      testvec.MustHex(t, v.ct),
			tagSize: v.tagSize,
		})
	}
}

func TestSP800_38C(t *testing.T) {
	key := testvec.MustHex(t, "404142434445464748494a4b4c4d4e4f")
	// Example 4's associated data is 2^16 octets of 00 01 .. ff repeated,
	// long enough for the 0xff 0xfe length encoding.
	long := make([]byte, 1<<16)
	for i := range long {
		long[i] = byte(i)
	}
	for _, v := range []struct {
		name               string
		nonce, aad, pt, ct string
		longAAD            bool
		tagSize            int
	}{
		{"C.1", "10111213141516", "0001020304050607", "20212223", "7162015b4dac255d", false, 4},
		{"C.2", "1011121314151617", "000102030405060708090a0b0c0d0e0f", "202122232425262728292a2b2c2d2e2f",
			"d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd", false, 6},
		{"C.3", "101112131415161718191a1b", "000102030405060708090a0b0c0d0e0f10111213",
			"202122232425262728292a2b2c2d2e2f3031323334353637",
			"e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951", false, 8},
		{"C.4", "101112131415161718191a1b1c", "", "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
			"69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72b4ac6bec93e8598e7f0dadbcea5b", true, 14},
	} {
		aad := testvec.MustHex(t, v.aad)
		if v.longAAD {
			aad = long
		}
		checkKAT(t, kat{
			name:    "SP 800-38C " + v.name,
			key:     key,
			nonce:   testvec.MustHex(t, v.nonce),
			aad:     aad,
			pt:      testvec.MustHex(t, v.pt),
			ct:      testvec.MustHex(t, v.ct),
			tagSize: v.tagSize,
		})
	}
}

// TestWycheproof runs every test of aes_ccm_test.json. Valid tests must
// seal to ct||tag and open to msg. Invalid ones must fail to open, or have
// parameters (nonce or tag size) that New rejects.
func TestWycheproof(t *testing.T) {
	const file = "aes_ccm_test.json"
	var v testvec.AEADFile
	testvec.Wycheproof(t, file, &v)
	var n testvec.Tally
	var rejectedAtNew int
	for _, g := range v.TestGroups {
		for _, tc := range g.Tests {
			name := fmt.Sprintf("tcId %d (%s, %d-bit IV, %d-bit tag)", tc.TcID, tc.Comment, g.IVSize, g.TagSize)
			n.Count(t, name, tc.Result)
			b, err := aes.NewCipher(tc.Key)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			a, err := New(b, g.TagSize/8, len(tc.IV))
			if err != nil {
				if tc.Result == testvec.Valid {
					t.Errorf("%s: New rejected a valid vector: %v", name, err)
				}
				rejectedAtNew++
				continue
			}
			sealed := tc.Sealed()
			opened, err := a.Open(nil, tc.IV, sealed, tc.AAD)
			if tc.Result == testvec.Invalid {
				if err == nil {
					t.Errorf("%s: invalid vector opened to %x", name, opened)
				}
				continue
			}
			if err != nil || !bytes.Equal(opened, tc.Msg) {
				t.Errorf("%s: Open = %x, %v; want %x", name, opened, err, tc.Msg)
			}
			if got := a.Seal(nil, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(got, sealed) {
				t.Errorf("%s: Seal = %x, want %x", name, got, sealed)
			}
		}
	}
	n.RanAll(t, file, v.NumberOfTests)
	t.Logf("%s: %v (%d of them rejected by New for their nonce or tag size)", file, n, rejectedAtNew)
}

func TestNewRejects(t *testing.T) {
	b, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []int{0, 2, 3, 5, 15, 17, 18} {
		if _, err := New(b, tag, 11); err == nil {
			t.Errorf("New accepted tag size %d", tag)
		}
	}
	for _, nonce := range []int{0, 6, 14, 16} {
		if _, err := New(b, 16, nonce); err == nil {
			t.Errorf("New accepted nonce size %d", nonce)
		}
	}
	d, err := des.NewCipher(make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(d, 8, 11); err == nil {
		t.Error("New accepted a cipher with an 8-octet block")
	}
}

// refSeal is CCM assembled from crypto/cipher's CBC and CTR straight from
// RFC 3610 §2: the CBC-MAC is the last block of the CBC encryption of
// B_0 || encoded a || m under a zero IV. It allocates freely and serves as
// the differential oracle for the batched implementation.
func refSeal(b cipher.Block, tagSize int, nonce, pt, aad []byte) []byte {
	l := 15 - len(nonce)
	var b0 [16]byte
	b0[0] = byte((tagSize-2)/2)<<3 | byte(l-1)
	if len(aad) > 0 {
		b0[0] |= 0x40
	}
	copy(b0[1:], nonce)
	var lm [8]byte
	binary.BigEndian.PutUint64(lm[:], uint64(len(pt)))
	copy(b0[16-l:], lm[8-l:])

	pad := func(p []byte) []byte {
		for len(p)%16 != 0 {
			p = append(p, 0)
		}
		return p
	}
	macIn := append([]byte{}, b0[:]...)
	if len(aad) > 0 {
		var enc []byte
		switch {
		case len(aad) < 0xff00:
			enc = binary.BigEndian.AppendUint16(nil, uint16(len(aad)))
		case uint64(len(aad)) < 1<<32:
			enc = binary.BigEndian.AppendUint32([]byte{0xff, 0xfe}, uint32(len(aad)))
		default:
			enc = binary.BigEndian.AppendUint64([]byte{0xff, 0xff}, uint64(len(aad)))
		}
		macIn = append(macIn, pad(append(enc, aad...))...)
	}
	macIn = append(macIn, pad(append([]byte{}, pt...))...)
	cbc := make([]byte, len(macIn))
	cipher.NewCBCEncrypter(b, make([]byte, 16)).CryptBlocks(cbc, macIn)
	t := cbc[len(cbc)-16:]

	a := make([]byte, 16)
	a[0] = byte(l - 1)
	copy(a[1:], nonce)
	s0 := make([]byte, 16)
	b.Encrypt(s0, a)
	a[15] = 1 // A_1; CTR's 128-bit increment stays inside the counter field for valid lengths
	out := make([]byte, len(pt), len(pt)+tagSize)
	cipher.NewCTR(b, a).XORKeyStream(out, pt)
	for i := range tagSize {
		out = append(out, t[i]^s0[i])
	}
	return out
}

// TestAgainstReference compares every tag and nonce size, and message and
// additional data lengths around the block and batch boundaries, with
// refSeal.
func TestAgainstReference(t *testing.T) {
	key := testvec.MustHex(t, "000102030405060708090a0b0c0d0e0f1011121314151617")
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 600)
	for i := range data {
		data[i] = byte(i*7 + 3)
	}
	msgLens := []int{0, 1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 255, 256, 257, 300, 600}
	aadLens := []int{0, 1, 13, 14, 15, 16, 17, 30, 31, 32, 100}
	for tagSize := 4; tagSize <= 16; tagSize += 2 {
		for nonceSize := 7; nonceSize <= 13; nonceSize++ {
			a, err := New(b, tagSize, nonceSize)
			if err != nil {
				t.Fatal(err)
			}
			nonce := data[100 : 100+nonceSize]
			for _, ml := range msgLens {
				for _, al := range aadLens {
					pt, aad := data[:ml], data[len(data)-al:]
					want := refSeal(b, tagSize, nonce, pt, aad)
					got := a.Seal(nil, nonce, pt, aad)
					if !bytes.Equal(got, want) {
						t.Fatalf("M=%d nonce %d msg %d aad %d: Seal %x, reference %x", tagSize, nonceSize, ml, al, got, want)
					}
					if opened, err := a.Open(nil, nonce, got, aad); err != nil || !bytes.Equal(opened, pt) {
						t.Fatalf("M=%d nonce %d msg %d aad %d: Open %x, %v", tagSize, nonceSize, ml, al, opened, err)
					}
				}
			}
		}
	}
}

// TestTamper flips every bit of a sealed message and of the additional
// data and nonce; each must fail to open, and a failed in-place Open must
// leave no plaintext behind.
func TestTamper(t *testing.T) {
	a := newAESCCM(t, make([]byte, 16), 16, 11)
	nonce := []byte("salt+iv+123")
	aad := []byte("spi+seq!")
	pt := bytes.Repeat([]byte("secret! "), 9)
	sealed := a.Seal(nil, nonce, pt, aad)
	for i := range sealed {
		for bit := range 8 {
			bad := append([]byte{}, sealed...)
			bad[i] ^= 1 << bit
			out, err := a.Open(bad[:0], nonce, bad, aad)
			if err == nil || out != nil {
				t.Fatalf("flipped bit %d of octet %d: opened (%v)", bit, i, err)
			}
			if !bytes.Equal(bad[:len(pt)], make([]byte, len(pt))) {
				t.Fatalf("flipped bit %d of octet %d: failed in-place Open left %x", bit, i, bad[:len(pt)])
			}
		}
	}
	for i := range aad {
		bad := append([]byte{}, aad...)
		bad[i] ^= 1
		if _, err := a.Open(nil, nonce, sealed, bad); err == nil {
			t.Fatalf("modified additional data octet %d: opened", i)
		}
	}
	for i := range nonce {
		bad := append([]byte{}, nonce...)
		bad[i] ^= 1
		if _, err := a.Open(nil, bad, sealed, aad); err == nil {
			t.Fatalf("modified nonce octet %d: opened", i)
		}
	}
	if _, err := a.Open(nil, nonce, sealed, nil); err == nil {
		t.Fatal("dropped additional data: opened")
	}
	for n := range a.Overhead() {
		if _, err := a.Open(nil, nonce, sealed[:n], aad); err == nil {
			t.Fatalf("%d-octet ciphertext, shorter than the tag: opened", n)
		}
	}
}

// TestLengthLimit checks the l(m) < 2^(8L) limit at L = 2 (13-octet nonce).
func TestLengthLimit(t *testing.T) {
	a := newAESCCM(t, make([]byte, 16), 8, 13)
	nonce := make([]byte, 13)
	maxMsg := make([]byte, 1<<16-1, 1<<16+8)
	sealed := a.Seal(nil, nonce, maxMsg, nil)
	if _, err := a.Open(nil, nonce, sealed, nil); err != nil {
		t.Fatalf("2^16-1 octets: %v", err)
	}
	if _, err := a.Open(nil, nonce, make([]byte, 1<<16+8), nil); err == nil {
		t.Fatal("Open accepted a 2^16-octet message with L = 2")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Seal accepted a 2^16-octet message with L = 2")
			}
		}()
		a.Seal(nil, nonce, maxMsg[:1<<16], nil)
	}()
}

func TestInexactOverlapPanics(t *testing.T) {
	a := newAESCCM(t, make([]byte, 16), 16, 11)
	nonce := make([]byte, 11)
	buf := make([]byte, 100)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Seal accepted output shifted one octet into its input")
			}
		}()
		a.Seal(buf[1:1], nonce, buf[:50], nil)
	}()
	sealed := a.Seal(buf[:0], nonce, buf[:50], nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Open accepted output shifted one octet into its input")
			}
		}()
		a.Open(sealed[1:1], nonce, sealed, nil)
	}()
}

func TestWrongNonceSizePanics(t *testing.T) {
	a := newAESCCM(t, make([]byte, 16), 16, 11)
	for name, call := range map[string]func(){
		"Seal": func() { a.Seal(nil, make([]byte, 12), nil, nil) },
		"Open": func() { a.Open(nil, make([]byte, 10), make([]byte, 16), nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s accepted a 12-octet nonce on an 11-octet AEAD", name)
				}
			}()
			call()
		}()
	}
}

// TestConcurrentUse shares one AEAD between goroutines; the scratch space
// must not mix their keystreams (run with -race too).
func TestConcurrentUse(t *testing.T) {
	b, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(b, 16, 11)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonce := bytes.Repeat([]byte{byte(g)}, 11)
			pt := bytes.Repeat([]byte{byte(g)}, 1000)
			want := refSeal(b, 16, nonce, pt, nil)
			buf := make([]byte, 0, 1016)
			for range 200 {
				buf = a.Seal(buf[:0], nonce, pt, nil)
				if !bytes.Equal(buf, want) {
					errs <- fmt.Errorf("goroutine %d: Seal differs from the reference", g)
					return
				}
				if _, err := a.Open(buf[:0], nonce, buf, nil); err != nil {
					errs <- fmt.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAllocs(t *testing.T) {
	a := newAESCCM(t, make([]byte, 16), 16, 11)
	nonce := make([]byte, 11)
	aad := make([]byte, 8)
	buf := make([]byte, 1400, 1400+16)
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		sealed := a.Seal(buf[:0], nonce, buf, aad)
		buf, err = a.Open(sealed[:0], nonce, sealed, aad)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("in-place Seal+Open: %v allocations per run, want 0", allocs)
	}
	// A failed Open must not allocate either.
	sealed := a.Seal(buf[:0], nonce, buf, aad)
	allocs = testing.AllocsPerRun(100, func() {
		sealed[0] ^= 1
		_, err = a.Open(sealed[:0], nonce, sealed, aad)
	})
	if err == nil || allocs != 0 {
		t.Fatalf("failed Open: err %v, %v allocations per run", err, allocs)
	}
}

// FuzzCCM checks Seal against refSeal, that Open inverts Seal in place, and
// that flipping any one bit of the sealed message makes Open fail.
func FuzzCCM(f *testing.F) {
	f.Fuzz(func(t *testing.T, params uint8, key, nonceSeed, aad, pt []byte, flip uint16) {
		tagSize := 4 + 2*int(params%7)
		nonceSize := 7 + int(params/7%7)
		var k [32]byte
		copy(k[:], key)
		keyLen := 16 + 8*(len(key)/8%3) // 16, 24 or 32
		b, err := aes.NewCipher(k[:keyLen])
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(b, tagSize, nonceSize)
		if err != nil {
			t.Fatal(err)
		}
		nonce := make([]byte, nonceSize)
		copy(nonce, nonceSeed)
		if l := 15 - nonceSize; l < 8 && len(pt) >= 1<<(8*l) {
			t.Skip("message too long for the nonce size")
		}

		want := refSeal(b, tagSize, nonce, pt, aad)
		buf := append(make([]byte, 0, len(pt)+tagSize), pt...)
		sealed := a.Seal(buf[:0], nonce, buf, aad)
		if !bytes.Equal(sealed, want) {
			t.Fatalf("Seal %x, reference %x", sealed, want)
		}
		opened, err := a.Open(nil, nonce, sealed, aad)
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("Open %x, %v; want %x", opened, err, pt)
		}
		bit := int(flip) % (8 * len(sealed))
		sealed[bit/8] ^= 1 << (bit % 8)
		if out, err := a.Open(sealed[:0], nonce, sealed, aad); err == nil {
			t.Fatalf("flipped bit %d: opened to %x", bit, out)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			a := newAESCCM(b, make([]byte, 16), 16, 11)
			nonce, aad := make([]byte, 11), make([]byte, 8)
			buf := make([]byte, size, size+16)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				a.Seal(buf[:0], nonce, buf, aad)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			a := newAESCCM(b, make([]byte, 16), 16, 11)
			nonce, aad := make([]byte, 11), make([]byte, 8)
			sealed := a.Seal(nil, nonce, make([]byte, size), aad)
			out := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Open(out, nonce, sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
