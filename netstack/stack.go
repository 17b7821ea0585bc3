package netstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/ipsec"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Stack is the device's network: two ports, the transit fast path between
// them and a gVisor stack for the device's own traffic.
type Stack struct {
	dp       DataPlane
	pool     *ipsec.Pool
	headroom int
	clock    tcpip.Clock
	log      *slog.Logger
	gv       *stack.Stack
	ports    [numPorts]*port
	ctr      counters
	icmp     rateLimiter
	reasm    *reassembler
	ipID     atomic.Uint32 // IPv4 ID of datagrams the device originates (RFC 6864 §4.1)
	mss4     int           // MSS clamp for IPv4 SYNs; zero when off
	mss6     int
	batch    int
	// noESPTrains: Config.NoESPTrains.
	noESPTrains bool

	startOnce sync.Once
	closeOnce sync.Once
	closing   atomic.Bool
	wg        sync.WaitGroup
	// txGate is held shared by every transmission outside the RX loops
	// (gVisor's frames, held packets released by a resolution), which
	// gVisor may run on timer goroutines it does not wait for. Close takes
	// it exclusively once closing is set, so that when Close returns no
	// such transmission still holds a buffer.
	txGate sync.RWMutex
}

// port is the device on one link.
type port struct {
	s     *Stack
	id    Port
	nicID tcpip.NICID
	nic   NIC
	// offload is the NIC's segmentation offload, when it has one and the
	// configuration allows it.
	offload SegmentOffload
	link    string
	mac     MAC
	mtu     int
	a       portAddrs
	ep      *linkEndpoint
	neigh   neighbourTable
	ctr     *portCounters
	other   *port
}

