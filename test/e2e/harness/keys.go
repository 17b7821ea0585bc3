package harness

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// ESPKeys is one direction of an ESP SA: what Wireshark's esp_sa table
// needs to decrypt it. Algorithm names are strongSwan's (as its log and
// swanctl print them): Encr "AES_GCM_16", "AES_CBC", "AES_CTR", ...;
// Integ "HMAC_SHA2_256_128", ... or "" for AEAD.
type ESPKeys struct {
	SPI      uint32
	Src, Dst netip.Addr
	Encr     string
	EncrKey  []byte // for AEAD and CTR including the salt/nonce (RFC 4106, 3686)
	Integ    string
	IntegKey []byte
}

// IKEKeys are the keys of one IKE SA: what Wireshark's
// ikev2_decryption_table needs. Encr is strongSwan's name with key size
// ("AES_CBC_128", "AES_GCM_16_256"); Integ "" for AEAD.
type IKEKeys struct {
	SPIi, SPIr [8]byte
	Encr       string
	SKei, SKer []byte // including the salt for AEAD (RFC 5282)
	Integ      string
	SKai, SKar []byte
}

// KeySet is key material for decrypting a capture.
type KeySet struct {
	ESP []ESPKeys
	IKE []IKEKeys
	// IKEWithoutSPIs holds keys of IKE_SAs whose SPIs the source did not
	// show, by strongSwan's IKE_SA unique id.
	IKEWithoutSPIs map[string]IKEKeys
}

// Merge appends other's keys.
func (k *KeySet) Merge(other *KeySet) {
	k.ESP = append(k.ESP, other.ESP...)
	k.IKE = append(k.IKE, other.IKE...)
}

// Wireshark 4.0's names for ESP algorithms in the esp_sa UAT
// (packet-ipsec.c). strongSwan has more; those are reported as
// unsupported rather than mis-decoded.
var wiresharkESPEncr = map[string]string{
	"NULL":       "NULL",
	"3DES_CBC":   "TripleDES-CBC [RFC2451]",
	"AES_CBC":    "AES-CBC [RFC3602]",
	"AES_CTR":    "AES-CTR [RFC3686]",
	"AES_GCM_8":  "AES-GCM with 8 octet ICV [RFC4106]",
	"AES_GCM_12": "AES-GCM with 12 octet ICV [RFC4106]",
	"AES_GCM_16": "AES-GCM with 16 octet ICV [RFC4106]",
}

var wiresharkESPInteg = map[string]string{
	"":                  "NULL",
	"HMAC_MD5_96":       "HMAC-MD5-96 [RFC2403]",
	"HMAC_SHA1_96":      "HMAC-SHA-1-96 [RFC2404]",
	"HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
	"HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
	"HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
}

// Wireshark 4.0's names in the ikev2_decryption_table UAT
// (packet-isakmp.c). It has no ChaCha20-Poly1305 and no AES-XCBC there.
var wiresharkIKEEncr = map[string]string{
	"3DES_CBC":       "3DES [RFC2451]",
	"AES_CBC_128":    "AES-CBC-128 [RFC3602]",
	"AES_CBC_192":    "AES-CBC-192 [RFC3602]",
	"AES_CBC_256":    "AES-CBC-256 [RFC3602]",
	"AES_CTR_128":    "AES-CTR-128 [RFC5930]",
	"AES_CTR_192":    "AES-CTR-192 [RFC5930]",
	"AES_CTR_256":    "AES-CTR-256 [RFC5930]",
	"AES_GCM_8_128":  "AES-GCM-128 with 8 octet ICV [RFC5282]",
	"AES_GCM_8_192":  "AES-GCM-192 with 8 octet ICV [RFC5282]",
	"AES_GCM_8_256":  "AES-GCM-256 with 8 octet ICV [RFC5282]",
	"AES_GCM_12_128": "AES-GCM-128 with 12 octet ICV [RFC5282]",
	"AES_GCM_12_192": "AES-GCM-192 with 12 octet ICV [RFC5282]",
	"AES_GCM_12_256": "AES-GCM-256 with 12 octet ICV [RFC5282]",
	"AES_GCM_16_128": "AES-GCM-128 with 16 octet ICV [RFC5282]",
	"AES_GCM_16_192": "AES-GCM-192 with 16 octet ICV [RFC5282]",
	"AES_GCM_16_256": "AES-GCM-256 with 16 octet ICV [RFC5282]",
	"AES_CCM_8_128":  "AES-CCM-128 with 8 octet ICV [RFC5282]",
	"AES_CCM_8_192":  "AES-CCM-192 with 8 octet ICV [RFC5282]",
	"AES_CCM_8_256":  "AES-CCM-256 with 8 octet ICV [RFC5282]",
	"AES_CCM_12_128": "AES-CCM-128 with 12 octet ICV [RFC5282]",
	"AES_CCM_12_192": "AES-CCM-192 with 12 octet ICV [RFC5282]",
	"AES_CCM_12_256": "AES-CCM-256 with 12 octet ICV [RFC5282]",
	"AES_CCM_16_128": "AES-CCM-128 with 16 octet ICV [RFC5282]",
	"AES_CCM_16_192": "AES-CCM-192 with 16 octet ICV [RFC5282]",
	"AES_CCM_16_256": "AES-CCM-256 with 16 octet ICV [RFC5282]",
}

