package ike

import (
	"net/netip"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

// Replies to messages outside any IKE SA (RFC 7296 §1.5, §2.21.4). They go
// out unprotected to whatever source address the request claims, so they
// are limited across all sources together: bitw must not become a
// reflector for spoofed requests (§2.21 warns about acting on
// unauthenticated messages). Only requests are answered, never responses.
//
//   - INVALID_MAJOR_VERSION (§2.5): a request whose major version is above
//     2. The answer's header says 2.0.
//   - INVALID_IKE_SPI (§1.5, §2.21.4, a MAY): a protected request (first
//     payload SK or SKF) on the IKE or NAT-T port naming no IKE SA we
//     know, typically from a peer that has not noticed our restart.
//
// Both copy the request's SPIs, Message ID and exchange type, set the
// Response flag and the Initiator flag opposite to the request's.

// tokenBucket allows rate events per second, rate of them at once.
type tokenBucket struct {
	credit time.Duration // earned time, at most one second
	last   time.Time
}

// take spends one token if there is one.
func (b *tokenBucket) take(now time.Time, rate int) bool {
	if rate <= 0 {
		return false
	}
	if b.last.IsZero() {
		b.credit = time.Second
	} else if d := now.Sub(b.last); d > 0 {
		b.credit = min(b.credit+d, time.Second)
	}
	b.last = now
	cost := time.Second / time.Duration(rate)
	if b.credit < cost {
		return false
	}
	b.credit -= cost
	return true
}

// answerUnknownSPI sends INVALID_IKE_SPI for a protected request naming no
// IKE SA of ours.
func (m *Manager) answerUnknownSPI(h message.Header, first message.PayloadType, local, remote netip.AddrPort) {
	if h.IsResponse() || (first != message.PayloadSK && first != message.PayloadSKF) ||
		(local.Port() != m.cfg.IKEPort && local.Port() != m.cfg.NATTPort) {
		return
	}
	if m.replyUnprotected(h, message.NotifyInvalidIKESPI, local, remote) {
		m.stats.InvalidIKESPISent++
	}
}

// answerMajorVersion sends INVALID_MAJOR_VERSION for a request of a later
// IKE major version.
func (m *Manager) answerMajorVersion(h message.Header, local, remote netip.AddrPort) {
	if h.IsResponse() {
		return
	}
	if m.replyUnprotected(h, message.NotifyInvalidMajorVersion, local, remote) {
		m.stats.InvalidMajorVersionSent++
	}
}

// replyUnprotected answers the request with header h with one error
// notification in clear, within the global rate.
func (m *Manager) replyUnprotected(h message.Header, n message.NotifyType, local, remote netip.AddrPort) bool {
	if !m.replies.take(m.now, m.cfg.UnprotectedReplyRate) {
		m.stats.UnprotectedRepliesLimited++
		return false
	}
	flags := message.FlagResponse
	if !h.IsInitiator() {
		flags |= message.FlagInitiator
	}
	resp := &message.Message{Header: message.Header{SPIi: h.SPIi, SPIr: h.SPIr, Exchange: h.Exchange,
		MessageID: h.MessageID, Flags: flags}, Payloads: []message.Payload{&message.Notify{Type: n}}}
	b, err := resp.Encode(m.scratchEncode[:0], nil)
	if err != nil {
		return false
	}
	m.scratchEncode = b
	m.log.Debug("unprotected error reply", "notify", n.String(), "remote", remote, "exchange", h.Exchange)
	m.transmit(b, local, remote)
	return true
}

// Half-open IKE SAs per source (beside COOKIE, RFC 7296 §2.6). A source
// holding HalfOpenPerSource half-open SAs must return a COOKIE even below
// CookieThreshold, which proves it receives at that address; once it also
// holds that many made with a verified COOKIE, its further requests are
// dropped. Requests spoofed from a victim's address thus cost the victim
// a cookie round trip at most, never its IKE SA, while one source cannot
// hold more than twice the limit however many cookies it answers. IPv6
// sources count per /64, the least a site is given.

// halfOpenSource counts one source's half-open SAs: all of them, and those
// created with a verified COOKIE.
type halfOpenSource struct {
	all, cookied int
}

// sourceKey is the address, or its /64 for IPv6, that one source's
// half-open SAs are counted under.
func sourceKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// sourceOver reports whether a source holds its limit of half-open SAs.
func (m *Manager) sourceOver(key netip.Prefix) bool {
	return m.cfg.HalfOpenPerSource > 0 && m.halfOpenSources[key].all >= m.cfg.HalfOpenPerSource
}

// sourceFull reports whether a source holds its limit of half-open SAs
// made with a verified COOKIE.
func (m *Manager) sourceFull(key netip.Prefix) bool {
	return m.cfg.HalfOpenPerSource > 0 && m.halfOpenSources[key].cookied >= m.cfg.HalfOpenPerSource
}

// countSource adds (d = 1) or removes (d = -1) a half-open SA of hs's
// source.
func (m *Manager) countSource(hs *handshake, d int) {
	if !hs.source.IsValid() {
		return
	}
	s := m.halfOpenSources[hs.source]
	s.all += d
	if hs.cookied {
		s.cookied += d
	}
	if s.all <= 0 {
		delete(m.halfOpenSources, hs.source)
		return
	}
	m.halfOpenSources[hs.source] = s
}
