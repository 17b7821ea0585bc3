// Package ipsec is bitw's data plane: security associations, the SAD and
// SPD, ESP (RFC 4303) and AH (RFC 4302) in tunnel and transport mode, UDP
// encapsulation (RFC 3948) and anti-replay.
//
// It is a pure library: no goroutines, no I/O, and the clock and random
// source are injected. Packets live in Buffers with headroom and tailroom,
// and encapsulation and decapsulation happen in place without allocating.
package ipsec
