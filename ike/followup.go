package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Additional key exchanges in CREATE_CHILD_SA (RFC 9370 §2.2.4). The
// CREATE_CHILD_SA exchange carries the first key exchange (Transform Type
// 4); each additional one follows in an IKE_FOLLOWUP_KE exchange, linked to
// the previous by the ADDITIONAL_KEY_EXCHANGE data the responder chose:
//
//	CREATE_CHILD_SA  SA, Ni, KEi       -->  <--  SA, Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE)(link1)
//	IKE_FOLLOWUP_KE  KEi(1), N(link1)  -->  <--  KEr(1), N(ADDITIONAL_KEY_EXCHANGE)(link2)
//	IKE_FOLLOWUP_KE  KEi(2), N(link2)  -->  <--  KEr(2)
//
// The SA exists only once the last exchange is done; its keys take every
// shared secret, SK(0) first (keymat's Rekey and ChildKeys). The initiator
// runs the sequence inside its task (childTask, ikeRekeyTask), whose
// exchange type turns to IKE_FOLLOWUP_KE after the CREATE_CHILD_SA
// response; the responder keeps a pendingKE per sequence.

var (
	// errMore asks the exchange machinery to send the task's next request
	// at once: the next IKE_FOLLOWUP_KE of its sequence.
	errMore = errors.New("ike: the exchange continues")
	// errCollisionLost ends a rekey whose additional key exchanges lost a
	// simultaneous rekey before its SA existed (RFC 9370 §2.2.4): the
	// peer's rekey replaces the SA.
	errCollisionLost = errors.New("ike: rekey collision lost")
)

const (
	// maxPendingKE bounds the sequences one IKE SA's peer may have
	// waiting for their IKE_FOLLOWUP_KE requests; beyond it a new one is
	// refused with TEMPORARY_FAILURE.
	maxPendingKE = 4
	// maxStateNotFound is how many sequences in a row may end in
	// STATE_NOT_FOUND before the IKE SA is deleted as unusable (RFC 9370
	// §2.2.4).
	maxStateNotFound = 3
	// linkLen is the size of the ADDITIONAL_KEY_EXCHANGE data we send.
	linkLen = 8
)

// addKEMethods lists a suite's additional key exchanges in slot order,
// skipping slots negotiated as NONE.
func addKEMethods(s proposal.Suite) []proposal.KEID {
	var out []proposal.KEID
	for _, k := range s.AddKE {
		if k != proposal.KENone {
			out = append(out, k)
		}
	}
	return out
}

// keFollowup is the initiator's side of one sequence: the methods still to
// run, the link the responder gave last, and the secrets so far.
type keFollowup struct {
	methods []proposal.KEID
	link    []byte
	dh      group.Exchange
	shared  [][]byte // SK(0), SK(1), ...
}

// newFollowup starts the sequence after a CREATE_CHILD_SA response that
// chose methods; sk0 is that exchange's shared secret, copied.
func newFollowup(resp *message.Message, methods []proposal.KEID, sk0 []byte) (*keFollowup, error) {
	n := resp.Notify(message.NotifyAdditionalKeyExchange)
	if n == nil || len(n.Data) == 0 {
		return nil, errors.New("ike: the responder chose additional key exchanges without ADDITIONAL_KEY_EXCHANGE")
	}
	if len(sk0) == 0 {
		return nil, errors.New("ike: additional key exchanges without a first one")
	}
	return &keFollowup{methods: methods, link: bytes.Clone(n.Data), shared: [][]byte{bytes.Clone(sk0)}}, nil
}

// build makes the next IKE_FOLLOWUP_KE request: a fresh key exchange of
// the next method, and the link.
func (f *keFollowup) build(m *Manager) ([]message.Payload, error) {
	g := f.methods[0]
	if f.dh == nil || f.dh.Method() != g {
		dh, err := group.New(g, m.cfg.Policy, m.rand)
		if err != nil {
			return nil, err
		}
		f.dh = dh
	}
	return []message.Payload{
		&message.KE{Group: g, Data: f.dh.Public()},
		&message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: f.link},
	}, nil
}

// process takes an IKE_FOLLOWUP_KE response; done reports the last one.
func (f *keFollowup) process(resp *message.Message) (done bool, err error) {
	if n := resp.ErrorNotify(); n != nil {
		return false, &notifyError{n.Type}
	}
	g := f.methods[0]
	ke := message.Find[*message.KE](resp)
	if ke == nil || ke.Group != g || f.dh == nil {
		return false, fmt.Errorf("ike: IKE_FOLLOWUP_KE response without a %v KE payload", g)
	}
	s, err := f.dh.Shared(ke.Data)
	if err != nil {
		return false, err
	}
	f.dh = nil
	f.shared = append(f.shared, s)
	f.methods = f.methods[1:]
	if len(f.methods) == 0 {
		return true, nil
	}
	n := resp.Notify(message.NotifyAdditionalKeyExchange)
	if n == nil || len(n.Data) == 0 {
		return false, errors.New("ike: IKE_FOLLOWUP_KE response without the link to the next one")
	}
	f.link = bytes.Clone(n.Data)
	return false, nil
}

