package group

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// ecGroup describes one crypto/ecdh curve as IKEv2 carries it.
type ecGroup struct {
	curve    ecdh.Curve
	scalar   int  // octets of a private scalar
	topMask  byte // mask for the scalar's first octet (P-521 uses 1 bit of it)
	coord    int  // octets of one coordinate; 0 for X25519
	x25519   bool
	dataSize int // octets of Key Exchange Data
}

var ecGroups = map[proposal.KEID]ecGroup{
	proposal.KEECP256: {curve: ecdh.P256(), scalar: 32, topMask: 0xff, coord: 32, dataSize: 64},
	proposal.KEECP384: {curve: ecdh.P384(), scalar: 48, topMask: 0xff, coord: 48, dataSize: 96},
	proposal.KEECP521: {curve: ecdh.P521(), scalar: 66, topMask: 0x01, coord: 66, dataSize: 132},
	proposal.KEX25519: {curve: ecdh.X25519(), scalar: 32, topMask: 0xff, x25519: true, dataSize: 32},
}

type ecExchange struct {
	id     proposal.KEID
	g      ecGroup
	priv   *ecdh.PrivateKey
	public []byte
}

// maxScalarTries bounds rejection sampling. A candidate is rejected only
// when it is zero or not below the group order, which for these curves
// happens with probability below 2^-32 per try; a reader that keeps
// producing rejects is broken, and we say so instead of looping.
const maxScalarTries = 64

// newECDH draws the private scalar from rand itself: since Go 1.26
// ecdh.Curve.GenerateKey ignores its reader, and deterministic tests need
// an injected one. NewPrivateKey rejects zero and values not below the
// order, which makes this the rejection sampling of FIPS 186-5 A.4.2.
func newECDH(id proposal.KEID, rand io.Reader) (*ecExchange, error) {
	g := ecGroups[id]
	buf := make([]byte, g.scalar)
	defer clear(buf)
	for range maxScalarTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("group: %s private value: %w", id, err)
		}
		buf[0] &= g.topMask
		priv, err := g.curve.NewPrivateKey(buf)
		if err != nil {
			continue
		}
		pub := priv.PublicKey().Bytes()
		if !g.x25519 {
			pub = pub[1:] // RFC 5903 §7: no point-format octet
		}
		return &ecExchange{id: id, g: g, priv: priv, public: pub}, nil
	}
	return nil, fmt.Errorf("group: %s: random source gave %d unusable scalars", id, maxScalarTries)
}

func (e *ecExchange) Method() proposal.KEID { return e.id }
func (e *ecExchange) Public() []byte        { return e.public }

// Shared validates the peer's value and returns the secret: for ECP the
// x coordinate of the shared point, fixed length (RFC 5903 §7); for
// Curve25519 the 32-octet X25519 output (RFC 8031 §2). crypto/ecdh checks
// that an ECP point is on the curve and not the identity.
func (e *ecExchange) Shared(peer []byte) ([]byte, error) {
	if len(peer) != e.g.dataSize {
		return nil, fmt.Errorf("%w: %s wants %d octets, got %d", ErrPeerLength, e.id, e.g.dataSize, len(peer))
	}
	encoded := peer
	if !e.g.x25519 {
		encoded = make([]byte, 1+len(peer))
		encoded[0] = 4 // SEC 1 §2.3.3 uncompressed point
		copy(encoded[1:], peer)
	}
	pub, err := e.g.curve.NewPublicKey(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPeerValue, e.id, err)
	}
	z, err := e.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPeerValue, e.id, err)
	}
	// RFC 8031 §2.3: a low-order peer point gives an all-zero secret, which
	// MUST be rejected. crypto/ecdh already refuses it; this keeps the
	// requirement visible here and independent of the library.
	if e.g.x25519 && subtle.ConstantTimeCompare(z, make([]byte, len(z))) == 1 {
		return nil, fmt.Errorf("%w: %s shared secret is all zero", ErrPeerValue, e.id)
	}
	return z, nil
}
