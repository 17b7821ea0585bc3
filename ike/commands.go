package ike

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
)

// ErrUnknown is returned for a connection or child that is not configured.
var ErrUnknown = errors.New("ike: no such connection or child")

// Up brings up a connection's child (all of its children when child is
// empty; a childless IKE SA when it has none), over an existing IKE SA of
// the connection when there is one. done, if not nil, is called once on
// the Manager's goroutine when every requested Child SA is installed or
// the attempt failed.
func (m *Manager) Up(conn, child string, done func(error)) error {
	m.now = m.clock.Now()
	c := m.conns[conn]
	if c == nil {
		return fmt.Errorf("%w: %s", ErrUnknown, conn)
	}
	var cfgs []*Child
	if child == "" {
		cfgs = c.Children
	} else {
		for _, ch := range c.Children {
			if ch.Name == child {
				cfgs = append(cfgs, ch)
			}
		}
		if len(cfgs) == 0 {
			return fmt.Errorf("%w: %s/%s", ErrUnknown, conn, child)
		}
	}
	join := joinDone(len(cfgs), done)
	reqs := make([]*childRequest, 0, len(cfgs))
	for _, cfg := range cfgs {
		reqs = append(reqs, &childRequest{cfg: cfg, done: []func(error){join}})
	}
	if sa := m.ikeFor(c); sa != nil {
		m.addChildren(sa, reqs, join)
		return nil
	}
	if len(reqs) == 0 {
		return m.initiateWaiting(c, done)
	}
	return m.initiate(c, reqs)
}

// joinDone calls done once after n calls, with the first error.
func joinDone(n int, done func(error)) func(error) {
	if done == nil {
		return nil
	}
	var first error
	left := n
	return func(err error) {
		if first == nil {
			first = err
		}
		if left--; left == 0 {
			done(first)
		}
	}
}

// ikeFor returns a live IKE SA of the connection, preferring established
// ones.
func (m *Manager) ikeFor(c *Connection) *ikeSA {
	var best *ikeSA
	for _, sa := range m.sas {
		if sa.conn != c {
			continue
		}
		switch sa.state {
		case IKEEstablished, IKERekeying:
			if best == nil || best.state == IKEConnecting || sa.id > best.id {
				best = sa
			}
		case IKEConnecting:
			if best == nil {
				best = sa
			}
		}
	}
	return best
}

// addChildren creates Child SAs over an existing IKE SA; installed ones
// are not created twice.
func (m *Manager) addChildren(sa *ikeSA, reqs []*childRequest, join func(error)) {
	for _, r := range reqs {
		if m.installedChild(sa, r.cfg) && r.packet == nil {
			r.finish(nil)
			continue
		}
		switch {
		case sa.state == IKEConnecting && sa.hs != nil && sa.initiator && sa.hs.firstChild == nil && sa.active == nil:
			sa.hs.firstChild = r
		case sa.state == IKEConnecting && sa.hs != nil && sa.initiator:
			sa.hs.moreChildren = append(sa.hs.moreChildren, r)
		case sa.state == IKEConnecting:
			r := r
			sa.waiting = append(sa.waiting, func(err error) {
				if err != nil {
					r.finish(err)
					return
				}
				m.queueTask(sa, &childTask{req: r})
			})
		default:
			m.queueTask(sa, &childTask{req: r})
		}
	}
	if len(reqs) == 0 && join != nil {
		join(nil)
	}
}

func (m *Manager) installedChild(sa *ikeSA, cfg *Child) bool {
	for _, c := range sa.children {
		if c.cfg == cfg && (c.state == ChildInstalled || c.state == ChildRekeying) {
			return true
		}
	}
	return false
}

// initiate starts a new IKE SA for conn with the requested children.
func (m *Manager) initiate(conn *Connection, reqs []*childRequest) error {
	sa, err := m.newInitiator(conn)
	if err != nil {
		for _, r := range reqs {
			r.finish(err)
		}
		return err
	}
	if len(reqs) > 0 {
		sa.hs.firstChild = reqs[0]
		sa.hs.moreChildren = reqs[1:]
	}
	m.queueTask(sa, initTask{})
	return nil
}

// initiateWaiting starts a childless IKE SA; done fires when it is up.
func (m *Manager) initiateWaiting(conn *Connection, done func(error)) error {
	sa, err := m.newInitiator(conn)
	if err != nil {
		return err
	}
	if done != nil {
		sa.waiting = append(sa.waiting, done)
	}
	m.queueTask(sa, initTask{})
	return nil
}

