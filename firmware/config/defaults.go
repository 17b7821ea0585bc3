package config

import "time"

// Default proposals, used when a connection or child names none, or names
// swanctl's "default". Every transform in them is one that NIST SP
// 800-131A, RFC 8221 (ESP) and RFC 8247 (IKEv2) rank as MUST or SHOULD:
// AES-GCM first, AES-CBC with HMAC-SHA-2 for peers without AEAD, and
// Curve25519 and the NIST curves before a 3072-bit MODP group for peers
// without elliptic curves. Nothing legacy (3DES, SHA-1, MODP-1024/1536)
// and nothing integrity-only.
//
// They are functions so that no caller can change them for everyone.

// DefaultIKEProposals are the IKE proposals of a connection that sets none.
func DefaultIKEProposals() []string {
	return []string{
		"aes256gcm16-prfsha384-x25519-ecp384",
		"aes128gcm16-prfsha256-x25519-ecp256",
		"aes256-sha384-x25519-ecp384-modp3072",
	}
}

// DefaultESPProposals are the ESP proposals of a child that sets none.
// They offer 64-bit extended sequence numbers first (RFC 4303 §2.2.1),
// which a gigabit tunnel needs to avoid rekeying for sequence exhaustion,
// and no key exchange, so the first Child SA and its rekeyings agree with
// peers that configure no PFS group.
func DefaultESPProposals() []string {
	return []string{
		"aes256gcm16-esn-noesn",
		"aes128gcm16-esn-noesn",
		"aes128-sha256-esn-noesn",
	}
}

// Defaults of the other options that differ from zero.
const (
	defaultIKEPort      = 500
	defaultMTU          = 1500
	defaultDPDTimeout   = 30 * time.Second
	defaultIKERekey     = 4 * time.Hour
	defaultChildRekey   = time.Hour
	defaultReplayWindow = 1024 // multi-core senders reorder packets; 32 or 64 would drop them
	minReplayWindow     = 64   // the data plane's limits (ipsec.MinReplayWindow, MaxReplayWindow)
	maxReplayWindow     = 1 << 16
	defaultControlDir   = "/run/bitw"
)
