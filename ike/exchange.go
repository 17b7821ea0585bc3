package ike

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

// task is one exchange we initiate, strongSwan-style: build makes the
// request, process handles the response. Its role is fixed when it is
// created. The exchange machinery below alone assigns Message IDs,
// retransmits, caches responses and orders tasks (window size 1).
type task interface {
	// exchange is the type of the next request; a task that runs several
	// exchanges changes it between them.
	exchange() message.ExchangeType
	// build returns the request's payloads; errSkip drops the task
	// unsent (it is no longer needed).
	build(m *Manager, sa *ikeSA) ([]message.Payload, error)
	// process handles the response. errRetry queues the task again at
	// the front (INVALID_KE_PAYLOAD, COOKIE), as errMore does for the
	// task's next exchange (IKE_FOLLOWUP_KE); any other error aborts it.
	process(m *Manager, sa *ikeSA, resp *message.Message) error
	// abort ends the task without a (valid) response: the peer is dead,
	// the SA is going away, or process failed.
	abort(m *Manager, sa *ikeSA, err error)
}

// sentHook is implemented by tasks that need the request as sent.
type sentHook interface {
	sent(m *Manager, sa *ikeSA, msg *message.Message, packets [][]byte)
}

var (
	errSkip    = errors.New("ike: task no longer needed")
	errRetry   = errors.New("ike: send the request again")
	errIKEGone = errors.New("ike: IKE SA deleted")
	// errChildDown ends a Child SA's creation that the operator
	// cancelled by taking the child down.
	errChildDown = errors.New("ike: child taken down")
	errPeerDead  = errors.New("ike: peer does not respond")
)

// request is our outstanding request.
type request struct {
	t       task
	exch    message.ExchangeType
	msgID   uint32
	packets [][]byte
	tries   int
	sent    time.Time
}

// queueTask appends t and starts it if the window is free.
func (m *Manager) queueTask(sa *ikeSA, t task) {
	sa.queue = append(sa.queue, t)
	m.kick(sa)
}

// queueFirst puts t before every queued task.
func (m *Manager) queueFirst(sa *ikeSA, t task) {
	sa.queue = append([]task{t}, sa.queue...)
	m.kick(sa)
}

// kick starts the next queued task while the window is free.
func (m *Manager) kick(sa *ikeSA) {
	for sa.active == nil && len(sa.queue) > 0 && sa.state != ikeDestroyed {
		t := sa.queue[0]
		sa.queue = sa.queue[1:]
		payloads, err := t.build(m, sa)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			m.logIKE(sa, slog.LevelWarn, "building request failed", "exchange", t.exchange(), "err", err)
			t.abort(m, sa, err)
			continue
		}
		m.sendRequest(sa, t, payloads)
	}
}

func (m *Manager) sendRequest(sa *ikeSA, t task, payloads []message.Payload) {
	msg := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: t.exchange(),
		MessageID: sa.nextReqID}, Payloads: payloads}
	if sa.initiator {
		msg.Flags = message.FlagInitiator
	}
	packets, err := m.encode(sa, msg)
	if err != nil {
		m.logIKE(sa, slog.LevelError, "encoding request failed", "exchange", msg.Exchange, "err", err)
		t.abort(m, sa, err)
		return
	}
	if h, ok := t.(sentHook); ok {
		h.sent(m, sa, msg, packets)
	}
	sa.active = &request{t: t, exch: msg.Exchange, msgID: msg.MessageID, packets: packets, sent: m.now}
	m.countOut(msg.Exchange, false)
	m.logIKE(sa, slog.LevelDebug, "sending", "msg", msg.String())
	m.sendPackets(packets, sa.local, sa.remote)
	m.schedule(&sa.tRetransmit, m.retransmitDelay(sa, 0))
}

