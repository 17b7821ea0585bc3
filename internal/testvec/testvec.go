// Package testvec finds and loads the shared test vectors (Wycheproof JSON)
// for tests. The vectors live outside the repository, at ../shared/vectors
// from the repository root; when they are absent, tests skip with a message.
// It also holds the Wycheproof AEAD and MAC schemas and a tally of results
// that the primitives' tests share.
package testvec

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the directory holding
// go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// SharedDir returns ../shared/<sub> from the repository root, or skips the
// test when it is absent.
func SharedDir(t testing.TB, sub string) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared", sub)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test data %s is absent (%v); skipping", dir, err)
	}
	return dir
}

// Wycheproof decodes ../shared/vectors/wycheproof/<name> (e.g.
// "aes_ccm_test.json") into v, skipping the test when the file is absent.
func Wycheproof(t testing.TB, name string, v any) {
	t.Helper()
	path := filepath.Join(SharedDir(t, "vectors"), "wycheproof", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("Wycheproof vectors %s are absent (%v); skipping", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
}

// Hex is a byte string that Wycheproof files carry hex-encoded.
type Hex []byte

// UnmarshalJSON decodes a JSON string of hex digits.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// MustHex decodes a hex literal typed into a test table.
func MustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test table: %v", err)
	}
	return b
}
