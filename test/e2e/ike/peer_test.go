package ikee2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/test/e2e/harness"
)

// bitwPeer is bitw's IKE side in gwA's namespace.
type bitwPeer struct {
	t     *testing.T
	g     *harness.Gateway
	m     *ike.Manager
	socks map[uint16]*net.UDPConn
	dp    *dataPlane
	keys  *keyLog
	log   *os.File
	stop  context.CancelFunc
	done  chan struct{}
}

// keyLog records what the key hook reports.
type keyLog struct {
	mu    sync.Mutex
	ike   []ike.IKEKeyInfo
	child map[uint32]ike.ChildKeyInfo
}

func (k *keyLog) IKEKeys(i ike.IKEKeyInfo) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ike = append(k.ike, i)
}

func (k *keyLog) ChildKeys(c ike.ChildKeyInfo) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.child[c.SPI] = c
}

// udpSender sends from the socket bound to the local port.
type udpSender struct{ socks map[uint16]*net.UDPConn }

func (s udpSender) Send(data []byte, local, remote netip.AddrPort) error {
	c := s.socks[local.Port()]
	if c == nil {
		return fmt.Errorf("no socket on port %d", local.Port())
	}
	_, err := c.WriteToUDPAddrPort(data, remote)
	return err
}

// startBitw runs cfg in g's namespace with UDP 500 and 4500 on g's black
// address and a TUN device that the red subnet of the peer is routed to.
func startBitw(t *testing.T, g *harness.Gateway, cfg ike.Config, creds ike.Credentials) *bitwPeer {
	t.Helper()
	local := g.Black4.Addr()
	p := &bitwPeer{t: t, g: g, socks: map[uint16]*net.UDPConn{}, keys: &keyLog{child: map[uint32]ike.ChildKeyInfo{}},
		done: make(chan struct{})}
	var tun *os.File
	err := inNetns(g.NS.Name, func() error {
		for _, port := range []uint16{ike.PortIKE, ike.PortNATT} {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, port)))
			if err != nil {
				return err
			}
			p.socks[port] = c
		}
		var err error
		tun, err = openTUN("bitw0")
		return err
	})
	if err != nil {
		t.Fatalf("sockets in %s: %v", g.NS.Name, err)
	}
	g.NS.IPBatch(t, "link set bitw0 up", "route add "+g.RemoteNet4.String()+" dev bitw0")
	start := time.Now()
	events := make(chan ipsec.Event, 64)
	engine := ipsec.New(ipsec.Config{Now: func() int64 { return int64(time.Since(start)) }, Events: events})
	p.dp = &dataPlane{e: engine, tun: tun, natt: p.socks[ike.PortNATT], local: netip.AddrPortFrom(local, ike.PortNATT)}

	logPath := harness.LogDir(t) + "/bitw-ike.log"
	p.log, err = os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p.m, err = ike.New(cfg, ike.Deps{Sender: udpSender{p.socks}, Installer: engineInstaller{engine},
		Credentials: creds, Logger: logger, KeyHook: p.keys})
	if err != nil {
		t.Fatal(err)
	}
	p.m.Prepare()
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() {
		defer close(p.done)
		p.m.Run(ctx)
	}()
	for port, c := range p.socks {
		go p.read(c, netip.AddrPortFrom(local, port))
	}
	go p.dp.fromTUN()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				p.m.Event(dataPlaneEvent(ev))
			case <-tick.C:
				engine.Tick(int64(time.Since(start)))
			}
		}
	}()
	t.Cleanup(func() {
		p.shutdown()
		if t.Failed() {
			t.Logf("bitw log: %s", logPath)
		}
	})
	return p
}

