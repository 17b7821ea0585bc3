package ike

import (
	"fmt"
	"maps"

	"github.com/bitw-dev/bitw/ike/message"
)

// DropReason says why the Manager discarded an incoming datagram without
// acting on it. Malformed messages are counted by their message.Reason
// instead (Stats.Malformed).
type DropReason uint8

const (
	DropUnknownSPI         DropReason = iota + 1 // no IKE SA with this SPI
	DropWrongMessageID                           // outside the window, or a response to no request
	DropRetransmitMismatch                       // old Message ID but not a copy of the request we answered
	DropUnexpected                               // an exchange this SA cannot take in its state
	DropUnprotected                              // an exchange that must be protected arrived in clear
	DropHalfOpenLimit                            // IKE_SA_INIT beyond the half-open limit
	DropBadCookie                                // COOKIE that does not verify (answered with a fresh one)
	DropNoConnection                             // no connection for these addresses
	DropESP                                      // ESP (no non-ESP marker) on the NAT-T port
	DropQueueFull                                // Run's packet queue was full
	DropNotInitiator                             // IKE_SA_INIT request without the Initiator flag, or similar flag errors
	DropInvalidPayloads                          // a well-formed message lacking payloads its exchange needs
	DropHalfOpenPerSource                        // IKE_SA_INIT from a source holding its share of half-open SAs
	numDropReasons
)

// NumDropReasons sizes arrays indexed by DropReason.
const NumDropReasons = int(numDropReasons)

func (r DropReason) String() string {
	switch r {
	case DropUnknownSPI:
		return "unknown-spi"
	case DropWrongMessageID:
		return "wrong-message-id"
	case DropRetransmitMismatch:
		return "retransmit-mismatch"
	case DropUnexpected:
		return "unexpected-exchange"
	case DropUnprotected:
		return "unprotected"
	case DropHalfOpenLimit:
		return "half-open-limit"
	case DropBadCookie:
		return "bad-cookie"
	case DropNoConnection:
		return "no-connection"
	case DropESP:
		return "esp-on-ike-port"
	case DropQueueFull:
		return "queue-full"
	case DropNotInitiator:
		return "bad-flags"
	case DropInvalidPayloads:
		return "invalid-payloads"
	case DropHalfOpenPerSource:
		return "half-open-per-source"
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

// exchangeSlot indexes per-exchange counters.
type exchangeSlot uint8

const (
	slotInit exchangeSlot = iota
	slotAuth
	slotCreateChild
	slotInformational
	slotIntermediate
	slotFollowupKE
	slotOther
	numExchangeSlots
)

// NumExchangeSlots sizes Stats.In and Stats.Out.
const NumExchangeSlots = int(numExchangeSlots)

// ExchangeOfSlot names the exchange a counter slot counts.
func ExchangeOfSlot(i int) string {
	switch exchangeSlot(i) {
	case slotInit:
		return message.ExchangeIKESAInit.String()
	case slotAuth:
		return message.ExchangeIKEAuth.String()
	case slotCreateChild:
		return message.ExchangeCreateChildSA.String()
	case slotInformational:
		return message.ExchangeInformational.String()
	case slotIntermediate:
		return message.ExchangeIKEIntermediate.String()
	case slotFollowupKE:
		return message.ExchangeIKEFollowupKE.String()
	}
	return "other"
}

func slotOf(e message.ExchangeType) exchangeSlot {
	switch e {
	case message.ExchangeIKESAInit:
		return slotInit
	case message.ExchangeIKEAuth:
		return slotAuth
	case message.ExchangeCreateChildSA:
		return slotCreateChild
	case message.ExchangeInformational:
		return slotInformational
	case message.ExchangeIKEIntermediate:
		return slotIntermediate
	case message.ExchangeIKEFollowupKE:
		return slotFollowupKE
	}
	return slotOther
}

// Stats are the Manager's counters. In and Out count messages by exchange
// slot (ExchangeOfSlot) and by [0] request, [1] response; retransmissions
// are counted apart.
type Stats struct {
	In, Out [NumExchangeSlots][2]uint64
	// Retransmits counts our requests sent again; ResponsesResent the
	// cached responses sent again for retransmitted requests.
	Retransmits, ResponsesResent uint64
	Drops                        [NumDropReasons]uint64
	// Malformed counts refused messages by message.Reason.
	Malformed [message.NumReasons + 1]uint64
	// AuthFailures counts AUTH payloads that did not verify, peer
	// identities or certificates refused, and AUTHENTICATION_FAILED
	// received.
	AuthFailures uint64
	// ErrorNotifies counts error notifications received, by type.
	ErrorNotifies map[message.NotifyType]uint64
	// CookiesSent counts COOKIE challenges; CookiesVerified the requests
	// that came back with a valid one.
	CookiesSent, CookiesVerified uint64
	InvalidKESent                uint64
	// HalfOpen is the number of half-open responder SAs now, and
	// HalfOpenMax the most there ever were.
	HalfOpen, HalfOpenMax int
	IKESAs, ChildSAs      int
	// Established counts IKE SAs that finished IKE_AUTH; PeersDead those
	// deleted because the peer stopped answering.
	Established, PeersDead uint64
	// ChildrenIdle counts Child SAs closed for inactivity.
	ChildrenIdle       uint64
	IKETransitions     [numIKEStates]uint64
	ChildTransitions   [numChildStates]uint64
	InvalidTransitions uint64
	SendErrors         uint64
	InstallErrors      uint64
	KeepalivesSent     uint64
	KeepalivesReceived uint64
	FragmentsSent      uint64
	FragmentsReceived  uint64
	// ReassemblyTimeouts counts fragmented messages dropped incomplete.
	ReassemblyTimeouts uint64
	// StateNotFoundSent counts IKE_FOLLOWUP_KE requests answered with
	// STATE_NOT_FOUND; FollowupTimeouts the sequences of additional key
	// exchanges we forgot because the next request did not come in time
	// (RFC 9370 §2.2.4).
	StateNotFoundSent, FollowupTimeouts uint64
	// InvalidIKESPISent and InvalidMajorVersionSent count unprotected
	// error replies to requests outside any IKE SA (RFC 7296 §1.5);
	// UnprotectedRepliesLimited those UnprotectedReplyRate held back.
	InvalidIKESPISent, InvalidMajorVersionSent, UnprotectedRepliesLimited uint64
	// EventsDropped counts data-plane events that Event could not queue
	// for Run: its queue was full.
	EventsDropped uint64
}

// DropTotal is the sum of all drops and malformed messages.
func (s *Stats) DropTotal() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	for _, d := range s.Malformed {
		n += d
	}
	return n
}

func (s *Stats) clone() Stats {
	c := *s
	c.ErrorNotifies = maps.Clone(s.ErrorNotifies)
	return c
}

func (m *Manager) drop(r DropReason) { m.stats.Drops[r]++ }

func (m *Manager) countIn(e message.ExchangeType, response bool) {
	m.stats.In[slotOf(e)][b2i(response)]++
}

func (m *Manager) countOut(e message.ExchangeType, response bool) {
	m.stats.Out[slotOf(e)][b2i(response)]++
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
