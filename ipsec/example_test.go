package ipsec_test

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Two gateways, one ESP tunnel between 192.168.1.0/24 and 192.168.2.0/24:
// what IKE installs on each side, and one packet through it.
func Example() {
	gwA, gwB := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	siteA, siteB := netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("192.168.2.0/24")
	suite := proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}}
	key := bytes.Repeat([]byte{0x42}, 20) // 16 octets of AES key, 4 of salt

	a, b := ipsec.New(ipsec.Config{}), ipsec.New(ipsec.Config{})
	spi, _ := b.AllocSPI() // B chooses the SPI it receives on
	sel := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(siteA)}, Remote: []ipsec.TS{ipsec.PrefixTS(siteB)}}
	out := ipsec.SAConfig{Dir: ipsec.DirOut, SPI: spi, Mode: ipsec.ModeTunnel, Src: gwA, Dst: gwB,
		Suite: suite, EncKey: key, Selectors: sel, ReqID: 1}
	in := out
	in.Dir, in.Selectors = ipsec.DirIn, ipsec.Selectors{Local: sel.Remote, Remote: sel.Local}
	if err := a.AddSA(out); err != nil {
		panic(err)
	}
	if err := b.AddSA(in); err != nil {
		panic(err)
	}
	if _, err := a.AddPolicy(ipsec.Policy{Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		panic(err)
	}

	// An ICMP echo request from 192.168.1.10 to 192.168.2.10.
	ping := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0xf6, 0x7b, 192, 168, 1, 10, 192, 168, 2, 10,
		8, 0, 0xf7, 0xff, 0, 0, 0, 0}
	buf := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	copy(buf.Extend(len(ping)), ping)

	r := a.Outbound(buf, 1500)
	fmt.Println(r.Verdict, r.NextHop, buf.Len(), "octets on the black side")
	ir := b.Inbound(buf)
	fmt.Println(ir.Verdict, bytes.Equal(buf.Bytes(), ping))
	fmt.Println(b.SAs()[0].Stats.Packets, "packet in,", a.SAs()[0].Stats.Packets, "out")
	// Output:
	// forward 203.0.113.2 84 octets on the black side
	// forward true
	// 1 packet in, 1 out
}