var wiresharkIKEInteg = map[string]string{
	"":                  "NONE [RFC4306]",
	"HMAC_MD5_96":       "HMAC_MD5_96 [RFC2403]",
	"HMAC_SHA1_96":      "HMAC_SHA1_96 [RFC2404]",
	"HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
	"HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]",
	"HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]",
}

// UAT holds records for Wireshark's esp_sa and ikev2_decryption_table
// user tables, one line each in the UAT file syntax: quoted strings,
// unquoted hex for byte fields.
type UAT struct {
	ESPSA []string
	IKEv2 []string
	Notes []string // SAs left out because Wireshark cannot decrypt them
}

// UAT converts the keys to Wireshark's user-table records. Algorithms
// Wireshark 4.0 cannot decrypt are left out and named in Notes.
func (k *KeySet) UAT() UAT {
	var u UAT
	for _, e := range k.ESP {
		encr, ok1 := wiresharkESPEncr[e.Encr]
		integ, ok2 := wiresharkESPInteg[e.Integ]
		if !ok1 || !ok2 {
			u.Notes = append(u.Notes, fmt.Sprintf("ESP SPI %08x (%s/%s): not decryptable by Wireshark 4.0", e.SPI, e.Encr, e.Integ))
			continue
		}
		proto := "IPv4"
		if e.Src.Is6() && !e.Src.Is4In6() {
			proto = "IPv6"
		}
		integKey := ""
		if len(e.IntegKey) > 0 {
			integKey = "0x" + hex.EncodeToString(e.IntegKey)
		}
		u.ESPSA = append(u.ESPSA, fmt.Sprintf("%q,%q,%q,%q,%q,%q,%q,%q",
			proto, e.Src.Unmap().String(), e.Dst.Unmap().String(), fmt.Sprintf("0x%08x", e.SPI),
			encr, "0x"+hex.EncodeToString(e.EncrKey), integ, integKey))
	}
	for _, i := range k.IKE {
		encr, ok1 := wiresharkIKEEncr[i.Encr]
		integ, ok2 := wiresharkIKEInteg[i.Integ]
		if !ok1 || !ok2 {
			u.Notes = append(u.Notes, fmt.Sprintf("IKE SA %x_i %x_r (%s/%s): not decryptable by Wireshark 4.0", i.SPIi, i.SPIr, i.Encr, i.Integ))
			continue
		}
		u.IKEv2 = append(u.IKEv2, fmt.Sprintf("%s,%s,%s,%s,%q,%s,%s,%q",
			hex.EncodeToString(i.SPIi[:]), hex.EncodeToString(i.SPIr[:]),
			hex.EncodeToString(i.SKei), hex.EncodeToString(i.SKer), encr,
			hex.EncodeToString(i.SKai), hex.EncodeToString(i.SKar), integ))
	}
	return u
}

// UAT file names in a Wireshark profile directory; bitw's save_keys
// writes files of the same names.
const (
	UATFileESP   = "esp_sa"
	UATFileIKEv2 = "ikev2_decryption_table"
)

// WriteDir writes the records as Wireshark profile files into dir (so a
// human can open the capture with "wireshark -C" on a copy of them).
func (u UAT) WriteDir(dir string) error {
	for name, lines := range map[string][]string{UATFileESP: u.ESPSA, UATFileIKEv2: u.IKEv2} {
		body := "# This file is automatically generated, DO NOT MODIFY.\n" + strings.Join(lines, "\n")
		if len(lines) > 0 {
			body += "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// ReadUATDir reads esp_sa and ikev2_decryption_table from dir, such as
// the directory bitw's save_keys names. A missing file contributes no
// records.
func ReadUATDir(dir string) (UAT, error) {
	var u UAT
	for name, dst := range map[string]*[]string{UATFileESP: &u.ESPSA, UATFileIKEv2: &u.IKEv2} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return u, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				*dst = append(*dst, line)
			}
		}
	}
	return u, nil
}

// Add appends another table's records.
func (u *UAT) Add(o UAT) {
	u.ESPSA = append(u.ESPSA, o.ESPSA...)
	u.IKEv2 = append(u.IKEv2, o.IKEv2...)
	u.Notes = append(u.Notes, o.Notes...)
}
