package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// childTask creates a Child SA with CREATE_CHILD_SA (RFC 7296 §1.3.1) or,
// with a target, rekeys one (§1.3.3, §2.8). When the responder chooses
// additional key exchanges, IKE_FOLLOWUP_KE exchanges follow (RFC 9370
// §2.2.4) and the SA is created after the last.
type childTask struct {
	req      *childRequest
	target   *childSA // the SA being rekeyed; cleared if the peer deletes it meanwhile
	rekeying bool
	child    *childSA
	offer    *childOffer
	ni       []byte
	dh       group.Exchange
	ke       proposal.KEID
	retries  int
	fu       *keFollowup // the additional key exchanges under way
	// sent is when the request of a new Child SA first went out.
	sent time.Time
}

func (t *childTask) exchange() message.ExchangeType {
	if t.fu != nil {
		return message.ExchangeIKEFollowupKE
	}
	return message.ExchangeCreateChildSA
}

func (t *childTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	if t.fu != nil {
		if sa.state != IKEEstablished {
			// The IKE SA is being deleted: no point going on.
			t.abort(m, sa, errSkip)
			return nil, errSkip
		}
		return t.fu.build(m)
	}
	if sa.state != IKEEstablished {
		// The IKE SA began deleting, possibly while our first attempt
		// was answered with INVALID_KE_PAYLOAD: release the SPI that
		// attempt reserved and answer the request, as for a queued task.
		t.abort(m, sa, errSkip)
		return nil, errSkip
	}
	var cfg *Child
	var local, remote []TS
	mode := ModeTunnel
	if t.target != nil || t.rekeying {
		old := t.target
		if old == nil || (old.state != ChildInstalled && old.state != ChildRekeying) || old.ike != sa {
			t.dropChild(m)
			return nil, errSkip
		}
		t.rekeying = true
		m.setChildState(old, ChildRekeying, "rekey started")
		old.rekey = t
		cfg, local, remote, mode = old.cfg, old.local, old.remote, old.mode
	} else {
		if r := t.req; r.closed {
			// Taken down by the operator.
			t.abort(m, sa, errChildDown)
			return nil, errSkip
		}
		if r := t.req; (r.recreate || (r.retries > 0 && r.packet == nil)) && m.installedChild(sa, r.cfg) {
			// The peer created it first, afresh or while we waited to
			// try again.
			r.finish(nil)
			t.abort(m, sa, errSkip)
			return nil, errSkip
		}
		if t.sent.IsZero() {
			t.sent = m.now
		}
		cfg = t.req.cfg
		local, remote = m.childTS(sa, cfg)
		if pk := t.req.packet; pk != nil {
			local, remote = append([]TS{pk[0]}, local...), append([]TS{pk[1]}, remote...)
		}
		mode = cfg.Mode
	}
	if t.child == nil {
		t.child = m.newChild(sa, cfg)
		t.child.mode = mode
		if t.req != nil {
			t.child.reqKey = t.req.reqKey
		}
	}
	t.child.ike = sa
	var p []message.Payload
	if t.rekeying {
		var spi [4]byte
		binary.BigEndian.PutUint32(spi[:], t.target.spiIn)
		p = append(p, &message.Notify{Type: message.NotifyRekeySA, Protocol: cfg.Protocol, SPI: spi[:]})
	}
	o, sp, err := m.offerChild(sa, t.child, local, remote, false)
	if err != nil {
		return nil, err
	}
	t.offer = o
	p = append(p, sp...)
	t.ni = m.nonce()
	p = append(p, &message.Nonce{Data: t.ni})
	if t.ke == proposal.KENone {
		t.ke = pfsGroup(cfg.Proposals)
	}
	t.dh = nil
	if t.ke != proposal.KENone {
		dh, err := group.New(t.ke, m.cfg.Policy, m.rand)
		if err != nil {
			return nil, err
		}
		t.dh = dh
		p = append(p, &message.KE{Group: t.ke, Data: dh.Public()})
	}
	p = append(p, tsPayloads(local, remote)...)
	return p, nil
}

