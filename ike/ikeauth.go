package ike

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/bitw-dev/bitw/ike/message"
)

// authTask is the initiator's IKE_AUTH with the first Child SA (RFC 7296
// §1.2), or without one (RFC 6023).
type authTask struct {
	offer *childOffer
	req   *childRequest
	idi   message.ID
	cp    bool
}

func (*authTask) exchange() message.ExchangeType { return message.ExchangeIKEAuth }

func (t *authTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	conn, hs := sa.conn, sa.hs
	hs.authMsgID = sa.nextReqID
	sa.localID = localIdentity(sa)
	sa.remoteID = conn.Remote.ID
	t.idi = sa.localID.wire()
	p := []message.Payload{&message.IDi{ID: t.idi}}
	p = append(p, certPayloads(conn, hs.certReq)...)
	p = append(p, certReqPayload(conn)...)
	if m.sendInitialContact(sa) {
		p = append(p, &message.Notify{Type: message.NotifyInitialContact})
	}
	if !conn.Remote.ID.IsAny() {
		p = append(p, &message.IDr{ID: conn.Remote.ID.wire()})
	}
	octets := sa.keys.SignedOctets(true, hs.initReq, t.idi.RestOfIDPayload(), hs.intAuth.Octets(hs.authMsgID))
	a, err := m.buildAuth(sa, octets, hs.peerHashes)
	if err != nil {
		return nil, err
	}
	sa.localAuth = a.Method
	p = append(p, a)
	if len(conn.VIPs) > 0 {
		p = append(p, cpRequest(conn))
		t.cp = true
	}
	childless := conn.Childless == ChildlessForce && sa.peerChildless
	if hs.firstChild != nil && !childless {
		t.req = hs.firstChild
		hs.firstChild = nil
		c := m.newChild(sa, t.req.cfg)
		c.reqKey = t.req.reqKey
		local, remote := m.childTS(sa, t.req.cfg)
		if pk := t.req.packet; pk != nil {
			local, remote = append([]TS{pk[0]}, local...), append([]TS{pk[1]}, remote...)
		}
		o, cp, err := m.offerChild(sa, c, local, remote, true)
		if err != nil {
			return nil, err
		}
		t.offer = o
		p = append(p, cp...)
		p = append(p, tsPayloads(local, remote)...)
	} else if hs.firstChild == nil && !sa.peerChildless {
		return nil, errors.New("ike: no Child SA to create and the responder does not support childless IKE SAs")
	}
	return p, nil
}

// sendInitialContact: our first IKE SA with this peer (RFC 7296 §2.4).
func (m *Manager) sendInitialContact(sa *ikeSA) bool {
	return sa.conn.Unique != UniqueNever && m.connLive[sa.conn] == 0
}

func (t *authTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	conn, hs := sa.conn, sa.hs
	if resp.Notify(message.NotifyAuthenticationFailed) != nil {
		return &notifyError{message.NotifyAuthenticationFailed}
	}
	idr, a := message.Find[*message.IDr](resp), message.Find[*message.Auth](resp)
	if idr == nil || a == nil {
		if n := resp.ErrorNotify(); n != nil {
			return &notifyError{n.Type}
		}
		return errors.New("ike: IKE_AUTH response without IDr or AUTH")
	}
	if !conn.Remote.ID.Matches(idr.ID) {
		return m.responderAuthFailed(sa, fmt.Errorf("%w: responder identity %s is not %s", errAuth, idr.ID, conn.Remote.ID))
	}
	sa.remoteID = identityOf(idr.ID)
	octets := sa.keys.SignedOctets(false, hs.initResp, idr.RestOfIDPayload(), hs.intAuth.Octets(hs.authMsgID))
	if err := m.verifyAuth(sa, resp, idr.ID, a, octets); err != nil {
		return m.responderAuthFailed(sa, err)
	}
	sa.remoteAuth = a.Method
	if cp := message.Find[*message.CP](resp); cp != nil && t.cp && cp.Type == message.CfgReply {
		acceptCPReply(sa, cp)
	}
	more := hs.moreChildren
	if hs.firstChild != nil {
		// Not sent in IKE_AUTH (childless): create it now.
		more = append([]*childRequest{hs.firstChild}, more...)
	}
	m.established(sa)
	m.logIKE(sa, slog.LevelInfo, "IKE SA established", "remote_id", sa.remoteID, "vips", sa.vips)
	if t.offer != nil {
		if err := m.finishAuthChild(sa, t, resp); err != nil {
			m.logChild(t.offer.child, slog.LevelWarn, "Child SA of IKE_AUTH failed", "err", err)
			t.req.finish(err)
		} else {
			t.req.finish(nil)
		}
	}
	for _, r := range more {
		m.queueTask(sa, &childTask{req: r})
	}
	return nil
}

