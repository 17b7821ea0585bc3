package ipsec

import "testing"

// TestSPITable covers the open-addressing SPI table: sequential and
// colliding SPIs, absent ones, and an empty table.
func TestSPITable(t *testing.T) {
	empty := newSPITable(nil)
	if empty.get(42) != nil {
		t.Fatal("empty table returned SAs")
	}
	m := map[uint32][]*assoc{}
	for i := uint32(0); i < 300; i++ {
		m[0x1000+i] = []*assoc{{}}
		m[i<<24|7] = []*assoc{{}, {}} // same low bits
	}
	tab := newSPITable(m)
	for spi, sas := range m {
		if got := tab.get(spi); len(got) != len(sas) || &got[0] != &sas[0] {
			t.Fatalf("SPI %#x: %v", spi, got)
		}
	}
	for _, spi := range []uint32{0, 1, 0x999999, 0xffffffff} {
		if tab.get(spi) != nil {
			t.Fatalf("absent SPI %#x found", spi)
		}
	}
}
