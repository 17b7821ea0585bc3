//go:build linux

package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
	"github.com/bitw-dev/bitw/netstack"
)

// Two bitw gateways in process, each on two AF_PACKET ports in its own
// namespace, with real engines and hand-installed SAs, between two
// namespaces whose kernels are ordinary hosts:
//
//	hostA 192.168.1.10 -- red0 [gwA] black0 203.0.113.1 -- 203.0.113.2 black0 [gwB] red0 -- hostB 192.168.2.10
type gatewayNet struct {
	hostA, hostB string
	a, b         *netstack.Stack
}

func esp(t testing.TB, kw string) proposal.Suite {
	ps, err := proposal.Parse(kw, proposal.ProtoESP)
	if err != nil {
		t.Fatal(err)
	}
	return proposal.Suite{Protocol: proposal.ProtoESP, Encr: ps[0].Encr[0]}
}

func tunnelEngine(t testing.TB, me, them, local, remote string, spiOut, spiIn uint32, s proposal.Suite) *ipsec.Engine {
	e := ipsec.New(ipsec.Config{})
	sel := ipsec.Selectors{Local: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix(local))}, Remote: []ipsec.TS{ipsec.PrefixTS(netip.MustParsePrefix(remote))}}
	key := func(seed byte) []byte {
		k := make([]byte, s.Encr.ID.KeyLen(s.Encr.KeyBits))
		for i := range k {
			k[i] = seed + byte(i)
		}
		return k
	}
	m, th := netip.MustParseAddr(me), netip.MustParseAddr(them)
	enc := ipsec.UDPEncap{SrcPort: 4500, DstPort: 4500}
	for _, c := range []ipsec.SAConfig{
		{Dir: ipsec.DirOut, SPI: spiOut, Mode: ipsec.ModeTunnel, Src: m, Dst: th, Encap: enc, Suite: s, EncKey: key(byte(spiOut)), Selectors: sel, ReqID: 1},
		{Dir: ipsec.DirIn, SPI: spiIn, Mode: ipsec.ModeTunnel, Src: th, Dst: m, Encap: enc, Suite: s, EncKey: key(byte(spiIn)), Selectors: sel, ReqID: 1},
	} {
		if err := e.AddSA(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.AddPolicy(ipsec.Policy{Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	return e
}

func ipT(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

func newGatewayNet(t testing.TB) *gatewayNet { return newGatewayNetWith(t, Options{}) }

func newGatewayNetWith(t testing.TB, opts Options) *gatewayNet {
	needRoot(t)
	g := &gatewayNet{hostA: newNS(t, "ha"), hostB: newNS(t, "hb")}
	gwA, gwB := newNS(t, "ga"), newNS(t, "gb")
	vethPair(t, g.hostA, "eth0", gwA, "red0")
	vethPair(t, gwA, "black0", gwB, "black0")
	vethPair(t, g.hostB, "eth0", gwB, "red0")
	for _, h := range []struct{ ns, addr, gw string }{{g.hostA, "192.168.1.10/24", "192.168.1.1"}, {g.hostB, "192.168.2.10/24", "192.168.2.1"}} {
		ipT(t, "-n", h.ns, "addr", "add", h.addr, "dev", "eth0")
		ipT(t, "-n", h.ns, "link", "set", "eth0", "up")
		ipT(t, "-n", h.ns, "route", "add", "default", "via", h.gw)
	}
	s := esp(t, "aes128gcm16")
	g.a = startGateway(t, opts, gwA, "192.168.1.1/24", "203.0.113.1/24", tunnelEngine(t, "203.0.113.1", "203.0.113.2", "192.168.1.0/24", "192.168.2.0/24", 0xa1000001, 0xb1000001, s))
	g.b = startGateway(t, opts, gwB, "192.168.2.1/24", "203.0.113.2/24", tunnelEngine(t, "203.0.113.2", "203.0.113.1", "192.168.2.0/24", "192.168.1.0/24", 0xb1000001, 0xa1000001, s))
	return g
}

func startGateway(t testing.TB, opts Options, ns, red, black string, e *ipsec.Engine) *netstack.Stack {
	r := openIn(t, ns, "red0", opts)
	bl := openIn(t, ns, "black0", opts)
	s, err := netstack.New(netstack.Config{
		Red:   netstack.PortConfig{Link: "red0", Addresses: []netip.Prefix{netip.MustParsePrefix(red)}},
		Black: netstack.PortConfig{Link: "black0", Addresses: []netip.Prefix{netip.MustParsePrefix(black)}},
	}, r, bl, e)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close() })
	return s
}

// transfer sends n octets over TCP from hostA to hostB and reports an
// error unless they arrive intact.
func (g *gatewayNet) transfer(t testing.TB, port string, n int) error {
	var ln net.Listener
	var err error
	inNS(t, g.hostB, func() { ln, err = net.Listen("tcp4", "192.168.2.10:"+port) })
	if err != nil {
		return err
	}
	defer ln.Close()
	sum := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sum <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		sum <- [32]byte(h.Sum(nil))
	}()
	var c net.Conn
	inNS(t, g.hostA, func() {
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err = d.DialContext(context.Background(), "tcp4", "192.168.2.10:"+port)
	})
	if err != nil {
		return err
	}
	data := bytes.Repeat([]byte("red payload over ESP "), n/21+1)[:n]
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		c.Close()
		return err
	}
	c.Close()
	select {
	case got := <-sum:
		if got != sha256.Sum256(data) {
			return io.ErrUnexpectedEOF
		}
	case <-time.After(60 * time.Second):
		return context.DeadlineExceeded
	}
	return nil
}

