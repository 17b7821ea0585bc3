package ipsec

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Action is what an SPD entry does with matching traffic (RFC 4301
// §4.4.1). The zero value discards, so a forgotten field fails closed.
type Action uint8

const (
	ActionDiscard Action = iota
	ActionBypass
	ActionProtect
)

func (a Action) String() string {
	switch a {
	case ActionDiscard:
		return "DISCARD"
	case ActionBypass:
		return "BYPASS"
	case ActionProtect:
		return "PROTECT"
	}
	return "ACTION?"
}

// PolicyID names an installed SPD entry.
type PolicyID uint32

// Policy is one SPD entry. Entries apply to both directions: outbound red
// traffic matches with its source in Local and destination in Remote, and
// inbound traffic the other way round.
//
// The SPD is ordered: entries are consulted by ascending Priority and,
// within a priority, in the order they were added, and the first match
// wins. Entries whose selectors overlap must have distinct priorities, so
// their order is explicit and never depends on installation timing
// (RFC 4301 §4.4.1 calls non-overlapping entries decorrelated).
type Policy struct {
	Priority uint32
	Selectors
	Action Action
	// ReqID links a PROTECT entry to its outbound SA: the newest
	// installed outbound SA carrying the same ReqID. A rekey installs
	// the new SA under the same ReqID and so switches traffic atomically;
	// deleting the old one later loses nothing.
	ReqID uint32
	// Acquire asks for EventAcquire when PROTECT traffic finds no SA
	// (swanctl start_action = trap). Acquires are rate-limited per entry.
	Acquire bool
}

func (p *Policy) validate() error {
	if p.Action > ActionProtect {
		return fmt.Errorf("ipsec: unknown policy action %d", p.Action)
	}
	return p.Selectors.validate()
}

// ErrPolicyConflict reports overlapping entries at one priority.
var ErrPolicyConflict = errors.New("ipsec: policy overlaps an entry of the same priority")

// policyState is the mutable part of an entry; it survives SPD rebuilds.
type policyState struct {
	lastAcquire atomic.Int64
	acquired    atomic.Bool
}

// spdEntry is an entry as the data path sees it: the policy, its resolved
// outbound SA (nil when none is installed) and shared state.
type spdEntry struct {
	id    PolicyID
	order uint64
	pol   Policy
	sel   matcher
	sa    *assoc
	st    *policyState
}

// PolicyInfo is a read-only snapshot of an SPD entry.
type PolicyInfo struct {
	ID     PolicyID
	Policy Policy
	// OutSA is the outbound SA PROTECT traffic uses now, if any.
	OutSA SAKey
	HasSA bool
}
