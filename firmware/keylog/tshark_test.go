package keylog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// These tests are the oracle for the file formats: tshark, as Debian 12
// ships it, must decrypt packets sealed by bitw's own ipsec and ike
// packages with nothing but the files this package writes.

var (
	gwA4  = netip.MustParseAddr("203.0.113.1")
	gwB4  = netip.MustParseAddr("203.0.113.2")
	gwA6  = netip.MustParseAddr("2001:db8::1")
	gwB6  = netip.MustParseAddr("2001:db8::2")
	hostA = netip.MustParseAddr("192.168.1.10")
	hostB = netip.MustParseAddr("192.168.2.10")
)

func needTshark(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed: the Wireshark key files cannot be checked against it")
	}
	return path
}

// pcapWriter writes a classic pcap file of raw IP packets
// (LINKTYPE_RAW, 101: each record starts with an IPv4 or IPv6 header).
type pcapWriter struct{ b bytes.Buffer }

func newPcap() *pcapWriter {
	w := &pcapWriter{}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4) // microsecond timestamps
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(h[20:], 101)   // LINKTYPE_RAW
	w.b.Write(h[:])
	return w
}

func (w *pcapWriter) add(pkt []byte) {
	var h [16]byte
	n := w.b.Len()
	binary.LittleEndian.PutUint32(h[0:], uint32(1700000000+n%1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(pkt)))
	w.b.Write(h[:])
	w.b.Write(pkt)
}

func (w *pcapWriter) save(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "capture.pcap")
	if err := os.WriteFile(path, w.b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipv4 wraps payload in an IPv4 header.
func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h[8] = 64
	h[9] = proto
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

// icmpEcho is an IPv4 echo request whose identifier marks the test case.
func icmpEcho(id uint16) []byte {
	icmp := make([]byte, 8, 8+32)
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], 1)
	icmp = append(icmp, []byte("bitw save_keys test payload....")...)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return ipv4(hostA, hostB, 1, icmp)
}