// Kernel hosts talk through two bitw gateways over real links: ping, then
// a TCP transfer whose segments arrive with partial checksums and as
// offload frames on the red ports, and leave encrypted in ESP-in-UDP.
func TestGatewaysOverVeth(t *testing.T) {
	g := newGatewayNet(t)
	out, err := exec.Command("ip", "netns", "exec", g.hostA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.2.10").CombinedOutput()
	if err != nil {
		t.Fatalf("ping across the gateways: %v\n%s\na=%+v\nb=%+v", err, out, g.a.Counters(), g.b.Counters())
	}
	if err := g.transfer(t, "5001", 8<<20); err != nil {
		t.Fatalf("TCP across the gateways: %v\na=%+v\nb=%+v", err, g.a.Counters(), g.b.Counters())
	}
	ca := g.a.Counters()
	if ca.Encapsulated == 0 || ca.Decapsulated == 0 || ca.MSSClamped == 0 {
		t.Fatalf("counters %+v", ca)
	}
}

// BenchmarkGatewaysKernelTCP measures single-stream TCP between the two
// kernel hosts through both gateways (AES-128-GCM, ESP in UDP): each
// iteration carries 1 MiB.
func BenchmarkGatewaysKernelTCP(b *testing.B) { benchmarkGateways(b, Options{}) }

// BenchmarkGatewaysKernelTCPQdiscBypass is the same with
// PACKET_QDISC_BYPASS on every port.
func BenchmarkGatewaysKernelTCPQdiscBypass(b *testing.B) {
	benchmarkGateways(b, Options{QdiscBypass: true})
}

// BenchmarkGatewaysKernelTCPNoTrains is the same with every frame sent
// on its own (Options.NoSegmentOffload).
func BenchmarkGatewaysKernelTCPNoTrains(b *testing.B) {
	benchmarkGateways(b, Options{NoSegmentOffload: true})
}

func benchmarkGateways(b *testing.B, opts Options) {
	g := newGatewayNetWith(b, opts)
	const chunk = 1 << 20
	b.SetBytes(chunk)
	b.ResetTimer()
	if err := g.transfer(b, "5002", b.N*chunk); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	ca, cb := g.a.Counters(), g.b.Counters()
	b.ReportMetric(float64(ca.Black.TxTrainFrames)/float64(max(ca.Black.TxPackets, 1)), "black-train-share")
	b.ReportMetric(float64(cb.Red.TxTrainFrames)/float64(max(cb.Red.TxPackets, 1)), "red-train-share")
}