// pfsGroup is the first key exchange method of the child's proposals, or
// none: PFS for CREATE_CHILD_SA (RFC 7296 §1.3.1).
func pfsGroup(props []proposal.Proposal) proposal.KEID {
	for _, p := range props {
		for _, k := range p.KE {
			if k != proposal.KENone {
				return k
			}
		}
	}
	return proposal.KENone
}

func (t *childTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	if t.fu != nil {
		return t.processFollowup(m, sa, resp)
	}
	if n := resp.Notify(message.NotifyInvalidKEPayload); n != nil {
		g, ok := n.KEGroup()
		if !ok || g == t.ke || !offersKE(t.child.cfg.Proposals, g) || t.retries >= maxInitRetries {
			return &notifyError{message.NotifyInvalidKEPayload}
		}
		t.retries++
		t.ke = g
		return errRetry
	}
	if n := resp.ErrorNotify(); n != nil {
		return &notifyError{n.Type}
	}
	nonce := message.Find[*message.Nonce](resp)
	if nonce == nil || len(nonce.Data) < keymat.MinNonceLen || len(nonce.Data) > keymat.MaxNonceLen {
		return errors.New("ike: CREATE_CHILD_SA response without a valid nonce")
	}
	var shared []byte
	if t.dh != nil {
		if ke := message.Find[*message.KE](resp); ke != nil {
			if ke.Group != t.ke {
				return fmt.Errorf("ike: responder's KE is %v, we sent %v", ke.Group, t.ke)
			}
			s, err := t.dh.Shared(ke.Data)
			if err != nil {
				return err
			}
			shared = s
			defer clear(shared)
		}
	}
	if err := m.checkChild(sa, t.offer, resp, shared != nil); err != nil {
		return err
	}
	c := t.child
	c.ni, c.nr = t.ni, bytes.Clone(nonce.Data)
	t.dh = nil
	if methods := addKEMethods(c.suite); len(methods) > 0 {
		fu, err := newFollowup(resp, methods, shared)
		if err != nil {
			return err
		}
		if old := t.target; t.rekeying && old != nil && old.state != childDestroyed {
			// A simultaneous rekey is decided now, before either new
			// SA exists (RFC 9370 §2.2.4): the loser does not go on,
			// the winner's peer forgets the loser's sequence.
			if m.rekeyWinner(old, c) != c {
				fu.wipe()
				return errCollisionLost
			}
			m.dropPendingChildRekeys(old, "rekey collision won")
		}
		t.fu = fu
		m.logChild(c, slog.LevelDebug, "additional key exchanges follow", "proposal", c.suite.String())
		return errMore
	}
	var sharedList [][]byte
	if shared != nil {
		sharedList = [][]byte{shared}
	}
	keys, err := sa.keys.ChildKeys(c.suite, c.ni, c.nr, sharedList...)
	if err != nil {
		return err
	}
	return t.complete(m, sa, keys)
}

// processFollowup takes an IKE_FOLLOWUP_KE response; after the last one
// the Child SA's keys take every shared secret.
func (t *childTask) processFollowup(m *Manager, sa *ikeSA, resp *message.Message) error {
	done, err := t.fu.process(resp)
	if err != nil || !done {
		if err == nil {
			err = errMore
		}
		return err
	}
	c := t.child
	keys, err := sa.keys.ChildKeys(c.suite, c.ni, c.nr, t.fu.shared...)
	t.fu.wipe()
	if err != nil {
		return err
	}
	m.followupDone(sa)
	m.logChild(c, slog.LevelInfo, "additional key exchanges done", "proposal", c.suite.String())
	return t.complete(m, sa, keys)
}