func keyBytes(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

// sealESP runs one packet through an ipsec.Engine holding one outbound SA
// of the suite, and returns the packet as it leaves the black port with the
// SA's keys.
func sealESP(t *testing.T, suite proposal.Suite, spi uint32, src, dst netip.Addr, encap bool, inner []byte) ([]byte, ESPSA) {
	t.Helper()
	info, ok := suite.Encr.ID.Info()
	if !ok {
		t.Fatalf("no info for %v", suite.Encr)
	}
	sa := ESPSA{Src: src, Dst: dst, SPI: spi, Suite: suite, EncKey: keyBytes(suite.Encr.ID.KeyLen(suite.Encr.KeyBits), byte(spi))}
	if !info.AEAD {
		ii, ok := suite.Integ.Info()
		if !ok {
			t.Fatalf("no info for %v", suite.Integ)
		}
		sa.IntegKey = keyBytes(ii.KeyLen, byte(spi)+0x80)
	}
	e := ipsec.New(ipsec.Config{Policy: proposal.Policy{AllowLegacy: true, AllowIntegrityOnly: true}})
	sel := ipsec.Selectors{
		Local:  []ipsec.TS{ipsec.PrefixTS(netip.PrefixFrom(hostA, 24).Masked())},
		Remote: []ipsec.TS{ipsec.PrefixTS(netip.PrefixFrom(hostB, 24).Masked())},
	}
	cfg := ipsec.SAConfig{Dir: ipsec.DirOut, SPI: spi, Mode: ipsec.ModeTunnel, Src: src, Dst: dst, Suite: suite,
		EncKey: sa.EncKey, IntegKey: sa.IntegKey, Selectors: sel, ReqID: 1}
	if encap {
		cfg.Encap = ipsec.UDPEncap{SrcPort: 4500, DstPort: 4500}
	}
	if err := e.AddSA(cfg); err != nil {
		t.Fatalf("AddSA %v: %v", suite, err)
	}
	if _, err := e.AddPolicy(ipsec.Policy{Priority: 1, Selectors: sel, Action: ipsec.ActionProtect, ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	copy(b.Extend(len(inner)), inner)
	if res := e.Outbound(b, 0); res.Verdict != ipsec.VerdictForward {
		t.Fatalf("Outbound %v: %+v", suite, res)
	}
	return bytes.Clone(b.Bytes()), sa
}

// tsharkFields runs tshark over pcap with extra options and returns one
// slice of field values per frame.
func tsharkFields(t *testing.T, tshark, pcap string, env []string, opts []string, fields ...string) [][]string {
	t.Helper()
	args := append([]string{"-n", "-r", pcap}, opts...)
	args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %q: %v\n%s", args, err, stderr.String())
	}
	// A table that fails to load is only a message on stderr; tshark
	// still exits 0.
	if s := stderr.String(); strings.Contains(s, "esp_sa") || strings.Contains(s, "ikev2_decryption_table") ||
		strings.Contains(s, "uat") || strings.Contains(s, "Error loading table") {
		t.Fatalf("tshark complained about the tables:\n%s", s)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// configDirEnv makes dir tshark's personal configuration directory, so
// it reads esp_sa and ikev2_decryption_table from there, exactly as the
// Writer left them.
func configDirEnv(dir string) []string {
	return []string{"WIRESHARK_CONFIG_DIR=" + dir, "HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
}

// ICV outcomes with esp.enable_authentication_check on.
const (
	icvGood      = "good"      // Wireshark verified the ICV: the integrity key is right too
	icvUnchecked = "unchecked" // "ANY 96 bit authentication": skipped, decryption still works
	icvESN       = "bad (ESN)" // Wireshark 4.0 lacks the high sequence bits ESN adds to the ICV input
)

type espCase struct {
	name  string
	suite proposal.Suite
	v6    bool
	encap bool
	icv   string
}

func espSuite(e proposal.EncrID, bits uint16, integ proposal.IntegID, esn bool) proposal.Suite {
	return proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: e, KeyBits: bits}, Integ: integ, ESN: esn}
}

var espCases = []espCase{
	{"aes128gcm16", espSuite(proposal.EncrAESGCM16, 128, 0, false), false, false, icvGood},
	{"aes256gcm16-udp", espSuite(proposal.EncrAESGCM16, 256, 0, false), false, true, icvGood},
	{"aes192gcm12-ipv6", espSuite(proposal.EncrAESGCM12, 192, 0, false), true, false, icvGood},
	{"aes128gcm8", espSuite(proposal.EncrAESGCM8, 128, 0, false), false, false, icvGood},
	{"aes128-sha256", espSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128, false), false, false, icvGood},
	{"aes256-sha384-ipv6-udp", espSuite(proposal.EncrAESCBC, 256, proposal.IntegHMACSHA384192, false), true, true, icvGood},
	{"aes192-sha512", espSuite(proposal.EncrAESCBC, 192, proposal.IntegHMACSHA512256, false), false, false, icvGood},
	{"aes128-sha1", espSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA196, false), false, false, icvGood},
	{"aes128ctr-sha256", espSuite(proposal.EncrAESCTR, 128, proposal.IntegHMACSHA256128, false), false, false, icvGood},
	{"aes256ctr-sha256", espSuite(proposal.EncrAESCTR, 256, proposal.IntegHMACSHA256128, false), false, false, icvGood},
	{"aes128-aesxcbc", espSuite(proposal.EncrAESCBC, 128, proposal.IntegAESXCBC96, false), false, false, icvUnchecked},
	{"aes128-aescmac", espSuite(proposal.EncrAESCBC, 128, proposal.IntegAESCMAC96, false), false, false, icvUnchecked},
	{"3des-sha1", espSuite(proposal.Encr3DES, 0, proposal.IntegHMACSHA196, false), false, false, icvGood},
	{"null-sha256", espSuite(proposal.EncrNull, 0, proposal.IntegHMACSHA256128, false), false, false, icvGood},
	{"aes128-sha256-esn", espSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128, true), false, false, icvESN},
	{"aes128gcm16-esn", espSuite(proposal.EncrAESGCM16, 128, 0, true), false, false, icvESN},
}

