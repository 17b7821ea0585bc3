package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// childRequest is a Child SA we want: from a command, a start or trap
// action, an acquire, or a rekey.
type childRequest struct {
	cfg *Child
	// packet holds the selectors of the packet behind an acquire, sent
	// first in TSi and TSr (RFC 7296 §2.9).
	packet *[2]TS
	// reqKey names the ReqID the Child SA takes, whatever its narrowed
	// selectors: that of the trap policy an acquire came from, or that of
	// the expired Child SA it creates afresh, whose policy stays meanwhile.
	reqKey string
	// recreate: the request creates afresh a Child SA that reached its
	// hard lifetime (start_action = start). Whatever asked for it, a
	// CREATE_CHILD_SA answered with TEMPORARY_FAILURE is tried again
	// with the rekey retries' backoff (retryCreate), retries counting
	// the tries and retry timing the next; closed cancels it (the
	// operator took the child down).
	recreate, closed bool
	retries          int
	retry            timer
	done             []func(error)
}

func (r *childRequest) finish(err error) {
	for _, f := range r.done {
		if f != nil {
			f(err)
		}
	}
	r.done = nil
}

// proposal is one side's proposed Child SA: what a request offered.
type childOffer struct {
	child  *childSA
	props  []proposal.Proposal
	local  []TS // TSi for us as initiator of the exchange
	remote []TS
	noKE   bool
}

// offerChild allocates the SPI and builds the payloads that propose a
// Child SA: [USE_TRANSPORT_MODE] SA TSi TSr (the caller adds nonce and
// KE). local and remote are our and the peer's selectors.
func (m *Manager) offerChild(sa *ikeSA, c *childSA, local, remote []TS, noKE bool) (*childOffer, []message.Payload, error) {
	if c.spiIn == 0 {
		spi, err := m.deps.Installer.AllocSPI(c.cfg.Protocol)
		if err != nil {
			return nil, nil, err
		}
		c.spiIn = spi
	}
	var spi [4]byte
	binary.BigEndian.PutUint32(spi[:], c.spiIn)
	o := &childOffer{child: c, props: c.cfg.Proposals, local: local, remote: remote, noKE: noKE}
	var p []message.Payload
	if c.mode == ModeTransport {
		p = append(p, &message.Notify{Type: message.NotifyUseTransportMode})
	}
	p = append(p, &message.SA{Proposals: offerFor(o.props, spi[:], negotiateOpts{noKE: noKE})})
	return o, p, nil
}

func tsPayloads(initiatorSide, responderSide []TS) []message.Payload {
	return []message.Payload{&message.TSi{Selectors: toSelectors(initiatorSide)},
		&message.TSr{Selectors: toSelectors(responderSide)}}
}

// childTS resolves a child's configured selectors for this IKE SA: our
// side and the peer's, "dynamic" standing for the outer address or a
// virtual IP. While we still ask for a virtual IP, our dynamic selector
// is the whole address family, which the responder narrows to the address
// it assigns (RFC 7296 §2.9).
func (m *Manager) childTS(sa *ikeSA, cfg *Child) (local, remote []TS) {
	lDyn, wide := []netip.Addr{sa.local.Addr()}, false
	switch {
	case len(sa.vips) > 0:
		lDyn = sa.vips
	case sa.initiator && len(sa.conn.VIPs) > 0:
		lDyn, wide = sa.conn.VIPs, true
	}
	rDyn := []netip.Addr{sa.remote.Addr()}
	if len(sa.leases) > 0 {
		rDyn = sa.leases
	}
	local = resolve(cfg.LocalTS, lDyn)
	if wide {
		for i, t := range local {
			if t.From == t.To && slices.Contains(lDyn, t.From) {
				r := familyRange(t.From)
				local[i].From, local[i].To = r.From, r.To
			}
		}
	}
	return local, resolve(cfg.RemoteTS, rDyn)
}

// familyRange is every address of a's family.
func familyRange(a netip.Addr) AddrRange {
	if a.Is4() {
		return RangeOf(netip.MustParsePrefix("0.0.0.0/0"))
	}
	return RangeOf(netip.MustParsePrefix("::/0"))
}

