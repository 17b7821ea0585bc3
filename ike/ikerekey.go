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

// ikeRekeyTask rekeys the IKE SA with CREATE_CHILD_SA (RFC 7296 §1.3.2,
// §2.18). It proposes the connection's proposals, additional key
// exchanges included: when the responder chooses some, IKE_FOLLOWUP_KE
// exchanges follow and the new SA's keys take every shared secret (RFC
// 9370 §2.2.4).
type ikeRekeyTask struct {
	spiI    uint64
	ni      []byte
	dh      group.Exchange
	ke      proposal.KEID
	retries int
	props   []proposal.Proposal
	fu      *keFollowup // the additional key exchanges under way
	// What the CREATE_CHILD_SA response chose, for after them.
	suite proposal.Suite
	spiR  uint64
	nr    []byte
}

func (t *ikeRekeyTask) exchange() message.ExchangeType {
	if t.fu != nil {
		return message.ExchangeIKEFollowupKE
	}
	return message.ExchangeCreateChildSA
}

func (t *ikeRekeyTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	if t.fu != nil {
		if sa.state != IKERekeying || sa.ikeRekey != t {
			t.abort(m, sa, errSkip)
			return nil, errSkip
		}
		return t.fu.build(m)
	}
	if sa.state != IKEEstablished && sa.ikeRekey != t {
		return nil, errSkip
	}
	m.setIKEState(sa, IKERekeying, "rekey started")
	sa.ikeRekey = t
	t.props = sa.conn.Proposals
	if t.spiI == 0 {
		t.spiI = m.randUint64()
	}
	if t.ke == proposal.KENone {
		t.ke = sa.suite.KE
	}
	dh, err := group.New(t.ke, m.cfg.Policy, m.rand)
	if err != nil {
		return nil, err
	}
	t.dh = dh
	t.ni = m.nonce()
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], t.spiI)
	return []message.Payload{
		&message.SA{Proposals: offerFor(t.props, spi[:], negotiateOpts{})},
		&message.Nonce{Data: t.ni},
		&message.KE{Group: t.ke, Data: dh.Public()},
	}, nil
}

func (t *ikeRekeyTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	if t.fu != nil {
		done, err := t.fu.process(resp)
		if err != nil || !done {
			if err == nil {
				err = errMore
			}
			return err
		}
		keys, err := sa.keys.Rekey(t.suite, t.ni, t.nr, t.spiI, t.spiR, t.fu.shared...)
		t.fu.wipe()
		if err != nil {
			return err
		}
		m.followupDone(sa)
		return t.complete(m, sa, keys)
	}
	if n := resp.Notify(message.NotifyInvalidKEPayload); n != nil {
		g, ok := n.KEGroup()
		if !ok || g == t.ke || !offersKE(t.props, g) || t.retries >= maxInitRetries {
			return &notifyError{message.NotifyInvalidKEPayload}
		}
		t.retries++
		t.ke = g
		return errRetry
	}
	if n := resp.ErrorNotify(); n != nil {
		return &notifyError{n.Type}
	}
	sel, err := checkChosen(message.Find[*message.SA](resp), t.props, negotiateOpts{})
	if err != nil {
		return err
	}
	nonce, ke := message.Find[*message.Nonce](resp), message.Find[*message.KE](resp)
	if len(sel.spi) != 8 || nonce == nil || ke == nil || ke.Group != t.ke || ke.Group != sel.suite.KE ||
		len(nonce.Data) < keymat.MinNonceLen || len(nonce.Data) > keymat.MaxNonceLen {
		return errors.New("ike: invalid IKE SA rekey response")
	}
	if err := sel.suite.Check(m.cfg.Policy); err != nil {
		return err
	}
	gir, err := t.dh.Shared(ke.Data)
	if err != nil {
		return err
	}
	defer clear(gir)
	t.dh = nil
	t.suite, t.spiR, t.nr = sel.suite, binary.BigEndian.Uint64(sel.spi), bytes.Clone(nonce.Data)
	if methods := addKEMethods(sel.suite); len(methods) > 0 {
		fu, err := newFollowup(resp, methods, gir)
		if err != nil {
			return err
		}
		// A simultaneous rekey is decided now, before either new SA
		// exists (RFC 9370 §2.2.4).
		best := minNonce(t.ni, t.nr)
		for _, p := range sa.peerRekeys {
			if p.state != ikeDestroyed && bytes.Compare(best, minNonce(p.rekeyNi, p.rekeyNr)) < 0 {
				fu.wipe()
				return errCollisionLost
			}
		}
		if sa.pendingIKEWins(best) {
			fu.wipe()
			return errCollisionLost
		}
		m.dropPendingIKE(sa, "IKE rekey collision won")
		t.fu = fu
		m.logIKE(sa, slog.LevelDebug, "additional key exchanges follow", "proposal", sel.suite.String())
		return errMore
	}
	keys, err := sa.keys.Rekey(t.suite, t.ni, t.nr, t.spiI, t.spiR, gir)
	if err != nil {
		return err
	}
	return t.complete(m, sa, keys)
}

