package ike

import (
	"fmt"
	"log/slog"
	"slices"
)

// IKEState is an IKE SA's lifecycle state, in swanctl's vocabulary.
//
//	            IKE_SA_INIT, [IKE_INTERMEDIATE...], IKE_AUTH
//	CONNECTING ---------------------------------------------> ESTABLISHED
//	    |                                   rekey started  |     ^
//	    |                                                  v     | rekey failed,
//	    |                                              REKEYING -+ or collision lost
//	    |                                                  |
//	    |  failure, DELETE, DPD, superseded by a rekey     v
//	    +-------------------------------------------> DELETING ---> (destroyed)
//
// Any state may also go straight to destroyed: a peer found dead, a
// half-open timeout, or an INITIAL_CONTACT from the peer.
type IKEState uint8

const (
	IKEConnecting IKEState = iota + 1
	IKEEstablished
	IKERekeying
	IKEDeleting
	ikeDestroyed // not shown: the SA is gone
	numIKEStates
)

func (s IKEState) String() string {
	switch s {
	case IKEConnecting:
		return "CONNECTING"
	case IKEEstablished:
		return "ESTABLISHED"
	case IKERekeying:
		return "REKEYING"
	case IKEDeleting:
		return "DELETING"
	case ikeDestroyed:
		return "DESTROYED"
	}
	return fmt.Sprintf("IKESTATE(%d)", uint8(s))
}

var ikeTransitions = [numIKEStates][numIKEStates]bool{
	0:              {IKEConnecting: true, IKEEstablished: true}, // created; a rekey creates it established
	IKEConnecting:  {IKEEstablished: true, IKEDeleting: true, ikeDestroyed: true},
	IKEEstablished: {IKERekeying: true, IKEDeleting: true, ikeDestroyed: true},
	IKERekeying:    {IKEEstablished: true, IKEDeleting: true, ikeDestroyed: true},
	IKEDeleting:    {ikeDestroyed: true},
}

// ChildState is a Child SA's lifecycle state, in swanctl's vocabulary.
//
//	INSTALLING --keys installed--> INSTALLED --rekey started--> REKEYING
//	    |                              ^                          |   |
//	    |                              +------ rekey failed ------+   | successor installed
//	    |                                                             v
//	    +--------------------> DELETING <------------------------- REKEYED
//	                               |
//	                               v
//	                          (destroyed)
//
// Any state may go straight to destroyed when its IKE SA dies.
type ChildState uint8

const (
	ChildInstalling ChildState = iota + 1
	ChildInstalled
	ChildRekeying
	ChildRekeyed
	ChildDeleting
	childDestroyed
	numChildStates
)

func (s ChildState) String() string {
	switch s {
	case ChildInstalling:
		return "INSTALLING"
	case ChildInstalled:
		return "INSTALLED"
	case ChildRekeying:
		return "REKEYING"
	case ChildRekeyed:
		return "REKEYED"
	case ChildDeleting:
		return "DELETING"
	case childDestroyed:
		return "DESTROYED"
	}
	return fmt.Sprintf("CHILDSTATE(%d)", uint8(s))
}

var childTransitions = [numChildStates][numChildStates]bool{
	0:               {ChildInstalling: true},
	ChildInstalling: {ChildInstalled: true, ChildDeleting: true, childDestroyed: true},
	ChildInstalled:  {ChildRekeying: true, ChildRekeyed: true, ChildDeleting: true, childDestroyed: true},
	ChildRekeying:   {ChildInstalled: true, ChildRekeyed: true, ChildDeleting: true, childDestroyed: true},
	ChildRekeyed:    {ChildDeleting: true, childDestroyed: true},
	ChildDeleting:   {childDestroyed: true},
}

// setIKEState is the one place an IKE SA changes state: it checks the
// transition, logs it and counts it. A transition the diagram does not
// allow is a programming error; it is refused, logged and counted so
// that tests (which assert the counter is zero) catch it.
func (m *Manager) setIKEState(sa *ikeSA, to IKEState, why string) bool {
	from := sa.state
	if from == to {
		return true
	}
	if from >= numIKEStates || to >= numIKEStates || !ikeTransitions[from][to] {
		m.stats.InvalidTransitions++
		m.logIKE(sa, slog.LevelError, "refused IKE SA state transition", "from", from, "to", to, "why", why)
		return false
	}
	sa.state = to
	if live(from) != live(to) {
		m.indexLive(sa, live(to))
	}
	m.stats.IKETransitions[to]++
	m.logIKE(sa, slog.LevelDebug, "IKE SA state", "from", from, "to", to, "why", why)
	return true
}

// live states count for uniqueness and INITIAL_CONTACT.
func live(s IKEState) bool { return s == IKEEstablished || s == IKERekeying }

// peerKey indexes live IKE SAs by connection and remote identity.
type peerKey struct {
	conn *Connection
	typ  uint8
	id   string
}

func keyOfPeer(sa *ikeSA) peerKey {
	return peerKey{conn: sa.conn, typ: uint8(sa.remoteID.Type), id: string(sa.remoteID.Data)}
}

// indexLive keeps the per-connection count and the per-peer index of live
// IKE SAs, so uniqueness checks need not scan every SA.
func (m *Manager) indexLive(sa *ikeSA, on bool) {
	k := keyOfPeer(sa)
	if on {
		m.connLive[sa.conn]++
		m.peers[k] = append(m.peers[k], sa)
		return
	}
	if m.connLive[sa.conn]--; m.connLive[sa.conn] <= 0 {
		delete(m.connLive, sa.conn)
	}
	l := m.peers[k]
	if i := slices.Index(l, sa); i >= 0 {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(m.peers, k)
	} else {
		m.peers[k] = l
	}
}

// setChildState is the Child SA counterpart of setIKEState.
func (m *Manager) setChildState(c *childSA, to ChildState, why string) bool {
	from := c.state
	if from == to {
		return true
	}
	if from >= numChildStates || to >= numChildStates || !childTransitions[from][to] {
		m.stats.InvalidTransitions++
		m.logChild(c, slog.LevelError, "refused Child SA state transition", "from", from, "to", to, "why", why)
		return false
	}
	c.state = to
	m.stats.ChildTransitions[to]++
	m.logChild(c, slog.LevelDebug, "Child SA state", "from", from, "to", to, "why", why)
	return true
}
