package ike

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// deleteIKETask deletes the IKE SA and with it every Child SA (RFC 7296
// §1.4.1).
type deleteIKETask struct {
	done func(error)
}

func (*deleteIKETask) exchange() message.ExchangeType { return message.ExchangeInformational }

func (t *deleteIKETask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	if sa.state != IKEDeleting {
		m.setIKEState(sa, IKEDeleting, "deleting")
	}
	for _, c := range sa.children {
		if c.state != ChildDeleting {
			m.setChildState(c, ChildDeleting, "IKE SA deleting")
		}
	}
	return []message.Payload{&message.Delete{Protocol: proposal.ProtoIKE}}, nil
}

func (t *deleteIKETask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	m.destroyIKE(sa, "deleted")
	if t.done != nil {
		t.done(nil)
	}
	return nil
}

func (t *deleteIKETask) abort(m *Manager, sa *ikeSA, err error) {
	m.destroyIKE(sa, "delete finished without an answer")
	if t.done != nil {
		t.done(nil)
	}
}

// deleteIKE deletes an IKE SA with the peer: at once when it was never
// established, else after the DELETE exchange. Queued work goes first to
// the front of the queue, so a delete is not stuck behind it.
func (m *Manager) deleteIKE(sa *ikeSA, done func(error)) {
	if sa.state == ikeDestroyed {
		if done != nil {
			done(nil)
		}
		return
	}
	if sa.state == IKEConnecting {
		m.destroyIKE(sa, "deleted while connecting")
		if done != nil {
			done(nil)
		}
		return
	}
	for _, t := range sa.queue {
		if _, ok := t.(*deleteIKETask); ok {
			if done != nil {
				sa.waiting = append(sa.waiting, func(error) { done(nil) })
			}
			return
		}
	}
	for _, t := range sa.queue {
		t.abort(m, sa, errSkip)
	}
	sa.queue = nil
	m.dropCreateRetries(sa, errSkip)
	m.stop(&sa.tRekey)
	m.stop(&sa.tDPD)
	if sa.state != IKEDeleting {
		m.setIKEState(sa, IKEDeleting, "delete requested")
	}
	m.queueTask(sa, &deleteIKETask{done: done})
}

// dpdTask is a liveness check: an empty INFORMATIONAL request (RFC 7296
// §2.4). Its answer is all it wants; retransmission failure declares the
// peer dead.
type dpdTask struct{}

func (dpdTask) exchange() message.ExchangeType { return message.ExchangeInformational }
func (dpdTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	if sa.state != IKEEstablished && sa.state != IKERekeying {
		return nil, errSkip
	}
	return nil, nil
}
func (dpdTask) process(m *Manager, sa *ikeSA, resp *message.Message) error { return nil }
func (dpdTask) abort(m *Manager, sa *ikeSA, err error)                     {}

// dpdCheck sends a liveness check after dpd_delay without a message from
// the peer.
func (m *Manager) dpdCheck(sa *ikeSA) {
	if sa.state != IKEEstablished || sa.conn.DPDDelay <= 0 {
		return
	}
	idle := m.now.Sub(sa.lastRecv)
	if idle < sa.conn.DPDDelay {
		m.schedule(&sa.tDPD, sa.conn.DPDDelay-idle)
		return
	}
	if sa.active == nil && len(sa.queue) == 0 {
		m.queueTask(sa, dpdTask{})
	}
	m.schedule(&sa.tDPD, sa.conn.DPDDelay)
}

// respondInformational answers DELETE, liveness checks and notifications.
func (m *Manager) respondInformational(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	if msg.Notify(message.NotifyAuthenticationFailed) != nil {
		// The initiator refused our authentication after we established
		// the IKE SA (RFC 7296 §2.21.2): the IKE SA and its Child SAs
		// go, with no close_action, since the peer does not accept us.
		m.logIKE(sa, slog.LevelWarn, "the peer refused our authentication: deleting the IKE SA",
			"notify", message.NotifyAuthenticationFailed.String(), "children", len(sa.children))
		sa.deleteAfterResponse = true
		return nil, true
	}
	var out []message.Payload
	for _, p := range msg.Payloads {
		d, ok := p.(*message.Delete)
		if !ok {
			continue
		}
		switch d.Protocol {
		case proposal.ProtoIKE:
			m.logIKE(sa, slog.LevelInfo, "peer deletes the IKE SA")
			if sa.ikeRekey != nil && len(sa.peerRekeys) > 0 {
				// Simultaneous rekey, and the peer's won: its new SA
				// takes the children. Ours is still in flight; its answer
				// creates our redundant SA, which we then delete (RFC
				// 7296 §2.8.2), so this one lingers until then.
				m.moveToSuccessor(sa, sa.peerRekeys[0])
				sa.peerDeleted = true
				continue
			}
			sa.deleteAfterResponse = true
		case proposal.ProtoESP, proposal.ProtoAH:
			if spis := m.peerDeletesChildren(sa, d); len(spis) > 0 {
				out = append(out, &message.Delete{Protocol: d.Protocol, SPIs: spis})
			}
		}
	}
	if sa.deleteAfterResponse {
		// Deleting the IKE SA deletes its Child SAs; the answer is empty.
		if sa.rekeyedTo == nil {
			for _, c := range sa.children {
				m.closeAction(sa.conn, c.cfg)
			}
		}
		return nil, true
	}
	return out, true
}