func (m *Manager) newInitiator(conn *Connection) (*ikeSA, error) {
	remote, ok := conn.remoteHost()
	if !ok {
		return nil, fmt.Errorf("ike: connection %s has no single remote address to initiate to", conn.Name)
	}
	local, ok := conn.localFor(remote)
	if !ok {
		return nil, fmt.Errorf("ike: connection %s has no local address of %s's family", conn.Name, remote)
	}
	sa := m.newIKESA(true)
	sa.conn = conn
	sa.spiI = m.randUint64()
	sa.local = netip.AddrPortFrom(local, conn.LocalPort)
	sa.remote = netip.AddrPortFrom(remote, conn.RemotePort)
	sa.hs = &handshake{}
	sa.lastRecv = m.now
	m.sas[sa.spiI] = sa
	m.setIKEState(sa, IKEConnecting, "initiating")
	m.logIKE(sa, slog.LevelInfo, "initiating IKE SA", "remote", sa.remote)
	return sa, nil
}

// Down deletes every IKE SA of the connection with the peer. done fires
// when they are gone.
func (m *Manager) Down(conn string, done func(error)) error {
	m.now = m.clock.Now()
	c := m.conns[conn]
	if c == nil {
		return fmt.Errorf("%w: %s", ErrUnknown, conn)
	}
	var list []*ikeSA
	for _, sa := range m.sas {
		if sa.conn == c {
			list = append(list, sa)
		}
	}
	delete(m.retries, c)
	join := joinDone(len(list), done)
	for _, sa := range list {
		sa.closing = true
		m.deleteIKE(sa, join)
	}
	if len(list) == 0 && done != nil {
		done(nil)
	}
	return nil
}

// DownChild deletes the connection's Child SAs of that child, and cancels
// its creations under way or waiting to try again after TEMPORARY_FAILURE
// (their requests fail), the creation afresh of those that reached their
// hard lifetime among them.
func (m *Manager) DownChild(conn, child string, done func(error)) error {
	m.now = m.clock.Now()
	var list []*childSA
	cancelled := false
	for _, sa := range m.sas {
		if sa.conn == nil || sa.conn.Name != conn {
			continue
		}
		for _, c := range sa.children {
			if c.cfg.Name != child {
				continue
			}
			c.closing = true
			switch {
			case c.state != ChildDeleting:
				list = append(list, c)
			case c.expired && c.cfg.StartAction == ActionStart:
				cancelled = true
			}
		}
		if m.cancelCreates(sa, child) {
			cancelled = true
		}
	}
	if len(list) == 0 && !cancelled {
		return fmt.Errorf("%w: no Child SA %s/%s", ErrUnknown, conn, child)
	}
	if len(list) == 0 {
		if done != nil {
			done(nil)
		}
		return nil
	}
	join := joinDone(len(list), done)
	for _, c := range list {
		m.queueTask(c.ike, &deleteChildTask{child: c, done: join})
	}
	return nil
}