// wipe forgets the secrets.
func (f *keFollowup) wipe() {
	if f == nil {
		return
	}
	for _, s := range f.shared {
		clear(s)
	}
	f.shared, f.dh = nil, nil
}

// followupDone resets the STATE_NOT_FOUND count after a sequence that
// completed.
func (m *Manager) followupDone(sa *ikeSA) { sa.stateNotFound = 0 }

// followupFailed notes how a sequence ended. STATE_NOT_FOUND means the
// responder forgot it (it waited too long for our next request); a retry
// may succeed, but when every try ends that way the IKE SA is deleted
// (RFC 9370 §2.2.4). It reports whether the IKE SA is being deleted.
func (m *Manager) followupFailed(sa *ikeSA, err error) bool {
	var ne *notifyError
	if !errors.As(err, &ne) || ne.t != message.NotifyStateNotFound {
		return false
	}
	sa.stateNotFound++
	if sa.stateNotFound < maxStateNotFound || sa.state == ikeDestroyed {
		return false
	}
	m.logIKE(sa, slog.LevelWarn, "additional key exchanges keep ending in STATE_NOT_FOUND, deleting the IKE SA",
		"tries", sa.stateNotFound)
	m.deleteIKE(sa, nil)
	return true
}

// pendingKE is the responder's side of one sequence: a CREATE_CHILD_SA it
// answered with N(ADDITIONAL_KEY_EXCHANGE), waiting for the initiator's
// IKE_FOLLOWUP_KE requests. A Child SA (new or rekey) was negotiated but
// is not installed; an IKE SA rekey has its suite and SPIs.
type pendingKE struct {
	sa      *ikeSA
	link    [linkLen]byte
	methods []proposal.KEID // still to come
	shared  [][]byte        // SK(0), SK(1), ...
	ni, nr  []byte

	child *childSA // its pending is this; rekeyOf names the SA it rekeys

	suite      proposal.Suite // IKE SA rekey
	spiI, spiR uint64

	t timer
}

// addPendingKE links a new sequence to a fresh link value and starts its
// clock: RFC 9370 §2.2.4 has the responder forget a sequence whose next
// request does not come in reasonable time. bitw waits HalfOpenTimeout
// (30 s) for each step: a request lost three times still arrives (its
// fourth transmission leaves 24.2 s after the first).
func (m *Manager) addPendingKE(sa *ikeSA, p *pendingKE) {
	p.sa = sa
	p.t.init(timerFollowupKE, sa, nil)
	p.t.ke = p
	m.relink(p)
	sa.pendingKEs = append(sa.pendingKEs, p)
	if p.child != nil {
		p.child.pending = p
	}
}

// relink gives the sequence its next link value, a counter unique for the
// Manager's life so that a stale link never names a live sequence, and
// restarts its clock.
func (m *Manager) relink(p *pendingKE) {
	m.lastLink++
	binary.BigEndian.PutUint64(p.link[:], m.lastLink)
	m.schedule(&p.t, m.cfg.HalfOpenTimeout)
}

// pendingByLink finds the sequence an IKE_FOLLOWUP_KE request names.
func (sa *ikeSA) pendingByLink(n *message.Notify) *pendingKE {
	if n == nil {
		return nil
	}
	for _, p := range sa.pendingKEs {
		if bytes.Equal(n.Data, p.link[:]) {
			return p
		}
	}
	return nil
}

// unlinkPending takes p out of its IKE SA's list and stops its clock.
func (m *Manager) unlinkPending(p *pendingKE) {
	sa := p.sa
	if i := slices.Index(sa.pendingKEs, p); i >= 0 {
		sa.pendingKEs = slices.Delete(sa.pendingKEs, i, i+1)
	}
	m.stop(&p.t)
	if p.child != nil {
		p.child.pending = nil
	}
}