// Suites Wireshark 4.0 cannot decrypt in ESP: listed as comments.
var espUnsupported = []proposal.Suite{
	espSuite(proposal.EncrAESCCM16, 128, 0, false),
	espSuite(proposal.EncrChaCha20Poly13, 0, 0, false),
	espSuite(proposal.EncrNullAuthGMAC, 128, 0, false),
}

// TestTsharkDecryptsESP writes one packet per suite and the esp_sa file
// with the Writer, and has tshark decrypt each packet back to its ICMP
// echo and check its ICV. Comment lines for unsupported suites sit
// between the records, and one record carries a wrong key: tshark must
// not decrypt that packet.
func TestTsharkDecryptsESP(t *testing.T) {
	tshark := needTshark(t)
	dir := t.TempDir()
	w, err := New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	pcap := newPcap()
	for i, tc := range espCases {
		src, dst := gwA4, gwB4
		if tc.v6 {
			src, dst = gwA6, gwB6
		}
		pkt, sa := sealESP(t, tc.suite, 0xc1000000+uint32(i), src, dst, tc.encap, icmpEcho(0x4200+uint16(i)))
		if err := w.AddESP(sa); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		pcap.add(pkt)
		if i < len(espUnsupported) {
			_, sa := sealESP(t, espUnsupported[i], 0xd1000000+uint32(i), src, dst, false, icmpEcho(1))
			if err := w.AddESP(sa); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%v: %v, want ErrUnsupported", espUnsupported[i], err)
			}
		}
	}
	wrong := uint32(0xc1ffffff)
	pkt, sa := sealESP(t, espCases[0].suite, wrong, gwA4, gwB4, false, icmpEcho(0x4fff))
	sa.EncKey[0] ^= 1
	if err := w.AddESP(sa); err != nil {
		t.Fatal(err)
	}
	pcap.add(pkt)
	path := pcap.save(t)

	comments := 0
	b, _ := os.ReadFile(filepath.Join(dir, ESPFile))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "# ESP SA 0xd1") {
			comments++
		}
	}
	if comments != len(espUnsupported) {
		t.Errorf("%d comment lines for unsupported SAs, want %d:\n%s", comments, len(espUnsupported), b)
	}

	check := func(how string, env, opts []string) {
		opts = append(opts, "-o", "esp.enable_authentication_check:TRUE")
		rows := tsharkFields(t, tshark, path, env, opts, "frame.number", "esp.spi", "icmp.ident", "data.data", "esp.icv_good", "esp.icv_bad")
		if len(rows) != len(espCases)+1 {
			t.Fatalf("%s: tshark shows %d frames, want %d", how, len(rows), len(espCases)+1)
		}
		for i, tc := range espCases {
			r := rows[i]
			if r[2] != fmt.Sprint(0x4200+i) || r[3] != fmt.Sprintf("%x", "bitw save_keys test payload....") {
				t.Errorf("%s: %s (SPI %s): inner ICMP not recovered: ident %q, data %q", how, tc.name, r[1], r[2], r[3])
			}
			icv := map[[2]string]string{{"1", "0"}: icvGood, {"0", "0"}: icvUnchecked, {"0", "1"}: icvESN}[[2]string{r[4], r[5]}]
			if icv != tc.icv {
				t.Errorf("%s: %s: ICV good=%q bad=%q, want %s", how, tc.name, r[4], r[5], tc.icv)
			}
		}
		if r := rows[len(espCases)]; r[2] != "" || r[5] != "1" {
			t.Errorf("%s: a wrong key decrypted the packet, or its ICV passed: %q", how, r)
		}
	}
	// As Wireshark reads them from its configuration directory...
	check("config dir", configDirEnv(dir), []string{"-o", "esp.enable_encryption_decode:TRUE"})
	// ...and line by line on the command line, as the e2e harness passes them.
	opts := []string{"-o", "esp.enable_encryption_decode:TRUE"}
	for _, line := range records(t, filepath.Join(dir, ESPFile)) {
		opts = append(opts, "-o", "uat:esp_sa:"+line)
	}
	check("-o uat", configDirEnv(t.TempDir()), opts)
}