// childResult is the responder's verdict on a requested Child SA.
type childResult struct {
	child    *childSA
	payloads []message.Payload // SA, TSi, TSr and notifies (no nonce, no KE)
	keys     *keymat.ChildKeys
	// shared is SK(0) when additional key exchanges follow and keys
	// wait for them; the caller wipes it.
	shared   []byte
	notify   message.NotifyType // error to answer instead
	notifyKE proposal.KEID      // for INVALID_KE_PAYLOAD
}

// acceptChild is the responder's negotiation of a Child SA: config by
// traffic selectors, narrowing (RFC 7296 §2.9), proposal, mode and, on
// CREATE_CHILD_SA, the key exchange. ni and nr are the exchange's nonces;
// ke is the initiator's KE payload, if any. rekeyOf is the SA being
// rekeyed. On success the inbound SPI is allocated and keys derived (or,
// with additional key exchanges, SK(0) kept for them); the caller
// installs.
func (m *Manager) acceptChild(sa *ikeSA, msg *message.Message, rekeyOf *childSA, inAuth bool, ni, nr []byte, ke *message.KE) (res childResult, ker []byte) {
	saP := message.Find[*message.SA](msg)
	tsi, tsr := message.Find[*message.TSi](msg), message.Find[*message.TSr](msg)
	if saP == nil || tsi == nil || tsr == nil {
		res.notify = message.NotifyInvalidSyntax
		return res, nil
	}
	peerTS, ourTS := fromSelectors(tsi.Selectors), fromSelectors(tsr.Selectors)
	transport := msg.Notify(message.NotifyUseTransportMode) != nil
	var cfg *Child
	var local, remote []TS
	if rekeyOf != nil {
		cfg = rekeyOf.cfg
		local, remote = narrow(ourTS, rekeyOf.local), narrow(peerTS, rekeyOf.remote)
	} else {
		// Prefer a child whose mode matches the request, then any.
		for pass := 0; pass < 2 && cfg == nil; pass++ {
			for _, ch := range sa.conn.Children {
				if pass == 0 && (ch.Mode == ModeTransport) != transport {
					continue
				}
				l, r := m.childTS(sa, ch)
				nl, nrr := narrow(ourTS, l), narrow(peerTS, r)
				if len(nl) > 0 && len(nrr) > 0 {
					cfg, local, remote = ch, nl, nrr
					break
				}
			}
		}
	}
	if cfg == nil || len(local) == 0 || len(remote) == 0 {
		m.logIKE(sa, slog.LevelInfo, "traffic selectors unacceptable", "tsi", peerTS, "tsr", ourTS)
		res.notify = message.NotifyTSUnacceptable
		return res, nil
	}
	sel, err := choose(saP.Proposals, cfg.Proposals, m.cfg.Policy, negotiateOpts{noKE: inAuth})
	if err != nil || len(sel.spi) != 4 {
		m.logIKE(sa, slog.LevelInfo, "no acceptable Child SA proposal", "child", cfg.Name)
		res.notify = message.NotifyNoProposalChosen
		return res, nil
	}
	var shared []byte
	if !inAuth && sel.suite.KE != proposal.KENone {
		if ke == nil || ke.Group != sel.suite.KE {
			res.notify, res.notifyKE = message.NotifyInvalidKEPayload, sel.suite.KE
			return res, nil
		}
		ker, shared, err = group.Respond(ke.Group, m.cfg.Policy, m.rand, ke.Data)
		if err != nil {
			res.notify = message.NotifyInvalidSyntax
			return res, nil
		}
		defer clear(shared)
	} else if !inAuth && ke != nil && sel.suite.KE == proposal.KENone {
		// A KE payload for a proposal without one: ignore it (§1.3).
		ker = nil
	}
	c := m.newChild(sa, cfg)
	c.byPeer = true
	c.mode = ModeTunnel
	if transport && cfg.Mode == ModeTransport {
		c.mode = ModeTransport
	}
	spi, err := m.deps.Installer.AllocSPI(cfg.Protocol)
	if err != nil {
		m.logIKE(sa, slog.LevelError, "allocating an SPI failed", "err", err)
		res.notify = message.NotifyTemporaryFailure
		return res, nil
	}
	c.spiIn = spi
	c.spiOut = binary.BigEndian.Uint32(sel.spi)
	c.suite = sel.suite
	c.local, c.remote = local, remote
	c.rekeyOf = rekeyOf
	c.tfc = cfg.TFCPadding
	if msg.Notify(message.NotifyESPTFCPaddingNotSupported) != nil {
		c.tfc = 0
	}
	if len(addKEMethods(sel.suite)) > 0 {
		// The keys wait for the additional key exchanges (RFC 9370
		// §2.2.4); the caller keeps SK(0).
		if len(shared) == 0 {
			m.deps.Installer.ReleaseSPI(cfg.Protocol, spi)
			res.notify = message.NotifyNoProposalChosen
			return res, nil
		}
		res.shared = bytes.Clone(shared)
	} else {
		var sharedList [][]byte
		if shared != nil {
			sharedList = [][]byte{shared}
		}
		keys, err := sa.keys.ChildKeys(sel.suite, ni, nr, sharedList...)
		if err != nil {
			m.deps.Installer.ReleaseSPI(cfg.Protocol, spi)
			res.notify = message.NotifyNoProposalChosen
			return res, nil
		}
		res.keys = keys
	}
	var ourSPI [4]byte
	binary.BigEndian.PutUint32(ourSPI[:], spi)
	if c.mode == ModeTransport {
		res.payloads = append(res.payloads, &message.Notify{Type: message.NotifyUseTransportMode})
	}
	res.payloads = append(res.payloads, &message.SA{Proposals: []message.Proposal{
		message.ProposalFromSuite(sel.number, ourSPI[:], sel.suite)}})
	res.child = c
	return res, ker
}