// dropPendingKE forgets a sequence that will not complete: its secrets,
// the SPI its Child SA reserved, its place among the peer's rekeys of the
// old SA. If it was rekeying an SA we left to the peer, we rekey it
// ourselves again.
func (m *Manager) dropPendingKE(p *pendingKE, why string) {
	m.unlinkPending(p)
	for _, s := range p.shared {
		clear(s)
	}
	p.shared = nil
	sa := p.sa
	m.logIKE(sa, slog.LevelDebug, "additional key exchanges abandoned", "why", why)
	c := p.child
	if c == nil {
		if sa.state == IKEEstablished && sa.ikeRekey == nil && !sa.tRekey.scheduled() && sa.conn != nil && sa.conn.RekeyTime > 0 {
			m.retryIKERekey(sa, "the peer's rekey was abandoned")
		}
		return
	}
	if c.state == 0 && c.spiIn != 0 {
		m.deps.Installer.ReleaseSPI(c.cfg.Protocol, c.spiIn)
		c.spiIn = 0
	}
	old := c.rekeyOf
	if old == nil {
		return
	}
	if i := slices.Index(old.peerRekeys, c); i >= 0 {
		old.peerRekeys = slices.Delete(old.peerRekeys, i, i+1)
	}
	if old.state == ChildInstalled && old.rekey == nil && !old.tRekey.scheduled() &&
		old.ike.state == IKEEstablished && old.cfg.RekeyTime > 0 {
		m.retryChildRekey(old, "the peer's rekey was abandoned")
	}
}

// pendingKEExpired forgets a sequence whose next request did not come.
func (m *Manager) pendingKEExpired(p *pendingKE) {
	if p == nil || p.sa.state == ikeDestroyed {
		return
	}
	m.stats.FollowupTimeouts++
	m.logIKE(p.sa, slog.LevelInfo, "no IKE_FOLLOWUP_KE in time, forgetting the additional key exchanges")
	m.dropPendingKE(p, "timeout")
}

// respondFollowupKE is the responder's IKE_FOLLOWUP_KE: the next key
// exchange of a sequence the ADDITIONAL_KEY_EXCHANGE data names, and after
// the last one the SA it creates. An unknown link gets STATE_NOT_FOUND.
func (m *Manager) respondFollowupKE(sa *ikeSA, msg *message.Message) ([]message.Payload, bool) {
	if sa.state == IKEConnecting {
		return nil, false
	}
	fail := func(t message.NotifyType) ([]message.Payload, bool) {
		return []message.Payload{&message.Notify{Type: t}}, true
	}
	p := sa.pendingByLink(msg.Notify(message.NotifyAdditionalKeyExchange))
	if p == nil {
		m.stats.StateNotFoundSent++
		m.logIKE(sa, slog.LevelInfo, "IKE_FOLLOWUP_KE for no sequence we know: STATE_NOT_FOUND")
		return fail(message.NotifyStateNotFound)
	}
	if sa.state == IKEDeleting {
		m.dropPendingKE(p, "IKE SA deleting")
		return fail(message.NotifyTemporaryFailure)
	}
	last := len(p.methods) == 1
	if c := p.child; c != nil && c.rekeyOf != nil {
		switch old := c.rekeyOf; old.state {
		case ChildDeleting:
			// Being deleted meanwhile (RFC 7296 §2.25.1).
			m.dropPendingKE(p, "rekeyed SA deleting")
			return fail(message.NotifyTemporaryFailure)
		case childDestroyed:
			m.dropPendingKE(p, "rekeyed SA gone")
			var spi [4]byte
			binary.BigEndian.PutUint32(spi[:], old.spiOut)
			return []message.Payload{&message.Notify{Type: message.NotifyChildSANotFound, Protocol: old.cfg.Protocol,
				SPI: spi[:]}}, true
		}
	}
	if p.child == nil && last {
		if _, busy := sa.active.taskOf().(*childTask); busy {
			// Our Child SA exchange is in flight and would miss the
			// move to the new IKE SA (RFC 7296 §2.25.2).
			m.dropPendingKE(p, "Child SA exchange in flight")
			return fail(message.NotifyTemporaryFailure)
		}
	}
	g := p.methods[0]
	ke := message.Find[*message.KE](msg)
	if ke == nil {
		m.dropPendingKE(p, "no KE payload")
		return fail(message.NotifyInvalidSyntax)
	}
	if ke.Group != g {
		m.logIKE(sa, slog.LevelInfo, "IKE_FOLLOWUP_KE with another key exchange method", "got", ke.Group, "want", g)
		m.dropPendingKE(p, "wrong key exchange method")
		return fail(message.NotifyNoProposalChosen)
	}
	ker, shared, err := group.Respond(g, m.cfg.Policy, m.rand, ke.Data)
	if err != nil {
		m.dropPendingKE(p, "invalid key exchange data")
		return fail(message.NotifyInvalidSyntax)
	}
	p.shared = append(p.shared, shared)
	p.methods = p.methods[1:]
	out := []message.Payload{&message.KE{Group: g, Data: ker}}
	if !last {
		m.relink(p)
		return append(out, &message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: bytes.Clone(p.link[:])}), true
	}
	m.unlinkPending(p)
	defer func() {
		for _, s := range p.shared {
			clear(s)
		}
		p.shared = nil
	}()
	var n message.NotifyType
	if p.child != nil {
		n = m.completePendingChild(sa, p)
	} else {
		n = m.completePendingIKE(sa, p)
	}
	if n != 0 {
		return fail(n)
	}
	return out, true
}

