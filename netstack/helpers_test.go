package netstack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"github.com/bitw-dev/bitw/netstack/nictest"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/faketime"
)

// toyDP is a stand-in data plane for tests: "encapsulation" prepends an
// outer IPv4 header (protocol 50) and an 8-octet fake ESP header toward a
// fixed peer, without any cryptography. It exists only in tests.
type toyDP struct {
	local, peer netip.Addr
	spi         uint32

	mu         sync.Mutex
	bypassOut  netip.Prefix // red destinations that cross in clear
	bypassIn   bool         // whether cleartext from black may cross
	innerMTU   int          // if set, Outbound reports DropTooBig above it
	outSizes   []int        // inner sizes Outbound accepted
	inboundLen []int        // outer sizes Inbound saw

	seq      atomic.Uint32
	outCalls atomic.Uint64
	inCalls  atomic.Uint64
}

const toyOverhead = 20 + 8

func newToy(local, peer string) *toyDP {
	return &toyDP{local: netip.MustParseAddr(local), peer: netip.MustParseAddr(peer), spi: 0x0badf00d}
}

func (d *toyDP) Outbound(b *ipsec.Buffer, mtu int) ipsec.OutResult {
	d.outCalls.Add(1)
	pkt := b.Bytes()
	if len(pkt) < 20 {
		return ipsec.OutResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropMalformed}
	}
	var dst netip.Addr
	if pkt[0]>>4 == 4 {
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	} else {
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	}
	d.mu.Lock()
	bypass := d.bypassOut.IsValid() && d.bypassOut.Contains(dst)
	inner := mtu - toyOverhead
	if d.innerMTU > 0 {
		inner = min(inner, d.innerMTU)
	}
	d.mu.Unlock()
	if bypass {
		return ipsec.OutResult{Verdict: ipsec.VerdictBypass, NextHop: dst}
	}
	if len(pkt) > inner {
		return ipsec.OutResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropTooBig, MTU: inner}
	}
	d.mu.Lock()
	d.outSizes = append(d.outSizes, len(pkt))
	d.mu.Unlock()
	n := len(pkt)
	h := b.Push(toyOverhead)
	if h == nil {
		return ipsec.OutResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropNoRoom}
	}
	h[0], h[1] = 0x45, 0
	binary.BigEndian.PutUint16(h[2:], uint16(n+toyOverhead))
	binary.BigEndian.PutUint16(h[4:], uint16(d.seq.Add(1)))
	binary.BigEndian.PutUint16(h[6:], 0x4000)
	h[8], h[9] = 64, 50
	h[10], h[11] = 0, 0
	s, t := d.local.As4(), d.peer.As4()
	copy(h[12:], s[:])
	copy(h[16:], t[:])
	binary.BigEndian.PutUint16(h[10:], ^checksum.Checksum(h[:20], 0))
	binary.BigEndian.PutUint32(h[20:], d.spi)
	binary.BigEndian.PutUint32(h[24:], d.seq.Load())
	return ipsec.OutResult{Verdict: ipsec.VerdictForward, NextHop: d.peer}
}

func (d *toyDP) Inbound(b *ipsec.Buffer) ipsec.InResult {
	d.inCalls.Add(1)
	pkt := b.Bytes()
	d.mu.Lock()
	d.inboundLen = append(d.inboundLen, len(pkt))
	d.mu.Unlock()
	if len(pkt) < 20 || pkt[0] != 0x45 {
		return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropMalformed}
	}
	switch pkt[9] {
	case 50:
		if len(pkt) < toyOverhead+20 || binary.BigEndian.Uint32(pkt[20:]) != d.spi {
			return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropUnknownSPI}
		}
		b.Pull(toyOverhead)
		return ipsec.InResult{Verdict: ipsec.VerdictForward, SPI: d.spi}
	case 17:
		if len(pkt) >= 32 && binary.BigEndian.Uint32(pkt[28:]) == 0 {
			return ipsec.InResult{Verdict: ipsec.VerdictLocal}
		}
	}
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropUnknownSPI}
}

func (d *toyDP) InboundBypass(b *ipsec.Buffer) ipsec.InResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bypassIn {
		return ipsec.InResult{Verdict: ipsec.VerdictBypass}
	}
	return ipsec.InResult{Verdict: ipsec.VerdictDrop, Reason: ipsec.DropPolicyDiscard}
}

var (
	macRedGW   = netstack.MAC{0x02, 0, 0, 0, 0xa, 1}
	macBlackGW = netstack.MAC{0x02, 0, 0, 0, 0xb, 1}
	macRedPeer = netstack.MAC{0x02, 0, 0, 0, 0xa, 2}
	macBlkPeer = netstack.MAC{0x02, 0, 0, 0, 0xb, 2}
)

