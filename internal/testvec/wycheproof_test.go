package testvec

import (
	"encoding/json"
	"testing"
)

func TestResultDecoding(t *testing.T) {
	for in, want := range map[string]Result{`"valid"`: Valid, `"invalid"`: Invalid, `"acceptable"`: Acceptable} {
		var r Result
		if err := json.Unmarshal([]byte(in), &r); err != nil || r != want {
			t.Errorf("%s: %q, %v", in, r, err)
		}
	}
	for _, in := range []string{`"Valid"`, `""`, `"unknown"`, `1`} {
		var r Result
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("%s decoded as %q", in, r)
		}
	}
}

func TestAEADTestDecodingAndSealed(t *testing.T) {
	var f AEADFile
	in := `{"numberOfTests": 1, "testGroups": [{"ivSize": 96, "keySize": 128, "tagSize": 128, "tests": [
		{"tcId": 7, "comment": "c", "key": "00", "iv": "01", "aad": "", "msg": "02", "ct": "0304", "tag": "0506", "result": "valid"}]}]}`
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	tc := &f.TestGroups[0].Tests[0]
	if f.NumberOfTests != 1 || f.TestGroups[0].IVSize != 96 || tc.TcID != 7 || tc.Result != Valid || len(tc.AAD) != 0 {
		t.Fatalf("decoded %+v", f)
	}
	sealed := tc.Sealed()
	if string(sealed) != "\x03\x04\x05\x06" {
		t.Fatalf("Sealed = %x", sealed)
	}
	sealed[0] = 0xff
	if tc.CT[0] != 3 {
		t.Fatal("Sealed shares its memory with ct")
	}
}

func TestTally(t *testing.T) {
	var n Tally
	for _, r := range []Result{Valid, Invalid, Valid} {
		n.Count(t, "test", r)
	}
	if n.Valid != 2 || n.Invalid != 1 || n.Total() != 3 || n.String() != "3 tests, 2 valid, 1 invalid" {
		t.Fatalf("tally %+v, %q", n, n)
	}
	n.RanAll(t, "file", 3)
}
