package ipsec

import (
	"bytes"
	"testing"
)

func TestBufferPushPull(t *testing.T) {
	b := NewBuffer(64)
	if b.Headroom() != 64 || b.Len() != 0 {
		t.Fatalf("small buffer: headroom %d len %d", b.Headroom(), b.Len())
	}
	b = NewBuffer(256)
	copy(b.Extend(4), "data")
	copy(b.Push(3), "hdr")
	if got := string(b.Bytes()); got != "hdrdata" {
		t.Fatalf("Bytes = %q", got)
	}
	if b.Push(DefaultHeadroom) != nil {
		t.Fatal("Push beyond headroom succeeded")
	}
	if b.Extend(b.Tailroom()+1) != nil {
		t.Fatal("Extend beyond tailroom succeeded")
	}
	if !b.Pull(3) || string(b.Bytes()) != "data" {
		t.Fatalf("Pull: %q", b.Bytes())
	}
	if b.Pull(5) || b.Truncate(5) {
		t.Fatal("Pull/Truncate beyond the packet succeeded")
	}
	if !b.Truncate(2) || !bytes.Equal(b.Bytes(), []byte("da")) {
		t.Fatalf("Truncate: %q", b.Bytes())
	}
}

func TestPoolBounded(t *testing.T) {
	if _, err := NewPool(0, 100, 10); err == nil {
		t.Fatal("empty pool accepted")
	}
	p, err := NewPool(2, 256, 32)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Get(), p.Get()
	if a == nil || b == nil || p.Get() != nil {
		t.Fatal("pool of two did not give exactly two buffers")
	}
	if a.Headroom() != 32 {
		t.Fatalf("headroom %d", a.Headroom())
	}
	a.Release()
	if p.Available() != 1 {
		t.Fatalf("available %d after one release", p.Available())
	}
	c := p.Get()
	if c != a {
		t.Fatal("released buffer not reused")
	}
	c.Release()
	b.Release()
	if n := testing.AllocsPerRun(100, func() { p.Get().Release() }); n != 0 {
		t.Fatalf("Get/Release allocates %v times", n)
	}
}
