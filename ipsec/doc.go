// Package ipsec is bitw's data plane: security associations, the SAD and
// SPD, ESP (RFC 4303) and AH (RFC 4302) in tunnel and transport mode over
// IPv4 and IPv6 in every combination, UDP encapsulation (RFC 3948) and
// anti-replay (RFC 6479 bitmaps with 64-bit extended sequence numbers).
//
// It is a pure library: no goroutines, no I/O; the clock and the random
// source are injected through Config. Packets live in Buffers with
// headroom and tailroom, and encapsulation and decapsulation happen in
// place without allocating.
//
// # Data path
//
// Engine.Outbound takes an IP packet from the red side, looks it up in
// the SPD and, for PROTECT, encapsulates it with the entry's outbound SA;
// Engine.Inbound takes ESP, AH or ESP-in-UDP addressed to the device,
// finds the SA by SPI, checks the replay window, verifies and decrypts,
// and checks the inner packet against the SA's selectors;
// Engine.InboundBypass admits cleartext only where a BYPASS entry says
// so. All three borrow the Buffer and return a Verdict; every drop is
// counted under a DropReason (Engine.Drops) and, where an SA is known, on
// the SA. Any number of goroutines may call them at once.
//
// # Control plane
//
// IKE installs state through AllocSPI, AddSA, UpdateSA, DeleteSA and
// AddPolicy, UpdatePolicy, DeletePolicy, and calls Tick periodically for
// time-based lifetimes. SAConfig carries explicit keys, so tests and
// cross-checks (scapy, strongSwan captures) build SAs directly. The
// engine reports soft and hard expiry, sequence number exhaustion and
// acquires on Config.Events without ever blocking; a full channel drops
// the event and counts it.
//
// A PROTECT policy names its outbound SA by ReqID: the newest outbound SA
// installed with that ReqID carries the traffic. A rekey therefore
// installs the new inbound SA, then the new outbound SA (traffic switches
// atomically), and deletes the old pair later, losing nothing.
//
// # Concurrency
//
// The SAD and SPD are immutable snapshots behind an atomic pointer;
// writers copy, modify and publish under one mutex, so readers never
// lock. An SA's configuration is immutable; its outer path (which a NAT
// float may change) is an atomically replaced pointer, its sequence
// counter and byte counter are atomics, and its replay window is updated
// under a small per-SA mutex after a lock-free pre-check. Stateful crypto
// (HMAC, XCBC, CMAC, CBC modes, CCM) lives in a few per-SA work slots
// that packets borrow; Go's GCM and ChaCha20-Poly1305 are shared as is.
package ipsec
