package hw_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/hw/hwtest"
)

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*29)
	}
	return b
}

// TestESPCBCMatchesGo: through a fake engine, the ESP wrapper's
// ciphertext and ICV equal Go's AES-CBC and truncated HMAC-SHA-256, and
// each call reaches the engine.
func TestESPCBCMatchesGo(t *testing.T) {
	for _, kl := range []int{16, 24, 32} {
		f := hwtest.New(hw.Soft(), "fake")
		encKey, integKey := fill(kl, 1), fill(32, 2)
		t1, err := hw.NewESPCBC(f, encKey, integKey)
		if err != nil {
			t.Fatal(err)
		}
		iv, p := fill(16, 3), fill(1488, 4)
		b, _ := aes.NewCipher(encKey)
		want := make([]byte, len(p))
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, p)
		got := bytes.Clone(p)
		if err := t1.Encrypt(got, iv); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AES-%d: encrypt differs from Go (%v)", 8*kl, err)
		}
		h := hmac.New(sha256.New, integKey)
		h.Write(got)
		icv := make([]byte, 20)
		if err := t1.Sign(icv, got); err != nil || !bytes.Equal(icv[:16], h.Sum(nil)[:16]) || !bytes.Equal(icv[16:], make([]byte, 4)) {
			t.Fatalf("AES-%d: ICV %x (%v) differs from Go's, or was written past 16 octets", 8*kl, icv, err)
		}
		if ok, err := t1.Verify(icv, got); !ok || err != nil {
			t.Fatalf("AES-%d: own ICV rejected (%v)", 8*kl, err)
		}
		icv[15] ^= 1
		if ok, err := t1.Verify(icv, got); ok || err != nil {
			t.Fatalf("AES-%d: wrong ICV accepted (%v)", 8*kl, err)
		}
		if err := t1.Decrypt(got, iv); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("AES-%d: decrypt (%v)", 8*kl, err)
		}
		for op, n := range map[hwtest.Op]uint64{hwtest.OpEncrypt: 1, hwtest.OpDecrypt: 1, hwtest.OpSum: 1, hwtest.OpVerify: 2} {
			if f.Calls(op) != n {
				t.Errorf("AES-%d: %s called %d times, want %d", 8*kl, op, f.Calls(op), n)
			}
		}
	}
}

func TestESPCBCUnsupported(t *testing.T) {
	f := hwtest.New(hw.Soft(), "DCP")
	f.SetCaps(hw.ESPMinimum)
	if _, err := hw.NewESPCBC(f, make([]byte, 32), make([]byte, 32)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("AES-256 on an AES-128 engine: %v", err)
	}
	if f.Calls(hwtest.OpNewCBC) != 0 {
		t.Errorf("the engine was asked anyway")
	}
	if _, err := hw.NewESPCBC(f, make([]byte, 16), make([]byte, 20)); !errors.Is(err, hw.ErrLength) {
		t.Errorf("20-octet integrity key: %v", err)
	}
	e, err := hw.NewESPCBC(f, make([]byte, 16), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sign(make([]byte, 12), make([]byte, 16)); !errors.Is(err, hw.ErrLength) {
		t.Errorf("12-octet ICV field: %v", err)
	}
	if _, err := e.Verify(make([]byte, 12), make([]byte, 16)); !errors.Is(err, hw.ErrLength) {
		t.Errorf("12-octet ICV to verify: %v", err)
	}
}

// TestESPCBCErrors: engine errors come back from every call, and a
// failed in-place Encrypt reports failure (the caller must then drop the
// buffer, which may still hold plaintext).
func TestESPCBCErrors(t *testing.T) {
	f := hwtest.New(hw.Soft(), "fake")
	e, _ := hw.NewESPCBC(f, make([]byte, 16), make([]byte, 32))
	for _, op := range []hwtest.Op{hwtest.OpEncrypt, hwtest.OpDecrypt, hwtest.OpSum, hwtest.OpVerify} {
		f.Inject(op, hwtest.Fail)
	}
	p, iv := fill(32, 1), fill(16, 2)
	if err := e.Encrypt(p, iv); !errors.Is(err, hwtest.ErrInjected) {
		t.Errorf("Encrypt: %v", err)
	}
	if err := e.Decrypt(p, iv); !errors.Is(err, hwtest.ErrInjected) {
		t.Errorf("Decrypt: %v", err)
	}
	if err := e.Sign(make([]byte, 16), p); !errors.Is(err, hwtest.ErrInjected) {
		t.Errorf("Sign: %v", err)
	}
	if ok, err := e.Verify(make([]byte, 16), p); ok || !errors.Is(err, hwtest.ErrInjected) {
		t.Errorf("Verify: %v %v", ok, err)
	}
	f.Inject(hwtest.OpNewMAC, hwtest.Fail)
	if _, err := hw.NewESPCBC(f, make([]byte, 16), make([]byte, 32)); !errors.Is(err, hwtest.ErrInjected) {
		t.Errorf("NewESPCBC: %v", err)
	}
}

func TestESPCBCNoAllocations(t *testing.T) {
	e, _ := hw.NewESPCBC(hwtest.New(hw.Soft(), "fake"), fill(16, 1), fill(32, 2))
	p, iv, icv := fill(1488, 3), fill(16, 4), make([]byte, 16)
	n := testing.AllocsPerRun(100, func() {
		e.Encrypt(p, iv)
		e.Sign(icv, p)
		e.Verify(icv, p)
		e.Decrypt(p, iv)
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
