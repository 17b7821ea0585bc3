// Package hw puts bitw's crypto engines behind one small interface.
//
// An Engine offers what an ESP SA with ENCR_AES_CBC (RFC 3602) and
// AUTH_HMAC_SHA2_256_128 (RFC 4868) needs, shaped for whole-buffer
// engines such as the i.MX DCP and CAAM: one call encrypts, decrypts or
// authenticates one whole buffer, and every call can fail, because
// hardware can. Three engines exist:
//
//   - Soft, Go's crypto/aes, crypto/cipher and crypto/hmac, everywhere;
//   - the i.MX6ULL/ULZ DCP and the i.MX6UL CAAM, in the TamaGo-only
//     package crypto/hw/imx6, which chooses by SoC.
//
// At boot the firmware passes the board's engines to Select, which runs
// SelfTest (RFC 3602, NIST SP 800-38A, RFC 4231 and RFC 4868 known
// answers) on each, takes the first that passes, and otherwise falls back
// to the soft engine with one console line saying why. ESPCBC adapts an
// engine to ESP's transform for the ipsec data plane, which drops and
// counts a packet whose engine call fails: callers fail closed.
//
// This package imports no TamaGo code, so its tests, and the ESP tests
// against a fake engine (crypto/hw/hwtest), run on the host.
package hw

import (
	"errors"
	"strings"
)

// Caps is the set of operations an engine performs.
type Caps uint32

const (
	AES128CBC  Caps = 1 << iota // AES-CBC with 16-octet keys
	AES192CBC                   // AES-CBC with 24-octet keys
	AES256CBC                   // AES-CBC with 32-octet keys
	HMACSHA256                  // HMAC-SHA-256 (RFC 2104, FIPS 180-4)
	Random                      // a hardware random number generator
)

// ESPMinimum is what every engine offers: the smallest ESP transform
// bitw can put on it, AES-128-CBC with HMAC-SHA2-256-128.
const ESPMinimum = AES128CBC | HMACSHA256

var capNames = []struct {
	c    Caps
	name string
}{{AES128CBC, "aes128-cbc"}, {AES192CBC, "aes192-cbc"}, {AES256CBC, "aes256-cbc"}, {HMACSHA256, "hmac-sha256"}, {Random, "random"}}

// Has reports whether c includes every operation in x.
func (c Caps) Has(x Caps) bool { return c&x == x }

// AESKey reports whether c includes AES-CBC with keys of n octets.
func (c Caps) AESKey(n int) bool {
	switch n {
	case 16:
		return c.Has(AES128CBC)
	case 24:
		return c.Has(AES192CBC)
	case 32:
		return c.Has(AES256CBC)
	}
	return false
}

// String lists the operations, e.g. "aes128-cbc hmac-sha256".
func (c Caps) String() string {
	var names []string
	for _, n := range capNames {
		if c.Has(n.c) {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// Engine is one crypto engine.
//
// Every method of an Engine and of the CBC and MAC values it returns is
// safe for concurrent use. A hardware engine has one queue and serializes
// its callers; the soft engine runs them in parallel.
//
// Ownership: methods borrow their slices for the duration of the call and
// keep no reference afterwards; constructors copy the key. A CBC or MAC
// holds no hardware resource between calls (the DCP engine loads keys
// into its four key slots on demand), so it needs no release: drop it.
//
// Errors: every operation can fail, and hardware failure is reported, not
// hidden. A caller treats any error as "this packet cannot be processed":
// it drops the packet and counts it, and never sends what the buffer
// holds. An operation the engine does not offer (see Caps) fails with an
// error wrapping errors.ErrUnsupported, and a malformed argument with one
// wrapping ErrLength.
type Engine interface {
	// Name is a short name for logs and the console ("soft", "DCP").
	Name() string
	// Caps says which operations the engine performs.
	Caps() Caps
	// NewAESCBC returns AES-CBC under key (16, 24 or 32 octets, as Caps
	// allows).
	NewAESCBC(key []byte) (CBC, error)
	// NewHMACSHA256 returns HMAC-SHA-256 under key, of any length (RFC
	// 2104 §2: longer than 64 octets is hashed first).
	NewHMACSHA256(key []byte) (MAC, error)
	// Random fills p from the engine's random number generator, when
	// Caps has Random.
	Random(p []byte) error
}

// CBC is AES in cipher block chaining mode (NIST SP 800-38A §6.2) under
// one key. No padding: ESP pads (RFC 4303 §2.4).
type CBC interface {
	// Encrypt writes the encryption of src under the 16-octet iv into
	// dst. len(src) is a multiple of 16 and len(dst) >= len(src); dst
	// and src are the same slice (in place) or do not overlap. iv is
	// not modified.
	Encrypt(dst, src, iv []byte) error
	// Decrypt is Encrypt's inverse, with the same rules.
	Decrypt(dst, src, iv []byte) error
}

// MAC is HMAC-SHA-256 under one key.
type MAC interface {
	// Sum writes the leftmost len(out) octets (1 to 32) of the HMAC of
	// data into out: truncation as RFC 2104 §5 and RFC 4868 §2.3 define
	// it. out may overlap data; it is written after data has been read.
	Sum(out, data []byte) error
	// Verify reports whether mac, 16 to 32 octets, equals the leftmost
	// len(mac) octets of data's HMAC, comparing in constant time. mac
	// may overlap data. Fewer than 16 octets is an error (RFC 2104 §5
	// asks for at least half the hash), never a short comparison.
	Verify(mac, data []byte) (bool, error)
}

// Sizes.
const (
	BlockSize = 16 // AES block and CBC IV
	HashSize  = 32 // SHA-256 output
	// MinVerify is the shortest MAC Verify accepts (RFC 2104 §5).
	MinVerify = HashSize / 2
)

// ErrLength reports a slice of the wrong length: a CBC input that is not
// a whole number of blocks, a short destination, an IV that is not 16
// octets, a MAC length out of range, or a buffer larger than a hardware
// engine's DMA area.
var ErrLength = errors.New("crypto/hw: bad length")
