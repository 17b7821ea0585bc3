package hw

import (
	"errors"
	"fmt"
)

// ESP's AUTH_HMAC_SHA2_256_128 (RFC 4868): a 256-bit key (§2.1.1) and
// the HMAC truncated to its leftmost 128 bits as the ICV (§2.3).
const (
	IntegKeyLen = 32
	ICVLen      = 16
)

// ESPCBC is one ESP SA's ENCR_AES_CBC (RFC 3602) and
// AUTH_HMAC_SHA2_256_128 (RFC 4868) on an engine: what the ipsec data
// plane calls instead of Go's crypto when its Config names an engine.
// The SA still owns the IVs (RFC 3602 §2.2: random) and the ESP layout;
// ESPCBC only encrypts and authenticates the slices it is given.
//
// It is safe for concurrent use, adds no allocation to the engine's, and
// passes every engine error up: the caller drops the packet and counts
// it.
type ESPCBC struct {
	engine string
	cbc    CBC
	mac    MAC
}

// NewESPCBC prepares an SA's keys on e. When e cannot do AES-CBC with a
// key of len(encKey) octets, or HMAC-SHA-256, the error wraps
// errors.ErrUnsupported, and the caller uses Go's crypto for this SA.
func NewESPCBC(e Engine, encKey, integKey []byte) (*ESPCBC, error) {
	caps := e.Caps()
	if !caps.AESKey(len(encKey)) || !caps.Has(HMACSHA256) {
		return nil, fmt.Errorf("crypto/hw: %s engine (%s) cannot do AES-CBC with a %d-octet key and HMAC-SHA-256: %w",
			e.Name(), caps, len(encKey), errors.ErrUnsupported)
	}
	if len(integKey) != IntegKeyLen {
		return nil, fmt.Errorf("%w: AUTH_HMAC_SHA2_256_128 key of %d octets, want %d", ErrLength, len(integKey), IntegKeyLen)
	}
	cbc, err := e.NewAESCBC(encKey)
	if err != nil {
		return nil, fmt.Errorf("crypto/hw: %s engine: %w", e.Name(), err)
	}
	mac, err := e.NewHMACSHA256(integKey)
	if err != nil {
		return nil, fmt.Errorf("crypto/hw: %s engine: %w", e.Name(), err)
	}
	return &ESPCBC{engine: e.Name(), cbc: cbc, mac: mac}, nil
}

// Engine names the engine the SA runs on.
func (t *ESPCBC) Engine() string { return t.engine }

// Encrypt encrypts p, whole blocks, in place under the 16-octet iv.
func (t *ESPCBC) Encrypt(p, iv []byte) error { return t.cbc.Encrypt(p, p, iv) }

// Decrypt decrypts p, whole blocks, in place under the 16-octet iv.
func (t *ESPCBC) Decrypt(p, iv []byte) error { return t.cbc.Decrypt(p, p, iv) }

// Sign writes the ICV of data into icv[:ICVLen]. icv may overlap data:
// ESN's high sequence half travels in the ICV field while it is
// computed (RFC 4303 §2.2.1).
func (t *ESPCBC) Sign(icv, data []byte) error {
	if len(icv) < ICVLen {
		return fmt.Errorf("%w: ICV field of %d octets", ErrLength, len(icv))
	}
	return t.mac.Sum(icv[:ICVLen], data)
}

// Verify reports, in constant time, whether icv[:ICVLen] is data's ICV.
func (t *ESPCBC) Verify(icv, data []byte) (bool, error) {
	if len(icv) < ICVLen {
		return false, fmt.Errorf("%w: ICV field of %d octets", ErrLength, len(icv))
	}
	return t.mac.Verify(icv[:ICVLen], data)
}