// responderAuthFailed refuses the responder's identity, certificate or
// AUTH, and tells the responder, which established the IKE SA when it
// answered, with AUTHENTICATION_FAILED in an INFORMATIONAL request of its
// own: RFC 7296 §2.21.2 allows this exception to not starting an exchange
// on an error in a response. The request goes once and is never
// retransmitted; its answer is not awaited, and the caller deletes the IKE
// SA at once. An unauthenticated peer's answer could change nothing, and
// keeping the SA for retransmissions would keep state for it: should the
// request be lost, the responder's SA ends with its own timers, as it did
// before it was sent at all.
func (m *Manager) responderAuthFailed(sa *ikeSA, err error) error {
	m.stats.AuthFailures++
	msg := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.ExchangeInformational,
		MessageID: sa.nextReqID, Flags: message.FlagInitiator},
		Payloads: []message.Payload{&message.Notify{Type: message.NotifyAuthenticationFailed}}}
	packets, encErr := m.encode(sa, msg)
	if encErr != nil {
		m.logIKE(sa, slog.LevelError, "encoding AUTHENTICATION_FAILED failed", "err", encErr)
		return err
	}
	sa.nextReqID++
	m.countOut(msg.Exchange, false)
	m.logIKE(sa, slog.LevelWarn, "responder authentication failed, sending AUTHENTICATION_FAILED",
		"notify", message.NotifyAuthenticationFailed.String(), "err", err)
	m.sendPackets(packets, sa.local, sa.remote)
	return err
}

func (m *Manager) finishAuthChild(sa *ikeSA, t *authTask, resp *message.Message) error {
	c := t.offer.child
	if n := resp.ErrorNotify(); n != nil && message.Find[*message.SA](resp) == nil {
		m.deps.Installer.ReleaseSPI(c.cfg.Protocol, c.spiIn)
		return &notifyError{n.Type}
	}
	keys, err := m.completeChild(sa, t.offer, resp, sa.keys.Ni, sa.keys.Nr, nil)
	if err != nil {
		m.deps.Installer.ReleaseSPI(c.cfg.Protocol, c.spiIn)
		c.spiIn = 0
		return err
	}
	sa.children = append(sa.children, c)
	m.setChildState(c, ChildInstalling, "IKE_AUTH")
	if err := m.installChild(c, keys, true, true); err != nil {
		m.destroyChild(c, err.Error())
		return err
	}
	return nil
}

func (t *authTask) abort(m *Manager, sa *ikeSA, err error) {
	if t.offer != nil && t.offer.child.spiIn != 0 && t.offer.child.state == 0 {
		m.deps.Installer.ReleaseSPI(t.offer.child.cfg.Protocol, t.offer.child.spiIn)
	}
	if t.req != nil && sa.hs != nil && sa.hs.firstChild == nil {
		// Back to the handshake, so a retry creates it again.
		sa.hs.firstChild, t.req = t.req, nil
	}
	if t.req != nil {
		t.req.finish(err)
	}
	m.initiationFailed(sa, err)
}

// established finishes the initial exchanges on either side.
func (m *Manager) established(sa *ikeSA) {
	m.setHalfOpen(sa, false)
	m.stop(&sa.tHalfOpen)
	sa.hs = nil
	sa.candidates = nil
	sa.established = m.now
	m.stats.Established++
	m.setIKEState(sa, IKEEstablished, "IKE_AUTH done")
	if r := m.retries[sa.conn]; r != nil && sa.initiator {
		delete(m.retries, sa.conn)
	}
	m.armIKETimers(sa)
	for _, f := range sa.waiting {
		f(nil)
	}
	sa.waiting = nil
}

// armIKETimers schedules rekeying, liveness checks and keepalives.
func (m *Manager) armIKETimers(sa *ikeSA) {
	conn := sa.conn
	if conn.RekeyTime > 0 {
		m.schedule(&sa.tRekey, conn.RekeyTime-m.jitter(min(conn.RandTime, conn.RekeyTime/2)))
		m.schedule(&sa.tExpire, conn.RekeyTime+conn.OverTime)
	}
	if conn.DPDDelay > 0 {
		m.schedule(&sa.tDPD, conn.DPDDelay)
	}
	if sa.natLocal && !sa.tKeepalive.scheduled() {
		m.schedule(&sa.tKeepalive, m.cfg.KeepaliveInterval)
	}
}

