// Package keylog writes the keys of bitw's SAs in the two files Wireshark
// reads to decrypt a capture ([device] save_keys): esp_sa, the ESP SA
// table, and ikev2_decryption_table, the IKEv2 SA table. Both are
// Wireshark "user access table" files, read from a profile directory or
// passed line by line as -o uat:esp_sa:LINE (and
// -o esp.enable_encryption_decode:TRUE for ESP).
//
// The files let anyone who reads them decrypt the traffic: saving keys is
// off by default, the runtime warns loudly when it is on, and the files
// are 0600 in a 0700 directory. Each change rewrites a file completely
// (temporary file and rename), so a reader never sees half a table. An
// SA's line is replaced when the SA is written again under the same SPIs
// (a new key generation after IKE_INTERMEDIATE), and kept after the SA is
// deleted, because the keys are needed for captures made while it lived;
// the oldest lines go once a table holds MaxRecords.
//
// Algorithm names are those of Debian 12's Wireshark 4.0, as verified by
// having tshark decrypt packets (keylog_test.go). SAs whose algorithms
// Wireshark 4.0 cannot decrypt (AES-CCM and ChaCha20-Poly1305 in ESP,
// ChaCha20-Poly1305, AES-XCBC and AES-CMAC in IKE) are listed as comment
// lines, and the Add methods return an error wrapping ErrUnsupported.
package keylog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// File names, as Wireshark names the tables in a profile directory.
const (
	ESPFile  = "esp_sa"
	IKEFile  = "ikev2_decryption_table"
	header   = "# Written by bitw (save_keys). These keys decrypt the traffic: keep this file secret.\n"
	fileMode = 0o600
	dirMode  = 0o700
)

// DefaultMaxRecords bounds each table; at one Child SA rekey an hour that is
// weeks of history.
const DefaultMaxRecords = 4096

// ErrUnsupported means Wireshark 4.0 cannot decrypt the SA's algorithms.
var ErrUnsupported = errors.New("keylog: Wireshark cannot decrypt this algorithm")

// ESPSA is one direction of a Child SA: what Wireshark needs to decrypt
// the packets carrying SPI from Src to Dst.
type ESPSA struct {
	Src, Dst netip.Addr // outer addresses
	SPI      uint32
	Suite    proposal.Suite
	// EncKey is the encryption key followed by any salt or nonce (RFC
	// 4106 §8.1, RFC 3686 §5.1), as the data plane takes it; IntegKey the
	// integrity key, empty for AEAD.
	EncKey, IntegKey []byte
}

// IKESA is one generation of an IKE SA's keys (RFC 7296 §2.14).
type IKESA struct {
	SPIi, SPIr uint64
	Suite      proposal.Suite
	// SKei and SKer include the salt of AEAD ciphers (RFC 5282 §7) and the
	// nonce of AES-CTR (RFC 5930 §2); SKai and SKar are empty for AEAD.
	SKei, SKer, SKai, SKar []byte
}

// Writer keeps both tables of one save_keys directory. It is safe for
// concurrent use.
type Writer struct {
	dir        string
	maxRecords int

	mu  sync.Mutex
	esp table
	ike table
}

// table is a file's records in insertion order, each under a key that a
// newer record with the same SPIs replaces.
type table struct {
	keys  []string
	lines map[string]string
}

func (t *table) put(key, line string, maxRecords int) {
	if t.lines == nil {
		t.lines = make(map[string]string)
	}
	if _, ok := t.lines[key]; ok {
		// Move it to the end: the newest generation is kept longest.
		for i, k := range t.keys {
			if k == key {
				t.keys = append(t.keys[:i], t.keys[i+1:]...)
				break
			}
		}
	}
	t.keys = append(t.keys, key)
	t.lines[key] = line
	for len(t.keys) > maxRecords {
		delete(t.lines, t.keys[0])
		t.keys = t.keys[1:]
	}
}

