//go:build linux

package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

func openIn(t testing.TB, ns, link string, opts Options) Port {
	t.Helper()
	var p Port
	var err error
	inNS(t, ns, func() { p, err = Open(link, opts) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func arpRequestFrame(from netstack.MAC, sender, target netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], from[:])
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:], from[:])
	s, d := sender.As4(), target.As4()
	copy(a[14:], s[:])
	copy(a[24:], d[:])
	return f
}

// readUntil reads batches from p until match accepts a frame (bounded).
func readUntil(t *testing.T, p Port, what string, match func([]byte) bool) []byte {
	t.Helper()
	bufs := newBufs(16)
	type res struct {
		f   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			for _, b := range bufs {
				b.Reset(ipsec.DefaultHeadroom)
			}
			n, err := p.Read(bufs)
			if err != nil {
				ch <- res{err: err}
				return
			}
			for _, b := range bufs[:n] {
				if match(b.Bytes()) {
					ch <- res{f: append([]byte(nil), b.Bytes()...)}
					return
				}
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r.f
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame: %s", what)
	}
	return nil
}

func writeFrame(t *testing.T, p Port, frame []byte) {
	t.Helper()
	b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	b.SetPacket(b.Headroom(), copy(b.Space(), frame))
	if n, err := p.Write([]*ipsec.Buffer{b}); n != 1 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
}

// Frames cross both ways: our ARP request reaches the kernel on the far
// side of the veth, and its reply reaches us.
func TestPacketBothWays(t *testing.T) {
	needRoot(t)
	nsK, nsB := newNS(t, "kern"), newNS(t, "bitw")
	vethPair(t, nsK, "k0", nsB, "b0")
	ip(t, "-n", nsK, "addr", "add", "10.99.0.1/24", "dev", "k0")
	ip(t, "-n", nsK, "link", "set", "k0", "up")
	// With trains (the default) only receive coalescing goes; the
	// segmentation offloads stay for the trains.
	p := openIn(t, nsB, "b0", Options{})
	info := p.Info()
	if info.MTU != 1500 || info.Index == 0 || len(info.KernelAddrs) != 0 || info.Kind != "af_packet" || len(info.OffloadsOff) == 0 {
		t.Fatalf("info %+v", info)
	}
	wantFeatures(t, nsB, "b0", "generic-receive-offload: off", "generic-segmentation-offload: on", "tcp-segmentation-offload: on", "tx-udp-segmentation: on")
	if k := p.(netstack.SegmentOffload).TxOffloads(); k.MaxFrames < 2 || !k.Kinds.Has(netstack.OffloadUDP) || !k.Kinds.Has(netstack.OffloadTCPv4) || !k.Kinds.Has(netstack.OffloadTCPv6) {
		t.Fatalf("offloads %+v", k)
	}
	p.Close()
	p = openIn(t, nsB, "b0", Options{NoSegmentOffload: true})
	wantFeatures(t, nsB, "b0", "generic-receive-offload: off", "generic-segmentation-offload: off", "tcp-segmentation-offload: off", "tx-udp-segmentation: off")
	if k := p.(netstack.SegmentOffload).TxOffloads(); k.Kinds != 0 {
		t.Fatalf("offloads %+v with NoSegmentOffload", k)
	}
	me := netstack.MAC{2, 0, 0, 0, 0x99, 1}
	writeFrame(t, p, arpRequestFrame(me, netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1")))
	readUntil(t, p, "ARP reply", func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 && netstack.MAC(f[:6]) == me
	})
	if s := p.Stats(); s.RxFrames == 0 || s.TxFrames != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// wantFeatures checks ethtool -k's view of link in ns, when ethtool(8) is
// there.
func wantFeatures(t *testing.T, ns, link string, want ...string) {
	t.Helper()
	path, err := exec.LookPath("ethtool")
	if err != nil {
		return
	}
	out, err := exec.Command("ip", "netns", "exec", ns, path, "-k", link).CombinedOutput()
	if err != nil {
		t.Fatalf("ethtool: %v: %s", err, out)
	}
	for _, f := range want {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("ethtool -k %s: want %q in\n%s", link, f, out)
		}
	}
}

// An address the kernel holds on the link is reported for a warning, and
// the kernel may neither forward from the link nor run IPv6 on it.
func TestPacketReportsKernelAddress(t *testing.T) {
	needRoot(t)
	nsK, nsB := newNS(t, "kern"), newNS(t, "bitw")
	vethPair(t, nsK, "k0", nsB, "b0")
	ip(t, "-n", nsB, "addr", "add", "10.99.3.2/24", "dev", "b0")
	var fwd, v6 []byte
	var err1, err2 error
	inNS(t, nsB, func() {
		os.WriteFile("/proc/sys/net/ipv4/conf/b0/forwarding", []byte("1\n"), 0)
	})
	p := openIn(t, nsB, "b0", Options{})
	inNS(t, nsB, func() {
		fwd, err1 = os.ReadFile("/proc/sys/net/ipv4/conf/b0/forwarding")
		v6, err2 = os.ReadFile("/proc/sys/net/ipv6/conf/b0/disable_ipv6")
	})
	if got := p.Info().KernelAddrs; len(got) != 1 || got[0] != netip.MustParsePrefix("10.99.3.2/24") {
		t.Fatalf("kernel addresses %v", got)
	}
	if err1 != nil || err2 != nil || string(fwd) != "0\n" || string(v6) != "1\n" {
		t.Fatalf("forwarding %q (%v), disable_ipv6 %q (%v), notes %v", fwd, err1, v6, err2, p.Info().Notes)
	}
}

// bridge forwards every frame between two ports until stop, counting
// IPv4 TCP/UDP frames whose transport checksum does not verify.
type bridge struct {
	badChecksums atomic.Uint64
	tcpFrames    atomic.Uint64
	wg           sync.WaitGroup
}

func (br *bridge) run(from, to Port) {
	defer br.wg.Done()
	pool, _ := ipsec.NewPool(64, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
	bufs := make([]*ipsec.Buffer, 64)
	for i := range bufs {
		bufs[i] = pool.Get()
	}
	for {
		for _, b := range bufs {
			b.Reset(ipsec.DefaultHeadroom)
		}
		n, err := from.Read(bufs)
		if err != nil {
			return
		}
		for _, b := range bufs[:n] {
			br.check(b.Bytes())
		}
		to.Write(bufs[:n])
	}
}

func (br *bridge) check(f []byte) {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&15) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[9] != protoTCP || tot > len(ip) || tot < ihl+20 {
		return
	}
	br.tcpFrames.Add(1)
	l4 := ip[ihl:tot]
	if checksum.Checksum(l4, pseudoSum(ip, false, protoTCP, len(l4))) != 0xffff {
		br.badChecksums.Add(1)
	}
}

// A kernel TCP flow crosses two AF_PACKET ports bridged in user space.
// The senders keep their default offloads, so frames arrive with partial
// checksums and as 64 KiB segmentation-offload frames: without checksum
// completion and splitting the transfer stalls.
func TestPacketKernelTCPThroughBridge(t *testing.T) {
	needRoot(t)
	nsA, nsBr, nsB := newNS(t, "a"), newNS(t, "br"), newNS(t, "b")
	vethPair(t, nsA, "a0", nsBr, "pa")
	vethPair(t, nsB, "b0", nsBr, "pb")
	ip(t, "-n", nsA, "addr", "add", "10.99.1.1/24", "dev", "a0")
	ip(t, "-n", nsB, "addr", "add", "10.99.1.2/24", "dev", "b0")
	ip(t, "-n", nsA, "link", "set", "a0", "up")
	ip(t, "-n", nsB, "link", "set", "b0", "up")
	pa := openIn(t, nsBr, "pa", Options{})
	pb := openIn(t, nsBr, "pb", Options{})
	var br bridge
	br.wg.Add(2)
	go br.run(pa, pb)
	go br.run(pb, pa)
	defer func() {
		pa.Close()
		pb.Close()
		br.wg.Wait()
	}()

	var ln net.Listener
	var err error
	inNS(t, nsB, func() { ln, err = net.Listen("tcp4", "10.99.1.2:5001") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 32 << 20
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
	inNS(t, nsA, func() {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(context.Background(), "tcp4", "10.99.1.2:5001")
	})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("bitw host board "), size/16)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v (stats a=%+v b=%+v)", err, pa.Stats(), pb.Stats())
	}
	c.Close()
	select {
	case got := <-sum:
		if got != sha256.Sum256(data) {
			t.Fatal("data corrupted across the bridge")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("transfer stalled")
	}
	sa, sb := pa.Stats(), pb.Stats()
	t.Logf("a: %+v", sa)
	t.Logf("b: %+v", sb)
	if sa.RxChecksums == 0 || sa.RxGSOFrames == 0 {
		t.Fatalf("no partial checksums or offload frames seen from the kernel sender: %+v", sa)
	}
	if bad := br.badChecksums.Load(); bad != 0 {
		t.Fatalf("%d of %d TCP frames had bad checksums", bad, br.tcpFrames.Load())
	}
}

// Close unblocks a pending Read with an error that netstack recognises.
func TestPacketCloseUnblocksRead(t *testing.T) {
	needRoot(t)
	nsK, nsB := newNS(t, "kern"), newNS(t, "bitw")
	vethPair(t, nsK, "k0", nsB, "b0")
	p := openIn(t, nsB, "b0", Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(newBufs(4))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, netstack.ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

// A TAP port: the kernel side gets an address; our ARP request reaches it
// and its reply reaches us.
func TestTapBothWays(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "tap")
	p := openIn(t, ns, "tap:bitwtap0", Options{})
	if p.Info().Kind != "tap" || p.MAC().IsZero() || p.MAC().IsMulticast() {
		t.Fatalf("info %+v mac %v", p.Info(), p.MAC())
	}
	ip(t, "-n", ns, "addr", "add", "10.99.2.1/24", "dev", "bitwtap0")
	me := p.MAC()
	writeFrame(t, p, arpRequestFrame(me, netip.MustParseAddr("10.99.2.2"), netip.MustParseAddr("10.99.2.1")))
	readUntil(t, p, "ARP reply over TAP", func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 && netstack.MAC(f[:6]) == me
	})
}