// childTSPayloads are the narrowed TSi and TSr of a responder's answer.
func childTSPayloads(c *childSA) []message.Payload {
	// The peer initiated the exchange: TSi is its side.
	return tsPayloads(c.remote, c.local)
}

// completeChild is the initiator's check of a responder's Child SA answer
// (checkChild) and the key derivation, for an exchange without additional
// key exchanges.
func (m *Manager) completeChild(sa *ikeSA, o *childOffer, resp *message.Message, ni, nr []byte, shared []byte) (*keymat.ChildKeys, error) {
	if err := m.checkChild(sa, o, resp, shared != nil); err != nil {
		return nil, err
	}
	var sharedList [][]byte
	if shared != nil {
		sharedList = [][]byte{shared}
	}
	return sa.keys.ChildKeys(o.child.suite, ni, nr, sharedList...)
}

// checkChild is the initiator's check of a responder's Child SA answer:
// SA, TSi, TSr, mode, and a key exchange when the suite has one. It fills
// in the Child SA's suite, outbound SPI and selectors.
func (m *Manager) checkChild(sa *ikeSA, o *childOffer, resp *message.Message, keyExchanged bool) error {
	c := o.child
	sel, err := checkChosen(message.Find[*message.SA](resp), o.props, negotiateOpts{noKE: o.noKE})
	if err != nil {
		return err
	}
	if len(sel.spi) != 4 {
		return errors.New("ike: chosen Child SA proposal without a 4-octet SPI")
	}
	if err := sel.suite.Check(m.cfg.Policy); err != nil {
		return err
	}
	tsi, tsr := message.Find[*message.TSi](resp), message.Find[*message.TSr](resp)
	if tsi == nil || tsr == nil {
		return errors.New("ike: response without traffic selectors")
	}
	local, remote := fromSelectors(tsi.Selectors), fromSelectors(tsr.Selectors)
	if len(local) == 0 || len(remote) == 0 || !subsetOf(local, o.local) || !subsetOf(remote, o.remote) {
		return fmt.Errorf("ike: responder's traffic selectors %v === %v are not within ours", local, remote)
	}
	transport := resp.Notify(message.NotifyUseTransportMode) != nil
	if transport != (c.mode == ModeTransport) {
		return fmt.Errorf("ike: responder chose %v mode, we asked for %v", map[bool]Mode{true: ModeTransport, false: ModeTunnel}[transport], c.mode)
	}
	if sel.suite.KE != proposal.KENone && !keyExchanged {
		return errors.New("ike: PFS negotiated without a key exchange")
	}
	c.suite = sel.suite
	c.spiOut = binary.BigEndian.Uint32(sel.spi)
	c.local, c.remote = local, remote
	c.tfc = c.cfg.TFCPadding
	if resp.Notify(message.NotifyESPTFCPaddingNotSupported) != nil {
		c.tfc = 0
	}
	return nil
}

