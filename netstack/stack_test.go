package netstack_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

func newHost(t testing.TB, nic *nictest.NIC, clk *faketime.ManualClock, addr string, gw string) *nictest.Host {
	t.Helper()
	cfg := nictest.HostConfig{Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}, Clock: clk}
	if gw != "" {
		cfg.Gateways = []netip.Addr{netip.MustParseAddr(gw)}
	}
	h, err := nictest.NewHost(nic, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func ping(t testing.TB, h *nictest.Host, clk *faketime.ManualClock, dst string, size int) error {
	t.Helper()
	return h.Ping(netip.MustParseAddr(dst), size, 3*time.Second, func() { clk.Advance(time.Millisecond) })
}

// The device answers ARP and ping on both ports through gVisor, and
// resolves the hosts in return.
func TestPingDeviceAddresses(t *testing.T) {
	g := newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", dp: newToy("203.0.113.1", "203.0.113.2")})
	hr := newHost(t, g.red, g.clk, "192.168.1.10/24", "192.168.1.1")
	hb := newHost(t, g.black, g.clk, "203.0.113.2/24", "")
	if err := ping(t, hr, g.clk, "192.168.1.1", 56); err != nil {
		t.Fatalf("red ping: %v", err)
	}
	if err := ping(t, hb, g.clk, "203.0.113.1", 56); err != nil {
		t.Fatalf("black ping: %v", err)
	}
	c := g.s.Counters()
	if c.ToLocal == 0 || c.FromLocal == 0 {
		t.Fatalf("local stack not used: %+v", c)
	}
	if c.Encapsulated != 0 || c.Decapsulated != 0 {
		t.Fatalf("device traffic took the transit path: %+v", c)
	}
}

// A black host must not reach the red address: the management plane is
// red-only, whatever a routed attacker sends.
func TestBlackCannotReachRedAddress(t *testing.T) {
	g := newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", dp: newToy("203.0.113.1", "203.0.113.2")})
	hb := newHost(t, g.black, g.clk, "203.0.113.2/24", "203.0.113.1")
	if err := hb.Ping(netip.MustParseAddr("192.168.1.1"), 8, 300*time.Millisecond, func() { g.clk.Advance(time.Millisecond) }); err == nil {
		t.Fatal("black host pinged the red address")
	}
	if c := g.s.Counters(); c.Drops[netstack.DropOtherPortAddress] == 0 {
		t.Fatalf("no other_port_address drop: %+v", c.Drops)
	}
}

// twoGateways builds hostA — gwA — gwB — hostB with toy data planes.
func twoGateways(t *testing.T) (a, b *gw, ha, hb *nictest.Host) {
	clk := faketime.NewManualClock()
	a = newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", clk: clk, dp: newToy("203.0.113.1", "203.0.113.2")})
	b = newGW(t, gwOpts{red: "192.168.2.1/24", black: "203.0.113.2/24", clk: clk, dp: newToy("203.0.113.2", "203.0.113.1"),
		macRed: netstack.MAC{2, 0, 0, 1, 0xa, 1}, macBlack: netstack.MAC{2, 0, 0, 1, 0xb, 1}})
	// Splice the black wires: what gwA sends reaches gwB and back.
	go splice(a.black, b.black)
	go splice(b.black, a.black)
	ha = newHost(t, a.red, clk, "192.168.1.10/24", "192.168.1.1")
	hb = newHost(t, b.red, clk, "192.168.2.10/24", "192.168.2.1")
	return a, b, ha, hb
}

// splice copies frames arriving at one far end out of another until from
// closes.
func splice(from, to *nictest.NIC) {
	for {
		f, ok := from.ReadFrame(time.Hour)
		if !ok {
			return
		}
		to.WriteFrame(f)
	}
}

func TestTransitPingAcrossTwoGateways(t *testing.T) {
	a, b, ha, _ := twoGateways(t)
	if err := ping(t, ha, a.clk, "192.168.2.10", 100); err != nil {
		t.Fatalf("ping across: %v", err)
	}
	ca, cb := a.s.Counters(), b.s.Counters()
	if ca.Encapsulated == 0 || ca.Decapsulated == 0 || cb.Encapsulated == 0 || cb.Decapsulated == 0 {
		t.Fatalf("tunnel not used: a=%+v b=%+v", ca, cb)
	}
}

// TCP across the tunnel: the SYNs are clamped and every segment still
// checksums, or the transfer would stall.
func TestTransitTCPAcrossTwoGateways(t *testing.T) {
	a, _, ha, hb := twoGateways(t)
	transferTCP(t, a.clk, ha, hb, "192.168.2.10:9000", bytes.Repeat([]byte("bitw transit "), 20000), 20*time.Second)
	if ca := a.s.Counters(); ca.MSSClamped == 0 {
		t.Fatalf("no SYN clamped: %+v", ca)
	}
}

// IKE's sockets: UDP on the black address, exchanging datagrams with a
// peer on the black link.
func TestUDPSocketOnBlack(t *testing.T) {
	g := newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", dp: newToy("203.0.113.1", "203.0.113.2")})
	hb := newHost(t, g.black, g.clk, "203.0.113.2/24", "")
	ike, err := g.s.ListenUDP(netip.MustParseAddrPort("203.0.113.1:500"))
	if err != nil {
		t.Fatal(err)
	}
	defer ike.Close()
	peer, err := hb.ListenUDP(netip.MustParseAddrPort("203.0.113.2:500"))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	stop := make(chan struct{})
	defer close(stop)
	go tick(g.clk, stop)

	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.1:500"))
	if _, err := peer.WriteTo([]byte("IKE_SA_INIT request"), dst); err != nil {
		t.Fatal(err)
	}
	ike.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := ike.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "IKE_SA_INIT request" || from.String() != "203.0.113.2:500" {
		t.Fatalf("got %q from %v", buf[:n], from)
	}
	if _, err := ike.WriteTo([]byte("IKE_SA_INIT response"), from); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "IKE_SA_INIT response" {
		t.Fatalf("peer got %q, %v", buf[:n], err)
	}
	if _, err := g.s.ListenUDP(netip.MustParseAddrPort("0.0.0.0:500")); err == nil {
		t.Fatal("wildcard bind accepted")
	}
}

// The management listener sits on the red address of the local stack.
func TestManagementListenerOnRed(t *testing.T) {
	g := newGW(t, gwOpts{red: "192.168.1.1/24", black: "203.0.113.1/24", dp: newToy("203.0.113.1", "203.0.113.2")})
	hr := newHost(t, g.red, g.clk, "192.168.1.10/24", "192.168.1.1")
	ln, err := g.s.ListenTCP(netip.MustParseAddrPort("192.168.1.1:8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	defer close(stop)
	go tick(g.clk, stop)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hr.DialTCP(ctx, netip.MustParseAddrPort("192.168.1.1:8080"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.0 200")) {
		t.Fatalf("got %q, %v", got, err)
	}
}
