package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// injector writes raw Ethernet frames onto one link of a namespace, over
// an AF_PACKET socket opened inside it.
type injector struct {
	fd      int
	ifindex int
}

func newInjector(t *testing.T, ns *harness.Netns, link string) *injector {
	t.Helper()
	type result = struct {
		in  *injector
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the namespace for the socket calls and
		// returns to its own before it is unlocked. It must not exit
		// with the goroutine instead: the harness starts processes with
		// Pdeathsig, which fires when the forking thread exits, and the
		// thread may be the one that forked a gateway.
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(own)
		nsfd, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(nsfd)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		res := openPacketSocket(link)
		if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
			// Stuck in the namespace: stay locked, so that the thread
			// ends with this goroutine and nothing else runs on it.
			done <- result{err: fmt.Errorf("leaving %s: %v", ns.Name, err)}
			return
		}
		runtime.UnlockOSThread()
		done <- res
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("packet socket on %s in %s: %v", link, ns.Name, r.err)
	}
	t.Cleanup(func() { unix.Close(r.in.fd) })
	return r.in
}

// openPacketSocket opens an AF_PACKET socket bound to link in the
// calling thread's network namespace.
func openPacketSocket(link string) (r struct {
	in  *injector
	err error
}) {
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		r.err = err
		return r
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.err = err
		return r
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		r.err = err
		return r
	}
	r.in = &injector{fd: fd, ifindex: ifi.Index}
	return r
}

func (in *injector) send(frame []byte) error {
	return unix.Sendto(in.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: in.ifindex, Halen: 6})
}

// blackFrames builds what the fuzzer sends to gwA's black port: Ethernet
// from gwB's MAC, IPv4 from gwB's address.
type blackFrames struct {
	dstMAC, srcMAC [6]byte
	src, dst       netip.Addr
	ipID           uint16
}

func (b *blackFrames) ether(payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f[0:6], b.dstMAC[:])
	copy(f[6:12], b.srcMAC[:])
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	copy(f[14:], payload)
	return f
}

// ipv4 is a valid IPv4 header (RFC 791) around payload.
func (b *blackFrames) ipv4(proto uint8, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0], p[8], p[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	b.ipID++
	binary.BigEndian.PutUint16(p[4:6], b.ipID)
	s, d := b.src.As4(), b.dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], ipChecksum(p[:20]))
	copy(p[20:], payload)
	return p
}