// complete creates the new IKE SA and settles any collision (RFC 7296
// §2.8.2).
func (t *ikeRekeyTask) complete(m *Manager, sa *ikeSA, keys *keymat.IKEKeys) error {
	nsa, err := m.rekeyedSA(sa, true, t.spiI, t.spiR, t.suite, keys, t.ni, t.nr)
	if err != nil {
		return err
	}
	sa.ikeRekey = nil
	winner := nsa
	best := minNonce(t.ni, t.nr)
	for _, p := range sa.peerRekeys {
		if p.state != ikeDestroyed {
			if n := minNonce(p.rekeyNi, p.rekeyNr); bytes.Compare(best, n) < 0 {
				winner, best = p, n
			}
		}
	}
	if sa.pendingIKEWins(best) {
		// The peer's rekey, still running its additional key exchanges,
		// beats ours: ours is redundant and the old SA serves until the
		// peer's exists.
		m.logIKE(nsa, slog.LevelInfo, "IKE rekey collision lost: deleting our redundant IKE SA")
		m.setIKEState(sa, IKEEstablished, "rekey collision: the peer's rekey continues")
		m.deleteIKE(nsa, nil)
		return nil
	}
	m.dropPendingIKE(sa, "IKE rekey collision won")
	m.moveToSuccessor(sa, winner)
	if winner != nsa {
		// Simultaneous IKE rekey, ours with the lowest nonce: our new SA
		// is redundant and we delete it; the peer deletes the old one
		// (RFC 7296 §2.8.2).
		m.logIKE(nsa, slog.LevelInfo, "IKE rekey collision lost: deleting our redundant IKE SA")
		if !sa.peerDeleted {
			m.schedule(&sa.tDeleteWait, m.outboundWait())
		}
		m.deleteIKE(nsa, nil)
		return nil
	}
	for _, p := range sa.peerRekeys {
		// The peer's SAs from the collision are redundant and the peer
		// deletes them; if it never learns they exist (its answer was
		// lost), we do.
		if p.state == IKEEstablished {
			m.schedule(&p.tDeleteWait, m.outboundWait())
		}
	}
	m.logIKE(sa, slog.LevelInfo, "IKE SA rekeyed", "new", fmt.Sprintf("%016x_i %016x_r", nsa.spiI, nsa.spiR))
	m.deleteIKE(sa, nil)
	return nil
}

func (t *ikeRekeyTask) abort(m *Manager, sa *ikeSA, err error) {
	t.fu.wipe()
	deleting := t.fu != nil && m.followupFailed(sa, err)
	if sa.ikeRekey != t {
		return
	}
	sa.ikeRekey = nil
	if sa.state != IKERekeying {
		return
	}
	for _, p := range sa.peerRekeys {
		if p.state != ikeDestroyed {
			// Ours failed, the peer's went through.
			m.logIKE(sa, slog.LevelInfo, "our IKE SA rekey failed, the peer's replaces the SA", "err", err)
			m.moveToSuccessor(sa, p)
			m.schedule(&sa.tDeleteWait, m.outboundWait())
			return
		}
	}
	m.setIKEState(sa, IKEEstablished, "rekey failed")
	var ne *notifyError
	switch {
	case errors.Is(err, errCollisionLost):
		m.logIKE(sa, slog.LevelInfo, "IKE rekey collision lost before our additional key exchanges: the peer's rekey continues")
	case errors.As(err, &ne) && !deleting:
		m.logIKE(sa, slog.LevelWarn, "IKE SA rekey failed", "err", err)
		m.retryIKERekey(sa, ne.t.String())
	}
}

