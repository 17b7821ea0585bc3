package testvec

import (
	"encoding/json"
	"fmt"
	"testing"
)

// Result is the outcome a Wycheproof test expects of the primitive.
type Result string

// The three results Wycheproof uses. An acceptable test is one the
// primitive may accept or refuse; its flags say why.
const (
	Valid      Result = "valid"
	Invalid    Result = "invalid"
	Acceptable Result = "acceptable"
)

// UnmarshalJSON accepts only the three results, so that a file with some
// other verdict fails to load instead of passing as "not invalid".
func (r *Result) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	switch v := Result(s); v {
	case Valid, Invalid, Acceptable:
		*r = v
		return nil
	}
	return fmt.Errorf("unknown Wycheproof result %q", s)
}

// AEADFile is a file of Wycheproof's aead_test_schema (aes_ccm_test.json,
// aes_gcm_test.json, chacha20_poly1305_test.json).
type AEADFile struct {
	NumberOfTests int         `json:"numberOfTests"`
	TestGroups    []AEADGroup `json:"testGroups"`
}

// AEADGroup holds the tests of one key, nonce and tag size, in bits.
type AEADGroup struct {
	IVSize  int        `json:"ivSize"`
	KeySize int        `json:"keySize"`
	TagSize int        `json:"tagSize"`
	Tests   []AEADTest `json:"tests"`
}

// AEADTest is one AEAD test: msg under key, iv and aad seals to ct and tag.
type AEADTest struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Key     Hex    `json:"key"`
	IV      Hex    `json:"iv"`
	AAD     Hex    `json:"aad"`
	Msg     Hex    `json:"msg"`
	CT      Hex    `json:"ct"`
	Tag     Hex    `json:"tag"`
	Result  Result `json:"result"`
}

// Sealed returns ct||tag in a new slice, as crypto/cipher's Seal returns
// it and Open takes it.
func (tc *AEADTest) Sealed() []byte {
	return append(append(make([]byte, 0, len(tc.CT)+len(tc.Tag)), tc.CT...), tc.Tag...)
}

// MACFile is a file of Wycheproof's mac_test_schema (aes_cmac_test.json,
// hmac_sha*_test.json).
type MACFile struct {
	NumberOfTests int        `json:"numberOfTests"`
	TestGroups    []MACGroup `json:"testGroups"`
}

// MACGroup holds the tests of one key and tag size, in bits.
type MACGroup struct {
	KeySize int       `json:"keySize"`
	TagSize int       `json:"tagSize"`
	Tests   []MACTest `json:"tests"`
}

// MACTest is one MAC test: msg under key has the tag (for a valid test).
type MACTest struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Key     Hex    `json:"key"`
	Msg     Hex    `json:"msg"`
	Tag     Hex    `json:"tag"`
	Result  Result `json:"result"`
}

// MACWithIVFile is a file of Wycheproof's mac_with_iv_test_schema
// (aes_gmac_test.json).
type MACWithIVFile struct {
	NumberOfTests int              `json:"numberOfTests"`
	TestGroups    []MACWithIVGroup `json:"testGroups"`
}

// MACWithIVGroup holds the tests of one key, IV and tag size, in bits.
type MACWithIVGroup struct {
	KeySize int             `json:"keySize"`
	IVSize  int             `json:"ivSize"`
	TagSize int             `json:"tagSize"`
	Tests   []MACWithIVTest `json:"tests"`
}

// MACWithIVTest is one MAC test with a nonce: msg under key and iv has
// the tag (for a valid test).
type MACWithIVTest struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Key     Hex    `json:"key"`
	IV      Hex    `json:"iv"`
	Msg     Hex    `json:"msg"`
	Tag     Hex    `json:"tag"`
	Result  Result `json:"result"`
}

// Tally counts the tests a check has run, for checks that know only
// valid and invalid tests, and proves at the end that the check ran every
// test its file declares.
type Tally struct {
	Valid, Invalid int
}

// Count counts one test, named in messages by name. An acceptable test
// fails the test: the check has no rule for it.
func (n *Tally) Count(t testing.TB, name string, r Result) {
	t.Helper()
	switch r {
	case Valid:
		n.Valid++
	case Invalid:
		n.Invalid++
	default:
		t.Fatalf("%s: unexpected result %q", name, r)
	}
}

// Total is the number of tests counted.
func (n Tally) Total() int { return n.Valid + n.Invalid }

// RanAll fails the test unless the tally counted the declared number of
// tests of file (its numberOfTests).
func (n Tally) RanAll(t testing.TB, file string, declared int) {
	t.Helper()
	if n.Total() != declared {
		t.Fatalf("%s: ran %d tests, file declares %d", file, n.Total(), declared)
	}
}

// String reads "552 tests, 405 valid, 147 invalid".
func (n Tally) String() string {
	return fmt.Sprintf("%d tests, %d valid, %d invalid", n.Total(), n.Valid, n.Invalid)
}
