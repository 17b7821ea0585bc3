package hw_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/crypto/hw/hwtest"
)

// TestSelfTestCatchesFaults: an engine that fails or corrupts any one
// operation fails the self-test, and the error says where.
func TestSelfTestCatchesFaults(t *testing.T) {
	for _, c := range []struct {
		op    hwtest.Op
		fault hwtest.Fault
		want  string
	}{
		{hwtest.OpEncrypt, hwtest.Corrupt, "RFC 3602 case 1: encrypt into a separate buffer: wrong output"},
		{hwtest.OpDecrypt, hwtest.Corrupt, "RFC 3602 case 1: decrypt into a separate buffer: wrong output"},
		{hwtest.OpSum, hwtest.Corrupt, "RFC 4231 case 1: sum of 32 octets: wrong output"},
		{hwtest.OpVerify, hwtest.Corrupt, "RFC 4231 case 1: verify 32 octets: accepted a wrong MAC"},
		{hwtest.OpEncrypt, hwtest.Fail, "RFC 3602 case 1: encrypt into a separate buffer: hwtest: injected engine failure"},
		{hwtest.OpDecrypt, hwtest.Fail, "decrypt into a separate buffer: hwtest: injected"},
		{hwtest.OpSum, hwtest.Fail, "RFC 4231 case 1: sum of 32 octets: hwtest: injected"},
		{hwtest.OpVerify, hwtest.Fail, "RFC 4231 case 1: verify 32 octets: hwtest: injected"},
		{hwtest.OpNewCBC, hwtest.Fail, "RFC 3602 case 1: new AES-CBC: hwtest: injected"},
		{hwtest.OpNewMAC, hwtest.Fail, "RFC 4231 case 1: new HMAC-SHA-256: hwtest: injected"},
	} {
		f := hwtest.New(hw.Soft(), "DCP")
		f.Inject(c.op, c.fault)
		err := hw.SelfTest(f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s fault %d: %v, want %q", c.op, c.fault, err, c.want)
		}
		if f.Calls(c.op) == 0 {
			t.Errorf("%s: never called", c.op)
		}
	}
}

// TestSelfTestCorruptionOnlyInPacket: an engine right on the short
// vectors but wrong on packet-sized buffers is caught by the
// packet-sized comparison.
func TestSelfTestCorruptionOnlyInPacket(t *testing.T) {
	e := &bigCorrupt{Engine: hw.Soft()}
	err := hw.SelfTest(e)
	if err == nil || !strings.Contains(err.Error(), "packet: encrypt 1504 octets: wrong output") {
		t.Fatalf("%v", err)
	}
}

// bigCorrupt flips a bit at offset 1024 of long CBC outputs, as a DMA
// engine that mishandles a page or chunk boundary would.
type bigCorrupt struct{ hw.Engine }

func (e *bigCorrupt) NewAESCBC(key []byte) (hw.CBC, error) {
	c, err := e.Engine.NewAESCBC(key)
	return bigCorruptCBC{c}, err
}

type bigCorruptCBC struct{ hw.CBC }

func (c bigCorruptCBC) Encrypt(dst, src, iv []byte) error {
	err := c.CBC.Encrypt(dst, src, iv)
	if len(src) > 1024 {
		dst[1024] ^= 0x10
	}
	return err
}

// TestSelfTestCaps: an engine must refuse, as unsupported, key sizes it
// does not claim, and must claim the ESP minimum.
func TestSelfTestCaps(t *testing.T) {
	f := hwtest.New(hw.Soft(), "DCP")
	f.SetCaps(hw.ESPMinimum) // but the soft engine underneath takes AES-192 keys
	if err := hw.SelfTest(f); err == nil || !strings.Contains(err.Error(), "AES-192-CBC is not in its caps") {
		t.Errorf("lying caps: %v", err)
	}
	f.SetCaps(hw.AES128CBC)
	if err := hw.SelfTest(f); err == nil || !strings.Contains(err.Error(), "offers aes128-cbc, needs at least aes128-cbc hmac-sha256") {
		t.Errorf("no HMAC: %v", err)
	}
}

func TestSelfTestRandom(t *testing.T) {
	f := hwtest.New(hw.Soft(), "CAAM")
	f.SetCaps(hw.Soft().Caps() | hw.Random)
	// The soft engine has no generator: the claim is caught.
	if err := hw.SelfTest(f); err == nil || !strings.Contains(err.Error(), "random:") {
		t.Errorf("unsupported random: %v", err)
	}
	f.Inject(hwtest.OpRandom, hwtest.Corrupt)
	if err := hw.SelfTest(f); err == nil || !strings.Contains(err.Error(), "random: two draws are equal") {
		t.Errorf("stuck random: %v", err)
	}
}

// logLines collects Select's console lines.
type logLines []string

func (l *logLines) log(s string) { *l = append(*l, s) }