// installChild installs both SAs of a Child SA, or the inbound one only
// with the outbound held back (outNow false, rekey responder). weInit
// says whether we initiated the exchange that created it: its KEYMAT
// starts with the initiator-to-responder keys (RFC 7296 §2.17).
func (m *Manager) installChild(c *childSA, keys *keymat.ChildKeys, weInit, outNow bool) error {
	defer keys.Wipe()
	sa := c.ike
	if c.reqID == 0 {
		if err := m.acquireReqID(c); err != nil {
			return err
		}
	}
	in, out := m.saParams(c, keys, weInit)
	if err := m.deps.Installer.AddSA(in); err != nil {
		m.stats.InstallErrors++
		wipeParams(&out)
		return fmt.Errorf("ike: installing inbound SA: %w", err)
	}
	m.setKey(c, DirIn, in.Key())
	m.reportChildKeys(c, &in)
	m.reportChildKeys(c, &out)
	if outNow {
		if err := m.installOutbound(c, &out); err != nil {
			return err
		}
	} else {
		p := out
		p.EncKey, p.IntegKey = bytes.Clone(out.EncKey), bytes.Clone(out.IntegKey)
		c.pendingOut = &p
		m.schedule(&c.tOutbound, m.outboundWait())
	}
	if err := m.ensurePolicy(c); err != nil {
		return err
	}
	c.installed = m.now
	m.setChildState(c, ChildInstalled, "installed")
	m.logChild(c, slog.LevelInfo, "Child SA installed", "proposal", c.suite.String(), "mode", c.mode,
		"local_ts", c.local, "remote_ts", c.remote, "encap", sa.encap(), "outbound", outNow)
	m.armChildTimers(c)
	return nil
}

// outboundWait is how long a rekey responder waits for the old SA's
// DELETE before switching outbound traffic anyway: the initiator's whole
// retransmission schedule.
func (m *Manager) outboundWait() time.Duration {
	var d time.Duration
	for i := 0; i <= m.cfg.RetransmitTries && d < math.MaxInt64/4; i++ {
		d += m.backoff(i)
	}
	return d
}

func (m *Manager) installOutbound(c *childSA, out *SAParams) error {
	defer wipeParams(out)
	if err := m.deps.Installer.AddSA(*out); err != nil {
		m.stats.InstallErrors++
		return fmt.Errorf("ike: installing outbound SA: %w", err)
	}
	m.setKey(c, DirOut, out.Key())
	return nil
}

// installPendingOutbound switches traffic to a rekey responder's new SA.
// deleteOld: the initiator never deleted the old SA, so we do.
func (m *Manager) installPendingOutbound(c *childSA, deleteOld bool) {
	if c == nil || c.pendingOut == nil || c.state == childDestroyed {
		return
	}
	m.stop(&c.tOutbound)
	p := c.pendingOut
	c.pendingOut = nil
	if err := m.installOutbound(c, p); err != nil {
		m.logChild(c, slog.LevelError, "installing outbound SA failed", "err", err)
		return
	}
	m.logChild(c, slog.LevelDebug, "outbound SA installed")
	if old := c.rekeyOf; deleteOld && old != nil && old.state != childDestroyed && old.state != ChildDeleting {
		m.queueTask(c.ike, &deleteChildTask{child: old})
	}
}

// dropPendingOutbound forgets a held-back outbound SA that will never
// carry traffic: its Child SA lost a rekey collision.
func (m *Manager) dropPendingOutbound(c *childSA) {
	if c.pendingOut != nil {
		wipeParams(c.pendingOut)
		c.pendingOut = nil
	}
	m.stop(&c.tOutbound)
}

