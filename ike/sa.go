package ike

import (
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// ikeSA is one IKE SA. Everything about it is touched only by the
// Manager's goroutine.
type ikeSA struct {
	id         uint64 // for logs and status, unique per Manager
	conn       *Connection
	candidates []*Connection // responder before IKE_AUTH: what the addresses allow
	state      IKEState
	initiator  bool // we are the original initiator (RFC 7296 §2.2)
	spiI, spiR uint64
	local      netip.AddrPort
	remote     netip.AddrPort
	natLocal   bool // we are behind a NAT (RFC 7296 §2.23)
	natRemote  bool // the peer is
	suite      proposal.Suite
	keys       *keymat.IKEKeys
	out, in    message.Cipher

	// hs holds what only the initial exchanges need; nil afterwards.
	hs *handshake

	localID, remoteID Identity
	// localAuth and remoteAuth are the AUTH methods used, for status.
	localAuth, remoteAuth message.AuthMethod
	peerFrag              bool // IKEV2_FRAGMENTATION_SUPPORTED received
	peerChildless         bool

	// Our requests (RFC 7296 §2.3, window size 1).
	nextReqID uint32
	active    *request
	queue     []task

	// The peer's requests: the next Message ID we expect, and the last
	// response with a hash of the request it answered.
	peerNextID  uint32
	lastResp    [][]byte
	lastReqHash uint64
	frag1Hash   uint64 // first fragment of the request being reassembled
	reasm       *message.Reassembler

	// initKey and initHash find a responder SA from a retransmitted or
	// late copy of the IKE_SA_INIT request that created it.
	initKey  halfOpenKey
	initHash uint64

	children []*childSA
	leases   []netip.Addr // pool addresses handed to the peer
	vips     []netip.Addr // virtual IPs the peer assigned us

	established time.Time
	lastRecv    time.Time
	// rekeyedTo is the IKE SA that replaced this one; children moved.
	rekeyedTo *ikeSA
	// rekeyNi and rekeyNr are the nonces of the CREATE_CHILD_SA that
	// created this SA by rekeying, for collision resolution.
	rekeyNi, rekeyNr []byte
	// ikeRekey is our outstanding IKE rekey of this SA, for collisions.
	ikeRekey *ikeRekeyTask
	// peerRekeys are IKE SAs the peer created by rekeying this one
	// while ours was outstanding (RFC 7296 §2.8.2).
	peerRekeys []*ikeSA
	// deleteAfterResponse: answering this request ends the SA.
	deleteAfterResponse bool
	// peerDeleted: the peer deleted the SA while our request was in
	// flight; it ends when that request does.
	peerDeleted bool
	// waiting are commands to complete once the SA is up or gone.
	waiting []func(error)
	// pendingKEs are the peer's CREATE_CHILD_SA exchanges waiting for
	// their IKE_FOLLOWUP_KE requests (RFC 9370 §2.2.4), at most
	// maxPendingKE.
	pendingKEs []*pendingKE
	// stateNotFound counts our additional key exchange sequences that
	// ended in STATE_NOT_FOUND in a row.
	stateNotFound int
	// rekeyRetries counts the retries of its rekey scheduled so far
	// (scheduleRekeyRetry); its successor starts again at zero.
	rekeyRetries int
	// createRetries are Child SAs to create once their retry timer
	// fires, after TEMPORARY_FAILURE (retryCreate).
	createRetries []*childRequest
	// closing: the operator deletes the SA (down, shutdown), so its end
	// does not start the connection again.
	closing bool

	tRetransmit, tHalfOpen, tDPD, tRekey, tExpire, tKeepalive, tReassembly, tDeleteWait timer
}

// handshake is the state of the initial exchanges.
type handshake struct {
	ni, nr []byte
	// dh is the initiator's key exchange in progress (IKE_SA_INIT or an
	// additional one in IKE_INTERMEDIATE).
	dh group.Exchange
	ke proposal.KEID
	// initReq and initResp are the IKE_SA_INIT messages as sent or
	// received: the AUTH payloads cover them (RFC 7296 §2.15).
	initReq, initResp []byte
	cookie            []byte
	retries           int
	// nextAddKE is the index of the next RFC 9370 additional key
	// exchange to run in IKE_INTERMEDIATE.
	nextAddKE int
	intAuth   keymat.IntAuth
	// nextKeys is a responder's next key generation, taken into use
	// once the IKE_INTERMEDIATE answer is sent with the current one.
	nextKeys         *keymat.IKEKeys
	peerIntermediate bool
	authMsgID        uint32
	peerHashes       []auth.HashAlgorithm
	certReq          bool
	certReqData      [][]byte
	halfOpen         bool
	// source is what a responder counts this half-open SA under, and
	// cookied says whether its request returned a valid COOKIE
	// (HalfOpenPerSource).
	source  netip.Prefix
	cookied bool
	// firstChild is what an initiator creates in IKE_AUTH.
	firstChild *childRequest
	// moreChildren are created with CREATE_CHILD_SA once up.
	moreChildren []*childRequest
}

// childSA is one Child SA: an inbound and an outbound SA.
type childSA struct {
	id        uint64
	ike       *ikeSA
	cfg       *Child
	state     ChildState
	reqID     uint32
	reqKey    string
	suite     proposal.Suite
	mode      Mode
	spiIn     uint32
	spiOut    uint32
	local     []TS // our selectors
	remote    []TS // the peer's
	tfc       int
	inKey     SAKey // as installed
	outKey    SAKey
	inOK      bool
	outOK     bool
	installed time.Time
	// pendingOut is the outbound SA a rekey responder holds back until
	// the initiator deletes the old SA (make-before-break, RFC 7296 §2.8).
	pendingOut *SAParams
	// rekeyOf is the SA this one replaces; successor the one that
	// replaced it.
	rekeyOf   *childSA
	successor *childSA
	// rekey is our outstanding rekey of this SA; peerRekeys are SAs the
	// peer created by rekeying it meanwhile (collision, §2.8.1).
	rekey      *childTask
	peerRekeys []*childSA
	// redundant: a peer's SA from a rekey collision we won; the peer
	// should delete it, else we do when tOutbound fires.
	redundant bool
	// pending is set while this SA, negotiated as responder, waits for
	// its additional key exchanges; it is not installed meanwhile.
	pending *pendingKE
	// exchange nonces of the CREATE_CHILD_SA that made this SA, for
	// collision resolution.
	ni, nr []byte
	// activeSince is when the SA was installed or, after a rekey, when
	// the SA it replaced last carried traffic: the start of its idle time
	// when it carries none (Child.Inactivity).
	activeSince time.Time
	// rekeyRetries counts the retries of its rekey scheduled so far
	// (scheduleRekeyRetry).
	rekeyRetries int
	// expired: its hard lifetime has come and its DELETE is queued.
	// closing: the operator deletes it, so it is not created afresh.
	// byPeer: the peer's exchange created it.
	expired, closing, byPeer bool
	// recreateSent is when the CREATE_CHILD_SA that created it afresh
	// after a hard expiry went out; zero for any other Child SA.
	recreateSent time.Time

	tRekey, tExpire, tOutbound, tInactive timer
}

func (m *Manager) newIKESA(initiator bool) *ikeSA {
	m.nextSAID++
	sa := &ikeSA{id: m.nextSAID, initiator: initiator}
	sa.tRetransmit.init(timerRetransmit, sa, nil)
	sa.tHalfOpen.init(timerHalfOpen, sa, nil)
	sa.tDPD.init(timerDPD, sa, nil)
	sa.tRekey.init(timerIKERekey, sa, nil)
	sa.tExpire.init(timerIKEExpire, sa, nil)
	sa.tKeepalive.init(timerKeepalive, sa, nil)
	sa.tReassembly.init(timerReassembly, sa, nil)
	sa.tDeleteWait.init(timerDeleteWait, sa, nil)
	return sa
}

// ourSPI is the SPI that names this SA here.
func (sa *ikeSA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *ikeSA) connName() string {
	if sa.conn == nil {
		return ""
	}
	return sa.conn.Name
}

// encap reports whether ESP must travel in UDP (RFC 7296 §2.23).
func (sa *ikeSA) encap() bool {
	return sa.natLocal || sa.natRemote || (sa.conn != nil && sa.conn.ForceEncap)
}

func (m *Manager) newChild(sa *ikeSA, cfg *Child) *childSA {
	m.nextSAID++
	c := &childSA{id: m.nextSAID, ike: sa, cfg: cfg, mode: cfg.Mode}
	c.tRekey.init(timerChildRekey, sa, c)
	c.tExpire.init(timerChildExpire, sa, c)
	c.tOutbound.init(timerChildOutbound, sa, c)
	c.tInactive.init(timerChildInactive, sa, c)
	return c
}

// destroyIKE forgets an IKE SA at once: its timers, children, data-plane
// state and pool leases. No message is sent.
func (m *Manager) destroyIKE(sa *ikeSA, why string) {
	if sa.state == ikeDestroyed {
		return
	}
	if sa.state != IKEDeleting {
		m.setIKEState(sa, IKEDeleting, why)
	}
	m.setIKEState(sa, ikeDestroyed, why)
	m.logIKE(sa, slog.LevelInfo, "IKE SA deleted", "why", why)
	for _, t := range []*timer{&sa.tRetransmit, &sa.tHalfOpen, &sa.tDPD, &sa.tRekey, &sa.tExpire,
		&sa.tKeepalive, &sa.tReassembly, &sa.tDeleteWait} {
		m.stop(t)
	}
	m.setHalfOpen(sa, false)
	if sa.initHash != 0 && m.initIndex[sa.initKey] == sa {
		delete(m.initIndex, sa.initKey)
	}
	for _, p := range slices.Clone(sa.pendingKEs) {
		m.dropPendingKE(p, why)
	}
	m.dropCreateRetries(sa, errIKEGone)
	for _, c := range slices.Clone(sa.children) {
		m.destroyChild(c, why)
	}
	if sa.active != nil {
		t := sa.active.t
		sa.active = nil
		t.abort(m, sa, errIKEGone)
	}
	for _, t := range sa.queue {
		t.abort(m, sa, errIKEGone)
	}
	sa.queue = nil
	if sa.hs != nil {
		if sa.hs.firstChild != nil {
			sa.hs.firstChild.finish(errIKEGone)
		}
		for _, r := range sa.hs.moreChildren {
			r.finish(errIKEGone)
		}
		sa.hs = nil
	}
	for _, a := range sa.leases {
		m.releaseLease(sa, a)
	}
	sa.leases = nil
	for _, f := range sa.waiting {
		f(errIKEGone)
	}
	sa.waiting = nil
	if m.sas[sa.ourSPI()] == sa {
		delete(m.sas, sa.ourSPI())
	}
	if sa.keys != nil {
		sa.keys.Wipe()
	}
	sa.lastResp = nil
	sa.reasm = nil
}

// setHalfOpen keeps the half-open count and index in step with a
// responder SA's initial exchanges.
func (m *Manager) setHalfOpen(sa *ikeSA, on bool) {
	if sa.hs == nil || sa.hs.halfOpen == on {
		return
	}
	sa.hs.halfOpen = on
	if on {
		m.halfOpenCount++
		m.stats.HalfOpenMax = max(m.stats.HalfOpenMax, m.halfOpenCount)
		m.countSource(sa.hs, 1)
		return
	}
	m.halfOpenCount--
	m.countSource(sa.hs, -1)
}

// destroyChild removes a Child SA from the data plane and its IKE SA.
func (m *Manager) destroyChild(c *childSA, why string) {
	if c.state == childDestroyed {
		return
	}
	if c.state != ChildDeleting {
		m.setChildState(c, ChildDeleting, why)
	}
	m.uninstallChild(c)
	m.setChildState(c, childDestroyed, why)
	m.stop(&c.tRekey)
	m.stop(&c.tExpire)
	m.stop(&c.tOutbound)
	m.stop(&c.tInactive)
	if c.pendingOut != nil {
		wipeParams(c.pendingOut)
		c.pendingOut = nil
	}
	sa := c.ike
	if i := slices.Index(sa.children, c); i >= 0 {
		sa.children = slices.Delete(sa.children, i, i+1)
	}
	m.logChild(c, slog.LevelInfo, "Child SA deleted", "why", why)
}

// uninstallChild deletes the Child SA's SAs and releases its policy.
func (m *Manager) uninstallChild(c *childSA) {
	inst := m.deps.Installer
	if c.outOK {
		if err := inst.DeleteSA(c.outKey); err != nil {
			m.stats.InstallErrors++
			m.logChild(c, slog.LevelWarn, "deleting outbound SA failed", "err", err)
		}
		m.clearKey(c, DirOut)
	}
	if c.inOK {
		if err := inst.DeleteSA(c.inKey); err != nil {
			m.stats.InstallErrors++
			m.logChild(c, slog.LevelWarn, "deleting inbound SA failed", "err", err)
		}
		m.clearKey(c, DirIn)
	} else if c.spiIn != 0 {
		inst.ReleaseSPI(c.cfg.Protocol, c.spiIn)
	}
	if c.reqID != 0 {
		m.releaseReqID(c.reqKey)
		c.reqID = 0
	}
}

func wipeParams(p *SAParams) {
	clear(p.EncKey)
	clear(p.IntegKey)
}

// setKey records an installed SA of c under its key, in the index that
// data-plane events are looked up in.
func (m *Manager) setKey(c *childSA, dir Direction, k SAKey) {
	m.clearKey(c, dir)
	if dir == DirIn {
		c.inOK, c.inKey = true, k
	} else {
		c.outOK, c.outKey = true, k
	}
	m.childIndex[k] = c
}

// clearKey forgets an SA of c that is no longer installed.
func (m *Manager) clearKey(c *childSA, dir Direction) {
	ok, k := c.inOK, c.inKey
	if dir == DirOut {
		ok, k = c.outOK, c.outKey
	}
	if !ok {
		return
	}
	if m.childIndex[k] == c {
		delete(m.childIndex, k)
	}
	if dir == DirIn {
		c.inOK = false
	} else {
		c.outOK = false
	}
}