// Rekey rekeys the connection's IKE SAs (child empty) or the Child SAs of
// that child. It returns once the rekeys are queued.
func (m *Manager) Rekey(conn, child string) error {
	m.now = m.clock.Now()
	n := 0
	for _, sa := range m.sortedSAs() {
		if sa.conn == nil || sa.conn.Name != conn || sa.state != IKEEstablished {
			continue
		}
		if child == "" {
			m.startIKERekey(sa)
			n++
			continue
		}
		for _, c := range sa.children {
			if c.cfg.Name == child && c.state == ChildInstalled {
				m.startChildRekey(c)
				n++
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: nothing established to rekey for %s/%s", ErrUnknown, conn, child)
	}
	return nil
}

// Shutdown deletes every IKE SA with its peer (SIGTERM). done fires when
// all are gone or have given up.
func (m *Manager) Shutdown(done func()) {
	m.now = m.clock.Now()
	list := m.sortedSAs()
	for _, r := range m.retries {
		m.stop(&r.t)
	}
	clear(m.retries)
	if len(list) == 0 {
		if done != nil {
			done()
		}
		return
	}
	join := joinDone(len(list), func(error) {
		if done != nil {
			done()
		}
	})
	for _, sa := range list {
		sa.closing = true
		m.deleteIKE(sa, join)
	}
}

func (m *Manager) sortedSAs() []*ikeSA {
	list := make([]*ikeSA, 0, len(m.sas))
	for _, sa := range m.sas {
		list = append(list, sa)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	return list
}

// cancelCreates cancels sa's creations of the child named child: those
// waiting for a retry end now, queued ones when their turn comes, and one
// under way deletes its Child SA once created. It reports whether there
// were any.
func (m *Manager) cancelCreates(sa *ikeSA, child string) bool {
	found := false
	for _, r := range m.childRequests(sa) {
		if !r.closed && r.cfg.Name == child {
			r.closed, found = true, true
		}
	}
	waiting := sa.createRetries[:0]
	for _, r := range sa.createRetries {
		if r.closed {
			m.stop(&r.retry)
			r.finish(errChildDown)
			continue
		}
		waiting = append(waiting, r)
	}
	clear(sa.createRetries[len(waiting):])
	sa.createRetries = waiting
	return found
}

// trapEntry is an installed trap policy (start_action = trap).
type trapEntry struct {
	conn *Connection
	cfg  *Child
	key  string
}

// installTrap installs a child's trap policy: traffic that matches it
// raises an acquire, which initiates the child.
func (m *Manager) installTrap(conn *Connection, cfg *Child) error {
	if _, ok := m.traps[cfg]; ok {
		return nil
	}
	remote, ok := conn.remoteHost()
	if !ok {
		return fmt.Errorf("ike: trap for %s/%s needs a single remote address", conn.Name, cfg.Name)
	}
	local, ok := conn.localFor(remote)
	if !ok {
		return fmt.Errorf("ike: trap for %s/%s needs a local address", conn.Name, cfg.Name)
	}
	lts, rts := resolve(cfg.LocalTS, []netip.Addr{local}), resolve(cfg.RemoteTS, []netip.Addr{remote})
	key := reqKey(conn, cfg, lts, rts)
	e := m.reqIDs[key]
	if e == nil {
		m.lastReqID++
		e = &reqIDEntry{reqID: m.lastReqID, key: key}
		m.reqIDs[key] = e
		m.byReqID[e.reqID] = e
	}
	e.refs++
	if !e.has {
		p := PolicyParams{ReqID: e.reqID, Local: lts, Remote: rts, Priority: policyPriority(lts, rts), Acquire: true}
		id, err := m.deps.Installer.AddPolicy(p)
		if err != nil {
			m.releaseReqID(key)
			m.stats.InstallErrors++
			return err
		}
		e.policy, e.has, e.params = id, true, p
	}
	m.traps[cfg] = &trapEntry{conn: conn, cfg: cfg, key: key}
	m.log.Info("trap policy installed", "conn", conn.Name, "child", cfg.Name, "reqid", e.reqID)
	return nil
}

// HandleDataPlaneEvent acts on an expiry, exhaustion or acquire.
func (m *Manager) HandleDataPlaneEvent(ev DataPlaneEvent) {
	m.now = m.clock.Now()
	switch ev.Kind {
	case EventSoftExpire, EventSeqExhausted:
		if c := m.childByKey(ev.SA); c != nil {
			m.startChildRekey(c)
		}
	case EventHardExpire:
		if c := m.childByKey(ev.SA); c != nil {
			m.childExpired(c)
		}
	case EventAcquire:
		m.acquire(ev)
	}
}

func (m *Manager) childByKey(k SAKey) *childSA { return m.childIndex[k] }

// acquire initiates the trapped child whose policy the traffic hit, with
// the packet's selectors first (RFC 7296 §2.9).
func (m *Manager) acquire(ev DataPlaneEvent) {
	e := m.byReqID[ev.ReqID]
	if e == nil {
		return
	}
	var trap *trapEntry
	for _, t := range m.traps {
		if t.key == e.key {
			trap = t
		}
	}
	if trap == nil {
		return
	}
	if sa := m.ikeFor(trap.conn); sa != nil {
		if m.installedChild(sa, trap.cfg) || m.childPending(sa, trap.cfg) {
			return
		}
	}
	host := func(a netip.Addr, proto uint8, port uint16) TS {
		t := TS{Proto: proto, From: a.Unmap(), To: a.Unmap(), ToPort: 65535}
		if proto != 0 && port != 0 {
			t.FromPort, t.ToPort = port, port
		}
		return t
	}
	req := &childRequest{cfg: trap.cfg, reqKey: trap.key,
		packet: &[2]TS{host(ev.Src, ev.Proto, ev.SrcPort), host(ev.Dst, ev.Proto, ev.DstPort)}}
	m.log.Info("acquire", "conn", trap.conn.Name, "child", trap.cfg.Name, "src", ev.Src, "dst", ev.Dst)
	if sa := m.ikeFor(trap.conn); sa != nil {
		m.addChildren(sa, []*childRequest{req}, nil)
		return
	}
	if err := m.initiate(trap.conn, []*childRequest{req}); err != nil {
		m.log.Warn("acquire: initiating failed", "err", err)
	}
}

// childPending reports a Child SA of cfg being negotiated on sa.
func (m *Manager) childPending(sa *ikeSA, cfg *Child) bool {
	if hs := sa.hs; hs != nil {
		if hs.firstChild != nil && hs.firstChild.cfg == cfg {
			return true
		}
		for _, r := range hs.moreChildren {
			if r.cfg == cfg {
				return true
			}
		}
	}
	if t, ok := sa.active.taskOf().(*childTask); ok && t.req != nil && t.req.cfg == cfg {
		return true
	}
	if t, ok := sa.active.taskOf().(*authTask); ok && t.req != nil && t.req.cfg == cfg {
		return true
	}
	for _, t := range sa.queue {
		if ct, ok := t.(*childTask); ok && ct.req != nil && ct.req.cfg == cfg {
			return true
		}
	}
	for _, r := range sa.createRetries {
		if r.cfg == cfg {
			return true
		}
	}
	return false
}
