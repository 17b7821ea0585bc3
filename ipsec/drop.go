package ipsec

// DropReason says why the data plane dropped a packet. Every drop is
// counted under its reason (Engine.Drops), which status and metrics show.
type DropReason uint8

const (
	DropNone          DropReason = iota
	DropMalformed                // too short, bad lengths, not IPv4/IPv6
	DropPolicyDiscard            // matched a DISCARD entry, or the default policy
	DropNoSA                     // PROTECT traffic without an installed SA
	DropUnknownSPI               // inbound ESP/AH for no SA
	DropReplay                   // sequence number replayed or left of the window
	DropAuth                     // ICV check failed
	DropPadding                  // bad ESP padding contents or pad length
	DropSelector                 // decapsulated packet outside its SA's selectors
	DropSeqExhausted             // outbound sequence number would wrap
	DropHardExpired              // SA past a hard lifetime
	DropTooBig                   // encapsulated packet exceeds the black MTU
	DropNoRoom                   // buffer lacks headroom or tailroom
	DropDummy                    // ESP dummy packet (next header 59), dropped by design
	DropKeepalive                // NAT-T keepalive (0xFF), dropped by design
	DropNextHeader               // inner protocol that the mode cannot carry
	DropTTL                      // inner TTL or hop limit exhausted
	DropFragment                 // IP fragment where IPsec needs whole packets (reassemble first)
	DropECN                      // RFC 6040 §4.2: Not-ECT inner with CE outer
	DropNotIPsec                 // Inbound got neither ESP, AH nor UDP
	DropEncap                    // ESP with or without UDP where the SA says otherwise
	DropNotProtected             // cleartext that a PROTECT entry covers (RFC 4301 §5.2)
	DropRandom                   // the random source failed (CBC IV)
	DropUnpredictable            // AH over a header whose arrival value cannot be predicted
	DropCrypto                   // the crypto engine (Config.Crypto) reported an error
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:          "none",
	DropMalformed:     "malformed",
	DropPolicyDiscard: "policy_discard",
	DropNoSA:          "no_sa",
	DropUnknownSPI:    "unknown_spi",
	DropReplay:        "replay",
	DropAuth:          "auth_failed",
	DropPadding:       "bad_padding",
	DropSelector:      "selector_mismatch",
	DropSeqExhausted:  "seq_exhausted",
	DropHardExpired:   "hard_expired",
	DropTooBig:        "too_big",
	DropNoRoom:        "no_buffer_room",
	DropDummy:         "dummy",
	DropKeepalive:     "nat_keepalive",
	DropNextHeader:    "bad_next_header",
	DropTTL:           "ttl_exceeded",
	DropFragment:      "fragment",
	DropECN:           "ecn_forbidden",
	DropNotIPsec:      "not_ipsec",
	DropEncap:         "encap_mismatch",
	DropNotProtected:  "cleartext_for_protect",
	DropRandom:        "rng_failure",
	DropUnpredictable: "ah_unpredictable_header",
	DropCrypto:        "crypto_engine_failure",
}

// String is the reason's metric label.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// NumDropReasons is the number of reasons, for counter arrays.
const NumDropReasons = int(numDropReasons)
