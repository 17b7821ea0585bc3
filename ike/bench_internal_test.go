package ike

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// countingInstaller is a data plane that keeps nothing, so that heap
// measurements see only the IKE engine.
type countingInstaller struct {
	spi  atomic.Uint32
	sas  atomic.Int64
	pols atomic.Int64
}

func (c *countingInstaller) AllocSPI(proposal.Protocol) (uint32, error) {
	return 0x1000 + c.spi.Add(1), nil
}
func (c *countingInstaller) ReleaseSPI(proposal.Protocol, uint32) {}
func (c *countingInstaller) AddSA(SAParams) error                 { c.sas.Add(1); return nil }
func (c *countingInstaller) UpdateSA(SAKey, SAUpdate) error       { return nil }
func (c *countingInstaller) DeleteSA(SAKey) error                 { c.sas.Add(-1); return nil }
func (c *countingInstaller) AddPolicy(PolicyParams) (PolicyID, error) {
	return PolicyID(c.pols.Add(1)), nil
}
func (c *countingInstaller) UpdatePolicy(PolicyID, PolicyParams) error { return nil }
func (c *countingInstaller) DeletePolicy(PolicyID) error               { c.pols.Add(-1); return nil }

// chanSender delivers straight into the peer Manager's Run queue.
type chanSender struct{ peer *Manager }

func (s chanSender) Send(data []byte, local, remote netip.AddrPort) error {
	s.peer.Deliver(append([]byte(nil), data...), remote, local)
	return nil
}

// benchPair is two Managers on their own goroutines (Run, system clock,
// crypto/rand), PSK, X25519, AES-GCM-16-128, PRF-SHA2-256.
type benchPair struct {
	a, b   *Manager
	ia, ib *countingInstaller
	toB    *chanSender
	stop   func()
}

func newBenchPair(tb testing.TB) *benchPair {
	addrA, addrB := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	mk := func(local, remote netip.Addr, lnet, rnet string) Config {
		ikeP, _ := proposal.Parse("aes128gcm16-prfsha256-x25519", proposal.ProtoIKE)
		espP, _ := proposal.Parse("aes128gcm16", proposal.ProtoESP)
		return Config{
			CookieThreshold: 1000, QueueLen: 1 << 16,
			Connections: []*Connection{{
				Name: "bench", LocalAddrs: []netip.Addr{local}, RemoteAddrs: []AddrRange{{remote, remote}},
				Proposals: ikeP, Unique: UniqueNever,
				Local:  AuthConfig{Method: AuthPSK, ID: AddrIdentity(local)},
				Remote: AuthConfig{Method: AuthPSK, ID: AddrIdentity(remote)},
				Children: []*Child{{Name: "net", Proposals: espP,
					LocalTS:  []TrafficSelector{{TS: PrefixTS(netip.MustParsePrefix(lnet))}},
					RemoteTS: []TrafficSelector{{TS: PrefixTS(netip.MustParsePrefix(rnet))}}}},
			}},
		}
	}
	creds := StaticCredentials{PSKs: []PSK{{Secret: []byte("benchmark pre-shared key")}}}
	p := &benchPair{ia: &countingInstaller{}, ib: &countingInstaller{}}
	var err error
	sa, sb := &chanSender{}, &chanSender{}
	if p.a, err = New(mk(addrA, addrB, "192.168.1.0/24", "192.168.2.0/24"), Deps{Sender: sa, Installer: p.ia, Credentials: creds}); err != nil {
		tb.Fatal(err)
	}
	if p.b, err = New(mk(addrB, addrA, "192.168.2.0/24", "192.168.1.0/24"), Deps{Sender: sb, Installer: p.ib, Credentials: creds}); err != nil {
		tb.Fatal(err)
	}
	sa.peer, sb.peer = p.b, p.a
	p.toB = sa
	p.a.Prepare()
	p.b.Prepare()
	ctx, cancel := context.WithCancel(context.Background())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { p.a.Run(ctx); close(doneA) }()
	go func() { p.b.Run(ctx); close(doneB) }()
	p.stop = func() { cancel(); <-doneA; <-doneB }
	return p
}

// handshakes runs n IKE_SA_INIT + IKE_AUTH handshakes with their Child
// SA, window at a time, each a new IKE SA, and waits for all.
func (p *benchPair) handshakes(tb testing.TB, n, window int) {
	conn := p.a.conns["bench"]
	child := conn.Children[0]
	finished := make(chan struct{})
	started, completed, failed := 0, 0, 0
	var startOne func()
	startOne = func() {
		started++
		req := &childRequest{cfg: child, done: []func(error){func(err error) {
			completed++
			if err != nil {
				failed++
			}
			if started < n {
				startOne()
			} else if completed == n {
				close(finished)
			}
		}}}
		if err := p.a.initiate(conn, []*childRequest{req}); err != nil {
			tb.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p.a.Call(ctx, func() {
		for range min(window, n) {
			startOne()
		}
	})
	select {
	case <-finished:
	case <-ctx.Done():
		tb.Fatalf("%d of %d handshakes finished", completed, n)
	}
	if failed > 0 {
		tb.Fatalf("%d handshakes failed", failed)
	}
}

// BenchmarkHandshake measures complete handshakes per second, wall
// clock, between two Managers in one process: fresh X25519 key pairs and
// nonces each time, PSK, AES-GCM-16-128, PRF-SHA2-256, with the Child SA.
func BenchmarkHandshake(b *testing.B) {
	p := newBenchPair(b)
	defer p.stop()
	p.handshakes(b, 200, 32) // warm up
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	p.handshakes(b, b.N, 32)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
	b.StopTimer()
	if got := p.ia.sas.Load(); got != int64(2*(b.N+200)) {
		b.Errorf("%d SAs installed at the initiator", got)
	}
}

// TestHeapPerSA measures the heap one established IKE SA with one Child
// SA costs each side, at 10,000 SAs (1,000 in short mode). The installer
// keeps nothing, so this is the engine alone; the data plane's SAs are
// the ipsec package's.
func TestHeapPerSA(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's bookkeeping is not the engine's heap")
	}
	n := 10000
	if testing.Short() {
		n = 1000
	}
	p := newBenchPair(t)
	defer p.stop()
	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	p.handshakes(t, n, 32)
	var countA, countB int
	ctx := context.Background()
	p.a.Call(ctx, func() { countA = len(p.a.sas) })
	p.b.Call(ctx, func() { countB = len(p.b.sas) })
	if countA != n || countB != n {
		t.Fatalf("%d and %d IKE SAs, want %d", countA, countB, n)
	}
	both := heap()
	// Forget the responder: what remains is the initiator's share.
	p.stop()
	p.b, p.ib, p.toB.peer = nil, nil, nil
	initiator := heap()
	perI := float64(int64(initiator)-int64(base)) / float64(n)
	perR := float64(int64(both)-int64(initiator)) / float64(n)
	t.Logf("heap per IKE SA with one Child SA at %d SAs: initiator %.0f B, responder %.0f B", n, perI, perR)
	const limit = 16 << 10
	if perI > limit || perR > limit {
		t.Errorf("over the 16 KiB budget: initiator %.0f B, responder %.0f B", perI, perR)
	}
	runtime.KeepAlive(p.a)
}