func dataPlaneEvent(ev ipsec.Event) ike.DataPlaneEvent {
	d := ike.DataPlaneEvent{ReqID: ev.ReqID, SA: ike.SAKey{Proto: ev.SA.Proto, SPI: ev.SA.SPI, Dst: ev.SA.Dst},
		Src: ev.Packet.Src, Dst: ev.Packet.Dst, Proto: ev.Packet.Proto, SrcPort: ev.Packet.SrcPort, DstPort: ev.Packet.DstPort}
	d.SA.Dir = ike.DirIn
	if ev.SA.Dir == ipsec.DirOut {
		d.SA.Dir = ike.DirOut
	}
	switch ev.Kind {
	case ipsec.EventSoftExpire:
		d.Kind = ike.EventSoftExpire
	case ipsec.EventHardExpire:
		d.Kind = ike.EventHardExpire
	case ipsec.EventSeqExhausted:
		d.Kind = ike.EventSeqExhausted
	case ipsec.EventAcquire:
		d.Kind = ike.EventAcquire
	}
	return d
}

// read hands IKE to the Manager and ESP in UDP to the data plane.
func (p *bitwPeer) read(c *net.UDPConn, local netip.AddrPort) {
	for {
		buf := make([]byte, 65536)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		data := buf[:n]
		if local.Port() == ike.PortNATT && n > 4 && binary.BigEndian.Uint32(data) != 0 {
			p.dp.esp(data, from)
			continue
		}
		p.m.Deliver(data, local, from)
	}
}

// shutdown deletes the SAs with the peer (bounded), then stops.
func (p *bitwPeer) shutdown() {
	select {
	case <-p.done:
		return
	default:
	}
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.m.Call(ctx, func() { p.m.Shutdown(func() { close(done) }) })
	select {
	case <-done:
	case <-ctx.Done():
	}
	p.kill()
}

// kill stops at once, as a crash would: no DELETE is sent.
func (p *bitwPeer) kill() {
	p.stop()
	<-p.done
	for _, c := range p.socks {
		c.Close()
	}
	p.dp.tun.Close()
	p.log.Close()
}

// do runs f on the Manager's goroutine.
func (p *bitwPeer) do(f func(m *ike.Manager)) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.m.Call(ctx, func() { f(p.m) }); err != nil {
		p.t.Fatalf("manager call: %v", err)
	}
}

func (p *bitwPeer) status() []ike.IKESAStatus {
	var st []ike.IKESAStatus
	p.do(func(m *ike.Manager) { st = m.Status() })
	return st
}

func (p *bitwPeer) stats() ike.Stats {
	var s ike.Stats
	p.do(func(m *ike.Manager) { s = m.Stats() })
	return s
}

// up brings up conn/child and waits for the outcome.
func (p *bitwPeer) up(conn, child string, timeout time.Duration) error {
	p.t.Helper()
	res := make(chan error, 1)
	var err error
	p.do(func(m *ike.Manager) { err = m.Up(conn, child, func(e error) { res <- e }) })
	if err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("up %s/%s: no outcome in %v", conn, child, timeout)
	}
}

// waitEstablished waits until one IKE SA of conn is ESTABLISHED with n
// INSTALLED children and no other SA lingers.
func (p *bitwPeer) waitEstablished(children int, timeout time.Duration) ike.IKESAStatus {
	p.t.Helper()
	var last []ike.IKESAStatus
	var got ike.IKESAStatus
	err := harness.WaitFor(timeout, "bitw established", func() (bool, error) {
		last = p.status()
		if len(last) != 1 || last[0].State != ike.IKEEstablished {
			return false, nil
		}
		k := 0
		for _, c := range last[0].Children {
			if c.State == ike.ChildInstalled {
				k++
			}
		}
		got = last[0]
		return k == children && len(last[0].Children) == children, nil
	})
	if err != nil {
		p.t.Fatalf("%v; bitw holds %s", err, describe(last))
	}
	return got
}

func describe(st []ike.IKESAStatus) string {
	s := ""
	for _, sa := range st {
		s += fmt.Sprintf("[%s %v %016x/%016x %s", sa.Conn, sa.State, sa.SPIi, sa.SPIr, sa.Proposal)
		for _, c := range sa.Children {
			s += fmt.Sprintf(" {%s %v %08x/%08x %s}", c.Name, c.State, c.SPIIn, c.SPIOut, c.Proposal)
		}
		s += "] "
	}
	return s
}
