package ike

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/bitw-dev/bitw/ike/auth"
	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// maxInitRetries bounds IKE_SA_INIT restarts for COOKIE and
// INVALID_KE_PAYLOAD, so two misconfigured peers cannot loop.
const maxInitRetries = 4

// initTask is the initiator's IKE_SA_INIT (RFC 7296 §1.2).
type initTask struct{}

func (initTask) exchange() message.ExchangeType { return message.ExchangeIKESAInit }

func (initTask) build(m *Manager, sa *ikeSA) ([]message.Payload, error) {
	hs, conn := sa.hs, sa.conn
	if hs.ke == proposal.KENone {
		hs.ke = conn.Proposals[0].KE[0]
	}
	if hs.dh == nil || hs.dh.Method() != hs.ke {
		dh, err := group.New(hs.ke, m.cfg.Policy, m.rand)
		if err != nil {
			return nil, err
		}
		hs.dh = dh
	}
	if hs.ni == nil {
		hs.ni = m.nonce()
	}
	var p []message.Payload
	if hs.cookie != nil {
		n, err := message.CookieNotify(hs.cookie)
		if err != nil {
			return nil, err
		}
		p = append(p, n)
	}
	p = append(p,
		&message.SA{Proposals: offerFor(conn.Proposals, nil, negotiateOpts{})},
		&message.KE{Group: hs.ke, Data: hs.dh.Public()},
		&message.Nonce{Data: hs.ni})
	p = append(p, m.natDetectionPayloads(sa, sa.spiI, 0, conn.ForceEncap)...)
	p = append(p, m.initNotifies(conn, hasAddKE(conn.Proposals))...)
	return p, nil
}

// initNotifies are the capability notifications of IKE_SA_INIT.
func (m *Manager) initNotifies(conn *Connection, intermediate bool) []message.Payload {
	var p []message.Payload
	if conn.Fragmentation != FragmentNo {
		p = append(p, &message.Notify{Type: message.NotifyIKEv2FragmentationSupported})
	}
	if conn.Local.Method == AuthPubkey || conn.Remote.Method == AuthPubkey {
		p = append(p, &message.Notify{Type: message.NotifySignatureHashAlgorithms,
			Data: auth.AppendHashAlgorithms(nil, auth.SupportedHashes(authPolicy(conn.Remote)))})
	}
	if conn.Childless != ChildlessNever {
		p = append(p, &message.Notify{Type: message.NotifyChildlessIKEv2Supported})
	}
	if intermediate {
		p = append(p, &message.Notify{Type: message.NotifyIntermediateExchangeSupported})
	}
	return p
}

func hasAddKE(props []proposal.Proposal) bool {
	for _, pr := range props {
		for _, l := range pr.AddKE {
			for _, k := range l {
				if k != proposal.KENone {
					return true
				}
			}
		}
	}
	return false
}

// natDetectionPayloads are NAT_DETECTION_SOURCE_IP and
// NAT_DETECTION_DESTINATION_IP for a message with these SPIs. fake sends a
// source hash that cannot match, so the peer sees a NAT and both sides use
// UDP encapsulation (swanctl's encap = yes).
func (m *Manager) natDetectionPayloads(sa *ikeSA, spii, spir uint64, fake bool) []message.Payload {
	src := message.NATDetectionNotify(message.NotifyNATDetectionSourceIP, spii, spir, sa.local)
	if fake {
		src.Data = m.nonce()[:len(src.Data)]
	}
	dst := message.NATDetectionNotify(message.NotifyNATDetectionDestinationIP, spii, spir, sa.remote)
	return []message.Payload{src, dst}
}

