package nictest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bitw-dev/bitw/netstack"
	"gvisor.dev/gvisor/pkg/buffer"
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
	"gvisor.dev/gvisor/pkg/waiter"
)

// Host is a machine on one end of a link: a gVisor stack of its own, with
// one interface, an address and an optional default gateway.
type Host struct {
	Stack *stack.Stack
	nic   *NIC
	ep    *hostEndpoint
	wg    sync.WaitGroup
	addrs []netip.Prefix
}

// HostConfig describes a Host.
type HostConfig struct {
	Addresses []netip.Prefix
	Gateways  []netip.Addr
	Clock     tcpip.Clock // nil: the system clock
}

// NewHost starts a host on nic (the end not given to netstack).
func NewHost(nic *NIC, cfg HostConfig) (*Host, error) {
	clk := cfg.Clock
	if clk == nil {
		clk = tcpip.NewStdClock()
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocolWithOptions(ipv6.Options{DADConfigs: stack.DADConfigurations{}}), arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		Clock:              clk,
	})
	h := &Host{Stack: s, nic: nic, ep: &hostEndpoint{nic: nic}, addrs: cfg.Addresses}
	if err := s.CreateNIC(1, h.ep); err != nil {
		return nil, fmt.Errorf("nictest: %s", err)
	}
	var routes []tcpip.Route
	for _, a := range cfg.Addresses {
		proto := header.IPv4ProtocolNumber
		if a.Addr().Is6() {
			proto = header.IPv6ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr(a.Addr()), PrefixLen: a.Bits()}}
		if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			return nil, fmt.Errorf("nictest: %s", err)
		}
		routes = append(routes, tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1})
	}
	for _, g := range cfg.Gateways {
		dst := header.IPv4EmptySubnet
		if g.Is6() {
			dst = header.IPv6EmptySubnet
		}
		routes = append(routes, tcpip.Route{Destination: dst, Gateway: addr(g), NIC: 1})
	}
	s.SetRouteTable(routes)
	h.wg.Add(1)
	go h.rx()
	return h, nil
}

func addr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func (h *Host) rx() {
	defer h.wg.Done()
	for {
		select {
		case f := <-h.nic.rx:
			h.ep.deliver(f)
		case <-h.nic.done:
			return
		}
	}
}

// Close stops the host.
func (h *Host) Close() {
	h.nic.Close()
	h.wg.Wait()
	h.Stack.Close()
	h.Stack.Wait()
}

// ListenUDP opens a UDP socket on the host.
func (h *Host) ListenUDP(a netip.AddrPort) (*gonet.UDPConn, error) {
	fa, proto := full(a)
	return gonet.DialUDP(h.Stack, &fa, nil, proto)
}

// DialTCP connects from the host.
func (h *Host) DialTCP(ctx context.Context, a netip.AddrPort) (*gonet.TCPConn, error) {
	fa, proto := full(a)
	return gonet.DialContextTCP(ctx, h.Stack, fa, proto)
}

func full(a netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	fa := tcpip.FullAddress{Port: a.Port()}
	if a.Addr().IsValid() && !a.Addr().IsUnspecified() {
		fa.Addr = addr(a.Addr())
	}
	if a.Addr().Is4() {
		return fa, header.IPv4ProtocolNumber
	}
	return fa, header.IPv6ProtocolNumber
}

// ErrNoReply is returned by Ping when no echo reply came in time.
var ErrNoReply = errors.New("nictest: no echo reply")

