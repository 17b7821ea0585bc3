package group

import (
	"crypto/subtle"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// modpGroup is one MODP group: a safe prime p = 2q+1 with generator 2.
type modpGroup struct {
	p       *big.Int
	pMinus1 *big.Int
	size    int // octets of p, and so of every public value and secret
	expBits int // private exponent length
}

// The private exponent has twice the group's security strength in bits,
// the minimum NIST SP 800-56A Rev. 3 §5.6.1.1.4 allows for safe-prime
// groups (strengths from SP 800-57 Part 1 Table 2; groups 2 and 5 predate
// it and get 80 and 96). 2 generates the order-q subgroup of these primes,
// and q is far above 2^expBits, so every exponent is a valid key.
var modpGroups = map[proposal.KEID]*modpGroup{
	proposal.KEMODP1024: mustGroup(modp1024Hex, 80),
	proposal.KEMODP1536: mustGroup(modp1536Hex, 96),
	proposal.KEMODP2048: mustGroup(modp2048Hex, 112),
	proposal.KEMODP3072: mustGroup(modp3072Hex, 128),
	proposal.KEMODP4096: mustGroup(modp4096Hex, 152),
	proposal.KEMODP6144: mustGroup(modp6144Hex, 176),
	proposal.KEMODP8192: mustGroup(modp8192Hex, 200),
}

func mustGroup(hexDigits string, security int) *modpGroup {
	p, ok := new(big.Int).SetString(strings.Join(strings.Fields(hexDigits), ""), 16)
	if !ok {
		panic("group: malformed MODP prime constant")
	}
	return &modpGroup{
		p:       p,
		pMinus1: new(big.Int).Sub(p, big.NewInt(1)),
		size:    (p.BitLen() + 7) / 8,
		expBits: 2 * security,
	}
}

var two = big.NewInt(2)

// modp is one MODP Diffie-Hellman exchange. math/big is not constant
// time; the exponent is ephemeral (one exchange) and never reused, which
// limits what a timing observer can learn to one exchange's secret.
type modp struct {
	id     proposal.KEID
	g      *modpGroup
	x      *big.Int
	public []byte
}

func newMODP(id proposal.KEID, rand io.Reader) (*modp, error) {
	g := modpGroups[id]
	buf := make([]byte, (g.expBits+7)/8)
	defer clear(buf)
	x := new(big.Int)
	for range maxScalarTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("group: %s private value: %w", id, err)
		}
		if extra := len(buf)*8 - g.expBits; extra > 0 {
			buf[0] &= 0xff >> extra
		}
		if x.SetBytes(buf).Sign() == 0 {
			continue
		}
		y := new(big.Int).Exp(two, x, g.p)
		return &modp{id: id, g: g, x: x, public: y.FillBytes(make([]byte, g.size))}, nil
	}
	return nil, fmt.Errorf("group: %s: random source gave %d zero exponents", id, maxScalarTries)
}

func (m *modp) Method() proposal.KEID { return m.id }
func (m *modp) Public() []byte        { return m.public }

// Shared checks the peer value as RFC 7296 §2.12 and SP 800-56A Rev. 3
// §5.6.2.3.1 ask: exactly the length of p (RFC 7296 §3.4 pads with zeros)
// and 1 < y < p-1, which rejects 0, 1, p-1 and anything >= p. The secret is
// padded to the length of p, as SKEYSEED needs it (RFC 7296 §2.14).
func (m *modp) Shared(peer []byte) ([]byte, error) {
	if len(peer) != m.g.size {
		return nil, fmt.Errorf("%w: %s wants %d octets, got %d", ErrPeerLength, m.id, m.g.size, len(peer))
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(m.g.pMinus1) >= 0 {
		return nil, fmt.Errorf("%w: %s public value outside 1 < y < p-1", ErrPeerValue, m.id)
	}
	z := new(big.Int).Exp(y, m.x, m.g.p).FillBytes(make([]byte, m.g.size))
	// y of order q cannot give 1 for 0 < x < q; the check costs nothing
	// and keeps a broken exponent from yielding a known secret.
	one := make([]byte, m.g.size)
	one[len(one)-1] = 1
	if subtle.ConstantTimeCompare(z, one) == 1 {
		return nil, fmt.Errorf("%w: %s shared secret is 1", ErrPeerValue, m.id)
	}
	return z, nil
}
