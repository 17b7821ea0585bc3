package ipsec

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestESPTunnelGCMv4(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	pkt := tp.packet(100)
	or, ir, b := tp.send(t, pkt)
	if or.Verdict != VerdictForward || or.NextHop != gwB4 {
		t.Fatalf("outbound: %+v", or)
	}
	if ir.Verdict != VerdictForward || ir.SPI != 0x1000 {
		t.Fatalf("inbound: %+v drops %v", ir, tp.b.Drops())
	}
	if !bytes.Equal(b.Bytes(), pkt) {
		t.Fatalf("round trip changed the packet:\n got %x\nwant %x", b.Bytes(), pkt)
	}
}

func TestESPWireFormat(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel})
	pkt := tp.packet(100)
	b := bufferWith(pkt)
	if or := tp.a.Outbound(b, 1500); or.Verdict != VerdictForward {
		t.Fatalf("outbound: %+v", or)
	}
	o := b.Bytes()
	// 20 outer + 8 ESP + 8 IV + inner 128 + pad 2 + trailer 2 + ICV 16.
	if len(o) != 20+8+8+len(pkt)+2+2+16 {
		t.Fatalf("outer length %d", len(o))
	}
	if o[0] != 0x45 || o[ipv4Proto] != protoESP || o[ipv4TTL] != 64 || o[ipv4Flags]&ipv4FlagDF == 0 {
		t.Fatalf("outer header %x", o[:20])
	}
	if ipv4HeaderChecksum(o[:20]) != binary.BigEndian.Uint16(o[ipv4Checksum:]) {
		t.Fatal("outer checksum")
	}
	if binary.BigEndian.Uint32(o[20:]) != 0x1000 || binary.BigEndian.Uint32(o[24:]) != 1 {
		t.Fatalf("ESP header %x", o[20:28])
	}
	if binary.BigEndian.Uint64(o[28:]) != 1 {
		t.Fatalf("IV %x is not the sequence number", o[28:36])
	}
}
