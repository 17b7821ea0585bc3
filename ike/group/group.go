// Package group implements the IKEv2 key exchange methods (transform type 4
// and the RFC 9370 additional key exchanges 6..12) behind one interface:
//
//   - MODP Diffie-Hellman, RFC 3526 groups 14-18 and the legacy groups 2
//     (RFC 2409) and 5 (RFC 3526), with the public value checks of
//     RFC 7296 §2.12 and NIST SP 800-56A Rev. 3 §5.6.2.3.1;
//   - ECP groups 19-21 (RFC 5903: x|y without a point-format octet, and the
//     x coordinate as the shared secret), validated by crypto/ecdh;
//   - Curve25519, group 31 (RFC 8031, with the all-zero secret check);
//   - ML-KEM-768 and ML-KEM-1024, 36 and 37, as additional key exchanges
//     (RFC 9370, draft-ietf-ipsecme-ikev2-mlkem): the initiator sends an
//     encapsulation key, the responder a ciphertext.
//
// Every method fits the same two calls. The initiator calls New, sends
// Public in its KE payload and completes with Shared on the responder's KE
// data. The responder calls Respond once with the initiator's KE data; it
// gets its own KE data and the shared secret together. For Diffie-Hellman
// the two sides are symmetric; for a KEM they are not, and Respond hides the
// difference.
package group

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Exchange is the initiator's side of one key exchange.
type Exchange interface {
	// Method is the transform ID this exchange implements.
	Method() proposal.KEID
	// Public is the Key Exchange Data for our KE payload (RFC 7296 §3.4).
	// The slice belongs to the Exchange; callers copy it before changing it.
	Public() []byte
	// Shared validates the peer's Key Exchange Data and returns the shared
	// secret (g^ir, or the KEM shared key). An invalid peer value is an
	// error, never a panic.
	Shared(peer []byte) ([]byte, error)
}

// Errors callers may match to choose a notify: a peer value of the wrong
// length (INVALID_SYNTAX) or outside the group (the exchange fails).
var (
	ErrPeerLength = errors.New("group: peer key exchange data has the wrong length")
	ErrPeerValue  = errors.New("group: peer key exchange data is not a valid group element")
)

// New begins a key exchange as the initiator. rand supplies the private
// value; nil means crypto/rand. Legacy groups are refused unless
// pol.AllowLegacy is set, so a policy change cannot be bypassed here.
func New(id proposal.KEID, pol proposal.Policy, rand io.Reader) (Exchange, error) {
	if err := admit(id, pol); err != nil {
		return nil, err
	}
	rand = orDefault(rand)
	switch id {
	case proposal.KEMODP1024, proposal.KEMODP1536, proposal.KEMODP2048,
		proposal.KEMODP3072, proposal.KEMODP4096, proposal.KEMODP6144, proposal.KEMODP8192:
		return newMODP(id, rand)
	case proposal.KEECP256, proposal.KEECP384, proposal.KEECP521, proposal.KEX25519:
		return newECDH(id, rand)
	case proposal.KEMLKEM768, proposal.KEMLKEM1024:
		return newMLKEM(id, rand)
	}
	return nil, fmt.Errorf("group: unsupported key exchange %s", id)
}

// Respond is the responder's whole side of a key exchange: it validates
// the initiator's Key Exchange Data and returns our own KE data and the
// shared secret. For ML-KEM it encapsulates to the initiator's key; Go's
// crypto/mlkem draws that randomness itself, so rand is not used there.
func Respond(id proposal.KEID, pol proposal.Policy, rand io.Reader, peer []byte) (public, shared []byte, err error) {
	if err := admit(id, pol); err != nil {
		return nil, nil, err
	}
	if id == proposal.KEMLKEM768 || id == proposal.KEMLKEM1024 {
		return encapsulate(id, peer)
	}
	x, err := New(id, pol, rand)
	if err != nil {
		return nil, nil, err
	}
	shared, err = x.Shared(peer)
	if err != nil {
		return nil, nil, err
	}
	return x.Public(), shared, nil
}

// DataLen is the length of the Key Exchange Data that the initiator
// (initiator=true) or the responder sends for id, so a parser can reject a
// KE payload before any arithmetic. ok is false for unsupported methods.
func DataLen(id proposal.KEID, initiator bool) (n int, ok bool) {
	switch id {
	case proposal.KEMODP1024:
		return 128, true
	case proposal.KEMODP1536:
		return 192, true
	case proposal.KEMODP2048:
		return 256, true
	case proposal.KEMODP3072:
		return 384, true
	case proposal.KEMODP4096:
		return 512, true
	case proposal.KEMODP6144:
		return 768, true
	case proposal.KEMODP8192:
		return 1024, true
	case proposal.KEECP256:
		return 64, true
	case proposal.KEECP384:
		return 96, true
	case proposal.KEECP521:
		return 132, true
	case proposal.KEX25519:
		return 32, true
	case proposal.KEMLKEM768:
		if initiator {
			return mlkem768EncapKeyLen, true
		}
		return mlkem768CiphertextLen, true
	case proposal.KEMLKEM1024:
		if initiator {
			return mlkem1024EncapKeyLen, true
		}
		return mlkem1024CiphertextLen, true
	}
	return 0, false
}

func admit(id proposal.KEID, pol proposal.Policy) error {
	info, ok := id.Info()
	if !ok {
		return fmt.Errorf("group: unsupported key exchange %s", id)
	}
	if info.Legacy && !pol.AllowLegacy {
		return fmt.Errorf("group: %s is legacy; set allow_legacy to use it", id)
	}
	return nil
}

func orDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