// New builds the stack on two NICs, which it owns from then on (Close
// closes them; after an error the caller still owns them), and a data
// plane. Nothing moves until Start.
func New(cfg Config, red, black NIC, dp DataPlane) (*Stack, error) {
	if red == nil || black == nil || dp == nil {
		return nil, errNoNIC
	}
	s := &Stack{
		dp:    dp,
		pool:  cfg.Pool,
		clock: cfg.Clock,
		log:   cfg.Logger,
		batch: orDefault(cfg.BatchSize, DefaultBatchSize),

		noESPTrains: cfg.NoESPTrains,
	}
	if s.clock == nil {
		s.clock = tcpip.NewStdClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.pool == nil {
		p, err := ipsec.NewPool(DefaultPoolBuffers, ipsec.DefaultBufferSize, ipsec.DefaultHeadroom)
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	probe := s.pool.Get()
	if probe == nil {
		return nil, errors.New("netstack: the buffer pool is empty")
	}
	s.headroom = probe.Headroom()
	room := probe.Headroom() + probe.Tailroom()
	probe.Release()
	if s.headroom < EthernetHeaderLen {
		return nil, fmt.Errorf("netstack: pool headroom %d cannot hold an Ethernet header", s.headroom)
	}

	nics := [numPorts]NIC{Red: red, Black: black}
	cfgs := [numPorts]*PortConfig{Red: &cfg.Red, Black: &cfg.Black}
	for id := range numPorts {
		pc, nic := cfgs[id], nics[id]
		p := &port{s: s, id: id, nicID: tcpip.NICID(id + 1), nic: nic, link: pc.Link, mac: pc.MAC, mtu: pc.MTU, ctr: &s.ctr.ports[id]}
		if p.mac.IsZero() {
			p.mac = nic.MAC()
		}
		if so, ok := nic.(SegmentOffload); ok && !cfg.NoSegmentOffload {
			p.offload = so
		}
		if p.mac.IsZero() || p.mac.IsMulticast() {
			return nil, fmt.Errorf("netstack: %s: MAC %v is not a unicast address", id, p.mac)
		}
		if p.mtu == 0 {
			p.mtu = nic.MTU()
		}
		a, err := pc.addrs(id, p.mac)
		if err != nil {
			return nil, err
		}
		p.a = a
		switch {
		case p.mtu < ip4ICMPErrorMax || p.mtu > nic.MTU():
			return nil, fmt.Errorf("netstack: %s: MTU %d outside [%d, NIC MTU %d]", id, p.mtu, ip4ICMPErrorMax, nic.MTU())
		case a.v6.IsValid() && p.mtu < ip6MinMTU:
			return nil, fmt.Errorf("netstack: %s: IPv6 needs an MTU of at least %d", id, ip6MinMTU)
		case p.mtu+EthernetHeaderLen > room:
			return nil, fmt.Errorf("netstack: %s: MTU %d does not fit the pool's %d-octet buffers", id, p.mtu, room)
		}
		p.neigh.init(p, orDefault(cfg.NeighbourPending, DefaultNeighbourPending), orDefault(cfg.NeighbourQueue, DefaultNeighbourQueue))
		p.ep = &linkEndpoint{p: p}
		s.ports[id] = p
	}
	s.ports[Red].other, s.ports[Black].other = s.ports[Black], s.ports[Red]
	if s.ports[Red].mac == s.ports[Black].mac {
		return nil, errors.New("netstack: red and black share a MAC")
	}

	if !cfg.NoMSSClamp {
		over := cfg.ESPOverhead
		if over == 0 {
			over = WorstCaseESPOverhead(s.ports[Black].a.v6.IsValid())
		}
		inner := s.ports[Black].mtu - over
		s.mss4, s.mss6 = inner-ip4MinLen-tcpMinLen, inner-ip6HeaderLen-tcpMinLen
		if inner < ip4ICMPErrorMax {
			return nil, fmt.Errorf("netstack: black MTU %d leaves no room for TCP after %d octets of ESP overhead", s.ports[Black].mtu, over)
		}
	}
	s.icmp.init(s.clock, orDefault(cfg.ICMPRate, DefaultICMPRate), orDefault(cfg.ICMPBurst, DefaultICMPBurst))
	timeout := cfg.ReassemblyTimeout
	if timeout == 0 {
		timeout = DefaultReassemblyTimeout
	}
	s.reasm = newReassembler(orDefault(cfg.ReassemblySlots, DefaultReassemblySlots), timeout)
	s.ipID.Store(ipIDSeed(cfg.Rand))

	if err := s.buildLocalStack(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func ipIDSeed(r io.Reader) uint32 {
	if r == nil {
		r = rand.Reader
	}
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// buildLocalStack creates the gVisor stack with one NIC per port, the
// device's addresses and a route table that keeps each source address on
// its own port.
func (s *Stack) buildLocalStack(cfg Config) error {
	rng := cfg.Rand
	if rng == nil {
		rng = rand.Reader
	}
	s.gv = stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs: ipv6.NDPConfigurations{
					// A router configures itself; it neither learns
					// routes nor addresses from advertisements.
					HandleRAs: ipv6.HandlingRAsDisabled,
				},
				DADConfigs: stack.DefaultDADConfigurations(),
			}),
			arp.NewProtocol,
		},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		Clock:              s.clock,
		NUDConfigs:         stack.DefaultNUDConfigurations(),
		NUDDisp:            nudDispatcher{s},
		SecureRNG:          rng,
	})
	var routes []tcpip.Route
	var defaults []tcpip.Route
	for _, p := range s.ports {
		if err := s.gv.CreateNICWithOptions(p.nicID, p.ep, stack.NICOptions{Name: p.id.String()}); err != nil {
			s.gv.Close()
			return fmt.Errorf("netstack: %s: create NIC: %s", p.id, err)
		}
		add := func(pfx netip.Prefix, proto tcpip.NetworkProtocolNumber) error {
			pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpAddr(pfx.Addr()), PrefixLen: pfx.Bits()}}
			if err := s.gv.AddProtocolAddress(p.nicID, pa, stack.AddressProperties{}); err != nil {
				return fmt.Errorf("netstack: %s: add %v: %s", p.id, pfx, err)
			}
			routes = append(routes, tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: p.nicID})
			return nil
		}
		if p.a.v4.IsValid() {
			if err := add(p.a.v4, header.IPv4ProtocolNumber); err != nil {
				s.gv.Close()
				return err
			}
			if p.a.gw4.IsValid() {
				defaults = append(defaults, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpAddr(p.a.gw4), NIC: p.nicID})
			}
		}
		if p.a.v6.IsValid() {
			if err := add(p.a.v6, header.IPv6ProtocolNumber); err != nil {
				s.gv.Close()
				return err
			}
			if err := add(netip.PrefixFrom(p.a.linkLocal6, 64), header.IPv6ProtocolNumber); err != nil {
				s.gv.Close()
				return err
			}
			if p.a.gw6.IsValid() {
				defaults = append(defaults, tcpip.Route{Destination: header.IPv6EmptySubnet, Gateway: tcpAddr(p.a.gw6), NIC: p.nicID})
			}
		}
	}
	// Black's default routes come first: IKE peers are anywhere. A reply
	// from the red address still leaves through red, because gVisor only
	// picks routes whose NIC holds the source address.
	for i := len(defaults) - 1; i >= 0; i-- {
		if defaults[i].NIC == s.ports[Black].nicID {
			defaults[0], defaults[i] = defaults[i], defaults[0]
		}
	}
	s.gv.SetRouteTable(append(routes, defaults...))
	return nil
}

func tcpAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func fromTCPAddr(a tcpip.Address) (netip.Addr, bool) {
	switch a.Len() {
	case 4:
		return netip.AddrFrom4(a.As4()), true
	case 16:
		return netip.AddrFrom16(a.As16()), true
	}
	return netip.Addr{}, false
}

// Start launches one RX goroutine per port. It returns at once.
func (s *Stack) Start() {
	s.startOnce.Do(func() {
		for _, p := range s.ports {
			s.wg.Add(1)
			go s.rxLoop(p)
		}
		s.log.Info("netstack started",
			"red", s.ports[Red].link, "red_mac", s.ports[Red].mac.String(), "red_mtu", s.ports[Red].mtu,
			"black", s.ports[Black].link, "black_mac", s.ports[Black].mac.String(), "black_mtu", s.ports[Black].mtu,
			"mss4", s.mss4, "mss6", s.mss6)
	})
}

