package keymat

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Nonce lengths RFC 7296 §3.9 allows.
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// ErrNonce reports a nonce outside RFC 7296 §3.9's 16..256 octets.
var ErrNonce = errors.New("keymat: nonce must be 16 to 256 octets")

// IKEKeys is the key material of one generation of an IKE SA: the seven
// keys of RFC 7296 §2.14 and what later derivations need (the suite, the
// IKE_SA_INIT nonces and the SPIs). A new generation replaces it after each
// IKE_INTERMEDIATE key exchange (AddKeyExchange); a rekey creates the next
// IKE SA's (Rekey).
//
// The fields are exported for the Wireshark key table (save_keys) and for
// tests; the engine itself reaches keys through the methods.
type IKEKeys struct {
	Suite      proposal.Suite
	PRF        PRF
	Ni, Nr     []byte // IKE_SA_INIT nonces, kept for RFC 9370 §2.2.2 updates
	SPIi, SPIr uint64

	SKd        []byte // derives Child SA keys and later generations
	SKai, SKar []byte // integrity, initiator->responder and back (nil for AEAD)
	SKei, SKer []byte // encryption, with any salt (RFC 5282 §7)
	SKpi, SKpr []byte // AUTH payload MACs (RFC 7296 §2.15)

	// Sealing IV counters, shared by every Cipher made from this
	// generation, so two calls to Ciphers cannot repeat an IV.
	ivI2R, ivR2I ivCounter
}

// SKEYSEED computes prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14).
// For AES-XCBC-PRF-128 and AES-CMAC-PRF-128 only the first 64 bits of each
// nonce form the key, as §2.14 requires for historical compatibility.
func SKEYSEED(prf PRF, ni, nr, gir []byte) ([]byte, error) {
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	if prf.aesBased() {
		return prf.Compute(concat(ni[:8], nr[:8]), gir), nil
	}
	return prf.Compute(concat(ni, nr), gir), nil
}

// DeriveIKE computes the keys of a new IKE SA from the IKE_SA_INIT nonces,
// the shared secret of its key exchange and the SPIs (RFC 7296 §2.14):
//
//	SKEYSEED = prf(Ni | Nr, g^ir)
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
func DeriveIKE(s proposal.Suite, ni, nr, gir []byte, spii, spir uint64) (*IKEKeys, error) {
	prf, err := suitePRF(s)
	if err != nil {
		return nil, err
	}
	seed, err := SKEYSEED(prf, ni, nr, gir)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return expandIKE(s, prf, seed, ni, nr, spii, spir)
}

// AddKeyExchange returns the next generation after an IKE_INTERMEDIATE
// exchange that completed an additional key exchange with shared secret
// sk (RFC 9370 §2.2.2):
//
//	SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//	{SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+ (SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//
// Ni and Nr are still those of IKE_SA_INIT. The exchange that carried the
// key exchange stays protected by k; the new keys protect the next one.
// The receiver k is left intact so the engine can finish with it.
func (k *IKEKeys) AddKeyExchange(sk []byte) (*IKEKeys, error) {
	if len(sk) == 0 {
		return nil, errors.New("keymat: empty shared secret")
	}
	seed := k.PRF.Compute(k.SKd, sk, k.Ni, k.Nr)
	defer clear(seed)
	return expandIKE(k.Suite, k.PRF, seed, k.Ni, k.Nr, k.SPIi, k.SPIr)
}

// Rekey computes the keys of the IKE SA that replaces k in a
// CREATE_CHILD_SA exchange (RFC 7296 §2.18, RFC 9370 §2.2.4):
//
//	SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
//
// with the old SA's PRF, where SK(0) is g^ir (new) of the CREATE_CHILD_SA
// exchange and SK(1..n) come from any IKE_FOLLOWUP_KE exchanges; shared
// lists them in that order. Ni, Nr and the SPIs are the new ones; s is the
// new SA's suite, whose PRF expands the keys.
func (k *IKEKeys) Rekey(s proposal.Suite, ni, nr []byte, spii, spir uint64, shared ...[]byte) (*IKEKeys, error) {
	if len(shared) == 0 || len(shared[0]) == 0 {
		return nil, errors.New("keymat: rekeying an IKE SA needs the new key exchange's shared secret")
	}
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	prf, err := suitePRF(s)
	if err != nil {
		return nil, err
	}
	parts := [][]byte{shared[0], ni, nr}
	parts = append(parts, shared[1:]...)
	seed := k.PRF.Compute(k.SKd, parts...)
	defer clear(seed)
	return expandIKE(s, prf, seed, ni, nr, spii, spir)
}

