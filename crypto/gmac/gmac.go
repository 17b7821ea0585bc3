// Package gmac computes AES-GMAC (RFC 4543): GCM (NIST SP 800-38D) with an
// empty plaintext, so that everything authenticated is additional data
// and the 16-octet tag is the only output.
//
// AH uses it as AUTH_AES_*_GMAC and ESP as ENCR_NULL_AUTH_AES_GMAC, both
// with a 12-octet nonce: a 4-octet salt from the key material and the
// 8-octet IV carried in the packet (RFC 4543). The package adds no
// primitive; it is the one tested place where GMAC is built on
// crypto/cipher's GCM.
package gmac

import (
	"crypto/aes"
	"crypto/cipher"
)

// TagSize is the tag size in octets; RFC 4543 uses only full tags.
const TagSize = 16

// GMAC authenticates data under one AES key. It allocates nothing when
// Tag's dst has room, and like crypto/cipher's GCM it is safe for
// concurrent use.
type GMAC struct {
	gcm cipher.AEAD
}

// New returns AES-GMAC keyed by a 16-, 24- or 32-octet AES key, for nonces
// of nonceSize octets (12 for IPsec).
func New(key []byte, nonceSize int) (*GMAC, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(b, nonceSize)
	if err != nil {
		return nil, err
	}
	return &GMAC{gcm: gcm}, nil
}

// NonceSize returns the nonce size New was given.
func (g *GMAC) NonceSize() int { return g.gcm.NonceSize() }

// Tag appends the 16-octet tag of data under nonce to dst. nonce must be
// NonceSize octets; another length is a programmer error and panics, as
// with cipher.AEAD.
func (g *GMAC) Tag(dst, nonce, data []byte) []byte {
	return g.gcm.Seal(dst, nonce, nil, data)
}

// Verify reports, in constant time, whether tag is the tag of data under
// nonce. A tag or nonce of the wrong length fails rather than panics: both
// may come from a packet.
func (g *GMAC) Verify(nonce, data, tag []byte) bool {
	// The length check matters beyond tidiness: GCM would read a longer
	// "tag" as ciphertext followed by a tag, and accept a GCM encryption
	// of a non-empty message as a GMAC tag.
	if len(tag) != TagSize || len(nonce) != g.gcm.NonceSize() {
		return false
	}
	_, err := g.gcm.Open(nil, nonce, tag, data)
	return err == nil
}