// peerDead ends an IKE SA whose peer stopped answering and applies the
// children's dpd_action.
func (m *Manager) peerDead(sa *ikeSA) {
	if sa.state == IKEDeleting {
		// A superseded or deleted SA: the peer may have forgotten it.
		m.destroyIKE(sa, "no answer while deleting")
		return
	}
	m.stats.PeersDead++
	m.logIKE(sa, slog.LevelWarn, "peer not responding, deleting IKE SA")
	if sa.state == IKEConnecting && sa.initiator {
		m.initiationFailed(sa, errPeerDead)
		return
	}
	var restart []*Child
	if sa.state != IKEDeleting {
		for _, c := range sa.children {
			switch c.cfg.DPDAction {
			case ActionStart:
				restart = append(restart, c.cfg)
			case ActionTrap:
				if err := m.installTrap(sa.conn, c.cfg); err != nil {
					m.logIKE(sa, slog.LevelWarn, "trap after DPD failed", "err", err)
				}
			}
		}
	}
	conn := sa.conn
	m.destroyIKE(sa, "peer dead")
	if len(restart) > 0 && conn != nil {
		m.scheduleRetry(conn, restart, true)
	}
}

// deleteWaitOver ends an IKE SA that lingered for the peer's DELETE: a
// rekeyed SA is destroyed, a redundant one from a rekey collision is
// deleted with the peer.
func (m *Manager) deleteWaitOver(sa *ikeSA) {
	if sa.state == IKEEstablished {
		m.deleteIKE(sa, nil)
		return
	}
	m.destroyIKE(sa, "the peer did not delete it")
}

// closeAction applies a child's close_action after the peer closed it.
func (m *Manager) closeAction(conn *Connection, cfg *Child) {
	switch cfg.CloseAction {
	case ActionStart:
		m.scheduleRetry(conn, []*Child{cfg}, true)
	case ActionTrap:
		if err := m.installTrap(conn, cfg); err != nil {
			m.log.Warn("trap after close failed", "conn", conn.Name, "child", cfg.Name, "err", err)
		}
	}
}

// initiationFailed ends an IKE SA we initiated that never came up, and
// tries again within keyingtries when the peer did not answer.
func (m *Manager) initiationFailed(sa *ikeSA, err error) {
	if sa.state == ikeDestroyed {
		return
	}
	conn := sa.conn
	var cfgs []*Child
	var reqs []*childRequest
	if at, ok := sa.active.taskOf().(*authTask); ok && at.req != nil {
		reqs = append(reqs, at.req)
		at.req = nil
	}
	if hs := sa.hs; hs != nil {
		reqs = append(reqs, hs.firstChild)
		reqs = append(reqs, hs.moreChildren...)
		hs.firstChild, hs.moreChildren = nil, nil
	}
	for _, r := range reqs {
		if r != nil {
			cfgs = append(cfgs, r.cfg)
			r.finish(err)
		}
	}
	for _, f := range sa.waiting {
		f(err)
	}
	sa.waiting = nil
	m.logIKE(sa, slog.LevelWarn, "initiation failed", "err", err)
	m.destroyIKE(sa, "initiation failed")
	if sa.initiator && errors.Is(err, errPeerDead) && conn != nil {
		m.scheduleRetry(conn, cfgs, false)
	}
}

// retryState counts initiation attempts of one connection.
type retryState struct {
	tries    int
	children []*Child
	t        timer
}

// scheduleRetry initiates conn again soon, within keyingtries (reset
// counts a dpd or close action as a fresh start).
func (m *Manager) scheduleRetry(conn *Connection, children []*Child, reset bool) {
	r := m.retries[conn]
	if r == nil || reset {
		if r != nil {
			m.stop(&r.t)
		}
		r = &retryState{}
		r.t.init(timerRetry, nil, nil)
		r.t.conn = conn
		m.retries[conn] = r
	}
	r.tries++
	if conn.KeyingTries > 0 && r.tries >= conn.KeyingTries && !reset {
		m.log.Warn("giving up initiating", "conn", conn.Name, "tries", r.tries)
		delete(m.retries, conn)
		return
	}
	for _, c := range children {
		if !slices.Contains(r.children, c) {
			r.children = append(r.children, c)
		}
	}
	m.schedule(&r.t, m.cfg.RetransmitTimeout/4+m.jitter(m.cfg.RetransmitTimeout/4))
}

