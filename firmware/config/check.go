package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// checkChild checks a child against its connection and the device.
func (l *loader) checkChild(t *table, c *Connection, ch *Child) {
	_, canInitiate := c.RemoteHost()
	for _, a := range []struct {
		key    string
		action Action
		word   string
	}{
		{"start_action", ch.StartAction, map[Action]string{ActionTrap: "trap", ActionStart: "start"}[ch.StartAction]},
		{"dpd_action", ch.DPDAction, map[Action]string{ActionTrap: "trap", ActionStart: "restart"}[ch.DPDAction]},
		{"close_action", ch.CloseAction, map[Action]string{ActionTrap: "trap", ActionStart: "start"}[ch.CloseAction]},
	} {
		if a.action == ActionNone {
			continue
		}
		if !canInitiate {
			t.errorf(a.key, "%s means initiating, which needs a peer address: give connections.%s.remote_addrs a single address", a.word, c.Name)
		}
		if a.action == ActionTrap {
			for i, ts := range ch.RemoteTS {
				if !ts.Dynamic {
					continue
				}
				if t.has("remote_ts") {
					l.errorf(t.at("remote_ts").add(index(i)), "%s: %s = \"trap\" needs concrete remote selectors to catch traffic with, not dynamic", t.at("remote_ts"), a.key)
				} else {
					t.errorf(a.key, "trap needs concrete remote selectors to catch traffic with; remote_ts is dynamic when left out")
				}
				break
			}
		}
	}
	l.checkFamilies(t, c, ch)
	if ch.Mode == Transport {
		l.checkTransport(t, c, ch)
	} else {
		l.checkTunnel(t, ch)
	}
}

// families returns the IP families a list of addresses covers.
type families struct{ v4, v6 bool }

func (f *families) add(a netip.Addr) {
	if a.Is4() {
		f.v4 = true
	} else {
		f.v6 = true
	}
}

func (f families) String() string {
	switch {
	case f.v4 && f.v6:
		return "IPv4 and IPv6"
	case f.v4:
		return "IPv4 only"
	case f.v6:
		return "IPv6 only"
	}
	return "no family"
}

// checkFamilies checks that both sides of a child cover the same IP
// families: an IPv4 selector with only IPv6 opposite could never match a
// packet. A dynamic selector takes the family of the virtual IPs or of
// the IKE addresses of its side, when they are known.
func (l *loader) checkFamilies(t *table, c *Connection, ch *Child) {
	var localDyn, remoteDyn families
	knownRemote := true
	if len(c.VIPs) > 0 {
		for _, a := range c.VIPs {
			localDyn.add(a)
		}
	} else {
		for _, a := range c.LocalAddrs {
			localDyn.add(a)
		}
	}
	switch {
	case len(c.Pools) > 0:
		for _, p := range c.Pools {
			remoteDyn.add(p.First)
		}
	case len(c.RemoteAddrs) > 0:
		for _, r := range c.RemoteAddrs {
			remoteDyn.add(r.From)
		}
	default:
		knownRemote = false
	}
	side := func(tss []TrafficSelector, dyn families, known bool) (families, bool) {
		var f families
		for _, ts := range tss {
			if ts.Dynamic {
				if !known {
					return f, false
				}
				f.v4, f.v6 = f.v4 || dyn.v4, f.v6 || dyn.v6
				continue
			}
			f.add(ts.Addrs.From)
		}
		return f, true
	}
	lf, lok := side(ch.LocalTS, localDyn, true)
	rf, rok := side(ch.RemoteTS, remoteDyn, knownRemote)
	if lok && rok && len(ch.LocalTS) > 0 && len(ch.RemoteTS) > 0 && lf != rf {
		t.errorf("remote_ts", "local_ts covers %s but remote_ts covers %s; both sides need the same IP families", lf, rf)
	}
}

// checkTransport checks that transport-mode selectors name the gateways
// themselves: transport mode protects traffic between the two IKE
// endpoints (RFC 4301 §4.1), never red traffic.
func (l *loader) checkTransport(t *table, c *Connection, ch *Child) {
	for i, ts := range ch.LocalTS {
		if !ts.Dynamic && (!ts.Addrs.Single() || !slices.Contains(c.LocalAddrs, ts.Addrs.From)) {
			p := t.at("local_ts").add(index(i))
			l.errorf(p, "%s: in transport mode the local selector is the device's IKE address (dynamic), not %s", p, ts.Addrs)
		}
	}
	for i, ts := range ch.RemoteTS {
		if ts.Dynamic {
			continue
		}
		inRemote := len(c.RemoteAddrs) == 0
		for _, r := range c.RemoteAddrs {
			inRemote = inRemote || r.Contains(ts.Addrs.From)
		}
		if !ts.Addrs.Single() || !inRemote {
			p := t.at("remote_ts").add(index(i))
			l.errorf(p, "%s: in transport mode the remote selector is the peer's IKE address (dynamic), not %s", p, ts.Addrs)
		}
	}
}

// checkTunnel warns about tunnel selectors that cannot see traffic: a
// local selector nowhere near the red port, or a remote selector inside
// the red network, whose hosts red hosts reach directly.
func (l *loader) checkTunnel(t *table, ch *Child) {
	red := l.cfg.Red
	for i, ts := range ch.LocalTS {
		if ts.Dynamic {
			continue
		}
		p := t.at("local_ts").add(index(i))
		if _, gw := red.Gateway(ts.Addrs.Is4()); !gw && !overlapsAny(ts.Addrs, red.Addresses) {
			l.warnf(p, "%s: %s is not on the red network (%s) and [interfaces.red] has no gateway to reach it", p, ts.Addrs, prefixList(red.Addresses))
		}
	}
	for i, ts := range ch.RemoteTS {
		if ts.Dynamic {
			continue
		}
		for _, rp := range red.Addresses {
			if r := prefixRange(rp); r.Contains(ts.Addrs.From) && r.Contains(ts.Addrs.To) {
				p := t.at("remote_ts").add(index(i))
				l.warnf(p, "%s: %s lies in the red network %s, which red hosts reach directly; are local_ts and remote_ts swapped?", p, ts.Addrs, rp.Masked())
			}
		}
	}
}

func overlapsAny(r AddressRange, ps []netip.Prefix) bool {
	for _, p := range ps {
		if r.Overlaps(prefixRange(p)) {
			return true
		}
	}
	return false
}

func prefixList(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Masked().String())
	}
	return strings.Join(s, ", ")
}

// checkDuplicateSelectors refuses two children with the same selectors:
// the SPD could not tell which SA a packet belongs to.
func (l *loader) checkDuplicateSelectors() {
	seen := make(map[string]string)
	for _, c := range l.cfg.Connections {
		for _, ch := range c.Children {
			key := tsKey(ch.LocalTS) + " === " + tsKey(ch.RemoteTS)
			if strings.Contains(key, "dynamic") {
				continue // resolved per SA
			}
			where := c.Name + "/" + ch.Name
			if prev, dup := seen[key]; dup {
				p := keyPath{"connections", c.Name, "children", ch.Name, "local_ts"}
				l.errorf(p, "%s: child %s has the same selectors as %s (%s); the SPD could not tell them apart", p, where, prev, key)
				continue
			}
			seen[key] = where
		}
	}
}

func tsKey(tss []TrafficSelector) string {
	s := make([]string, len(tss))
	for i, ts := range tss {
		s[i] = ts.String()
	}
	slices.Sort(s)
	return fmt.Sprint(s)
}