// Close stops both RX loops, closes the NICs and the local stack (and with
// it every socket on it), and returns every buffer it held to the pool.
func (s *Stack) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		for _, p := range s.ports {
			if err := p.nic.Close(); err != nil {
				errs = append(errs, fmt.Errorf("netstack: %s: %w", p.id, err))
			}
		}
		s.wg.Wait()
		s.gv.Close()
		s.gv.Wait()
		for _, p := range s.ports {
			p.neigh.drain()
		}
		s.reasm.drain()
		// A barrier: senders that got in before closing was set are done.
		s.txGate.Lock()
		s.txGate.Unlock()
	})
	return errors.Join(errs...)
}

// Counters returns a snapshot of every counter.
func (s *Stack) Counters() Counters {
	c := s.ctr.snapshot()
	c.PoolAvailable = s.pool.Available()
	return c
}

// MTU is the IP MTU of a port.
func (s *Stack) MTU(p Port) int { return s.ports[p].mtu }

// MAC is the device's hardware address on a port.
func (s *Stack) MAC(p Port) MAC { return s.ports[p].mac }

// Link is the board's name for a port, as configured.
func (s *Stack) Link(p Port) string { return s.ports[p].link }

// Addresses lists the device's addresses on a port, the derived IPv6
// link-local address included.
func (s *Stack) Addresses(p Port) []netip.Prefix {
	a := s.ports[p].a
	var out []netip.Prefix
	if a.v4.IsValid() {
		out = append(out, a.v4)
	}
	if a.v6.IsValid() {
		out = append(out, a.v6, netip.PrefixFrom(a.linkLocal6, 64))
	}
	return out
}

// WaitReady blocks until every configured address is usable: IPv6
// addresses stay tentative during duplicate address detection (RFC 4862
// §5.4, about a second), and sockets cannot bind them before. It polls in
// real time; with a manual clock the caller must advance it meanwhile.
func (s *Stack) WaitReady(ctx context.Context) error {
	for {
		ready := true
		for _, p := range s.ports {
			for _, a := range []netip.Addr{p.a.v4.Addr(), p.a.v6.Addr(), p.a.linkLocal6} {
				if !a.IsValid() {
					continue
				}
				proto := header.IPv4ProtocolNumber
				if a.Is6() {
					proto = header.IPv6ProtocolNumber
				}
				if s.gv.CheckLocalAddress(p.nicID, proto, tcpAddr(a)) != p.nicID {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netstack: addresses not ready: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// MSS is the clamp applied to TCP SYNs that cross a tunnel, per inner
// address family; zero when clamping is off.
func (s *Stack) MSS() (ipv4, ipv6 int) { return s.mss4, s.mss6 }

func fullAddress(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	fa := tcpip.FullAddress{Port: ap.Port()}
	a := ap.Addr().Unmap()
	if a.IsValid() && !a.IsUnspecified() {
		fa.Addr = tcpAddr(a)
	}
	if a.Is4() {
		return fa, header.IPv4ProtocolNumber
	}
	return fa, header.IPv6ProtocolNumber
}

// ListenUDP opens a UDP socket on the local stack, bound to one of the
// device's addresses: IKE binds the black address on ports 500 and 4500.
// Datagrams that reach it have passed the frame path's classifier, so a
// black-side socket never sees traffic that arrived on red.
func (s *Stack) ListenUDP(addr netip.AddrPort) (net.PacketConn, error) {
	if err := s.checkLocal(addr.Addr()); err != nil {
		return nil, err
	}
	fa, proto := fullAddress(addr)
	c, err := gonet.DialUDP(s.gv, &fa, nil, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen udp %v: %w", addr, err)
	}
	return c, nil
}

// ListenTCP opens a TCP listener on the local stack, bound to one of the
// device's addresses: the management HTTP server binds the red address.
func (s *Stack) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	if err := s.checkLocal(addr.Addr()); err != nil {
		return nil, err
	}
	fa, proto := fullAddress(addr)
	l, err := gonet.ListenTCP(s.gv, fa, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen tcp %v: %w", addr, err)
	}
	return l, nil
}

// checkLocal refuses wildcard binds: a socket on 0.0.0.0 would take
// traffic from both ports, and the management server must not be
// reachable from black.
func (s *Stack) checkLocal(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range s.ports {
		if a == p.a.v4.Addr() && p.a.v4.IsValid() || a == p.a.v6.Addr() && p.a.v6.IsValid() {
			return nil
		}
	}
	return fmt.Errorf("netstack: %v is not one of the device's addresses", a)
}

// portOf maps a gVisor NIC ID back to its port.
func (s *Stack) portOf(id tcpip.NICID) *port {
	for _, p := range s.ports {
		if p != nil && p.nicID == id {
			return p
		}
	}
	return nil
}

// pause backs off after a NIC error or an exhausted pool without spinning.
func pause() { time.Sleep(time.Millisecond) }