// records reads a table's non-comment lines.
func records(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

type ikeCase struct {
	name  string
	suite proposal.Suite
}

func ikeSuite(e proposal.EncrID, bits uint16, prf proposal.PRFID, integ proposal.IntegID) proposal.Suite {
	return proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: e, KeyBits: bits}, PRF: prf, Integ: integ, KE: proposal.KEX25519}
}

var ikeCases = []ikeCase{
	{"aes256gcm16-prfsha384", ikeSuite(proposal.EncrAESGCM16, 256, proposal.PRFHMACSHA384, 0)},
	{"aes128gcm16-prfsha256", ikeSuite(proposal.EncrAESGCM16, 128, proposal.PRFHMACSHA256, 0)},
	{"aes192gcm12-prfsha256", ikeSuite(proposal.EncrAESGCM12, 192, proposal.PRFHMACSHA256, 0)},
	{"aes128gcm8-prfsha256", ikeSuite(proposal.EncrAESGCM8, 128, proposal.PRFHMACSHA256, 0)},
	{"aes128ccm16-prfsha256", ikeSuite(proposal.EncrAESCCM16, 128, proposal.PRFHMACSHA256, 0)},
	{"aes256ccm8-prfsha256", ikeSuite(proposal.EncrAESCCM8, 256, proposal.PRFHMACSHA256, 0)},
	{"aes128-sha256", ikeSuite(proposal.EncrAESCBC, 128, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128)},
	{"aes192-sha384", ikeSuite(proposal.EncrAESCBC, 192, proposal.PRFHMACSHA384, proposal.IntegHMACSHA384192)},
	{"aes256-sha512", ikeSuite(proposal.EncrAESCBC, 256, proposal.PRFHMACSHA512, proposal.IntegHMACSHA512256)},
	{"aes256-sha1", ikeSuite(proposal.EncrAESCBC, 256, proposal.PRFHMACSHA1, proposal.IntegHMACSHA196)},
	{"aes128ctr-sha256", ikeSuite(proposal.EncrAESCTR, 128, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128)},
	{"aes256ctr-sha256", ikeSuite(proposal.EncrAESCTR, 256, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128)},
}

// Suites Wireshark 4.0 cannot decrypt in IKEv2: listed as comments.
var ikeUnsupported = []proposal.Suite{
	ikeSuite(proposal.EncrChaCha20Poly13, 0, proposal.PRFHMACSHA256, 0),
	ikeSuite(proposal.EncrAESCBC, 128, proposal.PRFAES128XCBC, proposal.IntegAESXCBC96),
	ikeSuite(proposal.EncrAESCBC, 128, proposal.PRFAES128CMAC, proposal.IntegAESCMAC96),
}

// ikeExchange derives an IKE SA's keys with keymat and seals an IKE_AUTH
// request (initiator's keys) and its response (responder's keys) with the
// message codec, each in UDP/500 in IPv4.
func ikeExchange(t *testing.T, suite proposal.Suite, spii, spir uint64) (request, response []byte, sa IKESA) {
	t.Helper()
	ni, nr, gir := keyBytes(32, 1), keyBytes(32, 2), keyBytes(32, 3)
	keys, err := keymat.DeriveIKE(suite, ni, nr, gir, spii, spir)
	if err != nil {
		t.Fatalf("DeriveIKE %v: %v", suite, err)
	}
	outI, _, err := keys.Ciphers(true, rand.Reader)
	if err != nil {
		t.Fatalf("Ciphers %v: %v", suite, err)
	}
	outR, _, err := keys.Ciphers(false, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req := message.Message{
		Header:   message.Header{SPIi: spii, SPIr: spir, Exchange: message.ExchangeIKEAuth, Flags: message.FlagInitiator, MessageID: 1},
		Payloads: []message.Payload{&message.IDi{ID: message.FQDNID("gw-a.example")}},
	}
	resp := message.Message{
		Header:   message.Header{SPIi: spii, SPIr: spir, Exchange: message.ExchangeIKEAuth, Flags: message.FlagResponse, MessageID: 1},
		Payloads: []message.Payload{&message.IDr{ID: message.FQDNID("gw-b.example")}},
	}
	reqBytes, err := req.Encode(nil, outI)
	if err != nil {
		t.Fatal(err)
	}
	respBytes, err := resp.Encode(nil, outR)
	if err != nil {
		t.Fatal(err)
	}
	sa = IKESA{SPIi: spii, SPIr: spir, Suite: suite, SKei: keys.SKei, SKer: keys.SKer, SKai: keys.SKai, SKar: keys.SKar}
	return udp500(gwA4, gwB4, reqBytes), udp500(gwB4, gwA4, respBytes), sa
}

func udp500(src, dst netip.Addr, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], 500)
	binary.BigEndian.PutUint16(u[2:], 500)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	// Checksum 0: allowed for UDP over IPv4, and tshark does not check it.
	return ipv4(src, dst, 17, append(u, payload...))
}