func expandIKE(s proposal.Suite, prf PRF, skeyseed, ni, nr []byte, spii, spir uint64) (*IKEKeys, error) {
	if s.Protocol != proposal.ProtoIKE {
		return nil, fmt.Errorf("keymat: %s suite for an IKE SA", s.Protocol)
	}
	encLen, err := encrKeyLen(s)
	if err != nil {
		return nil, err
	}
	integLen, err := integKeyLen(s)
	if err != nil {
		return nil, err
	}
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[:8], spii)
	binary.BigEndian.PutUint64(spis[8:], spir)
	pk := prf.KeyLen()
	km, err := prf.Plus(skeyseed, 3*pk+2*integLen+2*encLen, ni, nr, spis[:])
	if err != nil {
		return nil, err
	}
	k := &IKEKeys{Suite: s, PRF: prf, Ni: clone(ni), Nr: clone(nr), SPIi: spii, SPIr: spir}
	take := func(n int) []byte {
		if n == 0 {
			return nil
		}
		b := km[:n:n]
		km = km[n:]
		return b
	}
	k.SKd = take(pk)
	k.SKai, k.SKar = take(integLen), take(integLen)
	k.SKei, k.SKer = take(encLen), take(encLen)
	k.SKpi, k.SKpr = take(pk), take(pk)
	return k, nil
}

// ChildKeys is the KEYMAT of one Child SA, split per RFC 7296 §2.17: keys
// for the initiator-to-responder SA come first, encryption before
// integrity, then the other direction's.
type ChildKeys struct {
	EncrI, IntegI []byte // protect traffic from the IKE initiator
	EncrR, IntegR []byte // protect traffic from the IKE responder
}

// ChildKeys derives a Child SA's keys (RFC 7296 §2.17, RFC 9370 §2.2.4):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                                 no PFS
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)                    PFS
//	KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))   additional key exchanges
//
// ni and nr are the nonces of the exchange that creates the SA: for the
// Child SA of IKE_AUTH those of IKE_SA_INIT (k.Ni, k.Nr). shared lists
// SK(0), SK(1), ... in order and is empty without PFS; a nil SK(0) means
// the exchange had no KE payload. esp is the ESP or AH suite; encryption
// keys include any salt (RFC 4106 §8.1).
func (k *IKEKeys) ChildKeys(esp proposal.Suite, ni, nr []byte, shared ...[]byte) (*ChildKeys, error) {
	if esp.Protocol != proposal.ProtoESP && esp.Protocol != proposal.ProtoAH {
		return nil, fmt.Errorf("keymat: %s suite for a Child SA", esp.Protocol)
	}
	if err := checkNonces(ni, nr); err != nil {
		return nil, err
	}
	encLen, err := encrKeyLen(esp)
	if err != nil {
		return nil, err
	}
	integLen, err := integKeyLen(esp)
	if err != nil {
		return nil, err
	}
	var seed [][]byte
	if len(shared) > 0 && len(shared[0]) > 0 {
		seed = append(seed, shared[0])
	}
	seed = append(seed, ni, nr)
	if len(shared) > 1 {
		seed = append(seed, shared[1:]...)
	}
	km, err := k.PRF.Plus(k.SKd, 2*(encLen+integLen), seed...)
	if err != nil {
		return nil, err
	}
	cut := func(n int) []byte {
		b := km[:n:n]
		km = km[n:]
		if n == 0 {
			return nil
		}
		return b
	}
	c := &ChildKeys{}
	c.EncrI, c.IntegI = cut(encLen), cut(integLen)
	c.EncrR, c.IntegR = cut(encLen), cut(integLen)
	return c, nil
}

// Wipe overwrites the keys when the SA is deleted. Go cannot promise that
// no other copy exists; this only shortens how long keys stay in memory.
func (k *IKEKeys) Wipe() {
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
}

// Wipe overwrites the keys once the data plane holds its own copy.
func (c *ChildKeys) Wipe() {
	for _, b := range [][]byte{c.EncrI, c.IntegI, c.EncrR, c.IntegR} {
		clear(b)
	}
}

func suitePRF(s proposal.Suite) (PRF, error) {
	if s.Protocol != proposal.ProtoIKE {
		return PRF{}, fmt.Errorf("keymat: %s suite for an IKE SA", s.Protocol)
	}
	return NewPRF(s.PRF)
}

// encrKeyLen is the keying material an encryption transform takes,
// salt included (proposal.EncrID.KeyLen); AH has none.
func encrKeyLen(s proposal.Suite) (int, error) {
	if s.Protocol == proposal.ProtoAH {
		return 0, nil
	}
	if _, ok := s.Encr.ID.Info(); !ok {
		return 0, fmt.Errorf("keymat: unsupported encryption %s", s.Encr.ID)
	}
	if !s.Encr.ID.ValidKeyBits(s.Encr.KeyBits) {
		return 0, fmt.Errorf("keymat: %s does not take a %d-bit key", s.Encr.ID, s.Encr.KeyBits)
	}
	return s.Encr.ID.KeyLen(s.Encr.KeyBits), nil
}

func integKeyLen(s proposal.Suite) (int, error) {
	if s.Integ == proposal.IntegNone {
		return 0, nil
	}
	info, ok := s.Integ.Info()
	if !ok {
		return 0, fmt.Errorf("keymat: unsupported integrity %s", s.Integ)
	}
	return info.KeyLen, nil
}

func checkNonces(ni, nr []byte) error {
	for _, n := range [][]byte{ni, nr} {
		if len(n) < MinNonceLen || len(n) > MaxNonceLen {
			return fmt.Errorf("%w (got %d)", ErrNonce, len(n))
		}
	}
	return nil
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