// complete installs the negotiated Child SA with its keys and, for a
// rekey, settles any collision (RFC 7296 §2.8.1).
func (t *childTask) complete(m *Manager, sa *ikeSA, keys *keymat.ChildKeys) error {
	c := t.child
	old := t.target
	if !t.rekeying || old == nil || (old.state == childDestroyed && !old.completedPeerRekey()) {
		// A new Child SA, or a rekey whose old SA the peer deleted
		// meanwhile: the new one stands on its own (RFC 7296 §2.25.1).
		sa.children = append(sa.children, c)
		m.setChildState(c, ChildInstalling, "CREATE_CHILD_SA")
		if err := m.installChild(c, keys, true, true); err != nil {
			m.destroyChild(c, "install failed")
			return err
		}
		if t.req != nil {
			t.req.finish(m.settleCreated(t, c))
		}
		return nil
	}
	if old.rekey == t {
		old.rekey = nil
	}
	c.rekeyOf = old
	m.shareReqID(c, old)
	sa.children = append(sa.children, c)
	m.setChildState(c, ChildInstalling, "rekey")
	winner := m.rekeyWinner(old, c)
	if winner != c {
		// Simultaneous rekey and ours holds the lowest nonce: our new SA
		// is the redundant one and we delete it (RFC 7296 §2.8.1). The
		// peer's replaces the old SA and the peer deletes the old one.
		m.logChild(c, slog.LevelInfo, "rekey collision lost: deleting our redundant SA")
		if err := m.installChild(c, keys, true, false); err != nil {
			m.destroyChild(c, "install failed")
			return nil
		}
		m.dropPendingOutbound(c)
		switch {
		case old.state == childDestroyed:
		case winner.pending != nil:
			if old.state != ChildRekeying {
				break
			}
			// The peer's still runs its additional key exchanges;
			// the old SA serves until its SA exists.
			m.setChildState(old, ChildInstalled, "rekey collision: the peer's rekey continues")
		default:
			m.setChildState(old, ChildRekeyed, "rekey collision: the peer's SA replaces it")
			old.successor = winner
		}
		m.queueTask(sa, &deleteChildTask{child: c})
		return nil
	}
	// The peer's sequences for the same SA lost: it stops them.
	m.dropPendingChildRekeys(old, "rekey collision won")
	if err := m.installChild(c, keys, true, true); err != nil {
		m.destroyChild(c, "install failed")
		if old.state == ChildRekeying {
			m.setChildState(old, ChildInstalled, "rekey failed")
		}
		return nil
	}
	if old.state == childDestroyed {
		return nil
	}
	for _, p := range old.peerRekeys {
		// The peer's SAs from the collision are redundant: the peer
		// deletes them, and they never carry our traffic. Should the
		// peer never learn of them (its answer lost), we delete them.
		m.dropPendingOutbound(p)
		if p.state == ChildInstalled {
			p.redundant = true
			m.stop(&p.tRekey)
			m.schedule(&p.tOutbound, m.outboundWait())
		}
	}
	m.setChildState(old, ChildRekeyed, "rekeyed")
	old.successor = c
	m.logChild(old, slog.LevelInfo, "Child SA rekeyed", "new_in", fmt.Sprintf("%08x", c.spiIn), "new_out", fmt.Sprintf("%08x", c.spiOut))
	m.queueTask(sa, &deleteChildTask{child: old})
	return nil
}

// rekeyWinner applies RFC 7296 §2.8.1 to our new SA ours and the SAs the
// peer created by rekeying old meanwhile: the exchange with the lowest of
// the nonces loses.
func (m *Manager) rekeyWinner(old, ours *childSA) *childSA {
	winner := ours
	best := minNonce(ours.ni, ours.nr)
	for _, p := range old.peerRekeys {
		if p.state == childDestroyed || p.state == ChildDeleting {
			continue
		}
		if n := minNonce(p.ni, p.nr); bytes.Compare(best, n) < 0 {
			winner, best = p, n
		}
	}
	return winner
}

func minNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