func (t *table) render() []byte {
	var b strings.Builder
	b.WriteString(header)
	for _, k := range t.keys {
		b.WriteString(t.lines[k])
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// New returns a writer for dir, creating it (0700) if needed. It writes
// both files at once, empty, replacing what an earlier run left: the SAs
// of that run are gone, and its keys must not linger beside the new ones.
// maxRecords bounds each table; 0 means DefaultMaxRecords.
func New(dir string, maxRecords int) (*Writer, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("keylog: %v", err)
	}
	w := &Writer{dir: dir, maxRecords: maxRecords}
	if err := w.writeFile(ESPFile, w.esp.render()); err != nil {
		return nil, err
	}
	if err := w.writeFile(IKEFile, w.ike.render()); err != nil {
		return nil, err
	}
	return w, nil
}

// Dir is the directory the files are in.
func (w *Writer) Dir() string { return w.dir }

// AddESP records sa in esp_sa and rewrites the file. An SA that Wireshark
// cannot decrypt is written as a comment and reported with an error
// wrapping ErrUnsupported; an AH SA is not written (AH encrypts nothing).
func (w *Writer) AddESP(sa ESPSA) error {
	if sa.Suite.Protocol == proposal.ProtoAH {
		return nil
	}
	line, unsupported := ESPRecord(sa)
	if unsupported != nil {
		line = "# " + unsupported.Error()
	}
	key := fmt.Sprintf("%s %s %08x", sa.Src.Unmap(), sa.Dst.Unmap(), sa.SPI)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.esp.put(key, line, w.maxRecords)
	if err := w.writeFile(ESPFile, w.esp.render()); err != nil {
		return err
	}
	return unsupported
}

// AddIKE records sa in ikev2_decryption_table and rewrites the file, as
// AddESP does.
func (w *Writer) AddIKE(sa IKESA) error {
	line, unsupported := IKERecord(sa)
	if unsupported != nil {
		line = "# " + unsupported.Error()
	}
	key := fmt.Sprintf("%016x %016x", sa.SPIi, sa.SPIr)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ike.put(key, line, w.maxRecords)
	if err := w.writeFile(IKEFile, w.ike.render()); err != nil {
		return err
	}
	return unsupported
}

// writeFile replaces dir/name atomically: a reader (Wireshark, a test
// harness) sees the old table or the new one, never a partial one.
func (w *Writer) writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(w.dir, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("keylog: %v", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(fileMode); err != nil {
		tmp.Close()
		return fmt.Errorf("keylog: %v", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keylog: writing %s: %v", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keylog: writing %s: %v", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(w.dir, name)); err != nil {
		return fmt.Errorf("keylog: %v", err)
	}
	return nil
}

// ESPRecord returns sa's line of the esp_sa table:
//
//	"IPv4","203.0.113.1","203.0.113.2","0xc1a2b3c4","AES-GCM with 16 octet ICV [RFC4106]","0x<key+salt>","NULL",""
//
// protocol, source, destination, SPI, encryption algorithm, encryption
// key, authentication algorithm, authentication key. The error wraps
// ErrUnsupported when Wireshark 4.0 cannot decrypt the suite.
func ESPRecord(sa ESPSA) (string, error) {
	encr, ok := espEncr(sa.Suite.Encr)
	if !ok {
		return "", unsupportedESP(sa, "encryption "+proposal.EncrKeyword(sa.Suite.Encr))
	}
	integ, ok := espInteg[sa.Suite.Integ]
	if !ok {
		return "", unsupportedESP(sa, "integrity "+sa.Suite.Integ.String())
	}
	family := "IPv4"
	if sa.Src.Unmap().Is6() {
		family = "IPv6"
	}
	return fmt.Sprintf(`"%s","%s","%s","0x%08x","%s","%s","%s","%s"`,
		family, sa.Src.Unmap(), sa.Dst.Unmap(), sa.SPI, encr, hexKey(sa.EncKey), integ, hexKey(sa.IntegKey)), nil
}

// IKERecord returns sa's line of the ikev2_decryption_table:
//
//	0123456789abcdef,fedcba9876543210,<SK_ei>,<SK_er>,"AES-CBC-256 [RFC3602]",<SK_ai>,<SK_ar>,"HMAC_SHA2_256_128 [RFC4868]"
//
// initiator's SPI, responder's SPI, SK_ei, SK_er, encryption algorithm,
// SK_ai, SK_ar, integrity algorithm; byte fields in bare hex. The error
// wraps ErrUnsupported when Wireshark 4.0 cannot decrypt the suite.
func IKERecord(sa IKESA) (string, error) {
	encr, ok := ikeEncr(sa.Suite.Encr)
	if !ok {
		return "", unsupportedIKE(sa, "encryption "+proposal.EncrKeyword(sa.Suite.Encr))
	}
	integ, ok := ikeInteg[sa.Suite.Integ]
	if !ok {
		return "", unsupportedIKE(sa, "integrity "+sa.Suite.Integ.String())
	}
	return fmt.Sprintf(`%016x,%016x,%s,%s,"%s",%s,%s,"%s"`,
		sa.SPIi, sa.SPIr, hex.EncodeToString(sa.SKei), hex.EncodeToString(sa.SKer), encr,
		hex.EncodeToString(sa.SKai), hex.EncodeToString(sa.SKar), integ), nil
}

func hexKey(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(k)
}

func unsupportedESP(sa ESPSA, what string) error {
	return fmt.Errorf("ESP SA 0x%08x %s -> %s: %w (%s)", sa.SPI, sa.Src.Unmap(), sa.Dst.Unmap(), ErrUnsupported, what)
}

func unsupportedIKE(sa IKESA, what string) error {
	return fmt.Errorf("IKE SA %016x_i %016x_r: %w (%s)", sa.SPIi, sa.SPIr, ErrUnsupported, what)
}

// Wireshark 4.0's esp_sa names (epan/dissectors/packet-ipsec.c). The key
// fields carry the salt or nonce after the key, as RFC 4106 and RFC 3686
// derive it, which is what Wireshark expects.
func espEncr(e proposal.Encr) (string, bool) {
	switch e.ID {
	case proposal.EncrNull:
		return "NULL", true
	case proposal.Encr3DES:
		return "TripleDES-CBC [RFC2451]", true
	case proposal.EncrAESCBC:
		return "AES-CBC [RFC3602]", true
	case proposal.EncrAESCTR:
		return "AES-CTR [RFC3686]", true
	case proposal.EncrAESGCM8:
		return "AES-GCM with 8 octet ICV [RFC4106]", true
	case proposal.EncrAESGCM12:
		return "AES-GCM with 12 octet ICV [RFC4106]", true
	case proposal.EncrAESGCM16:
		return "AES-GCM with 16 octet ICV [RFC4106]", true
	}
	return "", false
}

// Wireshark checks no AES-XCBC or AES-CMAC ICV, but decrypts behind one
// when told its length.
var espInteg = map[proposal.IntegID]string{
	proposal.IntegNone:          "NULL",
	proposal.IntegHMACSHA196:    "HMAC-SHA-1-96 [RFC2404]",
	proposal.IntegHMACSHA256128: "HMAC-SHA-256-128 [RFC4868]",
	proposal.IntegHMACSHA384192: "HMAC-SHA-384-192 [RFC4868]",
	proposal.IntegHMACSHA512256: "HMAC-SHA-512-256 [RFC4868]",
	proposal.IntegAESXCBC96:     "ANY 96 bit authentication [no checking]",
	proposal.IntegAESCMAC96:     "ANY 96 bit authentication [no checking]",
}

// Wireshark 4.0's ikev2_decryption_table names (packet-isakmp.c), for
// the ciphers bitw protects IKE messages with (ike/keymat; 3DES and MD5
// are refused there).
func ikeEncr(e proposal.Encr) (string, bool) {
	switch e.ID {
	case proposal.EncrAESCBC:
		return fmt.Sprintf("AES-CBC-%d [RFC3602]", e.KeyBits), validAESBits(e.KeyBits)
	case proposal.EncrAESCTR:
		return fmt.Sprintf("AES-CTR-%d [RFC5930]", e.KeyBits), validAESBits(e.KeyBits)
	case proposal.EncrAESGCM8, proposal.EncrAESGCM12, proposal.EncrAESGCM16:
		icv := map[proposal.EncrID]int{proposal.EncrAESGCM8: 8, proposal.EncrAESGCM12: 12, proposal.EncrAESGCM16: 16}[e.ID]
		return fmt.Sprintf("AES-GCM-%d with %d octet ICV [RFC5282]", e.KeyBits, icv), validAESBits(e.KeyBits)
	case proposal.EncrAESCCM8, proposal.EncrAESCCM12, proposal.EncrAESCCM16:
		icv := map[proposal.EncrID]int{proposal.EncrAESCCM8: 8, proposal.EncrAESCCM12: 12, proposal.EncrAESCCM16: 16}[e.ID]
		return fmt.Sprintf("AES-CCM-%d with %d octet ICV [RFC5282]", e.KeyBits, icv), validAESBits(e.KeyBits)
	}
	return "", false
}

func validAESBits(bits uint16) bool { return bits == 128 || bits == 192 || bits == 256 }

var ikeInteg = map[proposal.IntegID]string{
	proposal.IntegNone:          "NONE [RFC4306]",
	proposal.IntegHMACSHA196:    "HMAC_SHA1_96 [RFC2404]",
	proposal.IntegHMACSHA256128: "HMAC_SHA2_256_128 [RFC4868]",
	proposal.IntegHMACSHA384192: "HMAC_SHA2_384_192 [RFC4868]",
	proposal.IntegHMACSHA512256: "HMAC_SHA2_512_256 [RFC4868]",
}