// detectNAT compares the peer's NAT detection hashes with the addresses
// we see (RFC 7296 §2.23). A peer that sent none does not do NAT-T.
func detectNAT(msg *message.Message, local, remote netip.AddrPort) (natLocal, natRemote, ok bool) {
	var srcSeen, srcMatch, dstSeen, dstMatch bool
	want := message.NATDetectionHash(msg.SPIi, msg.SPIr, remote)
	ours := message.NATDetectionHash(msg.SPIi, msg.SPIr, local)
	for _, p := range msg.Payloads {
		n, isN := p.(*message.Notify)
		if !isN {
			continue
		}
		switch n.Type {
		case message.NotifyNATDetectionSourceIP:
			srcSeen = true
			srcMatch = srcMatch || string(n.Data) == string(want[:])
		case message.NotifyNATDetectionDestinationIP:
			dstSeen = true
			dstMatch = dstMatch || string(n.Data) == string(ours[:])
		}
	}
	if !srcSeen || !dstSeen {
		return false, false, false
	}
	return !dstMatch, !srcMatch, true
}

func (t initTask) sent(m *Manager, sa *ikeSA, msg *message.Message, packets [][]byte) {
	sa.hs.initReq = packets[0]
}

func (t initTask) process(m *Manager, sa *ikeSA, resp *message.Message) error {
	hs, conn := sa.hs, sa.conn
	if n := resp.Notify(message.NotifyCookie); n != nil {
		if hs.retries++; hs.retries > maxInitRetries || len(n.Data) < message.MinCookieLen || len(n.Data) > message.MaxCookieLen {
			return errors.New("ike: responder keeps asking for cookies")
		}
		hs.cookie = append([]byte(nil), n.Data...)
		m.logIKE(sa, slog.LevelDebug, "responder asked for a cookie")
		return errRetry
	}
	if n := resp.Notify(message.NotifyInvalidKEPayload); n != nil {
		g, ok := n.KEGroup()
		if !ok || g == hs.ke || !offersKE(conn.Proposals, g) {
			return fmt.Errorf("ike: responder wants key exchange %v, which we do not offer", g)
		}
		if hs.retries++; hs.retries > maxInitRetries {
			return errors.New("ike: too many INVALID_KE_PAYLOAD")
		}
		m.logIKE(sa, slog.LevelInfo, "responder asks for another key exchange method", "ke", g)
		hs.ke = g
		return errRetry
	}
	if n := resp.ErrorNotify(); n != nil {
		return &notifyError{n.Type}
	}
	saP, ke, nonce := message.Find[*message.SA](resp), message.Find[*message.KE](resp), message.Find[*message.Nonce](resp)
	if saP == nil || ke == nil || nonce == nil || resp.SPIr == 0 {
		m.drop(DropInvalidPayloads)
		return errors.New("ike: IKE_SA_INIT response lacks SA, KE or Nonce")
	}
	sel, err := checkChosen(saP, conn.Proposals, negotiateOpts{})
	if err != nil {
		return err
	}
	if err := sel.suite.Check(m.cfg.Policy); err != nil {
		return err
	}
	if ke.Group != sel.suite.KE || ke.Group != hs.ke {
		return fmt.Errorf("ike: responder's KE is %v, the proposal says %v", ke.Group, sel.suite.KE)
	}
	if len(nonce.Data) < keymat.MinNonceLen || len(nonce.Data) > keymat.MaxNonceLen {
		return errors.New("ike: responder's nonce has an invalid length")
	}
	gir, err := hs.dh.Shared(ke.Data)
	if err != nil {
		return err
	}
	defer clear(gir)
	hs.dh = nil
	hs.nr = append([]byte(nil), nonce.Data...)
	sa.spiR = resp.SPIr
	sa.suite = sel.suite
	hs.initResp = resp.Raw()
	if err := m.deriveIKEKeys(sa, gir); err != nil {
		return err
	}
	m.notePeerCapabilities(sa, resp)
	if natL, natR, ok := detectNAT(resp, sa.local, sa.remote); ok {
		sa.natLocal, sa.natRemote = natL, natR
	}
	m.floatToNATT(sa)
	m.logIKE(sa, slog.LevelInfo, "IKE_SA_INIT done", "proposal", sa.suite.String(),
		"nat_local", sa.natLocal, "nat_remote", sa.natRemote)
	m.queueHandshakeTasks(sa)
	return nil
}