// retryIKERekey schedules another rekey of sa after a failed one, or
// leaves sa to end at rekey_time + over_time when no try fits before.
func (m *Manager) retryIKERekey(sa *ikeSA, why string) {
	if d, ok := m.scheduleRekeyRetry(&sa.tRekey, &sa.rekeyRetries, &sa.tExpire); ok {
		m.logIKE(sa, slog.LevelInfo, "rekeying again later", "why", why, "retry", sa.rekeyRetries, "in", d.Round(time.Millisecond))
		return
	}
	m.logIKE(sa, slog.LevelWarn, "no time left to rekey again: the IKE SA ends when its over_time runs out", "why", why,
		"retries", sa.rekeyRetries, "expires_in", sa.tExpire.when.Sub(m.now).Round(time.Millisecond))
}

// rekeyedSA creates the IKE SA that replaces old (RFC 7296 §2.18): the
// rekey's initiator is the new SA's original initiator, and Message IDs
// start again at zero.
func (m *Manager) rekeyedSA(old *ikeSA, initiator bool, spiI, spiR uint64, suite proposal.Suite, keys *keymat.IKEKeys, ni, nr []byte) (*ikeSA, error) {
	nsa := m.newIKESA(initiator)
	nsa.conn = old.conn
	nsa.spiI, nsa.spiR = spiI, spiR
	nsa.local, nsa.remote = old.local, old.remote
	nsa.natLocal, nsa.natRemote = old.natLocal, old.natRemote
	nsa.suite = suite
	nsa.localID, nsa.remoteID = old.localID, old.remoteID
	nsa.localAuth, nsa.remoteAuth = old.localAuth, old.remoteAuth
	nsa.peerFrag, nsa.peerChildless = old.peerFrag, old.peerChildless
	nsa.rekeyNi, nsa.rekeyNr = bytes.Clone(ni), bytes.Clone(nr)
	if err := m.setKeys(nsa, keys); err != nil {
		keys.Wipe()
		return nil, err
	}
	m.sas[nsa.ourSPI()] = nsa
	m.setIKEState(nsa, IKEEstablished, "rekey")
	nsa.established = m.now
	nsa.lastRecv = m.now
	m.armIKETimers(nsa)
	return nsa, nil
}

// moveToSuccessor hands old's Child SAs, leases and queued Child SA work
// to the IKE SA that replaces it, and marks old for deletion.
func (m *Manager) moveToSuccessor(old, nsa *ikeSA) {
	for _, c := range old.children {
		c.ike = nsa
		c.tRekey.sa, c.tExpire.sa, c.tOutbound.sa, c.tInactive.sa = nsa, nsa, nsa, nsa
	}
	nsa.children = append(nsa.children, old.children...)
	old.children = nil
	nsa.leases = append(nsa.leases, old.leases...)
	old.leases = nil
	nsa.vips = append(nsa.vips, old.vips...)
	var keep []task
	for _, t := range old.queue {
		switch t.(type) {
		case *childTask, *deleteChildTask:
			nsa.queue = append(nsa.queue, t)
		default:
			keep = append(keep, t)
		}
	}
	old.queue = keep
	for _, r := range old.createRetries {
		r.retry.sa = nsa
	}
	nsa.createRetries = append(nsa.createRetries, old.createRetries...)
	old.createRetries = nil
	nsa.waiting = append(nsa.waiting, old.waiting...)
	old.waiting = nil
	old.rekeyedTo = nsa
	m.stop(&old.tRekey)
	m.stop(&old.tExpire)
	m.stop(&old.tDPD)
	m.stop(&old.tKeepalive)
	if old.state != IKEDeleting {
		m.setIKEState(old, IKEDeleting, "rekeyed")
	}
	m.kick(nsa)
}