// saParams builds both directions of a Child SA.
func (m *Manager) saParams(c *childSA, keys *keymat.ChildKeys, weInit bool) (in, out SAParams) {
	sa := c.ike
	encIn, integIn, encOut, integOut := keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	if weInit {
		encIn, integIn, encOut, integOut = keys.EncrR, keys.IntegR, keys.EncrI, keys.IntegI
	}
	cfg := c.cfg
	base := SAParams{Mode: c.mode, Suite: c.suite, ReplayWindow: cfg.ReplayWindow,
		Local: c.local, Remote: c.remote, ReqID: c.reqID, TFCPadding: c.tfc,
		CopyDF: cfg.CopyDF, CopyECN: cfg.CopyECN, CopyDSCP: cfg.CopyDSCP, Lifetime: m.childLifetime(cfg)}
	in, out = base, base
	in.Dir, in.SPI, in.Src, in.Dst = DirIn, c.spiIn, sa.remote.Addr(), sa.local.Addr()
	out.Dir, out.SPI, out.Src, out.Dst = DirOut, c.spiOut, sa.local.Addr(), sa.remote.Addr()
	if sa.encap() {
		in.Encap = Encap{SrcPort: sa.remote.Port(), DstPort: sa.local.Port()}
		out.Encap = Encap{SrcPort: sa.local.Port(), DstPort: sa.remote.Port()}
	}
	in.EncKey, in.IntegKey = bytes.Clone(encIn), bytes.Clone(integIn)
	out.EncKey, out.IntegKey = bytes.Clone(encOut), bytes.Clone(integOut)
	return in, out
}

// childLifetime turns the rekey and life limits into data-plane limits:
// soft ones (less a random part) make IKE rekey, hard ones stop the SA.
// Time is IKE's own business (armChildTimers); the hard time limit is a
// backstop.
func (m *Manager) childLifetime(cfg *Child) Lifetime {
	var l Lifetime
	if cfg.RekeyBytes > 0 {
		l.Soft.Bytes = cfg.RekeyBytes - m.jitterUint(min(cfg.RandBytes, cfg.RekeyBytes-1))
	}
	if cfg.RekeyPackets > 0 {
		l.Soft.Packets = cfg.RekeyPackets - m.jitterUint(min(cfg.RandPackets, cfg.RekeyPackets-1))
	}
	l.Hard = Limits{Bytes: cfg.LifeBytes, Packets: cfg.LifePackets, Time: cfg.LifeTime}
	return l
}

// armChildTimers schedules the rekey (rekey_time less up to rand_time),
// the hard expiry (life_time) and the inactivity check.
func (m *Manager) armChildTimers(c *childSA) {
	cfg := c.cfg
	if cfg.RekeyTime > 0 {
		m.schedule(&c.tRekey, cfg.RekeyTime-m.jitter(min(cfg.RandTime, cfg.RekeyTime/2)))
	}
	if cfg.LifeTime > 0 {
		m.schedule(&c.tExpire, cfg.LifeTime)
	}
	if cfg.Inactivity > 0 {
		c.activeSince = m.now
		if old := c.rekeyOf; old != nil {
			// A rekey is not traffic: the idle time runs on.
			c.activeSince = m.lastActivity(old)
		}
		m.scheduleAt(&c.tInactive, c.activeSince.Add(cfg.Inactivity))
	}
}

// lastActivity is when c last carried traffic in either direction, as the
// data plane reports it, or else c.activeSince.
func (m *Manager) lastActivity(c *childSA) time.Time {
	last := c.activeSince
	for _, k := range [...]struct {
		ok  bool
		key SAKey
	}{{c.inOK, c.inKey}, {c.outOK, c.outKey}} {
		if !k.ok || m.usage == nil {
			continue
		}
		if t, used := m.usage.LastUsed(k.key); used && t.After(last) {
			last = t
		}
	}
	return last
}

// inactivityCheck closes a Child SA that has carried no traffic in either
// direction for its inactivity time, as strongSwan's inactivity job does,
// with an INFORMATIONAL DELETE; otherwise it looks again when that time
// would be up. Closing it is our decision, so its close_action does not
// run (that answers the peer's DELETE), while a trap policy of the child
// stays installed and traffic brings the Child SA back.
func (m *Manager) inactivityCheck(c *childSA) {
	if c == nil || c.state == childDestroyed || c.state == ChildDeleting || c.state == ChildRekeyed {
		return
	}
	timeout := c.cfg.Inactivity
	last := m.lastActivity(c)
	idle := m.now.Sub(last)
	switch {
	case idle < timeout:
		m.scheduleAt(&c.tInactive, last.Add(timeout))
	case c.state != ChildInstalled:
		// Rekeying: the new SA inherits the idle time, or, should the
		// rekey fail, this one looks again.
		m.schedule(&c.tInactive, m.cfg.RetransmitTimeout)
	default:
		m.stats.ChildrenIdle++
		m.logChild(c, slog.LevelInfo, "closing idle Child SA", "idle", idle.Round(time.Second), "inactivity", timeout)
		m.queueTask(c.ike, &deleteChildTask{child: c})
	}
}