// respondAuth is the responder's IKE_AUTH: pick the connection by
// identities, verify the initiator, authenticate ourselves and create the
// first Child SA.
func (m *Manager) respondAuth(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	hs := sa.hs
	if sa.initiator || sa.state != IKEConnecting || hs == nil || hs.nextAddKE < countAddKE(sa) {
		return nil, false
	}
	hs.authMsgID = msg.MessageID
	idi, a := message.Find[*message.IDi](msg), message.Find[*message.Auth](msg)
	if idi == nil || a == nil {
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyInvalidSyntax}}, true
	}
	fail := func(why string, err error) ([]message.Payload, bool) {
		m.stats.AuthFailures++
		m.logIKE(sa, slog.LevelWarn, "peer authentication failed", "why", why, "err", err, "remote_id", idi.ID)
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyAuthenticationFailed}}, true
	}
	idr := message.Find[*message.IDr](msg)
	conn := m.selectConn(sa, idi.ID, idr, a.Method)
	if conn == nil {
		return fail("no connection for these identities", nil)
	}
	sa.conn = conn
	sa.remoteID = identityOf(idi.ID)
	sa.localID = localIdentity(sa)
	octets := sa.keys.SignedOctets(true, hs.initReq, idi.RestOfIDPayload(), hs.intAuth.Octets(hs.authMsgID))
	if err := m.verifyAuth(sa, msg, idi.ID, a, octets); err != nil {
		return fail("AUTH", err)
	}
	sa.remoteAuth = a.Method
	if !m.enforceUnique(sa, msg.Notify(message.NotifyInitialContact) != nil) {
		return fail("unique = keep and an IKE SA exists", nil)
	}
	idrOut := sa.localID.wire()
	p := []message.Payload{&message.IDr{ID: idrOut}}
	peerCertReq := hs.certReq || message.Find[*message.CertReq](msg) != nil
	p = append(p, certPayloads(conn, peerCertReq)...)
	octetsR := sa.keys.SignedOctets(false, hs.initResp, idrOut.RestOfIDPayload(), hs.intAuth.Octets(hs.authMsgID))
	ourAuth, err := m.buildAuth(sa, octetsR, hs.peerHashes)
	if err != nil {
		m.logIKE(sa, slog.LevelError, "cannot authenticate ourselves", "err", err)
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyAuthenticationFailed}}, true
	}
	sa.localAuth = ourAuth.Method
	p = append(p, ourAuth)
	cpFailed := message.NotifyType(0)
	if cp := message.Find[*message.CP](msg); cp != nil && cp.Type == message.CfgRequest && len(conn.Pools) > 0 {
		reply, n := m.serveCP(sa, cp)
		if reply != nil {
			p = append(p, reply)
		}
		cpFailed = n
	}
	childless := message.Find[*message.SA](msg) == nil
	if childless && conn.Childless == ChildlessNever {
		// RFC 6023 §3: a responder that requires a Child SA refuses.
		sa.deleteAfterResponse = true
		return []message.Payload{&message.Notify{Type: message.NotifyInvalidSyntax}}, true
	}
	m.established(sa)
	m.logIKE(sa, slog.LevelInfo, "IKE SA established", "remote_id", sa.remoteID)
	if childless {
		return p, true
	}
	if cpFailed != 0 {
		return append(p, &message.Notify{Type: cpFailed}), true
	}
	res, _ := m.acceptChild(sa, msg, nil, true, sa.keys.Ni, sa.keys.Nr, nil)
	if res.notify != 0 {
		return append(p, &message.Notify{Type: res.notify}), true
	}
	c := res.child
	sa.children = append(sa.children, c)
	m.setChildState(c, ChildInstalling, "IKE_AUTH")
	if err := m.installChild(c, res.keys, false, true); err != nil {
		m.logChild(c, slog.LevelError, "installing Child SA failed", "err", err)
		m.destroyChild(c, "install failed")
		return append(p, &message.Notify{Type: message.NotifyNoProposalChosen}), true
	}
	p = append(p, res.payloads...)
	p = append(p, childTSPayloads(c)...)
	return p, true
}

// selectConn picks the responder's connection among those the addresses
// allowed: identities, the AUTH method and the negotiated IKE suite must
// fit.
func (m *Manager) selectConn(sa *ikeSA, idi message.ID, idr *message.IDr, method message.AuthMethod) *Connection {
	for _, c := range sa.candidates {
		if !c.Remote.ID.Matches(idi) || !methodFits(c.Remote.Method, method) {
			continue
		}
		if idr != nil && !c.Local.ID.IsAny() && !c.Local.ID.Matches(idr.ID) {
			continue
		}
		if _, err := choose([]message.Proposal{message.ProposalFromSuite(1, nil, sa.suite)}, c.Proposals,
			m.cfg.Policy, negotiateOpts{}); err != nil {
			continue
		}
		return c
	}
	return nil
}

// enforceUnique applies the connection's uniqueness policy to a newly
// authenticated peer (swanctl's unique; RFC 7296 §2.4 INITIAL_CONTACT).
// It returns false when the new SA must be refused.
func (m *Manager) enforceUnique(sa *ikeSA, initialContact bool) bool {
	conn := sa.conn
	if conn.Unique == UniqueNever || (conn.Unique == UniqueNo && !initialContact) {
		return true
	}
	others := slices.Clone(m.peers[keyOfPeer(sa)])
	if len(others) == 0 {
		return true
	}
	switch {
	case conn.Unique == UniqueKeep:
		return false
	case conn.Unique == UniqueReplace:
		for _, o := range others {
			m.deleteIKE(o, nil)
		}
	case conn.Unique == UniqueNo && initialContact:
		// The peer lost its state: forget ours silently.
		for _, o := range others {
			m.destroyIKE(o, "INITIAL_CONTACT from the peer")
		}
	}
	return true
}

func countAddKE(sa *ikeSA) int {
	n := 0
	for _, k := range sa.suite.AddKE {
		if k != 0 {
			n++
		}
	}
	return n
}