func (t *childTask) abort(m *Manager, sa *ikeSA, err error) {
	t.dropChild(m)
	t.fu.wipe()
	deleting := t.fu != nil && m.followupFailed(sa, err)
	if old := t.target; old != nil && old.rekey == t {
		old.rekey = nil
		if old.state == ChildRekeying {
			var ne *notifyError
			switch p := old.installedPeerRekey(); {
			case p != nil:
				// Our rekey failed but the peer's went through.
				m.setChildState(old, ChildRekeyed, "the peer rekeyed it")
				old.successor = p
			case errors.As(err, &ne) && ne.t == message.NotifyChildSANotFound:
				m.destroyChild(old, "the peer does not know it")
			case old.pendingPeerRekey():
				// The peer's rekey still runs its additional key
				// exchanges and will replace it.
				m.setChildState(old, ChildInstalled, "the peer is rekeying it")
			default:
				m.setChildState(old, ChildInstalled, "rekey failed")
				if errors.As(err, &ne) && !deleting && old.ike.state != ikeDestroyed {
					// TEMPORARY_FAILURE and the like: try again later.
					m.retryChildRekey(old, ne.t.String())
				}
			}
		}
	}
	if t.req != nil && !m.retryCreate(sa, t.req, err) {
		t.req.finish(err)
	}
	switch {
	case errors.Is(err, errCollisionLost):
		m.logIKE(sa, slog.LevelInfo, "rekey collision lost before our additional key exchanges: the peer's rekey continues")
	case !errors.Is(err, errIKEGone) && !errors.Is(err, errSkip) && !errors.Is(err, errChildDown):
		m.logIKE(sa, slog.LevelWarn, t.exchange().String()+" failed", "err", err)
	}
}

// retryChildRekey schedules another rekey of c after a failed one, or
// leaves c to its life_time when no try fits before it.
func (m *Manager) retryChildRekey(c *childSA, why string) {
	if d, ok := m.scheduleRekeyRetry(&c.tRekey, &c.rekeyRetries, &c.tExpire); ok {
		m.logChild(c, slog.LevelInfo, "rekeying again later", "why", why, "retry", c.rekeyRetries, "in", d.Round(time.Millisecond))
		return
	}
	m.logChild(c, slog.LevelWarn, "no time left to rekey again: the Child SA ends at its life_time", "why", why,
		"retries", c.rekeyRetries, "expires_in", c.tExpire.when.Sub(m.now).Round(time.Millisecond))
}

// pendingPeerRekey reports a rekey of c by the peer that still runs its
// additional key exchanges.
func (c *childSA) pendingPeerRekey() bool {
	for _, p := range c.peerRekeys {
		if p.pending != nil {
			return true
		}
	}
	return false
}

// completedPeerRekey reports a rekey of c by the peer that created an SA,
// whatever has become of it since.
func (c *childSA) completedPeerRekey() bool {
	for _, p := range c.peerRekeys {
		if p.pending == nil {
			return true
		}
	}
	return false
}

// installedPeerRekey is an SA the peer created by rekeying c, if one is
// installed; the peer's rekeys still running their additional key
// exchanges have none yet.
func (c *childSA) installedPeerRekey() *childSA {
	for _, p := range c.peerRekeys {
		if p.state != 0 && p.state != childDestroyed && p.state != ChildDeleting {
			return p
		}
	}
	return nil
}

// dropChild releases the SPI of a Child SA that was never installed.
func (t *childTask) dropChild(m *Manager) {
	if c := t.child; c != nil && c.state == 0 {
		if c.spiIn != 0 {
			m.deps.Installer.ReleaseSPI(c.cfg.Protocol, c.spiIn)
			c.spiIn = 0
		}
		t.child = nil
	}
}

// shareReqID gives a rekeyed SA its predecessor's ReqID, so the data
// plane switches outbound traffic atomically.
func (m *Manager) shareReqID(c, old *childSA) {
	if old.reqID == 0 {
		return
	}
	if e := m.reqIDs[old.reqKey]; e != nil {
		e.refs++
		c.reqID, c.reqKey = old.reqID, old.reqKey
	}
}