// gw is one netstack under test with both wires' far ends.
type gw struct {
	s          *netstack.Stack
	pool       *ipsec.Pool
	clk        *faketime.ManualClock
	red, black *nictest.NIC // far ends: tests and hosts use these
	// redNIC and blackNIC are the ends the stack drives.
	redNIC, blackNIC *nictest.NIC
	dp               netstack.DataPlane
	poolSize         int
}

type gwOpts struct {
	red, black       string // prefixes
	redGW, blackGW   string
	red6, black6     string
	mtu              int
	poolSize         int
	clk              *faketime.ManualClock
	dp               netstack.DataPlane
	macRed, macBlack netstack.MAC
	cfg              func(*netstack.Config)
	// offloads makes the stack's NICs take trains.
	offloads netstack.TxOffloads
}

func newGW(t testing.TB, o gwOpts) *gw {
	t.Helper()
	if o.mtu == 0 {
		o.mtu = 1500
	}
	if o.poolSize == 0 {
		o.poolSize = 512
	}
	if o.clk == nil {
		o.clk = faketime.NewManualClock()
	}
	if o.macRed.IsZero() {
		o.macRed, o.macBlack = macRedGW, macBlackGW
	}
	pool, err := ipsec.NewPool(o.poolSize, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
	if err != nil {
		t.Fatal(err)
	}
	redNIC, redFar := nictest.Pair(o.mtu, o.macRed, macRedPeer)
	blackNIC, blackFar := nictest.Pair(o.mtu, o.macBlack, macBlkPeer)
	redNIC.SetTxOffloads(o.offloads)
	blackNIC.SetTxOffloads(o.offloads)
	cfg := netstack.Config{
		Red:   netstack.PortConfig{Link: "red0", Addresses: []netip.Prefix{netip.MustParsePrefix(o.red)}},
		Black: netstack.PortConfig{Link: "black0", Addresses: []netip.Prefix{netip.MustParsePrefix(o.black)}},
		Pool:  pool,
		Clock: o.clk,
	}
	if o.red6 != "" {
		cfg.Red.Addresses = append(cfg.Red.Addresses, netip.MustParsePrefix(o.red6))
	}
	if o.black6 != "" {
		cfg.Black.Addresses = append(cfg.Black.Addresses, netip.MustParsePrefix(o.black6))
	}
	if o.redGW != "" {
		cfg.Red.Gateways = []netip.Addr{netip.MustParseAddr(o.redGW)}
	}
	if o.blackGW != "" {
		cfg.Black.Gateways = []netip.Addr{netip.MustParseAddr(o.blackGW)}
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	s, err := netstack.New(cfg, redNIC, blackNIC, o.dp)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	g := &gw{s: s, pool: pool, clk: o.clk, red: redFar, black: blackFar, redNIC: redNIC, blackNIC: blackNIC, dp: o.dp, poolSize: o.poolSize}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if got := pool.Available(); got != o.poolSize {
			t.Errorf("pool leak: %d of %d buffers returned; counters %+v", got, o.poolSize, s.Counters())
		}
	})
	return g
}

// eventually advances the manual clock in small steps, giving the stack's
// goroutines real time to run, until cond holds (bounded).
func eventually(t testing.TB, clk *faketime.ManualClock, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		clk.Advance(5 * time.Millisecond)
		time.Sleep(200 * time.Microsecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitReady lets IPv6 duplicate address detection finish on the manual
// clock.
func waitReady(t testing.TB, g *gw) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.s.WaitReady(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(time.Millisecond):
			g.clk.Advance(50 * time.Millisecond)
		}
	}
}

// tick advances a manual clock in the background, for tests that need
// TCP's timers to run.
func tick(clk *faketime.ManualClock, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Microsecond):
			clk.Advance(time.Millisecond)
		}
	}
}

// transferTCP carries payload over TCP from host from to a listener that
// host to opens at dst, ticking clk for TCP's timers, and fails unless
// the listener reads it back whole within timeout.
func transferTCP(t *testing.T, clk *faketime.ManualClock, from, to *nictest.Host, dst string, payload []byte, timeout time.Duration) {
	t.Helper()
	addr := netip.MustParseAddrPort(dst)
	ln, err := to.ListenTCP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		got, err := io.ReadAll(c)
		if err == nil && !bytes.Equal(got, payload) {
			err = io.ErrUnexpectedEOF
		}
		done <- err
	}()
	stop := make(chan struct{})
	defer close(stop)
	go tick(clk, stop)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := from.DialTCP(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("transfer timed out")
	}
}