// encode protects a message for the SA, in fragments when the peer
// supports RFC 7383 and the message would not fit the path MTU.
func (m *Manager) encode(sa *ikeSA, msg *message.Message) ([][]byte, error) {
	if msg.Exchange == message.ExchangeIKESAInit {
		b, err := msg.Encode(nil, nil)
		return [][]byte{b}, err
	}
	b, err := msg.Encode(nil, sa.out)
	if err != nil {
		return nil, err
	}
	limit := message.FragmentSize(m.cfg.FragmentMTU, sa.remote.Addr().Is6(), sa.local.Port() == m.cfg.NATTPort)
	if len(b) <= limit || !sa.peerFrag || m.fragmentation(sa) != FragmentYes {
		return [][]byte{b}, nil
	}
	frags, err := msg.EncodeFragments(sa.out, limit)
	if err != nil {
		return nil, err
	}
	m.stats.FragmentsSent += uint64(len(frags))
	return frags, nil
}

func (m *Manager) fragmentation(sa *ikeSA) Fragmentation {
	if sa.conn != nil {
		return sa.conn.Fragmentation
	}
	if len(sa.candidates) > 0 {
		return sa.candidates[0].Fragmentation
	}
	return FragmentNo
}

func (m *Manager) sendPackets(packets [][]byte, local, remote netip.AddrPort) {
	for _, p := range packets {
		m.transmit(p, local, remote)
	}
}

// retransmitDelay is the wait after the tries-th retransmission.
func (m *Manager) retransmitDelay(sa *ikeSA, tries int) time.Duration {
	d := m.backoff(tries)
	if sa.conn != nil && sa.conn.DPDTimeout > 0 && sa.active != nil {
		if left := sa.active.sent.Add(sa.conn.DPDTimeout).Sub(m.now); left < d {
			d = max(left, 0)
		}
	}
	return d
}

// backoff is RetransmitTimeout × RetransmitBaseⁿ, capped at
// RetransmitLimit. The product is capped before it becomes a Duration: from
// some n it no longer fits in one, and the conversion would not saturate.
func (m *Manager) backoff(n int) time.Duration {
	f := float64(m.cfg.RetransmitTimeout) * math.Pow(m.cfg.RetransmitBase, float64(n))
	if m.cfg.RetransmitLimit > 0 && f > float64(m.cfg.RetransmitLimit) {
		return m.cfg.RetransmitLimit
	}
	return time.Duration(min(f, float64(math.MaxInt64/2)))
}

// retransmit resends the outstanding request, or gives up on the peer.
func (m *Manager) retransmit(sa *ikeSA) {
	r := sa.active
	if r == nil {
		return
	}
	timedOut := sa.conn != nil && sa.conn.DPDTimeout > 0 && !m.now.Before(r.sent.Add(sa.conn.DPDTimeout))
	if r.tries >= m.cfg.RetransmitTries || timedOut {
		m.peerDead(sa)
		return
	}
	r.tries++
	m.stats.Retransmits++
	m.logIKE(sa, slog.LevelDebug, "retransmitting", "exchange", r.exch, "id", r.msgID, "try", r.tries)
	m.sendPackets(r.packets, sa.local, sa.remote)
	m.schedule(&sa.tRetransmit, m.retransmitDelay(sa, r.tries))
}