// respondCreateChild answers CREATE_CHILD_SA: a new Child SA, a Child SA
// rekey (REKEY_SA) or an IKE SA rekey (an IKE proposal).
func (m *Manager) respondCreateChild(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	if sa.state == IKEConnecting {
		return nil, false
	}
	fail := func(t message.NotifyType) ([]message.Payload, bool) {
		return []message.Payload{&message.Notify{Type: t}}, true
	}
	if sa.state == IKEDeleting {
		return fail(message.NotifyTemporaryFailure)
	}
	saP, nonce := message.Find[*message.SA](msg), message.Find[*message.Nonce](msg)
	if saP == nil || nonce == nil || len(saP.Proposals) == 0 ||
		len(nonce.Data) < keymat.MinNonceLen || len(nonce.Data) > keymat.MaxNonceLen {
		return fail(message.NotifyInvalidSyntax)
	}
	rekeyN := msg.Notify(message.NotifyRekeySA)
	if rekeyN == nil && saP.Proposals[0].Protocol == proposal.ProtoIKE {
		return m.respondIKERekey(sa, msg)
	}
	// While our IKE rekey is outstanding, Child SAs wait (RFC 7296 §2.25.2).
	if sa.state == IKERekeying {
		return fail(message.NotifyTemporaryFailure)
	}
	var old *childSA
	if rekeyN != nil {
		spi, ok := rekeyN.ChildSPI()
		if !ok {
			return fail(message.NotifyInvalidSyntax)
		}
		old = sa.childByOutSPI(rekeyN.Protocol, spi)
		if old == nil {
			return []message.Payload{&message.Notify{Type: message.NotifyChildSANotFound, Protocol: rekeyN.Protocol,
				SPI: rekeyN.SPI}}, true
		}
		if old.state != ChildInstalled && old.state != ChildRekeying {
			// Being deleted, or already replaced (RFC 7296 §2.25.1).
			return fail(message.NotifyTemporaryFailure)
		}
		if old.rekey != nil && old.rekey.fu != nil {
			// Our rekey of it is past its CREATE_CHILD_SA and runs its
			// additional key exchanges: too late for a collision
			// (RFC 9370 §2.2.4).
			return fail(message.NotifyTemporaryFailure)
		}
	}
	nr := m.nonce()
	res, ker := m.acceptChild(sa, msg, old, false, nonce.Data, nr, message.Find[*message.KE](msg))
	if res.notify == message.NotifyInvalidKEPayload {
		m.stats.InvalidKESent++
		return []message.Payload{message.InvalidKENotify(res.notifyKE)}, true
	}
	if res.notify != 0 {
		return fail(res.notify)
	}
	c := res.child
	c.ni, c.nr = bytes.Clone(nonce.Data), nr
	if res.shared != nil {
		return m.awaitChildFollowups(sa, c, old, res, ker)
	}
	if old != nil {
		m.shareReqID(c, old)
	}
	sa.children = append(sa.children, c)
	m.setChildState(c, ChildInstalling, "CREATE_CHILD_SA request")
	if err := m.installChild(c, res.keys, false, old == nil); err != nil {
		m.logChild(c, slog.LevelError, "installing Child SA failed", "err", err)
		m.destroyChild(c, "install failed")
		return fail(message.NotifyNoProposalChosen)
	}
	if old == nil {
		m.recreateCollision(c)
	}
	if old != nil {
		if old.rekey != nil {
			// We are rekeying it too: decided when our response comes.
			old.peerRekeys = append(old.peerRekeys, c)
			m.logChild(old, slog.LevelInfo, "simultaneous rekey")
		} else {
			m.setChildState(old, ChildRekeyed, "rekeyed by the peer")
			old.successor = c
		}
	}
	p := append(res.payloads, &message.Nonce{Data: nr})
	if ker != nil {
		p = append(p, &message.KE{Group: res.child.suite.KE, Data: ker})
	}
	return append(p, childTSPayloads(c)...), true
}