// jitter draws a random duration in [0, d).
func (m *Manager) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(m.jitterUint(uint64(d)))
}

func (m *Manager) jitterUint(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	var b [8]byte
	if _, err := m.rand.Read(b[:]); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:]) % n
}

// reqIDEntry is one ReqID: the policy it names, shared by every Child SA
// negotiated from the same child with the same selectors (strongSwan's
// reqid reuse), so rekeys and duplicates switch traffic atomically.
type reqIDEntry struct {
	reqID  uint32
	key    string
	refs   int
	policy PolicyID
	has    bool
	params PolicyParams
}

func reqKey(conn *Connection, cfg *Child, local, remote []TS) string {
	var b strings.Builder
	b.WriteString(conn.Name)
	b.WriteByte('/')
	b.WriteString(cfg.Name)
	for _, t := range local {
		b.WriteString("|" + t.String())
	}
	b.WriteString("=")
	for _, t := range remote {
		b.WriteString("|" + t.String())
	}
	return b.String()
}

// acquireReqID gives the Child SA the ReqID of its child and selectors.
func (m *Manager) acquireReqID(c *childSA) error {
	key := c.reqKey
	if key == "" || m.reqIDs[key] == nil {
		key = reqKey(c.ike.conn, c.cfg, c.local, c.remote)
	}
	e := m.reqIDs[key]
	if e == nil {
		m.lastReqID++
		e = &reqIDEntry{reqID: m.lastReqID, key: key}
		m.reqIDs[key] = e
		m.byReqID[e.reqID] = e
	}
	e.refs++
	c.reqID, c.reqKey = e.reqID, key
	return nil
}

// ensurePolicy installs the PROTECT policy of the Child SA's ReqID.
func (m *Manager) ensurePolicy(c *childSA) error {
	e := m.reqIDs[c.reqKey]
	if e == nil || e.has {
		return nil
	}
	p := PolicyParams{ReqID: e.reqID, Local: c.local, Remote: c.remote, Priority: policyPriority(c.local, c.remote)}
	id, err := m.deps.Installer.AddPolicy(p)
	if err != nil {
		m.stats.InstallErrors++
		return fmt.Errorf("ike: installing policy: %w", err)
	}
	e.policy, e.has, e.params = id, true, p
	return nil
}

// policyPriority orders narrower selectors first (lower value).
func policyPriority(local, remote []TS) uint32 {
	return uint32(1<<16 - specificity(local)*256 - specificity(remote))
}

func (m *Manager) releaseReqID(key string) {
	e := m.reqIDs[key]
	if e == nil {
		return
	}
	if e.refs--; e.refs > 0 {
		return
	}
	if e.has {
		if err := m.deps.Installer.DeletePolicy(e.policy); err != nil {
			m.stats.InstallErrors++
		}
	}
	delete(m.byReqID, e.reqID)
	delete(m.reqIDs, key)
}

// reportChildKeys hands one direction's keys to the key hook.
func (m *Manager) reportChildKeys(c *childSA, p *SAParams) {
	if m.deps.KeyHook == nil {
		return
	}
	m.deps.KeyHook.ChildKeys(ChildKeyInfo{Conn: c.ike.connName(), Child: c.cfg.Name, Dir: p.Dir, SPI: p.SPI,
		Src: p.Src, Dst: p.Dst, Suite: p.Suite, EncKey: bytes.Clone(p.EncKey), IntegKey: bytes.Clone(p.IntegKey)})
}

// reportIKEKeys hands an IKE SA's keys to the key hook.
func (m *Manager) reportIKEKeys(sa *ikeSA) {
	if m.deps.KeyHook == nil || sa.keys == nil {
		return
	}
	k := sa.keys
	m.deps.KeyHook.IKEKeys(IKEKeyInfo{Conn: sa.connName(), SPIi: sa.spiI, SPIr: sa.spiR, Suite: sa.suite,
		SKei: bytes.Clone(k.SKei), SKer: bytes.Clone(k.SKer), SKai: bytes.Clone(k.SKai), SKar: bytes.Clone(k.SKar)})
}