// TestTsharkDecryptsIKE writes the ikev2_decryption_table with the Writer
// and has tshark decrypt IKE_AUTH messages sealed in both directions, and
// check their ICVs; one record with a wrong SK_ei must fail.
func TestTsharkDecryptsIKE(t *testing.T) {
	tshark := needTshark(t)
	dir := t.TempDir()
	w, err := New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	pcap := newPcap()
	for i, tc := range ikeCases {
		req, resp, sa := ikeExchange(t, tc.suite, 0x0123456789ab0000+uint64(i), 0xfedcba9876540000+uint64(i))
		if err := w.AddIKE(sa); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		pcap.add(req)
		pcap.add(resp)
		if i < len(ikeUnsupported) {
			_, _, sa := ikeExchange(t, ikeUnsupported[i], 0x1111111100000000+uint64(i), 0x2222222200000000+uint64(i))
			if err := w.AddIKE(sa); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%v: %v, want ErrUnsupported", ikeUnsupported[i], err)
			}
		}
	}
	// Two records with a wrong key: SK_ei of an AEAD suite (nothing
	// decrypts), SK_ai of an HMAC suite (it decrypts, the ICV fails).
	req, _, sa := ikeExchange(t, ikeCases[0].suite, 0x0bad0bad0bad0001, 0x0bad0bad0bad0002)
	sa.SKei[0] ^= 1
	if err := w.AddIKE(sa); err != nil {
		t.Fatal(err)
	}
	pcap.add(req)
	req, _, sa = ikeExchange(t, ikeSuite(proposal.EncrAESCBC, 128, proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128), 0x0bad0bad0bad0003, 0x0bad0bad0bad0004)
	sa.SKai[0] ^= 1
	if err := w.AddIKE(sa); err != nil {
		t.Fatal(err)
	}
	pcap.add(req)
	path := pcap.save(t)

	check := func(how string, env, opts []string) {
		rows := tsharkFields(t, tshark, path, env, opts, "frame.number", "isakmp.ispi", "isakmp.enc.pad_length", "isakmp.id.data.fqdn", "isakmp.ikev2.integrity_checksum")
		if len(rows) != 2*len(ikeCases)+2 {
			t.Fatalf("%s: tshark shows %d frames, want %d", how, len(rows), 2*len(ikeCases)+2)
		}
		for i, tc := range ikeCases {
			for j, wantID := range []string{"gw-a.example", "gw-b.example"} {
				// The integrity expert item appears only when the ICV
				// or tag is wrong.
				if r := rows[2*i+j]; r[2] == "" || r[3] != wantID || r[4] != "" {
					t.Errorf("%s: %s message %d: not decrypted and verified: %q", how, tc.name, j, r)
				}
			}
		}
		if r := rows[2*len(ikeCases)]; r[3] != "" || r[4] != "1" {
			t.Errorf("%s: a wrong SK_ei decrypted the message: %q", how, r)
		}
		if r := rows[2*len(ikeCases)+1]; r[3] != "gw-a.example" || r[4] != "1" {
			t.Errorf("%s: a wrong SK_ai passed the integrity check: %q", how, r)
		}
	}
	check("config dir", configDirEnv(dir), nil)
	var opts []string
	for _, line := range records(t, filepath.Join(dir, IKEFile)) {
		opts = append(opts, "-o", "uat:ikev2_decryption_table:"+line)
	}
	check("-o uat", configDirEnv(t.TempDir()), opts)
}