// awaitChildFollowups answers a CREATE_CHILD_SA whose Child SA needs
// additional key exchanges: nothing is installed until the last
// IKE_FOLLOWUP_KE; the answer carries the link to the first.
func (m *Manager) awaitChildFollowups(sa *ikeSA, c *childSA, old *childSA, res childResult, ker []byte) ([]message.Payload, bool) {
	if len(sa.pendingKEs) >= maxPendingKE {
		clear(res.shared)
		m.deps.Installer.ReleaseSPI(c.cfg.Protocol, c.spiIn)
		c.spiIn = 0
		return []message.Payload{&message.Notify{Type: message.NotifyTemporaryFailure}}, true
	}
	p := &pendingKE{methods: addKEMethods(c.suite), shared: [][]byte{res.shared}, ni: c.ni, nr: c.nr, child: c}
	m.addPendingKE(sa, p)
	if old != nil {
		// Among the peer's rekeys of old from now on: a collision with
		// ours is decided by the nonces (RFC 7296 §2.8.1).
		old.peerRekeys = append(old.peerRekeys, c)
		if old.rekey != nil {
			m.logChild(old, slog.LevelInfo, "simultaneous rekey")
		}
	}
	out := append(res.payloads, &message.Nonce{Data: c.nr}, &message.KE{Group: c.suite.KE, Data: ker},
		&message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: bytes.Clone(p.link[:])})
	return append(out, childTSPayloads(c)...), true
}

// childByOutSPI finds a Child SA by the SPI the peer uses inbound, also
// among those a rekey moved to this SA's successor: the peer may still
// name them over the old IKE SA.
func (sa *ikeSA) childByOutSPI(proto proposal.Protocol, spi uint32) *childSA {
	for s := sa; s != nil; s = s.rekeyedTo {
		for _, c := range s.children {
			if c.spiOut == spi && c.cfg.Protocol == proto {
				return c
			}
		}
	}
	return nil
}

// deleteChildTask deletes a Child SA with INFORMATIONAL (RFC 7296 §1.4.1).
// expired: the Child SA reached its hard lifetime, and one that nothing
// replaced is created afresh after the DELETE when its child's
// start_action is start. replaced records at the DELETE whether a rekey
// replaced it.
type deleteChildTask struct {
	child             *childSA
	done              func(error)
	expired, replaced bool
}

func (*deleteChildTask) exchange() message.ExchangeType { return message.ExchangeInformational }

func (t *deleteChildTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	c := t.child
	if c.state == childDestroyed || c.ike != sa {
		return nil, errSkip
	}
	t.replaced = c.state == ChildRekeyed || c.successor != nil
	m.setChildState(c, ChildDeleting, "deleting")
	return []message.Payload{&message.Delete{Protocol: c.cfg.Protocol, SPIs: []uint32{c.spiIn}}}, nil
}

func (t *deleteChildTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	var again *childRequest
	if t.expired && !t.replaced {
		again = m.recreateRequest(t.child)
	}
	m.destroyChild(t.child, "deleted")
	if again != nil {
		m.queueTask(t.child.ike, &childTask{req: again})
	}
	if t.done != nil {
		t.done(nil)
	}
	return nil
}

func (t *deleteChildTask) abort(m *Manager, sa *ikeSA, err error) {
	if c := t.child; errors.Is(err, errIKEGone) && c.ike != sa && c.state != childDestroyed && c.ike.state != ikeDestroyed {
		// The IKE SA that carried the request was rekeyed and then
		// deleted: ask again over its successor.
		m.queueTask(c.ike, t)
		return
	}
	if !errors.Is(err, errSkip) {
		m.destroyChild(t.child, "delete aborted")
	}
	if t.done != nil {
		t.done(err)
	}
}

// peerDeletesChildren handles a peer's Delete payload for Child SAs and
// returns our inbound SPIs for the answer.
func (m *Manager) peerDeletesChildren(sa *ikeSA, d *message.Delete) []uint32 {
	var ours []uint32
	for _, spi := range d.SPIs {
		c := sa.childByOutSPI(d.Protocol, spi)
		if c == nil {
			continue
		}
		if c.state == ChildDeleting {
			// Both ends delete it (RFC 7296 §1.4.1): the outbound SA
			// goes now, the rest when our request is answered, and the
			// answer names nothing.
			if c.outOK {
				if err := m.deps.Installer.DeleteSA(c.outKey); err != nil {
					m.stats.InstallErrors++
				}
				m.clearKey(c, DirOut)
			}
			continue
		}
		// Successors waiting for this SA to go take over outbound now.
		for _, s := range slices.Clone(c.ike.children) {
			if s.rekeyOf == c && s.pendingOut != nil && s.state == ChildInstalled {
				m.installPendingOutbound(s, false)
			}
		}
		ours = append(ours, c.spiIn)
		replaced := c.state == ChildRekeyed || c.successor != nil
		cfg, conn := c.cfg, c.ike.conn
		m.destroyChild(c, "deleted by the peer")
		if !replaced {
			m.closeAction(conn, cfg)
		}
	}
	return ours
}

