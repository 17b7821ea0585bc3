package group

import (
	"crypto/mlkem"
	"fmt"
	"io"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// FIPS 203 §8 Table 3 sizes, which draft-ietf-ipsecme-ikev2-mlkem puts
// unchanged in the KE payloads.
const (
	mlkemSeedLen           = mlkem.SeedSize // d | z, FIPS 203 §7.1
	mlkem768EncapKeyLen    = mlkem.EncapsulationKeySize768
	mlkem768CiphertextLen  = mlkem.CiphertextSize768
	mlkem1024EncapKeyLen   = mlkem.EncapsulationKeySize1024
	mlkem1024CiphertextLen = mlkem.CiphertextSize1024
)

// decapsulator is the one method both ML-KEM key sizes share.
type decapsulator interface {
	Decapsulate(ciphertext []byte) ([]byte, error)
}

// mlkemExchange is the initiator's side of an ML-KEM exchange: it holds
// the decapsulation key and sends the encapsulation key.
type mlkemExchange struct {
	id     proposal.KEID
	dk     decapsulator
	public []byte
	ctLen  int
}

// newMLKEM derives the key pair from a 64-octet seed read from rand
// (ML-KEM.KeyGen_internal, FIPS 203 §6.1), so an injected reader decides
// the key, as it does for the other groups.
func newMLKEM(id proposal.KEID, rand io.Reader) (*mlkemExchange, error) {
	seed := make([]byte, mlkemSeedLen)
	defer clear(seed)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("group: %s seed: %w", id, err)
	}
	return mlkemFromSeed(id, seed)
}

func mlkemFromSeed(id proposal.KEID, seed []byte) (*mlkemExchange, error) {
	switch id {
	case proposal.KEMLKEM768:
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, fmt.Errorf("group: %s: %w", id, err)
		}
		return &mlkemExchange{id: id, dk: dk, public: dk.EncapsulationKey().Bytes(), ctLen: mlkem768CiphertextLen}, nil
	case proposal.KEMLKEM1024:
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, fmt.Errorf("group: %s: %w", id, err)
		}
		return &mlkemExchange{id: id, dk: dk, public: dk.EncapsulationKey().Bytes(), ctLen: mlkem1024CiphertextLen}, nil
	}
	return nil, fmt.Errorf("group: %s is not ML-KEM", id)
}

func (m *mlkemExchange) Method() proposal.KEID { return m.id }

// Public is the encapsulation key (ek) the initiator sends.
func (m *mlkemExchange) Public() []byte { return m.public }

// Shared decapsulates the responder's ciphertext. A ciphertext of the
// right length never fails: ML-KEM's implicit rejection turns a forged one
// into an unrelated secret, which then fails the AUTH check.
func (m *mlkemExchange) Shared(peer []byte) ([]byte, error) {
	if len(peer) != m.ctLen {
		return nil, fmt.Errorf("%w: %s ciphertext wants %d octets, got %d", ErrPeerLength, m.id, m.ctLen, len(peer))
	}
	k, err := m.dk.Decapsulate(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPeerValue, m.id, err)
	}
	return k, nil
}

// encapsulate is the responder's side: it checks the initiator's
// encapsulation key (length and the FIPS 203 §7.2 modulus check, done by
// crypto/mlkem) and returns the ciphertext and the shared key.
func encapsulate(id proposal.KEID, peer []byte) (ciphertext, shared []byte, err error) {
	switch id {
	case proposal.KEMLKEM768:
		if len(peer) != mlkem768EncapKeyLen {
			return nil, nil, fmt.Errorf("%w: %s encapsulation key wants %d octets, got %d", ErrPeerLength, id, mlkem768EncapKeyLen, len(peer))
		}
		ek, err := mlkem.NewEncapsulationKey768(peer)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrPeerValue, id, err)
		}
		shared, ciphertext = ek.Encapsulate()
		return ciphertext, shared, nil
	case proposal.KEMLKEM1024:
		if len(peer) != mlkem1024EncapKeyLen {
			return nil, nil, fmt.Errorf("%w: %s encapsulation key wants %d octets, got %d", ErrPeerLength, id, mlkem1024EncapKeyLen, len(peer))
		}
		ek, err := mlkem.NewEncapsulationKey1024(peer)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrPeerValue, id, err)
		}
		shared, ciphertext = ek.Encapsulate()
		return ciphertext, shared, nil
	}
	return nil, nil, fmt.Errorf("group: %s is not ML-KEM", id)
}