func (initTask) abort(m *Manager, sa *ikeSA, err error) {
	m.initiationFailed(sa, err)
}

// offersKE reports whether g is among our key exchange methods.
func offersKE(props []proposal.Proposal, g proposal.KEID) bool {
	for _, p := range props {
		if slices.Contains(p.KE, g) {
			return true
		}
	}
	return false
}

// notifyError is a failure the peer reported with an error notify.
type notifyError struct{ t message.NotifyType }

func (e *notifyError) Error() string { return "ike: peer answered " + e.t.String() }

// deriveIKEKeys computes the SA's keys and ciphers after IKE_SA_INIT.
func (m *Manager) deriveIKEKeys(sa *ikeSA, gir []byte) error {
	keys, err := keymat.DeriveIKE(sa.suite, sa.hs.ni, sa.hs.nr, gir, sa.spiI, sa.spiR)
	if err != nil {
		return err
	}
	return m.setKeys(sa, keys)
}

// setKeys installs a key generation and its ciphers.
func (m *Manager) setKeys(sa *ikeSA, keys *keymat.IKEKeys) error {
	out, in, err := keys.Ciphers(sa.initiator, m.rand)
	if err != nil {
		return err
	}
	if sa.keys != nil {
		sa.keys.Wipe()
	}
	sa.keys, sa.out, sa.in = keys, out, in
	m.reportIKEKeys(sa)
	return nil
}

// notePeerCapabilities reads the status notifications of the peer's
// IKE_SA_INIT message.
func (m *Manager) notePeerCapabilities(sa *ikeSA, msg *message.Message) {
	hs := sa.hs
	for _, p := range msg.Payloads {
		switch v := p.(type) {
		case *message.Notify:
			switch v.Type {
			case message.NotifyIKEv2FragmentationSupported:
				sa.peerFrag = true
			case message.NotifyChildlessIKEv2Supported:
				sa.peerChildless = true
			case message.NotifyIntermediateExchangeSupported:
				hs.peerIntermediate = true
			case message.NotifySignatureHashAlgorithms:
				if hashes, err := auth.ParseHashAlgorithms(v.Data); err == nil {
					hs.peerHashes = hashes
				}
			}
		case *message.CertReq:
			if v.Encoding == message.CertX509Signature {
				hs.certReq = true
				hs.certReqData = append(hs.certReqData, v.Data)
			}
		}
	}
}

// floatToNATT moves an initiator to the NAT-T port once a NAT is known
// (RFC 7296 §2.23); IKE_AUTH and everything after use port 4500.
func (m *Manager) floatToNATT(sa *ikeSA) {
	if !sa.encap() {
		return
	}
	if sa.local.Port() == m.cfg.IKEPort {
		sa.local = netip.AddrPortFrom(sa.local.Addr(), m.cfg.NATTPort)
	}
	if sa.remote.Port() == m.cfg.IKEPort {
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), m.cfg.NATTPort)
	}
	if sa.natLocal && !sa.tKeepalive.scheduled() {
		m.schedule(&sa.tKeepalive, m.cfg.KeepaliveInterval)
	}
}

// queueHandshakeTasks queues what follows IKE_SA_INIT: one
// IKE_INTERMEDIATE per additional key exchange (RFC 9370), then IKE_AUTH.
func (m *Manager) queueHandshakeTasks(sa *ikeSA) {
	for i, ke := range sa.suite.AddKE {
		if ke != proposal.KENone {
			m.queueTask(sa, &intermediateTask{index: i})
		}
	}
	m.queueTask(sa, &authTask{})
}

