// Package ike is bitw's IKEv2 engine (RFC 7296): the exchanges, the state
// of every IKE SA and Child SA, and the SA manager that owns them.
//
// One Manager owns every IKE SA and runs on one goroutine. It is a
// deterministic state machine with four entry points: HandlePacket for a
// datagram, Tick for due timers (NextDeadline says when), the commands
// (Up, Down, Rekey, Shutdown) and HandleDataPlaneEvent for expiries and
// acquires. Time comes from an injected Clock and randomness from an
// injected reader, so tests drive two Managers over an in-memory network
// (package iketest) with a manual clock and scripted loss, duplication,
// reordering and NAT. Run wraps the entry points with bounded queues for
// production.
//
// Each exchange we start is a task with a build step (the request) and a
// process step (the response), as in strongSwan's libcharon; requests we
// answer go to one responder function per exchange. The exchange
// machinery alone assigns Message IDs, retransmits (exponential backoff),
// caches the last response, enforces the window of one, fragments (RFC
// 7383) and orders tasks. Every state change goes through setIKEState or
// setChildState, which validate, log and count it.
//
// The data plane is reached only through Installer (SPIs, SAs, policies),
// datagrams leave through Sender, and secrets come from Credentials. ike
// knows nothing of gVisor, TamaGo or sockets.
//
// The codec (ike/message), key derivation (ike/keymat), key exchange
// methods (ike/group) and authentication methods (ike/auth) are separate
// packages; this one decides when and with what they are used.
package ike