// startChildRekey queues a rekey of c (rekey_time or a soft expiry).
func (m *Manager) startChildRekey(c *childSA) {
	if c == nil || c.state != ChildInstalled {
		return
	}
	sa := c.ike
	if sa.state != IKEEstablished {
		// Retry once the IKE SA is settled (an IKE rekey moves c).
		m.schedule(&c.tRekey, m.cfg.RetransmitTimeout)
		return
	}
	m.logChild(c, slog.LevelInfo, "rekeying Child SA")
	m.queueTask(sa, &childTask{target: c})
}

// childExpired deletes a Child SA at its hard lifetime: its life_time,
// or a hard limit of the data plane. A start child is then created afresh
// (deleteChildTask.process), as strongSwan does after a hard expiry.
func (m *Manager) childExpired(c *childSA) {
	if c == nil || c.expired || c.state == childDestroyed || c.state == ChildDeleting {
		return
	}
	c.expired = true
	m.logChild(c, slog.LevelInfo, "Child SA hard lifetime reached")
	m.queueTask(c.ike, &deleteChildTask{child: c, expired: true})
}

// deleteRedundant deletes the peer's SA from a rekey collision we won,
// which the peer should have deleted itself.
func (m *Manager) deleteRedundant(c *childSA) {
	if c == nil || c.state == childDestroyed || c.state == ChildDeleting {
		return
	}
	m.logChild(c, slog.LevelInfo, "deleting the peer's redundant SA from a rekey collision")
	m.queueTask(c.ike, &deleteChildTask{child: c})
}

// recreateRequest is the request that creates an expired Child SA afresh
// over its IKE SA, or nil when none is wanted: its child's start_action
// is not start, the operator is taking it down, it is a redundant SA from
// a rekey collision, its IKE SA is going, or another Child SA of the child
// is there or coming. The request holds the ReqID, so the policy stays
// and the traffic meanwhile is dropped as without an SA (fail closed),
// never sent by a later policy.
func (m *Manager) recreateRequest(c *childSA) *childRequest {
	sa := c.ike
	if c.cfg.StartAction != ActionStart || c.closing || c.redundant ||
		(sa.state != IKEEstablished && sa.state != IKERekeying) ||
		m.installedChild(sa, c.cfg) || m.childPending(sa, c.cfg) {
		return nil
	}
	r := &childRequest{cfg: c.cfg, recreate: true}
	r.retry.init(timerChildCreate, sa, nil)
	r.retry.req = r
	if e := m.reqIDs[c.reqKey]; c.reqID != 0 && e != nil {
		e.refs++
		key := c.reqKey
		r.reqKey = key
		r.done = append(r.done, func(error) { m.releaseReqID(key) })
	}
	m.logChild(c, slog.LevelInfo, "creating the Child SA afresh after its hard lifetime")
	return r
}

