package ipsec

import (
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bitw-dev/bitw/internal/pcap"
	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestStrongSwanCapture decapsulates the six ESP-in-UDP pings that two
// strongSwan 5.9.8 gateways exchanged (../shared/captures), with the keys
// from their log: an independent peer's packets, byte for byte. It also
// hands the two IKE messages on port 4500 to Inbound, which must return
// them as VerdictLocal.
func TestStrongSwanCapture(t *testing.T) {
	dir := testvec.SharedDir(t, "captures")
	pkts, err := pcap.ReadFile(filepath.Join(dir, "strongswan-5.9.8-psk-x25519-aes128gcm16", "exchange.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	gwA, gwB := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	suite := proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}}
	netA, netB := netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("192.168.2.0/24")
	// gwA receives SPI 8a3e519f under the responder key; gwB receives
	// 64d8d086 under the initiator key (keys.txt).
	atA := New(Config{Rand: newTestRand(1)})
	atB := New(Config{Rand: newTestRand(2)})
	add := func(e *Engine, spi uint32, key string, src, dst netip.Addr, local, remote netip.Prefix) {
		err := e.AddSA(SAConfig{Dir: DirIn, SPI: spi, Mode: ModeTunnel, Src: src, Dst: dst,
			Encap: UDPEncap{SrcPort: 4500, DstPort: 4500}, Suite: suite, EncKey: testvec.MustHex(t, key),
			Selectors: Selectors{Local: []TS{PrefixTS(local)}, Remote: []TS{PrefixTS(remote)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(atA, 0x8a3e519f, "cf7f569cc6a1803008cff2ad4a72ea2bf807d455", gwB, gwA, netA, netB)
	add(atB, 0x64d8d086, "f043bd23671fdb74ee9894815079ab4d0158f99c", gwA, gwB, netB, netA)
	var local, pings int
	for i, p := range pkts {
		if p.Proto != protoUDP || p.DstPort != 4500 {
			continue
		}
		e := atA
		if p.Dst == gwB {
			e = atB
		}
		b := bufferWith(p.Data)
		r := e.Inbound(b)
		if len(p.UDPData) >= 4 && binary.BigEndian.Uint32(p.UDPData) == 0 {
			if r.Verdict != VerdictLocal || string(b.Bytes()) != string(p.Data) {
				t.Fatalf("packet %d: IKE with the non-ESP marker: %+v", i, r)
			}
			local++
			continue
		}
		if r.Verdict != VerdictForward {
			t.Fatalf("packet %d: %+v, drops %s", i, r, nonzero(e.Drops()))
		}
		inner := b.Bytes()
		var h ipHeader
		if !parseIP(inner, &h, true) || h.proto != protoICMP || h.total != len(inner) {
			t.Fatalf("packet %d: inner packet %x", i, inner)
		}
		if src := h.srcK.addr(h.v6); !netA.Contains(src) && !netB.Contains(src) || inner[h.l4] != 8 && inner[h.l4] != 0 {
			t.Fatalf("packet %d: not a ping between the sites: %x", i, inner)
		}
		if !l4ChecksumOK(inner) {
			t.Fatalf("packet %d: ICMP checksum wrong", i)
		}
		pings++
	}
	if local != 2 || pings != 6 {
		t.Fatalf("%d IKE messages, %d pings; want 2 and 6", local, pings)
	}
}
