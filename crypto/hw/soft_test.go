package hw

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestSoftPassesSelfTest(t *testing.T) {
	if err := SelfTest(Soft()); err != nil {
		t.Fatal(err)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13) + byte(i>>8)
	}
	return b
}

// TestSoftCBCMatchesGo compares every key size and several lengths with
// crypto/cipher's CBC, in place and into a separate buffer.
func TestSoftCBCMatchesGo(t *testing.T) {
	for _, kl := range []int{16, 24, 32} {
		key := pattern(kl, 1)
		c, err := Soft().NewAESCBC(key)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := aes.NewCipher(key)
		for _, n := range []int{0, 16, 32, 1488, 4096} {
			iv, pt := pattern(16, byte(n)), pattern(n, 7)
			want := make([]byte, n)
			cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, pt)
			got := make([]byte, n+5) // a longer destination is allowed
			if err := c.Encrypt(got, pt, iv); err != nil || !bytes.Equal(got[:n], want) {
				t.Fatalf("AES-%d n=%d: encrypt: %v", 8*kl, n, err)
			}
			inPlace := bytes.Clone(want)
			if err := c.Decrypt(inPlace, inPlace, iv); err != nil || !bytes.Equal(inPlace, pt) {
				t.Fatalf("AES-%d n=%d: decrypt in place: %v", 8*kl, n, err)
			}
		}
	}
}

func TestSoftHMACMatchesGo(t *testing.T) {
	key := pattern(32, 3)
	m, err := Soft().NewHMACSHA256(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 63, 64, 65, 1500} {
		data := pattern(n, 9)
		h := hmac.New(sha256.New, key)
		h.Write(data)
		want := h.Sum(nil)
		for _, l := range []int{1, 12, 16, 32} {
			out := make([]byte, l)
			if err := m.Sum(out, data); err != nil || !bytes.Equal(out, want[:l]) {
				t.Fatalf("n=%d l=%d: %x, %v; want %x", n, l, out, err, want[:l])
			}
		}
	}
}

// TestSoftOverlap: the ICV may be written over the data it covers, as
// ESN's implicit high half does in ESP.
func TestSoftOverlap(t *testing.T) {
	key := pattern(32, 4)
	m, _ := Soft().NewHMACSHA256(key)
	buf := pattern(100, 5)
	h := hmac.New(sha256.New, key)
	h.Write(buf)
	want := h.Sum(nil)[:16]
	if err := m.Sum(buf[90:], buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[90:], want[:10]) {
		t.Fatalf("overlapping Sum: %x, want %x", buf[90:], want[:10])
	}
	data := pattern(100, 5)
	copy(data[84:], want) // the MAC of the original data sits in its own tail
	orig := pattern(100, 5)
	ok, err := m.Verify(data[84:], orig)
	if err != nil || !ok {
		t.Fatalf("Verify: %v %v", ok, err)
	}
}

// TestSoftBadLengths: malformed arguments are errors wrapping ErrLength,
// never panics.
func TestSoftBadLengths(t *testing.T) {
	if _, err := Soft().NewAESCBC(make([]byte, 20)); !errors.Is(err, ErrLength) {
		t.Errorf("20-octet AES key: %v", err)
	}
	c, _ := Soft().NewAESCBC(make([]byte, 16))
	m, _ := Soft().NewHMACSHA256(make([]byte, 32))
	b16, b17, b32 := make([]byte, 16), make([]byte, 17), make([]byte, 32)
	for name, err := range map[string]error{
		"partial block":       c.Encrypt(b17, b17, b16),
		"short destination":   c.Decrypt(b16, b32, b16),
		"short IV":            c.Encrypt(b16, b16, b16[:8]),
		"empty MAC output":    m.Sum(nil, b16),
		"long MAC output":     m.Sum(make([]byte, 33), b16),
		"12-octet MAC verify": func() error { _, err := m.Verify(b16[:12], b16); return err }(),
		"33-octet MAC verify": func() error { _, err := m.Verify(make([]byte, 33), b16); return err }(),
	} {
		if !errors.Is(err, ErrLength) {
			t.Errorf("%s: %v, want ErrLength", name, err)
		}
	}
	if err := Soft().Random(b16); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Random: %v, want ErrUnsupported", err)
	}
}

// TestSoftNoAllocations: the per-packet operations allocate nothing.
func TestSoftNoAllocations(t *testing.T) {
	c, _ := Soft().NewAESCBC(pattern(16, 1))
	m, _ := Soft().NewHMACSHA256(pattern(32, 2))
	p, iv, icv := pattern(1488, 3), pattern(16, 4), make([]byte, 16)
	for name, f := range map[string]func(){
		"Encrypt": func() { c.Encrypt(p, p, iv) },
		"Decrypt": func() { c.Decrypt(p, p, iv) },
		"Sum":     func() { m.Sum(icv, p) },
		"Verify":  func() { m.Verify(icv, p) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// TestSoftConcurrent shares one CBC and one MAC among goroutines; run
// with -race.
func TestSoftConcurrent(t *testing.T) {
	key := pattern(32, 6)
	c, _ := Soft().NewAESCBC(key)
	m, _ := Soft().NewHMACSHA256(key)
	b, _ := aes.NewCipher(key)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				iv, pt := pattern(16, byte(g)), pattern(16*(1+i%7), byte(i))
				want := make([]byte, len(pt))
				cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, pt)
				got := bytes.Clone(pt)
				if err := c.Encrypt(got, got, iv); err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("goroutine %d packet %d: encrypt differs (%v)", g, i, err)
					return
				}
				icv := make([]byte, 16)
				m.Sum(icv, got)
				if ok, err := m.Verify(icv, got); !ok || err != nil {
					errs <- fmt.Errorf("goroutine %d packet %d: own MAC rejected (%v)", g, i, err)
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

func TestCaps(t *testing.T) {
	if s := Soft().Caps().String(); s != "aes128-cbc aes192-cbc aes256-cbc hmac-sha256" {
		t.Errorf("soft caps %q", s)
	}
	if s := Caps(0).String(); s != "none" {
		t.Errorf("no caps %q", s)
	}
	c := AES128CBC | HMACSHA256
	if !c.AESKey(16) || c.AESKey(24) || c.AESKey(32) || c.AESKey(8) {
		t.Errorf("AESKey wrong for %s", c)
	}
}

func BenchmarkSoft(b *testing.B) {
	c, _ := Soft().NewAESCBC(pattern(16, 1))
	m, _ := Soft().NewHMACSHA256(pattern(32, 2))
	p, iv, icv := pattern(1488, 3), pattern(16, 4), make([]byte, 16)
	b.Run("AES128CBC/1488", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			c.Encrypt(p, p, iv)
		}
	})
	b.Run("HMACSHA256/1488", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			m.Sum(icv, p)
		}
	})
}