// retryCreate schedules another try of a CREATE_CHILD_SA that creates a
// Child SA and was refused with TEMPORARY_FAILURE (RFC 7296 §2.25), and
// reports whether it did. Whatever asked for the Child SA (up, a start
// child after IKE_AUTH, an acquire, a close or dpd action, a recreation
// after a hard expiry), the tries follow the rekey retries' backoff,
// random in windows that double up to a cap, for as long as the IKE SA
// (or the one that replaces it) lives and the operator does not take the
// child down; the request's done waits meanwhile. Other refusals end it,
// as they end any CREATE_CHILD_SA.
func (m *Manager) retryCreate(sa *ikeSA, r *childRequest, err error) bool {
	var ne *notifyError
	if r.closed || !errors.As(err, &ne) || ne.t != message.NotifyTemporaryFailure {
		return false
	}
	for sa.rekeyedTo != nil {
		sa = sa.rekeyedTo
	}
	if sa.state != IKEEstablished && sa.state != IKERekeying {
		return false
	}
	if r.retry.req == nil {
		r.retry.init(timerChildCreate, sa, nil)
		r.retry.req = r
	}
	d, _ := m.retryDelay(r.retries)
	r.retries++
	r.retry.sa = sa
	m.schedule(&r.retry, d)
	sa.createRetries = append(sa.createRetries, r)
	m.logIKE(sa, slog.LevelInfo, "creating the Child SA again later", "child", r.cfg.Name,
		"why", ne.t.String(), "retry", r.retries, "in", d.Round(time.Millisecond))
	return true
}

// createAgain queues a Child SA creation whose retry time has come.
func (m *Manager) createAgain(r *childRequest) {
	sa := r.retry.sa
	sa.createRetries = slices.DeleteFunc(sa.createRetries, func(o *childRequest) bool { return o == r })
	if sa.state != IKEEstablished && sa.state != IKERekeying {
		r.finish(errIKEGone)
		return
	}
	m.queueTask(sa, &childTask{req: r})
}

// dropCreateRetries ends the Child SA creations waiting for their retry on
// sa.
func (m *Manager) dropCreateRetries(sa *ikeSA, err error) {
	for _, r := range sa.createRetries {
		m.stop(&r.retry)
		r.finish(err)
	}
	sa.createRetries = nil
}

// settleCreated handles what happened to a requested Child SA while its
// CREATE_CHILD_SA was out, and returns the request's outcome: the
// operator took the child down, so the new Child SA goes at once, or, for
// a recreation, the peer created it as well.
func (m *Manager) settleCreated(t *childTask, c *childSA) error {
	if t.req.closed {
		c.closing = true
		m.queueTask(c.ike, &deleteChildTask{child: c})
		return errChildDown
	}
	if t.req.recreate {
		c.recreateSent = t.sent
		m.recreateCollision(c)
	}
	return nil
}

// recreateCollision runs when c, a Child SA we created afresh after a hard
// expiry or a new one the peer created, is installed, and looks for its
// counterpart of the same child: the peer's created since our request
// went out, or ours. Both ends expired it together and created it again.
// Of the two, the one whose exchange holds the lowest nonce is deleted by
// its creator, as in a rekey collision (RFC 7296 §2.8.1), so both ends
// keep the same one, whichever end saw both first.
func (m *Manager) recreateCollision(c *childSA) {
	for _, o := range c.ike.children {
		ours, theirs := c, o
		if c.byPeer {
			ours, theirs = o, c
		}
		if o == c || o.cfg != c.cfg || ours.byPeer || ours.recreateSent.IsZero() || !theirs.byPeer ||
			theirs.rekeyOf != nil || ours.state != ChildInstalled || theirs.state != ChildInstalled ||
			theirs.installed.Before(ours.recreateSent) {
			continue
		}
		if bytes.Compare(minNonce(ours.ni, ours.nr), minNonce(theirs.ni, theirs.nr)) < 0 {
			m.logChild(ours, slog.LevelInfo, "the peer created the Child SA afresh as well, and its exchange won: deleting ours")
			m.queueTask(ours.ike, &deleteChildTask{child: ours})
		}
		return
	}
}

// childRequests are the Child SAs sa is creating or will create
// (CREATE_CHILD_SA), rekeys aside.
func (m *Manager) childRequests(sa *ikeSA) []*childRequest {
	var out []*childRequest
	if t, ok := sa.active.taskOf().(*childTask); ok && t.req != nil {
		out = append(out, t.req)
	}
	for _, q := range sa.queue {
		if t, ok := q.(*childTask); ok && t.req != nil {
			out = append(out, t.req)
		}
	}
	return append(out, sa.createRetries...)
}