// handleSAMessage takes a datagram for a known IKE SA: Message ID checks
// before any decryption, retransmission detection, then decoding.
func (m *Manager) handleSAMessage(sa *ikeSA, data []byte, h message.Header, first message.PayloadType, local, remote netip.AddrPort) {
	fragment := first == message.PayloadSKF
	var reqHash uint64
	if h.IsResponse() {
		if sa.active == nil || h.MessageID != sa.active.msgID {
			m.drop(DropWrongMessageID)
			return
		}
		if h.Exchange != sa.active.exch {
			m.drop(DropUnexpected)
			return
		}
	} else {
		switch {
		case h.MessageID == sa.peerNextID:
		case h.MessageID+1 == sa.peerNextID && sa.lastResp != nil:
			// A retransmitted request: answer it with the cached
			// response if it is a copy of what we answered (RFC 7296
			// §2.1), which for fragments is its first fragment (RFC
			// 7383 §2.6.1).
			if fragment && fragmentNumber(data) != 1 {
				return
			}
			if maphash.Bytes(m.hashSeed, data) != sa.lastReqHash {
				m.drop(DropRetransmitMismatch)
				return
			}
			m.stats.ResponsesResent++
			m.logIKE(sa, slog.LevelDebug, "request retransmitted, resending response", "id", h.MessageID)
			m.sendPackets(sa.lastResp, local, remote)
			return
		default:
			m.drop(DropWrongMessageID)
			return
		}
		reqHash = maphash.Bytes(m.hashSeed, data)
	}
	var msg *message.Message
	var err error
	if fragment {
		if sa.in == nil {
			m.drop(DropUnexpected)
			return
		}
		m.stats.FragmentsReceived++
		if !h.IsResponse() && fragmentNumber(data) == 1 {
			sa.frag1Hash = reqHash
		}
		if sa.reasm == nil {
			sa.reasm = message.NewReassembler(message.ReassemblyLimits{Timeout: m.cfg.ReassemblyTimeout})
		}
		msg, err = sa.reasm.Add(data, sa.in, m.now)
		if err != nil {
			m.malformed(sa, err)
			return
		}
		if msg == nil {
			if sa.reasm.Pending() > 0 && !sa.tReassembly.scheduled() {
				m.schedule(&sa.tReassembly, m.cfg.ReassemblyTimeout)
			}
			return
		}
		reqHash = sa.frag1Hash
	} else {
		msg, err = message.Decode(data, sa.in)
		if err != nil {
			m.malformed(sa, err)
			m.answerInvalidSyntax(sa, h, err, local, remote)
			return
		}
	}
	if h.Exchange != message.ExchangeIKESAInit && !msg.Encrypted {
		m.drop(DropUnprotected)
		return
	}
	m.countIn(msg.Exchange, msg.IsResponse())
	m.logIKE(sa, slog.LevelDebug, "received", "msg", msg.String())
	sa.lastRecv = m.now
	m.noteErrorNotifies(sa, msg)
	m.updatePath(sa, local, remote)
	if msg.IsResponse() {
		m.handleResponse(sa, msg)
		return
	}
	m.handleRequest(sa, msg, reqHash, local, remote)
}

// fragmentNumber reads an SKF payload's Fragment Number (RFC 7383 §2.5).
func fragmentNumber(data []byte) int {
	if len(data) < message.HeaderLen+6 {
		return 0
	}
	return int(binary.BigEndian.Uint16(data[message.HeaderLen+4:]))
}

// answerInvalidSyntax answers a request whose protected content failed to
// parse after its ICV verified (RFC 7296 §3.10.1 allows INVALID_SYNTAX
// only then).
func (m *Manager) answerInvalidSyntax(sa *ikeSA, h message.Header, err error, local, remote netip.AddrPort) {
	var pe *message.ParseError
	if h.IsResponse() || !errors.As(err, &pe) || !pe.Authenticated || pe.Notify == 0 {
		return
	}
	n := &message.Notify{Type: pe.Notify, Data: pe.NotifyData()}
	m.sendResponse(sa, h, []message.Payload{n}, 0, local, remote)
}

func (m *Manager) handleResponse(sa *ikeSA, msg *message.Message) {
	r := sa.active
	m.stop(&sa.tRetransmit)
	sa.active = nil
	sa.nextReqID++
	err := r.t.process(m, sa, msg)
	switch {
	case errors.Is(err, errRetry):
		if r.exch == message.ExchangeIKESAInit {
			// A retried IKE_SA_INIT keeps Message ID 0 (RFC 7296 §2.6).
			sa.nextReqID = 0
		}
		sa.queue = append([]task{r.t}, sa.queue...)
	case errors.Is(err, errMore):
		// The task's next exchange goes before anything queued.
		sa.queue = append([]task{r.t}, sa.queue...)
	case err != nil:
		r.t.abort(m, sa, err)
	}
	if sa.peerDeleted && sa.active == nil {
		m.destroyIKE(sa, "deleted by the peer")
		return
	}
	if sa.state != ikeDestroyed {
		m.kick(sa)
	}
}