// Ping sends one ICMP echo request of size payload octets to dst, without
// DF so that the host fragments it when needed, and waits up to timeout
// (real time) for the matching reply. pump, when set, runs while waiting
// (tests advance a manual clock with it).
func (h *Host) Ping(dst netip.Addr, payload int, timeout time.Duration, pump func()) error {
	var wq waiter.Queue
	netProto, transProto := header.IPv4ProtocolNumber, icmp.ProtocolNumber4
	typ := byte(header.ICMPv4Echo)
	if dst.Is6() {
		netProto, transProto = header.IPv6ProtocolNumber, icmp.ProtocolNumber6
		typ = byte(header.ICMPv6EchoRequest)
	}
	ep, err := h.Stack.NewEndpoint(transProto, netProto, &wq)
	if err != nil {
		return fmt.Errorf("nictest: %s", err)
	}
	defer ep.Close()
	if err := ep.SetSockOptInt(tcpip.MTUDiscoverOption, int(tcpip.PMTUDiscoveryDont)); err != nil {
		return fmt.Errorf("nictest: %s", err)
	}
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)

	msg := make([]byte, 8+payload)
	msg[0] = typ
	binary.BigEndian.PutUint16(msg[6:], 1)
	for i := range payload {
		msg[8+i] = byte(i)
	}
	var r bytes.Reader
	r.Reset(msg)
	if _, err := ep.Write(&r, tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: addr(dst)}}); err != nil {
		return fmt.Errorf("nictest: ping write: %s", err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var out bytes.Buffer
		if _, err := ep.Read(&out, tcpip.ReadOptions{}); err == nil {
			rep := out.Bytes()
			if len(rep) >= 8 && bytes.Equal(rep[8:], msg[8:]) {
				return nil
			}
			continue
		}
		if pump != nil {
			pump()
		}
		select {
		case <-ch:
		case <-time.After(time.Millisecond):
		}
	}
	return ErrNoReply
}

// hostEndpoint is the host's Ethernet interface over a NIC end.
type hostEndpoint struct {
	nic *NIC
	mu  sync.RWMutex
	d   stack.NetworkDispatcher
}

func (e *hostEndpoint) deliver(f []byte) {
	if len(f) < netstack.EthernetHeaderLen {
		return
	}
	dst := netstack.MAC(f[:6])
	if !dst.IsMulticast() && dst != e.nic.mac {
		return
	}
	e.mu.RLock()
	d := e.d
	e.mu.RUnlock()
	if d == nil {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)})
	defer pkt.DecRef()
	if _, ok := pkt.LinkHeader().Consume(netstack.EthernetHeaderLen); !ok {
		return
	}
	pkt.PktType = tcpip.PacketHost
	if dst.IsMulticast() {
		pkt.PktType = tcpip.PacketMulticast
	}
	d.DeliverNetworkPacket(tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(f[12:])), pkt)
}

func (e *hostEndpoint) MTU() uint32                      { return uint32(e.nic.mtu) }
func (e *hostEndpoint) SetMTU(uint32)                    {}
func (e *hostEndpoint) MaxHeaderLength() uint16          { return netstack.EthernetHeaderLen }
func (e *hostEndpoint) LinkAddress() tcpip.LinkAddress   { return tcpip.LinkAddress(e.nic.mac[:]) }
func (e *hostEndpoint) SetLinkAddress(tcpip.LinkAddress) {}
func (e *hostEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}
func (e *hostEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.d = d
	e.mu.Unlock()
}
func (e *hostEndpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.d != nil
}
func (e *hostEndpoint) Wait()                                   {}
func (e *hostEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (e *hostEndpoint) AddHeader(pkt *stack.PacketBuffer) {
	h := pkt.LinkHeader().Push(netstack.EthernetHeaderLen)
	copy(h[0:], pkt.EgressRoute.RemoteLinkAddress)
	copy(h[6:], e.nic.mac[:])
	binary.BigEndian.PutUint16(h[12:], uint16(pkt.NetworkProtocolNumber))
}
func (e *hostEndpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(netstack.EthernetHeaderLen)
	return ok
}
func (e *hostEndpoint) Close()                  {}
func (e *hostEndpoint) SetOnCloseAction(func()) {}
func (e *hostEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		v := pkt.ToView()
		e.nic.WriteFrame(v.AsSlice())
		v.Release()
		n++
	}
	return n, nil
}

var _ net.PacketConn = (*gonet.UDPConn)(nil)

// ListenTCP opens a TCP listener on the host.
func (h *Host) ListenTCP(a netip.AddrPort) (*gonet.TCPListener, error) {
	fa, proto := full(a)
	return gonet.ListenTCP(h.Stack, fa, proto)
}
