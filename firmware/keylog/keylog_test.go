package keylog

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func TestRecordFormats(t *testing.T) {
	gcm := ESPSA{Src: gwA4, Dst: gwB4, SPI: 0xc1a2b3c4, Suite: espSuite(proposal.EncrAESGCM16, 128, 0, true),
		EncKey: keyBytes(20, 0x10)}
	line, err := ESPRecord(gcm)
	want := `"IPv4","203.0.113.1","203.0.113.2","0xc1a2b3c4","AES-GCM with 16 octet ICV [RFC4106]","0x` +
		"10171e252c333a41484f565d646b727980878e95" + `","NULL",""`
	if err != nil || line != want {
		t.Errorf("GCM record\n got %s\nwant %s (%v)", line, want, err)
	}
	cbc := ESPSA{Src: netip.AddrFrom16(gwA4.As16()), Dst: gwB6, SPI: 1, Suite: espSuite(proposal.EncrAESCBC, 256, proposal.IntegHMACSHA256128, false),
		EncKey: []byte{0xaa}, IntegKey: []byte{0xbb, 0xcc}}
	line, err = ESPRecord(cbc)
	want = `"IPv4","203.0.113.1","2001:db8::2","0x00000001","AES-CBC [RFC3602]","0xaa","HMAC-SHA-256-128 [RFC4868]","0xbbcc"`
	if err != nil || line != want {
		t.Errorf("CBC record (v4-mapped source)\n got %s\nwant %s (%v)", line, want, err)
	}
	cbc.Src = gwA6
	if line, _ := ESPRecord(cbc); !strings.HasPrefix(line, `"IPv6","2001:db8::1",`) {
		t.Errorf("IPv6 record %s", line)
	}
	ike := IKESA{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Suite: ikeSuite(proposal.EncrAESCBC, 256, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128),
		SKei: []byte{1, 2}, SKer: []byte{3}, SKai: []byte{4}, SKar: []byte{5, 6}}
	line, err = IKERecord(ike)
	want = `0123456789abcdef,fedcba9876543210,0102,03,"AES-CBC-256 [RFC3602]",04,0506,"HMAC_SHA2_256_128 [RFC4868]"`
	if err != nil || line != want {
		t.Errorf("IKE record\n got %s\nwant %s (%v)", line, want, err)
	}
	ike.Suite = ikeSuite(proposal.EncrAESGCM16, 128, proposal.PRFHMACSHA256, 0)
	ike.SKai, ike.SKar = nil, nil
	line, err = IKERecord(ike)
	want = `0123456789abcdef,fedcba9876543210,0102,03,"AES-GCM-128 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"`
	if err != nil || line != want {
		t.Errorf("IKE AEAD record\n got %s\nwant %s (%v)", line, want, err)
	}
	for _, s := range []proposal.Suite{
		ikeSuite(proposal.EncrChaCha20Poly13, 0, proposal.PRFHMACSHA256, 0),
		ikeSuite(proposal.EncrAESCBC, 128, proposal.PRFAES128XCBC, proposal.IntegAESXCBC96),
		ikeSuite(proposal.EncrAESCBC, 0, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128),
	} {
		if _, err := IKERecord(IKESA{Suite: s}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("IKE %v: %v", s, err)
		}
	}
	for _, s := range []proposal.Suite{
		espSuite(proposal.EncrAESCCM8, 128, 0, false),
		espSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACMD596, false),
	} {
		if _, err := ESPRecord(ESPSA{Suite: s, Src: gwA4, Dst: gwB4}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ESP %v: %v", s, err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriterFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	// A previous run's table is replaced at start.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ESPFile), []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := New(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ESPFile, IKEFile} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", name, fi.Mode(), err)
		}
		if got := readFile(t, path); got != header {
			t.Errorf("%s starts as %q", name, got)
		}
	}
	sa := func(spi uint32, key byte) ESPSA {
		return ESPSA{Src: gwA4, Dst: gwB4, SPI: spi, Suite: espSuite(proposal.EncrAESGCM16, 128, 0, false), EncKey: []byte{key}}
	}
	for _, s := range []ESPSA{sa(1, 0xa1), sa(2, 0xa2), sa(1, 0xb1)} {
		if err := w.AddESP(s); err != nil {
			t.Fatal(err)
		}
	}
	lines := records(t, filepath.Join(dir, ESPFile))
	if len(lines) != 2 || !strings.Contains(lines[0], `"0x00000002"`) || !strings.Contains(lines[1], `"0x00000001"`) ||
		!strings.Contains(lines[1], `"0xb1"`) {
		t.Errorf("replace: %q", lines)
	}
	// Same SPI, other direction: a different SA.
	rev := sa(1, 0xc1)
	rev.Src, rev.Dst = gwB4, gwA4
	// AH is not written; an unsupported suite becomes a comment.
	ah := sa(9, 0)
	ah.Suite = proposal.Suite{Protocol: proposal.ProtoAH, Integ: proposal.IntegHMACSHA256128}
	ccm := sa(10, 0)
	ccm.Suite = espSuite(proposal.EncrAESCCM16, 128, 0, false)
	if err := w.AddESP(rev); err != nil {
		t.Fatal(err)
	}
	if err := w.AddESP(ah); err != nil {
		t.Fatal(err)
	}
	if err := w.AddESP(ccm); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("CCM: %v", err)
	}
	text := readFile(t, filepath.Join(dir, ESPFile))
	// At most three entries: the oldest (SPI 2) went.
	if lines := records(t, filepath.Join(dir, ESPFile)); len(lines) != 2 || strings.Contains(text, `"0x00000002"`) ||
		!strings.Contains(text, "# ESP SA 0x0000000a 203.0.113.1 -> 203.0.113.2: keylog: Wireshark cannot decrypt this algorithm (encryption aes128ccm16)\n") ||
		strings.Contains(text, "0x00000009") {
		t.Errorf("esp_sa:\n%s", text)
	}
	if err := w.AddIKE(IKESA{SPIi: 1, SPIr: 2, Suite: ikeSuite(proposal.EncrAESGCM16, 256, proposal.PRFHMACSHA384, 0), SKei: []byte{1}, SKer: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddIKE(IKESA{SPIi: 1, SPIr: 2, Suite: ikeSuite(proposal.EncrAESGCM16, 256, proposal.PRFHMACSHA384, 0), SKei: []byte{3}, SKer: []byte{4}}); err != nil {
		t.Fatal(err)
	}
	if lines := records(t, filepath.Join(dir, IKEFile)); len(lines) != 1 || !strings.HasPrefix(lines[0], "0000000000000001,0000000000000002,03,04,") {
		t.Errorf("ikev2_decryption_table after a key update: %q", lines)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the two tables and no temporary files", len(entries))
	}
	for _, e := range entries {
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", e.Name(), fi.Mode())
		}
	}
}

func TestNewCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "keys")
	if _, err := New(dir, 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("directory mode %v, %v", fi.Mode(), err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file, 0); err == nil {
		t.Error("New on a regular file succeeded")
	}
}

// TestWriterConcurrent: the IKE goroutine and others may add at once.
func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	w, err := New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				spi := uint32(g*100 + i)
				if err := w.AddESP(ESPSA{Src: gwA4, Dst: gwB4, SPI: spi, Suite: espSuite(proposal.EncrAESGCM16, 128, 0, false), EncKey: []byte{1}}); err != nil {
					t.Error(err)
				}
				if err := w.AddIKE(IKESA{SPIi: uint64(spi), SPIr: 1, Suite: ikeSuite(proposal.EncrAESGCM16, 128, proposal.PRFHMACSHA256, 0)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(records(t, filepath.Join(dir, ESPFile))); n != 100 {
		t.Errorf("%d ESP records, want 100", n)
	}
	if n := len(records(t, filepath.Join(dir, IKEFile))); n != 100 {
		t.Errorf("%d IKE records, want 100", n)
	}
}