func TestSelectFallsBack(t *testing.T) {
	bad := hwtest.New(hw.Soft(), "DCP")
	bad.Inject(hwtest.OpEncrypt, hwtest.Corrupt)
	var l logLines
	e, err := hw.Select([]hw.Engine{bad}, hw.Soft(), l.log)
	if err != nil || e.Name() != "soft" {
		t.Fatalf("got %v, %v", e, err)
	}
	want := "crypto: DCP self-test failed: RFC 3602 case 1: encrypt into a separate buffer: wrong output; using soft engine"
	if len(l) != 1 || l[0] != want {
		t.Fatalf("log %q, want %q", l, want)
	}
}

func TestSelectTakesPassingEngine(t *testing.T) {
	bad := hwtest.New(hw.Soft(), "CAAM")
	bad.Inject(hwtest.OpSum, hwtest.Fail)
	good := hwtest.New(hw.Soft(), "DCP")
	var l logLines
	e, err := hw.Select([]hw.Engine{bad, good}, hw.Soft(), l.log)
	if err != nil || e != hw.Engine(good) {
		t.Fatalf("got %v, %v", e, err)
	}
	if len(l) != 2 || !strings.HasSuffix(l[0], "; using DCP engine") ||
		l[1] != "crypto: using DCP engine (aes128-cbc aes192-cbc aes256-cbc hmac-sha256), self-test passed" {
		t.Fatalf("log %q", l)
	}
}

func TestSelectAbsent(t *testing.T) {
	var l logLines
	e, err := hw.Select([]hw.Engine{hw.Absent("DCP", "emulated SoC: QEMU models no DCP")}, hw.Soft(), l.log)
	if err != nil || e.Name() != "soft" {
		t.Fatalf("got %v, %v", e, err)
	}
	want := "crypto: DCP self-test failed: engine not present: emulated SoC: QEMU models no DCP; using soft engine"
	if len(l) != 1 || l[0] != want {
		t.Fatalf("log %q, want %q", l, want)
	}
}

func TestSelectTimesOut(t *testing.T) {
	stuck := hwtest.New(hw.Soft(), "DCP")
	stuck.Inject(hwtest.OpEncrypt, hwtest.Hang)
	defer stuck.Release() // lets the abandoned self-test finish
	var l logLines
	e, err := hw.SelectWithin([]hw.Engine{stuck}, hw.Soft(), l.log, 100*time.Millisecond)
	if err != nil || e.Name() != "soft" {
		t.Fatalf("got %v, %v", e, err)
	}
	if len(l) != 1 || l[0] != "crypto: DCP self-test failed: timed out after 100ms; using soft engine" {
		t.Fatalf("log %q", l)
	}
}

func TestSelectPanickingEngine(t *testing.T) {
	var l logLines
	e, err := hw.Select([]hw.Engine{panicky{hw.Soft()}}, hw.Soft(), l.log)
	if err != nil || e.Name() != "soft" {
		t.Fatalf("got %v, %v", e, err)
	}
	if len(l) != 1 || !strings.Contains(l[0], "self-test failed: panicked: out of DMA memory; using soft engine") {
		t.Fatalf("log %q", l)
	}
}

type panicky struct{ hw.Engine }

func (panicky) Name() string                     { return "CAAM" }
func (panicky) NewAESCBC([]byte) (hw.CBC, error) { panic("out of DMA memory") }

func TestSelectNoHardware(t *testing.T) {
	var l logLines
	e, err := hw.Select(nil, hw.Soft(), l.log)
	if err != nil || e.Name() != "soft" {
		t.Fatalf("got %v, %v", e, err)
	}
	if len(l) != 1 || l[0] != "crypto: using soft engine (aes128-cbc aes192-cbc aes256-cbc hmac-sha256), self-test passed; no hardware engine on this board" {
		t.Fatalf("log %q", l)
	}
}

// TestSelectFallbackFails: with no engine passing, not even the
// fallback, Select refuses rather than hand out broken crypto.
func TestSelectFallbackFails(t *testing.T) {
	soft := hwtest.New(hw.Soft(), "soft")
	soft.Inject(hwtest.OpVerify, hwtest.Corrupt)
	var l logLines
	e, err := hw.Select([]hw.Engine{hw.Absent("CAAM", "test")}, soft, l.log)
	if err == nil || e != nil {
		t.Fatalf("got %v, %v", e, err)
	}
	if len(l) != 2 || !strings.HasSuffix(l[1], "; no crypto engine left") {
		t.Fatalf("log %q", l)
	}
	if !strings.Contains(err.Error(), "soft engine failed its self-test") {
		t.Fatalf("%v", err)
	}
}

// TestAbsentOperationsFail: an Absent engine that reaches the data path
// without Select still fails every operation.
func TestAbsentOperationsFail(t *testing.T) {
	a := hw.Absent("DCP", "test")
	if _, err := hw.NewESPCBC(a, make([]byte, 16), make([]byte, 32)); !errors.Is(err, hw.ErrAbsent) {
		t.Errorf("NewESPCBC: %v", err)
	}
	if _, err := a.NewHMACSHA256(nil); !errors.Is(err, hw.ErrAbsent) {
		t.Errorf("NewHMACSHA256: %v", err)
	}
	if err := a.Random(make([]byte, 4)); !errors.Is(err, hw.ErrAbsent) {
		t.Errorf("Random: %v", err)
	}
}