// responder is the outcome of processing a request: the response payloads,
// or ok=false to drop the request unanswered.
func (m *Manager) handleRequest(sa *ikeSA, msg *message.Message, reqHash uint64, local, remote netip.AddrPort) {
	var payloads []message.Payload
	ok := false
	switch msg.Exchange {
	case message.ExchangeIKEAuth:
		payloads, ok = m.respondAuth(sa, msg)
	case message.ExchangeIKEIntermediate:
		payloads, ok = m.respondIntermediate(sa, msg)
	case message.ExchangeCreateChildSA:
		payloads, ok = m.respondCreateChild(sa, msg)
	case message.ExchangeIKEFollowupKE:
		payloads, ok = m.respondFollowupKE(sa, msg)
	case message.ExchangeInformational:
		payloads, ok = m.respondInformational(sa, msg)
	}
	if !ok {
		m.drop(DropUnexpected)
		return
	}
	m.sendResponse(sa, msg.Header, payloads, reqHash, local, remote)
	if hs := sa.hs; hs != nil && hs.nextKeys != nil {
		next := hs.nextKeys
		hs.nextKeys = nil
		if err := m.setKeys(sa, next); err != nil {
			m.destroyIKE(sa, "key update failed")
			return
		}
	}
	if sa.deleteAfterResponse {
		m.destroyIKE(sa, "deleted by the peer")
	} else if sa.state != ikeDestroyed {
		m.kick(sa)
	}
}

// sendResponse answers the request with header h, caches the answer for
// retransmissions and advances the peer's window. Responses go where the
// request came from (RFC 7296 §2.11).
func (m *Manager) sendResponse(sa *ikeSA, h message.Header, payloads []message.Payload, reqHash uint64, local, remote netip.AddrPort) {
	msg := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: h.Exchange,
		MessageID: h.MessageID, Flags: message.FlagResponse}, Payloads: payloads}
	if sa.initiator {
		msg.Flags |= message.FlagInitiator
	}
	packets, err := m.encode(sa, msg)
	if err != nil {
		m.logIKE(sa, slog.LevelError, "encoding response failed", "exchange", h.Exchange, "err", err)
		return
	}
	sa.lastResp = packets
	sa.lastReqHash = reqHash
	sa.peerNextID = h.MessageID + 1
	m.countOut(h.Exchange, true)
	m.logIKE(sa, slog.LevelDebug, "sending", "msg", msg.String())
	m.sendPackets(packets, local, remote)
}

// noteErrorNotifies counts and logs, by name, every error notification
// received.
func (m *Manager) noteErrorNotifies(sa *ikeSA, msg *message.Message) {
	for _, p := range msg.Payloads {
		n, ok := p.(*message.Notify)
		if !ok || !n.Type.IsError() {
			continue
		}
		m.stats.ErrorNotifies[n.Type]++
		if n.Type == message.NotifyAuthenticationFailed {
			m.stats.AuthFailures++
		}
		m.logIKE(sa, slog.LevelWarn, "error notify received", "notify", n.Type.String(),
			"exchange", msg.Exchange, "response", msg.IsResponse())
	}
}

// expireFragments drops incomplete fragmented messages.
func (m *Manager) expireFragments(sa *ikeSA) {
	if sa.reasm == nil {
		return
	}
	m.stats.ReassemblyTimeouts += uint64(sa.reasm.Expire(m.now))
	if sa.reasm.Pending() > 0 {
		m.schedule(&sa.tReassembly, m.cfg.ReassemblyTimeout)
	} else {
		sa.reasm = nil
	}
}