// completePendingChild creates the Child SA of a finished sequence as
// respondCreateChild does for one without additional key exchanges: the
// inbound SA now, the outbound held back if it rekeys one.
func (m *Manager) completePendingChild(sa *ikeSA, p *pendingKE) message.NotifyType {
	c := p.child
	old := c.rekeyOf
	keys, err := sa.keys.ChildKeys(c.suite, p.ni, p.nr, p.shared...)
	if err != nil {
		m.dropPendingKE(p, "key derivation failed")
		return message.NotifyNoProposalChosen
	}
	if old != nil {
		if i := slices.Index(old.peerRekeys, c); i >= 0 && old.rekey == nil {
			old.peerRekeys = slices.Delete(old.peerRekeys, i, i+1)
		}
		m.shareReqID(c, old)
	}
	sa.children = append(sa.children, c)
	m.setChildState(c, ChildInstalling, "IKE_FOLLOWUP_KE")
	if err := m.installChild(c, keys, false, old == nil); err != nil {
		m.logChild(c, slog.LevelError, "installing Child SA failed", "err", err)
		m.destroyChild(c, "install failed")
		return message.NotifyNoProposalChosen
	}
	m.logChild(c, slog.LevelInfo, "additional key exchanges done", "proposal", c.suite.String())
	if old == nil {
		m.recreateCollision(c)
		return 0
	}
	if old.rekey != nil {
		// We are rekeying it too; the nonces decide when our answer
		// comes (it stays among old.peerRekeys).
		m.logChild(old, slog.LevelInfo, "simultaneous rekey")
	} else if old.state == ChildInstalled || old.state == ChildRekeying {
		m.setChildState(old, ChildRekeyed, "rekeyed by the peer")
		old.successor = c
	}
	return 0
}

// completePendingIKE creates the IKE SA of a finished IKE SA rekey, as
// respondIKERekey does for one without additional key exchanges.
func (m *Manager) completePendingIKE(sa *ikeSA, p *pendingKE) message.NotifyType {
	if _, taken := m.sas[p.spiR]; taken {
		return message.NotifyNoProposalChosen
	}
	keys, err := sa.keys.Rekey(p.suite, p.ni, p.nr, p.spiI, p.spiR, p.shared...)
	if err != nil {
		return message.NotifyNoProposalChosen
	}
	nsa, err := m.rekeyedSA(sa, false, p.spiI, p.spiR, p.suite, keys, p.ni, p.nr)
	if err != nil {
		return message.NotifyNoProposalChosen
	}
	m.logIKE(nsa, slog.LevelInfo, "additional key exchanges done", "proposal", p.suite.String())
	if sa.ikeRekey != nil {
		sa.peerRekeys = append(sa.peerRekeys, nsa)
		m.logIKE(sa, slog.LevelInfo, "simultaneous IKE SA rekey")
	} else {
		m.moveToSuccessor(sa, nsa)
		m.schedule(&sa.tDeleteWait, m.outboundWait())
	}
	return 0
}

// pendingIKEWins reports whether one of the peer's IKE SA rekeys still
// waiting for its additional key exchanges beats the nonce best (RFC 7296
// §2.8.2: the exchange with the lowest nonce loses).
func (sa *ikeSA) pendingIKEWins(best []byte) bool {
	for _, p := range sa.pendingKEs {
		if p.child == nil && bytes.Compare(best, minNonce(p.ni, p.nr)) < 0 {
			return true
		}
	}
	return false
}

// dropPendingIKE forgets the peer's IKE SA rekeys of sa that lost to ours:
// the peer stops them once it sees our answer.
func (m *Manager) dropPendingIKE(sa *ikeSA, why string) {
	for _, p := range slices.Clone(sa.pendingKEs) {
		if p.child == nil {
			m.dropPendingKE(p, why)
		}
	}
}

// dropPendingChildRekeys forgets the peer's rekeys of old still waiting
// for their additional key exchanges.
func (m *Manager) dropPendingChildRekeys(old *childSA, why string) {
	for _, c := range slices.Clone(old.peerRekeys) {
		if c.pending != nil {
			m.dropPendingKE(c.pending, why)
		}
	}
}