func (m *Manager) retryTimerFired(t *timer) {
	r := m.retries[t.conn]
	if r == nil {
		return
	}
	conn := t.conn
	if sa := m.ikeFor(conn); sa != nil {
		// The IKE SA is up (it outlived a closed Child SA, the peer
		// initiated, or a command): the children it lacks come over it.
		delete(m.retries, conn)
		var reqs []*childRequest
		for _, c := range r.children {
			if !m.installedChild(sa, c) && !m.childPending(sa, c) {
				reqs = append(reqs, &childRequest{cfg: c})
			}
		}
		m.addChildren(sa, reqs, nil)
		return
	}
	reqs := make([]*childRequest, 0, len(r.children))
	for _, c := range r.children {
		reqs = append(reqs, &childRequest{cfg: c})
	}
	r.children = nil
	if err := m.initiate(conn, reqs); err != nil {
		m.log.Warn("initiating again failed", "conn", conn.Name, "err", err)
	}
}

// updatePath follows the peer to a new address or port after an
// authenticated message (RFC 7296 §2.23): the port float to 4500, and a
// NAT mapping change on the peer's side. Without NAT nothing moves (no
// MOBIKE); responses still go where requests came from.
func (m *Manager) updatePath(sa *ikeSA, local, remote netip.AddrPort) {
	if local == sa.local && remote == sa.remote {
		return
	}
	nat := sa.natLocal || sa.natRemote || (sa.conn != nil && sa.conn.ForceEncap) ||
		(sa.conn == nil && len(sa.candidates) > 0 && sa.candidates[0].ForceEncap)
	if !nat {
		return
	}
	changed := false
	if local != sa.local && local.Addr() == sa.local.Addr() && local.Port() == m.cfg.NATTPort {
		sa.local, changed = local, true
	}
	if remote != sa.remote && (sa.natRemote || (remote.Addr() == sa.remote.Addr() && sa.local.Port() == m.cfg.NATTPort)) {
		sa.remote, changed = remote, true
	}
	if !changed {
		return
	}
	m.logIKE(sa, slog.LevelInfo, "peer address changed", "local", sa.local, "remote", sa.remote)
	if sa.natLocal && !sa.tKeepalive.scheduled() && sa.state != IKEConnecting {
		m.schedule(&sa.tKeepalive, m.cfg.KeepaliveInterval)
	}
	for _, c := range sa.children {
		m.updateChildPath(c)
	}
}

// updateChildPath moves a Child SA's SAs to the IKE SA's addresses.
func (m *Manager) updateChildPath(c *childSA) {
	sa := c.ike
	var encIn, encOut Encap
	if sa.encap() {
		encIn = Encap{SrcPort: sa.remote.Port(), DstPort: sa.local.Port()}
		encOut = Encap{SrcPort: sa.local.Port(), DstPort: sa.remote.Port()}
	}
	if c.inOK {
		if err := m.deps.Installer.UpdateSA(c.inKey, SAUpdate{Src: sa.remote.Addr(), Dst: sa.local.Addr(), Encap: encIn}); err != nil {
			m.stats.InstallErrors++
		} else {
			k := c.inKey
			k.Dst = sa.local.Addr()
			m.setKey(c, DirIn, k)
		}
	}
	if c.outOK {
		if err := m.deps.Installer.UpdateSA(c.outKey, SAUpdate{Src: sa.local.Addr(), Dst: sa.remote.Addr(), Encap: encOut}); err != nil {
			m.stats.InstallErrors++
		} else {
			k := c.outKey
			k.Dst = sa.remote.Addr()
			m.setKey(c, DirOut, k)
		}
	}
	if c.pendingOut != nil {
		c.pendingOut.Src, c.pendingOut.Dst, c.pendingOut.Encap = sa.local.Addr(), sa.remote.Addr(), encOut
	}
}

// sendKeepalive keeps a NAT mapping open with a one-octet 0xFF datagram
// on the NAT-T port (RFC 3948 §4), without a non-ESP marker.
func (m *Manager) sendKeepalive(sa *ikeSA) {
	if sa.state == ikeDestroyed || !sa.natLocal {
		return
	}
	if err := m.deps.Sender.Send([]byte{0xff}, sa.local, sa.remote); err != nil {
		m.stats.SendErrors++
	} else {
		m.stats.KeepalivesSent++
	}
	m.schedule(&sa.tKeepalive, m.cfg.KeepaliveInterval)
}