// handleInitRequest is the responder's side of IKE_SA_INIT: stateless
// checks (cookie, proposal, key exchange group) before any state or
// Diffie-Hellman work, so a flood of spoofed requests stays cheap.
func (m *Manager) handleInitRequest(data []byte, h message.Header, local, remote netip.AddrPort) {
	if !h.IsInitiator() || h.SPIr != 0 || h.MessageID != 0 || h.SPIi == 0 {
		m.drop(DropNotInitiator)
		return
	}
	key := halfOpenKey{spiI: h.SPIi, remote: remote}
	if sa := m.initIndex[key]; sa != nil {
		switch {
		case maphash.Bytes(m.hashSeed, data)|1 != sa.initHash:
			m.drop(DropRetransmitMismatch)
		case sa.peerNextID == 1:
			m.stats.ResponsesResent++
			m.sendPackets(sa.lastResp, local, remote)
		default:
			// A late copy: the initiator has moved on.
			m.drop(DropWrongMessageID)
		}
		return
	}
	if m.halfOpenCount >= m.cfg.HalfOpenLimit {
		m.drop(DropHalfOpenLimit)
		return
	}
	source := sourceKey(remote.Addr())
	overSource := m.sourceOver(source)
	msg, err := message.Decode(data, nil)
	if err != nil {
		m.malformed(nil, err)
		return
	}
	m.countIn(message.ExchangeIKESAInit, false)
	saP, ke, nonce := message.Find[*message.SA](msg), message.Find[*message.KE](msg), message.Find[*message.Nonce](msg)
	if saP == nil || ke == nil || nonce == nil || msg.Encrypted {
		m.drop(DropInvalidPayloads)
		return
	}
	if len(nonce.Data) < keymat.MinNonceLen || len(nonce.Data) > keymat.MaxNonceLen {
		m.drop(DropInvalidPayloads)
		return
	}
	cookied := false
	if m.cfg.CookieThreshold < 0 || m.halfOpenCount >= m.cfg.CookieThreshold || overSource {
		cookie, ok := msg.Cookie()
		if !ok || !m.cookies.verify(cookie, nonce.Data, remote.Addr(), h.SPIi) {
			if ok {
				m.drop(DropBadCookie)
			}
			m.stats.CookiesSent++
			c := m.cookies.make(nonce.Data, remote.Addr(), h.SPIi)
			n, _ := message.CookieNotify(c)
			m.sendInitError(h, n, local, remote)
			return
		}
		m.stats.CookiesVerified++
		cookied = true
		if overSource && m.sourceFull(source) {
			m.drop(DropHalfOpenPerSource)
			return
		}
	}
	var cands []*Connection
	for _, c := range m.cfg.Connections {
		if c.matchesAddrs(local.Addr(), remote.Addr()) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		m.drop(DropNoConnection)
		m.sendInitError(h, &message.Notify{Type: message.NotifyNoProposalChosen}, local, remote)
		return
	}
	var sel selection
	var conn *Connection
	for _, c := range cands {
		if s, err := choose(saP.Proposals, c.Proposals, m.cfg.Policy, negotiateOpts{}); err == nil {
			sel, conn = s, c
			break
		}
	}
	if conn == nil {
		m.log.Info("IKE_SA_INIT: no acceptable proposal", "remote", remote)
		m.sendInitError(h, &message.Notify{Type: message.NotifyNoProposalChosen}, local, remote)
		return
	}
	if ke.Group != sel.suite.KE {
		m.stats.InvalidKESent++
		m.sendInitError(h, message.InvalidKENotify(sel.suite.KE), local, remote)
		return
	}
	intermediate := sel.suite.AddKE != [7]proposal.KEID{}
	if intermediate && msg.Notify(message.NotifyIntermediateExchangeSupported) == nil {
		m.sendInitError(h, &message.Notify{Type: message.NotifyNoProposalChosen}, local, remote)
		return
	}
	nr := m.nonce()
	ker, gir, err := group.Respond(ke.Group, m.cfg.Policy, m.rand, ke.Data)
	if err != nil {
		m.log.Info("IKE_SA_INIT: invalid key exchange data", "remote", remote, "err", err)
		m.sendInitError(h, &message.Notify{Type: message.NotifyInvalidSyntax}, local, remote)
		return
	}
	defer clear(gir)

	sa := m.newIKESA(false)
	sa.candidates = cands
	sa.spiI, sa.spiR = h.SPIi, m.randUint64()
	sa.local, sa.remote = local, remote
	sa.suite = sel.suite
	sa.hs = &handshake{ni: append([]byte(nil), nonce.Data...), nr: nr, initReq: msg.Raw(), source: source, cookied: cookied}
	sa.initKey, sa.initHash = key, maphash.Bytes(m.hashSeed, data)|1
	m.notePeerCapabilities(sa, msg)
	if natL, natR, ok := detectNAT(msg, local, remote); ok {
		sa.natLocal, sa.natRemote = natL, natR
	}
	if err := m.deriveIKEKeys(sa, gir); err != nil {
		m.log.Error("IKE_SA_INIT: key derivation failed", "err", err)
		return
	}
	m.sas[sa.spiR] = sa
	m.initIndex[key] = sa
	m.setIKEState(sa, IKEConnecting, "IKE_SA_INIT request")
	m.setHalfOpen(sa, true)
	m.schedule(&sa.tHalfOpen, m.cfg.HalfOpenTimeout)

	resp := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.ExchangeIKESAInit,
		Flags: message.FlagResponse}}
	resp.Payloads = append(resp.Payloads,
		&message.SA{Proposals: []message.Proposal{message.ProposalFromSuite(sel.number, nil, sel.suite)}},
		&message.KE{Group: ke.Group, Data: ker},
		&message.Nonce{Data: nr})
	if _, _, ok := detectNAT(msg, local, remote); ok {
		resp.Payloads = append(resp.Payloads, m.natDetectionPayloads(sa, sa.spiI, sa.spiR, conn.ForceEncap)...)
	}
	if conn.SendCertReq && conn.Remote.Method == AuthPubkey && len(conn.Remote.CACerts) > 0 {
		resp.Payloads = append(resp.Payloads, &message.CertReq{Encoding: message.CertX509Signature,
			Data: auth.CertReqData(conn.Remote.CACerts)})
	}
	resp.Payloads = append(resp.Payloads, m.initNotifies(conn, intermediate)...)
	b, err := resp.Encode(nil, nil)
	if err != nil {
		m.log.Error("IKE_SA_INIT: encoding response failed", "err", err)
		m.destroyIKE(sa, "encoding failed")
		return
	}
	sa.hs.initResp = b
	sa.lastResp = [][]byte{b}
	sa.peerNextID = 1
	m.countOut(message.ExchangeIKESAInit, true)
	m.logIKE(sa, slog.LevelDebug, "IKE_SA_INIT answered", "remote", remote, "proposal", sel.suite.String())
	m.transmit(b, local, remote)
}

// sendInitError answers an IKE_SA_INIT request with one notification and
// keeps no state (RFC 7296 §2.6, §1.2).
func (m *Manager) sendInitError(h message.Header, n *message.Notify, local, remote netip.AddrPort) {
	resp := &message.Message{Header: message.Header{SPIi: h.SPIi, Exchange: message.ExchangeIKESAInit,
		Flags: message.FlagResponse}, Payloads: []message.Payload{n}}
	b, err := resp.Encode(m.scratchEncode[:0], nil)
	if err != nil {
		return
	}
	m.scratchEncode = b
	m.countOut(message.ExchangeIKESAInit, true)
	m.transmit(b, local, remote)
}

// halfOpenExpired ends an IKE SA whose initial exchanges did not finish.
func (m *Manager) halfOpenExpired(sa *ikeSA) {
	if sa.state == IKEConnecting {
		m.logIKE(sa, slog.LevelInfo, "initial exchanges timed out")
		m.destroyIKE(sa, "half-open timeout")
	}
}
