package ike

import (
	"log/slog"
	"net/netip"

	"github.com/bitw-dev/bitw/ike/message"
)

// addrPool hands out virtual IPs from one configured range (RFC 7296
// §3.15). An identity gets its previous address back when it is free, as
// strongSwan's pools do.
type addrPool struct {
	cfg   *Pool
	used  map[netip.Addr]*ikeSA
	byID  map[string]netip.Addr
	next  netip.Addr
	count int
}

func newAddrPool(p *Pool) *addrPool {
	return &addrPool{cfg: p, used: map[netip.Addr]*ikeSA{}, byID: map[string]netip.Addr{}, next: p.First}
}

func (p *addrPool) family4() bool { return p.cfg.First.Is4() }

func (p *addrPool) inRange(a netip.Addr) bool {
	return a.BitLen() == p.cfg.First.BitLen() && !a.Less(p.cfg.First) && !p.cfg.Last.Less(a)
}

// allocate leases an address to sa: the one asked for if free, the
// identity's previous one, or the next free one.
func (p *addrPool) allocate(sa *ikeSA, want netip.Addr) (netip.Addr, bool) {
	id := string(sa.remoteID.Data) + "/" + sa.remoteID.Type.String()
	try := func(a netip.Addr) bool {
		if !a.IsValid() || !p.inRange(a) {
			return false
		}
		if owner := p.used[a]; owner != nil && owner != sa {
			return false
		}
		p.used[a] = sa
		p.byID[id] = a
		return true
	}
	if want.IsValid() && !want.IsUnspecified() && try(want) {
		return want, true
	}
	if prev, ok := p.byID[id]; ok && try(prev) {
		return prev, true
	}
	start := p.next
	for a := start; ; {
		if try(a) {
			p.next = a.Next()
			if !p.inRange(p.next) {
				p.next = p.cfg.First
			}
			return a, true
		}
		a = a.Next()
		if !p.inRange(a) {
			a = p.cfg.First
		}
		if a == start {
			return netip.Addr{}, false
		}
	}
}

func (p *addrPool) release(sa *ikeSA, a netip.Addr) {
	if p.used[a] == sa {
		delete(p.used, a)
	}
}

// serveCP answers a CFG_REQUEST from the connection's pools: one address
// per requested family, with the pool's DNS servers and subnets.
func (m *Manager) serveCP(sa *ikeSA, req *message.CP) (*message.CP, message.NotifyType) {
	reply := &message.CP{Type: message.CfgReply}
	var want4, want6 netip.Addr
	ask4, ask6 := false, false
	for _, a := range req.Attributes {
		switch a.Type {
		case message.CfgInternalIP4Address:
			ask4 = true
			if v, ok := a.Addr(); ok {
				want4 = v
			}
		case message.CfgInternalIP6Address:
			ask6 = true
			if pfx, ok := a.Prefix(); ok {
				want6 = pfx.Addr()
			}
		}
	}
	if !ask4 && !ask6 {
		return reply, 0
	}
	for _, fam4 := range []bool{true, false} {
		if (fam4 && !ask4) || (!fam4 && !ask6) {
			continue
		}
		want := want6
		if fam4 {
			want = want4
		}
		for _, name := range sa.conn.Pools {
			pool := m.pools[name]
			if pool == nil || pool.family4() != fam4 {
				continue
			}
			a, ok := pool.allocate(sa, want)
			if !ok {
				continue
			}
			sa.leases = append(sa.leases, a)
			if fam4 {
				reply.Attributes = append(reply.Attributes, message.CfgAddr(message.CfgInternalIP4Address, a))
			} else {
				reply.Attributes = append(reply.Attributes, message.CfgPrefix(message.CfgInternalIP6Address, netip.PrefixFrom(a, 128)))
			}
			for _, d := range pool.cfg.DNS {
				t := message.CfgInternalIP6DNS
				if d.Is4() {
					t = message.CfgInternalIP4DNS
				}
				reply.Attributes = append(reply.Attributes, message.CfgAddr(t, d))
			}
			for _, s := range pool.cfg.Subnets {
				t := message.CfgInternalIP6Subnet
				if s.Addr().Is4() {
					t = message.CfgInternalIP4Subnet
				}
				reply.Attributes = append(reply.Attributes, message.CfgPrefix(t, s))
			}
			m.logIKE(sa, slog.LevelInfo, "virtual IP assigned", "pool", name, "addr", a)
			break
		}
	}
	if len(sa.leases) == 0 {
		return nil, message.NotifyInternalAddressFailure
	}
	return reply, 0
}

// releaseLease returns a virtual IP to its pool.
func (m *Manager) releaseLease(sa *ikeSA, a netip.Addr) {
	for _, p := range m.pools {
		if p.inRange(a) {
			p.release(sa, a)
		}
	}
}

// cpRequest asks for the connection's virtual IPs (RFC 7296 §3.15.1).
func cpRequest(conn *Connection) *message.CP {
	cp := &message.CP{Type: message.CfgRequest}
	for _, v := range conn.VIPs {
		if v.Is4() {
			if v.IsUnspecified() {
				cp.Attributes = append(cp.Attributes, message.CfgAttribute{Type: message.CfgInternalIP4Address})
			} else {
				cp.Attributes = append(cp.Attributes, message.CfgAddr(message.CfgInternalIP4Address, v))
			}
			cp.Attributes = append(cp.Attributes, message.CfgAttribute{Type: message.CfgInternalIP4DNS})
		} else {
			if v.IsUnspecified() {
				cp.Attributes = append(cp.Attributes, message.CfgAttribute{Type: message.CfgInternalIP6Address})
			} else {
				cp.Attributes = append(cp.Attributes, message.CfgPrefix(message.CfgInternalIP6Address, netip.PrefixFrom(v, 128)))
			}
			cp.Attributes = append(cp.Attributes, message.CfgAttribute{Type: message.CfgInternalIP6DNS})
		}
	}
	return cp
}

// acceptCPReply takes the virtual IPs a responder assigned.
func acceptCPReply(sa *ikeSA, cp *message.CP) {
	for _, a := range cp.Attributes {
		switch a.Type {
		case message.CfgInternalIP4Address:
			if v, ok := a.Addr(); ok && !v.IsUnspecified() {
				sa.vips = append(sa.vips, v)
			}
		case message.CfgInternalIP6Address:
			if p, ok := a.Prefix(); ok {
				sa.vips = append(sa.vips, p.Addr())
			}
		}
	}
}