// respondIKERekey answers a peer's IKE SA rekey.
func (m *Manager) respondIKERekey(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	fail := func(t message.NotifyType) ([]message.Payload, bool) {
		return []message.Payload{&message.Notify{Type: t}}, true
	}
	if _, busy := sa.active.taskOf().(*childTask); busy {
		// Our Child SA exchange is in flight (RFC 7296 §2.25.2).
		return fail(message.NotifyTemporaryFailure)
	}
	if sa.ikeRekey != nil && sa.ikeRekey.fu != nil {
		// Our rekey runs its additional key exchanges: too late for a
		// collision (RFC 9370 §2.2.4).
		return fail(message.NotifyTemporaryFailure)
	}
	sel, err := choose(message.Find[*message.SA](msg).Proposals, sa.conn.Proposals, m.cfg.Policy, negotiateOpts{})
	if err != nil || len(sel.spi) != 8 {
		return fail(message.NotifyNoProposalChosen)
	}
	ke := message.Find[*message.KE](msg)
	if ke == nil || ke.Group != sel.suite.KE {
		m.stats.InvalidKESent++
		return []message.Payload{message.InvalidKENotify(sel.suite.KE)}, true
	}
	ni := message.Find[*message.Nonce](msg).Data
	nr := m.nonce()
	ker, gir, err := group.Respond(ke.Group, m.cfg.Policy, m.rand, ke.Data)
	if err != nil {
		return fail(message.NotifyInvalidSyntax)
	}
	defer clear(gir)
	spiI, spiR := binary.BigEndian.Uint64(sel.spi), m.randUint64()
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], spiR)
	if methods := addKEMethods(sel.suite); len(methods) > 0 {
		// The new SA waits for the additional key exchanges.
		if len(sa.pendingKEs) >= maxPendingKE {
			return fail(message.NotifyTemporaryFailure)
		}
		p := &pendingKE{methods: methods, shared: [][]byte{bytes.Clone(gir)}, ni: bytes.Clone(ni), nr: nr,
			suite: sel.suite, spiI: spiI, spiR: spiR}
		m.addPendingKE(sa, p)
		if sa.ikeRekey != nil {
			m.logIKE(sa, slog.LevelInfo, "simultaneous IKE SA rekey")
		}
		return []message.Payload{
			&message.SA{Proposals: []message.Proposal{message.ProposalFromSuite(sel.number, spi[:], sel.suite)}},
			&message.Nonce{Data: nr},
			&message.KE{Group: ke.Group, Data: ker},
			&message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: bytes.Clone(p.link[:])},
		}, true
	}
	keys, err := sa.keys.Rekey(sel.suite, ni, nr, spiI, spiR, gir)
	if err != nil {
		return fail(message.NotifyNoProposalChosen)
	}
	nsa, err := m.rekeyedSA(sa, false, spiI, spiR, sel.suite, keys, ni, nr)
	if err != nil {
		return fail(message.NotifyNoProposalChosen)
	}
	if sa.ikeRekey != nil {
		sa.peerRekeys = append(sa.peerRekeys, nsa)
		m.logIKE(sa, slog.LevelInfo, "simultaneous IKE SA rekey")
	} else {
		m.moveToSuccessor(sa, nsa)
		// The peer deletes the old SA; if that never comes, we do.
		m.schedule(&sa.tDeleteWait, m.outboundWait())
	}
	return []message.Payload{
		&message.SA{Proposals: []message.Proposal{message.ProposalFromSuite(sel.number, spi[:], sel.suite)}},
		&message.Nonce{Data: nr},
		&message.KE{Group: ke.Group, Data: ker},
	}, true
}

// taskOf is the outstanding request's task, or nil.
func (r *request) taskOf() task {
	if r == nil {
		return nil
	}
	return r.t
}

// startIKERekey queues an IKE SA rekey (rekey_time).
func (m *Manager) startIKERekey(sa *ikeSA) {
	if sa.state != IKEEstablished {
		if sa.state == IKERekeying {
			return
		}
		m.schedule(&sa.tRekey, m.cfg.RetransmitTimeout)
		return
	}
	m.logIKE(sa, slog.LevelInfo, "rekeying IKE SA")
	m.queueTask(sa, &ikeRekeyTask{})
}

// ikeExpired deletes an IKE SA whose rekey did not succeed in over_time.
// When it had start children (start_action = start) and is gone without
// a successor or the operator's doing, the connection is initiated again,
// as after a dead peer with dpd_action = start: nothing else would bring
// them back while the peer is alive.
func (m *Manager) ikeExpired(sa *ikeSA) {
	if sa.state != IKEEstablished && sa.state != IKERekeying {
		return
	}
	m.logIKE(sa, slog.LevelWarn, "IKE SA lifetime over without a rekey")
	restart, conn := m.startChildren(sa), sa.conn
	m.deleteIKE(sa, func(error) {
		if len(restart) == 0 || conn == nil || sa.closing || sa.rekeyedTo != nil {
			return
		}
		m.log.Info("initiating again after the IKE SA's hard lifetime", "conn", conn.Name)
		m.scheduleRetry(conn, restart, true)
	})
}

// startChildren are the children with start_action = start that sa has
// or is creating, unless the operator is taking them down.
func (m *Manager) startChildren(sa *ikeSA) []*Child {
	var out []*Child
	add := func(cfg *Child) {
		if cfg.StartAction == ActionStart && !slices.Contains(out, cfg) {
			out = append(out, cfg)
		}
	}
	for _, c := range sa.children {
		if !c.closing {
			add(c.cfg)
		}
	}
	for _, r := range m.childRequests(sa) {
		if !r.closed {
			add(r.cfg)
		}
	}
	return out
}