// udp is a UDP header without checksum (zero: allowed over IPv4, RFC 768).
func udp(sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:2], sport)
	binary.BigEndian.PutUint16(u[2:4], dport)
	binary.BigEndian.PutUint16(u[4:6], uint16(len(u)))
	copy(u[8:], payload)
	return u
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// espHeader is SPI and sequence number (RFC 4303 §2) before body.
func espPacket(spi, seq uint32, body []byte) []byte {
	p := make([]byte, 8+len(body))
	binary.BigEndian.PutUint32(p[0:4], spi)
	binary.BigEndian.PutUint32(p[4:8], seq)
	copy(p[8:], body)
	return p
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// statusJSON is the part of bitw's status the fuzz test reads.
type statusJSON struct {
	IKESAs []struct {
		SPIi     string `json:"spi_i"`
		SPIr     string `json:"spi_r"`
		ChildSAs []struct {
			SPIIn       string `json:"spi_in"`
			State       string `json:"state"`
			ReplayDrops uint64 `json:"replay_drops"`
			AuthDrops   uint64 `json:"auth_drops"`
			OtherDrops  uint64 `json:"other_drops"`
			PacketsIn   uint64 `json:"packets_in"`
		} `json:"child_sas"`
	} `json:"ike_sas"`
	Drops map[string]map[string]uint64 `json:"drops"`
}

func readStatus(t *testing.T, b *harness.Bitw) statusJSON {
	t.Helper()
	out, err := b.Ctl(10*time.Second, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v: %.300s", err, out)
	}
	return st
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func linkMAC(t *testing.T, ns *harness.Netns, link string) [6]byte {
	t.Helper()
	out := ns.Run(t, "ip", "-j", "link", "show", "dev", link)
	var l []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) != 1 {
		t.Fatalf("ip link show %s: %v: %s", link, err, out)
	}
	hw, err := net.ParseMAC(l[0].Address)
	if err != nil || len(hw) != 6 {
		t.Fatalf("MAC %q: %v", l[0].Address, err)
	}
	return [6]byte(hw)
}

// TestBitwMalformedBlackTraffic drives gwA's black port with a bounded,
// structure-aware stream of bad packets: valid Ethernet, IPv4 and UDP
// around ESP with unknown and live SPIs, forged and replayed ESP,
// truncations, bit flips, wrong lengths, broken IPv4 headers, NAT-T
// keepalives, and IKE messages mutated from the real handshake. bitw must
// survive, count every packet under a drop reason, and keep carrying
// the tunnel's traffic.
func TestBitwMalformedBlackTraffic(t *testing.T) {
	harness.RequireE2E(t, bitwTools...)
	bin := harness.BitwBinary(t)
	topo := harness.NewTopology(t, harness.Options{A: harness.BitwGateway, B: harness.BitwGateway})
	handshake := topo.Wire.StartCapture(t, topo.WireA, 0)
	bwB := harness.StartBitw(t, bin, topo.GwB, topo.GwB.BitwConfig(t, bitwSite("none")))
	bwA := harness.StartBitw(t, bin, topo.GwA, topo.GwA.BitwConfig(t, bitwSite("start")))
	if _, _, err := bwA.WaitChild(harness.DefaultConnName, harness.DefaultChildName, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 5)
	if err := handshake.Stop(); err != nil {
		t.Fatal(err)
	}
	frames, err := handshake.Frames()
	if err != nil {
		t.Fatal(err)
	}
	// What gwB sent gwA: ESP that gwA accepted, IKE responses.
	var espFromB, ikeFromB [][]byte
	peer, me := topo.GwB.Black4.Addr(), topo.GwA.Black4.Addr()
	for _, f := range frames {
		if et, nw, ok := f.Network(); ok && et == 0x0800 {
			ip, ok := harness.ParseIP(nw)
			if !ok || ip.Src != peer || ip.Dst != me {
				continue
			}
			switch {
			case ip.Proto == 50:
				espFromB = append(espFromB, append([]byte(nil), ip.Payload...))
			case ip.Proto == 17 && len(ip.Payload) > 8 && binary.BigEndian.Uint16(ip.Payload[0:2]) == 500:
				ikeFromB = append(ikeFromB, append([]byte(nil), ip.Payload[8:]...))
			}
		}
	}
	if len(espFromB) < 5 || len(ikeFromB) < 2 {
		t.Fatalf("handshake capture: %d ESP and %d IKE packets from gwB", len(espFromB), len(ikeFromB))
	}

	st0 := readStatus(t, bwA)
	if len(st0.IKESAs) != 1 || len(st0.IKESAs[0].ChildSAs) != 1 {
		t.Fatalf("gwA status: %+v", st0)
	}
	sa := st0.IKESAs[0]
	liveSPI := mustHex32(t, sa.ChildSAs[0].SPIIn)
	spiI, spiR := mustHex(t, sa.SPIi, 8), mustHex(t, sa.SPIr, 8)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BITW_FUZZ_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (BITW_FUZZ_SEED reproduces it)", seed)
	r := rand.New(rand.NewPCG(seed, 0x6269747766757a7a))
	bf := &blackFrames{dstMAC: linkMAC(t, topo.GwA.NS, harness.BlackLink), srcMAC: linkMAC(t, topo.GwB.NS, harness.BlackLink), src: peer, dst: me}
	in := newInjector(t, topo.Wire, topo.WireA)

	// Each category is sent as frames and expected under one reason; the
	// mixed categories only under their source's total.
	type batch struct {
		name   string
		source string // "ipsec", "netstack", "ike"
		reason string // "" when the reason depends on the mutation
		frames [][]byte
	}
	var batches []batch
	add := func(name, source, reason string, n int, gen func(i int) []byte) {
		b := batch{name: name, source: source, reason: reason}
		for i := range n {
			b.frames = append(b.frames, gen(i))
		}
		batches = append(batches, b)
	}
	unknownSPI := func() uint32 {
		for {
			if s := r.Uint32(); s != liveSPI && s > 255 {
				return s
			}
		}
	}
	add("ESP, unknown SPI", "ipsec", ipsec.DropUnknownSPI.String(), 300, func(i int) []byte {
		return bf.ether(bf.ipv4(50, espPacket(unknownSPI(), uint32(i+1), randBytes(r, 40+r.IntN(1300)))))
	})
	add("ESP-in-UDP 4500, unknown SPI", "ipsec", ipsec.DropUnknownSPI.String(), 100, func(i int) []byte {
		return bf.ether(bf.ipv4(17, udp(4500, 4500, espPacket(unknownSPI(), uint32(i+1), randBytes(r, 40+r.IntN(600))))))
	})
	add("ESP replayed (accepted earlier)", "ipsec", ipsec.DropReplay.String(), 3*len(espFromB), func(i int) []byte {
		return bf.ether(bf.ipv4(50, espFromB[i%len(espFromB)]))
	})
	add("ESP forged on the live SPI (fresh sequence numbers)", "ipsec", ipsec.DropAuth.String(), 300, func(i int) []byte {
		return bf.ether(bf.ipv4(50, espPacket(liveSPI, 1<<31+uint32(i), randBytes(r, 48+r.IntN(1300)))))
	})
	add("ESP bit flips in accepted packets, new sequence numbers", "ipsec", ipsec.DropAuth.String(), 200, func(i int) []byte {
		p := append([]byte(nil), espFromB[r.IntN(len(espFromB))]...)
		binary.BigEndian.PutUint32(p[4:8], 1<<30+uint32(i))
		j := 8 + r.IntN(len(p)-8)
		p[j] ^= 1 << r.IntN(8)
		return bf.ether(bf.ipv4(50, p))
	})
	add("NAT-T keepalives", "ipsec", ipsec.DropKeepalive.String(), 50, func(int) []byte {
		return bf.ether(bf.ipv4(17, udp(4500, 4500, []byte{0xff})))
	})
	add("ESP truncated or mangled on the live SPI", "ipsec", "", 200, func(i int) []byte {
		p := append([]byte(nil), espFromB[r.IntN(len(espFromB))]...)
		switch i % 3 {
		case 0: // cut anywhere from the SPI on
			p = p[:r.IntN(len(p))]
		case 1: // cut to less than header, IV and ICV
			p = p[:min(len(p), 8+r.IntN(24))]
		default: // flip bits anywhere, sequence number included
			for range 1 + r.IntN(4) {
				p[r.IntN(len(p))] ^= 1 << r.IntN(8)
			}
		}
		return bf.ether(bf.ipv4(50, p))
	})
	add("IPv4 with wrong lengths and broken headers", "netstack", "", 200, func(i int) []byte {
		p := bf.ipv4(50, espPacket(liveSPI, 1<<29+uint32(i), randBytes(r, 64)))
		switch i % 5 {
		case 0: // total length beyond the frame
			binary.BigEndian.PutUint16(p[2:4], uint16(len(p)+1+r.IntN(1000)))
		case 1: // total length inside the header
			binary.BigEndian.PutUint16(p[2:4], uint16(r.IntN(20)))
		case 2: // IHL below 5
			p[0] = 0x40 | byte(r.IntN(5))
		case 3: // header checksum wrong
			p[10] ^= 0x5a
		default: // version neither 4 nor 6
			p[0] = byte(r.IntN(16))<<4 | 5
			if p[0]>>4 == 4 || p[0]>>4 == 6 {
				p[0] = 0x75
			}
		}
		binary.BigEndian.PutUint16(p[10:12], 0)
		if i%5 != 3 {
			binary.BigEndian.PutUint16(p[10:12], ipChecksum(p[:20]))
		} else {
			binary.BigEndian.PutUint16(p[10:12], ^ipChecksum(p[:20]))
		}
		return bf.ether(p)
	})
	ike := func(i int) []byte {
		m := append([]byte(nil), ikeFromB[r.IntN(len(ikeFromB))]...)
		switch i % 6 {
		case 0: // replayed as it was: a response to no request
		case 1: // truncated
			m = m[:r.IntN(len(m))]
		case 2: // bit flips anywhere
			for range 1 + r.IntN(8) {
				m[r.IntN(len(m))] ^= 1 << r.IntN(8)
			}
		case 3: // wrong length field
			if len(m) >= 28 {
				binary.BigEndian.PutUint32(m[24:28], r.Uint32())
			}
		case 4: // live SPIs, a request with a random message ID and a garbage SK payload
			m = make([]byte, 28+4+r.IntN(300))
			copy(m[0:8], spiI)
			copy(m[8:16], spiR)
			m[16], m[17], m[18], m[19] = 46, 0x20, 37, 0x00 // SK, IKEv2, INFORMATIONAL, from the responder (gwB)
			binary.BigEndian.PutUint32(m[20:24], r.Uint32())
			binary.BigEndian.PutUint32(m[24:28], uint32(len(m)))
			copy(m[28:], randBytes(r, len(m)-28))
			m[28] = 0
			binary.BigEndian.PutUint16(m[30:32], uint16(len(m)-28))
		default: // unknown SPIs, random body
			m = randBytes(r, 28+r.IntN(400))
			m[17] = 0x20
			binary.BigEndian.PutUint32(m[24:28], uint32(len(m)))
		}
		return m
	}
	add("IKE on UDP 500: replays, truncations, bit flips, wrong lengths, forged on the live SPIs", "ike", "", 300, func(i int) []byte {
		return bf.ether(bf.ipv4(17, udp(500, 500, ike(i))))
	})
	add("IKE on UDP 4500 behind the non-ESP marker, mutated the same ways", "ike", "", 150, func(i int) []byte {
		return bf.ether(bf.ipv4(17, udp(4500, 4500, append([]byte{0, 0, 0, 0}, ike(i)...))))
	})

	// Send everything interleaved, at a bounded pace (the black port's
	// ring and the IKE queue are never overrun, so every packet reaches
	// a counter).
	var all [][]byte
	for _, b := range batches {
		all = append(all, b.frames...)
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	corpus := filepath.Join(harness.LogDir(t), "black-fuzz.hex")
	var dump strings.Builder
	for i, f := range all {
		if err := in.send(f); err != nil {
			t.Fatalf("send frame %d: %v", i, err)
		}
		if i < 2000 {
			dump.WriteString(hex.EncodeToString(f) + "\n")
		}
		if i%20 == 19 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	os.WriteFile(corpus, []byte(dump.String()), 0o600)
	t.Logf("sent %d frames in %d categories (first 2000 in %s)", len(all), len(batches), corpus)

	// Let the counters settle: IKE works through its queue.
	var st1 statusJSON
	want := map[string]uint64{}
	exact := map[string]map[string]uint64{}
	for _, b := range batches {
		want[b.source] += uint64(len(b.frames))
		if b.reason != "" {
			if exact[b.source] == nil {
				exact[b.source] = map[string]uint64{}
			}
			exact[b.source][b.reason] += uint64(len(b.frames))
		}
	}
	settled := harness.WaitFor(10*time.Second, "drop counters to cover the fuzz", func() (bool, error) {
		st1 = readStatus(t, bwA)
		for src, n := range want {
			if sum(st1.Drops[src])-sum(st0.Drops[src])-(st1.Drops[src]["data_plane"]-st0.Drops[src]["data_plane"]) < n {
				return false, nil
			}
		}
		return true, nil
	})
	for _, src := range []string{"ipsec", "netstack", "ike"} {
		got := sum(st1.Drops[src]) - sum(st0.Drops[src])
		if src == "netstack" {
			// The frame path also counts the data plane's drops, apart.
			got -= st1.Drops[src]["data_plane"] - st0.Drops[src]["data_plane"]
		}
		t.Logf("%s drops: +%d for %d frames sent; now %v", src, got, want[src], st1.Drops[src])
		if got != want[src] {
			t.Errorf("%s counted %d drops for the %d frames sent its way", src, got, want[src])
		}
		for reason, n := range exact[src] {
			if d := st1.Drops[src][reason] - st0.Drops[src][reason]; d < n {
				t.Errorf("%s %s: +%d, want at least %d", src, reason, d, n)
			}
		}
	}
	if settled != nil {
		t.Logf("%v", settled)
	}

	// The appliance is alive, the SA unchanged, and the tunnel carries
	// traffic both ways.
	if !bwA.Proc.Running() || !bwB.Proc.Running() {
		for _, b := range []*harness.Bitw{bwA, bwB} {
			if !b.Proc.Running() {
				t.Errorf("%s died: %v\n%s", b.NS.Name, b.Proc.ExitErr(), b.Proc.Tail(30))
			}
		}
		t.FailNow()
	}
	if st1.IKESAs[0].ChildSAs[0].SPIIn != sa.ChildSAs[0].SPIIn || st1.IKESAs[0].SPIi != sa.SPIi {
		t.Errorf("the SAs changed under the fuzz: %+v -> %+v", sa, st1.IKESAs[0])
	}
	c := st1.IKESAs[0].ChildSAs[0]
	t.Logf("live SA %s drops: replay %d, auth %d, other %d", c.SPIIn, c.ReplayDrops, c.AuthDrops, c.OtherDrops)
	topo.HostA.NS.MustPing(t, topo.HostB.Addr4, 5)
	topo.HostB.NS.MustPing(t, topo.HostA.Addr4, 5)
}

func mustHex(t *testing.T, s string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func mustHex32(t *testing.T, s string) uint32 {
	return binary.BigEndian.Uint32(mustHex(t, s, 4))
}
