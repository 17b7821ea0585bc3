package harness

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/bitw-dev/bitw/internal/testvec"
)

const listSASample = `list-sa event {
  gw-gw {
    uniqueid = 1
    version = 2
    state = ESTABLISHED
    local-host = 203.0.113.1
    local-port = 4500
    local-id = gw-a.example
    remote-host = 203.0.113.2
    remote-port = 4500
    remote-id = gw-b.example
    initiator = yes
    initiator-spi = 2f880f9268465870
    responder-spi = c6fd62883fd90727
    nat-remote = yes
    nat-any = yes
    encr-alg = AES_CBC
    encr-keysize = 128
    integ-alg = HMAC_SHA2_256_128
    prf-alg = PRF_HMAC_SHA2_256
    dh-group = CURVE_25519
    child-sas {
      net-1 {
        name = net
        uniqueid = 1
        reqid = 1
        state = INSTALLED
        mode = TUNNEL
        protocol = ESP
        encap = yes
        spi-in = f5bf490a
        spi-out = dd5dfa7d
        encr-alg = AES_CBC
        encr-keysize = 128
        integ-alg = HMAC_SHA2_256_128
        bytes-in = 208
        packets-in = 2
        bytes-out = 312
        packets-out = 3
        local-ts = [
          192.168.1.0/24
          fd00:1::/64
        ]
        remote-ts = [
          192.168.2.0/24
          fd00:2::/64
        ]
      }
    }
  }
}
list-sas reply {
}
`

func TestParseListSAs(t *testing.T) {
	sas, err := ParseListSAs(listSASample)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 || len(sas[0].Children) != 1 {
		t.Fatalf("got %d IKE_SAs, want 1 with 1 child: %+v", len(sas), sas)
	}
	sa, c := sas[0], sas[0].Children[0]
	if sa.Name != "gw-gw" || sa.State != "ESTABLISHED" || !sa.Initiator || !sa.NATRemote || sa.NATLocal ||
		sa.RemotePort != 4500 || sa.SPIi != "2f880f9268465870" || sa.DHGroup != "CURVE_25519" || sa.RemoteID != "gw-b.example" {
		t.Errorf("IKE_SA parsed as %+v", sa)
	}
	if c.Name != "net" || c.State != "INSTALLED" || !c.Encap || c.SPIIn != "f5bf490a" || c.SPIOut != "dd5dfa7d" ||
		c.BytesOut != 312 || c.PacketsIn != 2 || c.EncrKeySize != 128 {
		t.Errorf("CHILD_SA parsed as %+v", c)
	}
	if strings.Join(c.LocalTS, " ") != "192.168.1.0/24 fd00:1::/64" || strings.Join(c.RemoteTS, " ") != "192.168.2.0/24 fd00:2::/64" {
		t.Errorf("traffic selectors %v === %v", c.LocalTS, c.RemoteTS)
	}
	for _, bad := range []string{"a {\n", "}\n", "a {\n x = [\n", "a {\n what\n}\n"} {
		if _, err := ParseListSAs(bad); err == nil {
			t.Errorf("ParseListSAs(%q) accepted malformed output", bad)
		}
	}
}

// charonLog builds log lines in charon's filelog format.
type charonLog struct {
	b strings.Builder
}

func (l *charonLog) line(thread int, group, ctx, msg string) {
	if ctx != "" {
		ctx = "<" + ctx + "> "
	}
	fmt.Fprintf(&l.b, "12:00:00.000 %02d[%s] %s%s\n", thread, group, ctx, msg)
}

func (l *charonLog) dump(thread int, group, ctx, name string, data []byte) {
	l.line(thread, group, ctx, fmt.Sprintf("%s => %d bytes @ 0x7f0000001000", name, len(data)))
	for off := 0; off < len(data); off += 16 {
		end := min(off+16, len(data))
		var hx strings.Builder
		for _, c := range data[off:end] {
			fmt.Fprintf(&hx, "%02X ", c)
		}
		l.line(thread, group, ctx, fmt.Sprintf("%4d: %-48s %s", off, hx.String(), strings.Repeat(".", end-off)))
	}
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// childLog writes what one side logs for a CHILD_SA with AES-CBC and
// HMAC-SHA-256; ctx names the IKE_SA, threads interleave with noise.
func childLog(l *charonLog, ctx string, initiator bool, inSPI, outSPI, local, remote string) {
	if initiator {
		l.line(3, "IKE", ctx, "establishing CHILD_SA net{7}")
	}
	l.line(5, "CFG", ctx, "selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ")
	l.line(9, "IKE", "other|3", "sending keep-alive")
	l.line(6, "CHD", ctx, "CHILD_SA net{7} state change: CREATED => INSTALLING")
	l.dump(6, "CHD", ctx, "encryption initiator key", seq(16, 0x10))
	l.dump(6, "CHD", ctx, "encryption responder key", seq(16, 0x20))
	l.dump(6, "CHD", ctx, "integrity initiator key", seq(32, 0x40))
	l.dump(6, "CHD", ctx, "integrity responder key", seq(32, 0x80))
	l.line(6, "CHD", ctx, "adding inbound ESP SA")
	l.line(6, "CHD", ctx, fmt.Sprintf("  SPI 0x%s, src %s dst %s", inSPI, remote, local))
	l.line(6, "CHD", ctx, "adding outbound ESP SA")
	l.line(6, "CHD", ctx, fmt.Sprintf("  SPI 0x%s, src %s dst %s", outSPI, local, remote))
}

func TestParseCharonLogChildRoles(t *testing.T) {
	var ini, res charonLog
	childLog(&ini, "gw-gw|1", true, "c0000001", "c0000002", "203.0.113.1", "203.0.113.2")
	childLog(&res, "gw-gw|4", false, "c0000002", "c0000001", "203.0.113.2", "203.0.113.1")
	keysI, err := ParseCharonLog(strings.NewReader(ini.b.String()))
	if err != nil {
		t.Fatal(err)
	}
	keysR, err := ParseCharonLog(strings.NewReader(res.b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(keysI.ESP) != 2 || len(keysR.ESP) != 2 {
		t.Fatalf("ESP SAs: initiator %d, responder %d; want 2 each", len(keysI.ESP), len(keysR.ESP))
	}
	// 0xc0000002 carries initiator-to-responder traffic: the initiator's
	// outbound SA and the responder's inbound one, under the initiator keys.
	for _, ks := range []*KeySet{keysI, keysR} {
		for _, e := range ks.ESP {
			wantEncr, wantInteg, wantSrc := seq(16, 0x20), seq(32, 0x80), "203.0.113.2"
			if e.SPI == 0xc0000002 {
				wantEncr, wantInteg, wantSrc = seq(16, 0x10), seq(32, 0x40), "203.0.113.1"
			}
			if !bytes.Equal(e.EncrKey, wantEncr) || !bytes.Equal(e.IntegKey, wantInteg) || e.Src.String() != wantSrc {
				t.Errorf("SPI %08x: key %x integ %x src %s; want %x %x %s", e.SPI, e.EncrKey, e.IntegKey, e.Src, wantEncr, wantInteg, wantSrc)
			}
			if e.Encr != "AES_CBC" || e.Integ != "HMAC_SHA2_256_128" {
				t.Errorf("SPI %08x: algorithms %s/%s", e.SPI, e.Encr, e.Integ)
			}
		}
	}
	u := keysI.UAT()
	if len(u.ESPSA) != 2 || len(u.Notes) != 0 {
		t.Fatalf("UAT %+v", u)
	}
	want := `"IPv4","203.0.113.2","203.0.113.1","0xc0000001","AES-CBC [RFC3602]","0x` + hex.EncodeToString(seq(16, 0x20)) +
		`","HMAC-SHA-256-128 [RFC4868]","0x` + hex.EncodeToString(seq(32, 0x80)) + `"`
	if u.ESPSA[0] != want {
		t.Errorf("esp_sa record\n got %s\nwant %s", u.ESPSA[0], want)
	}
}

func TestParseCharonLogIKE(t *testing.T) {
	var l charonLog
	// The responder: proposal selected by one thread, keys by another,
	// SPIs from the AUTH octets of the IKE_SA_INIT response.
	l.line(7, "CFG", "1", "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384")
	l.dump(9, "IKE", "1", "SKEYSEED", seq(48, 0))
	l.dump(9, "IKE", "1", "Sk_ei secret", seq(36, 0x10))
	l.line(9, "IKE", "1", "Sk_er secret => 36 bytes @ 0x7f0000001000")
	l.line(9, "IKE", "1", "   0: 01 02") // cut short: dropped
	l.line(9, "IKE", "1", "unrelated line")
	l.dump(9, "IKE", "1", "Sk_er secret", seq(36, 0x50))
	request := append(seq(8, 0xa0), make([]byte, 24)...)
	response := append(append(seq(8, 0xa0), seq(8, 0xb0)...), make([]byte, 16)...)
	l.dump(10, "IKE", "gw-gw|1", octetsDump, request)
	l.dump(10, "IKE", "gw-gw|1", octetsDump, response)
	ks, err := ParseCharonLog(strings.NewReader(l.b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.IKE) != 1 {
		t.Fatalf("got %d IKE SAs, want 1", len(ks.IKE))
	}
	k := ks.IKE[0]
	if k.Encr != "AES_GCM_16_256" || k.Integ != "" || !bytes.Equal(k.SKei, seq(36, 0x10)) || !bytes.Equal(k.SKer, seq(36, 0x50)) ||
		!bytes.Equal(k.SPIi[:], seq(8, 0xa0)) || !bytes.Equal(k.SPIr[:], seq(8, 0xb0)) {
		t.Errorf("IKE keys %+v", k)
	}
	u := ks.UAT()
	want := "a0a1a2a3a4a5a6a7,b0b1b2b3b4b5b6b7," + hex.EncodeToString(seq(36, 0x10)) + "," + hex.EncodeToString(seq(36, 0x50)) +
		`,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"`
	if len(u.IKEv2) != 1 || u.IKEv2[0] != want {
		t.Errorf("ikev2_decryption_table\n got %v\nwant %s", u.IKEv2, want)
	}
	ks.IKE[0].Encr = "CHACHA20_POLY1305_256"
	if u := ks.UAT(); len(u.IKEv2) != 0 || len(u.Notes) != 1 {
		t.Errorf("an algorithm Wireshark lacks must become a note, got %+v", u)
	}
}

// TestSharedCapture replays the strongSwan capture beside the repository:
// the keys parsed from its charon log must decrypt its IKE_AUTH and ESP
// with tshark. This is the decryption recipe the e2e tests use.
func TestSharedCapture(t *testing.T) {
	dir := filepath.Join(testvec.SharedDir(t, "captures"), "strongswan-5.9.8-psk-x25519-aes128gcm16")
	ks, err := ParseCharonLogFile(filepath.Join(dir, "keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.ESP) != 2 || len(ks.IKE) != 1 {
		t.Fatalf("keys.txt gave %d ESP and %d IKE SAs, want 2 and 1", len(ks.ESP), len(ks.IKE))
	}
	for _, e := range ks.ESP {
		want := map[uint32]string{0x64d8d086: "f043bd23671fdb74ee9894815079ab4d0158f99c", 0x8a3e519f: "cf7f569cc6a1803008cff2ad4a72ea2bf807d455"}[e.SPI]
		if hex.EncodeToString(e.EncrKey) != want {
			t.Errorf("SPI %08x: key %x, want %s", e.SPI, e.EncrKey, want)
		}
	}
	if k := ks.IKE[0]; hex.EncodeToString(k.SPIi[:]) != "53a9cd7448f7db2a" || hex.EncodeToString(k.SPIr[:]) != "492acad65aa40396" ||
		hex.EncodeToString(k.SKei) != "95badafe456c48ab7c8a9620e6d2a66b" || k.Encr != "AES_CBC_128" || k.Integ != "HMAC_SHA2_256_128" {
		t.Errorf("IKE keys %+v", k)
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	decoded, err := Decode(filepath.Join(dir, "exchange.pcap"), ks.UAT(), "")
	if err != nil {
		t.Fatal(err)
	}
	var icmp, auth int
	for _, d := range decoded {
		if d.Decrypted && d.Inner.Proto == 1 {
			icmp++
		}
		if d.IKEExchange == IKEExchangeAuth && d.IKEDecrypted && (d.HasPayload(IKEPayloadIDi) || d.HasPayload(IKEPayloadIDr)) {
			auth++
		}
	}
	if icmp != 6 || auth != 2 {
		t.Errorf("tshark decrypted %d ICMP packets and %d IKE_AUTH messages, want 6 and 2", icmp, auth)
	}
}

func TestParseTsharkLine(t *testing.T) {
	d, err := parseTsharkLine("5\teth:ethertype:ip:udp:udpencap:esp:ip:icmp:data\t203.0.113.1,192.168.1.10\t203.0.113.2,192.168.2.10\t17,1\t\t\t\t0x64d8d086\t\t\t")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Decrypted || d.ESPSPI != 0x64d8d086 || d.Inner.Src != HostA4 || d.Inner.Dst != HostB4 || d.Inner.Proto != 1 ||
		d.Outer.Src.String() != "203.0.113.1" || d.Outer.Proto != 17 {
		t.Errorf("ESP in UDP over IPv4 carrying IPv4: %+v", d)
	}
	d, err = parseTsharkLine("7\teth:ethertype:ip:esp:ipv6:icmpv6\t203.0.113.1\t203.0.113.2\t50\tfd00:1::10\tfd00:2::10\t58\t0x00000101\t\t\t")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Decrypted || d.Inner.Src != HostA6 || d.Inner.Proto != 58 || d.Outer.Proto != 50 {
		t.Errorf("ESP over IPv4 carrying IPv6: %+v", d)
	}
	d, err = parseTsharkLine("9\teth:ethertype:ip:udp:udpencap:esp\t203.0.113.1\t203.0.113.2\t17\t\t\t\t0xdeadbeef\t\t\t")
	if err != nil || d.Decrypted || d.ESPSPI != 0xdeadbeef {
		t.Errorf("undecrypted ESP: %+v, %v", d, err)
	}
	d, err = parseTsharkLine("3\teth:ethertype:ip:udp:udpencap:isakmp\t203.0.113.1\t203.0.113.2\t17\t\t\t\t\t35\t46,35,41,36,39\t4")
	if err != nil || d.IKEExchange != IKEExchangeAuth || !d.HasPayload(IKEPayloadIDi) || d.ESPSPI != 0 || !d.IKEDecrypted {
		t.Errorf("IKE_AUTH: %+v, %v", d, err)
	}
	if _, err := parseTsharkLine("1\tx"); err == nil {
		t.Error("a line with missing fields was accepted")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 192.168.2.10 (192.168.2.10) 56(84) bytes of data.

--- 192.168.2.10 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 804ms
rtt min/avg/max/mdev = 0.211/0.402/0.944/0.271 ms
`
	r, err := parsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transmitted != 5 || r.Received != 4 || r.Loss < 0.199 || r.Loss > 0.201 || r.AvgRTT != 402*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	r, err = parsePing("3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n")
	if err != nil || r.Loss != 1 || r.AvgRTT != 0 {
		t.Errorf("all lost: %+v, %v", r, err)
	}
	if _, err := parsePing("ping: connect: Network is unreachable\n"); err == nil {
		t.Error("output without a summary was accepted")
	}
}

func TestParseIperf(t *testing.T) {
	r, err := parseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bytes":312500000,"bits_per_second":2.5e8,"retransmits":7},
		"sum_received":{"bits_per_second":2.4e8},"cpu_utilization_percent":{"host_total":12.5,"remote_total":30}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ReceivedBps != 2.4e8 || r.SentBps != 2.5e8 || r.SentBytes != 312500000 || r.Retransmits != 7 || r.ClientCPU != 12.5 || r.ServerCPU != 30 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect to server: Connection refused"}`)); err == nil {
		t.Error("an iperf3 error was accepted")
	}
	if _, err := parseIperf([]byte(`{"end":{}}`)); err == nil {
		t.Error("a run without throughput was accepted")
	}
}

func TestSwanctlRender(t *testing.T) {
	g := &Gateway{Name: "gw-a", Black4: GwABlack4, Peer4: GwBBlack4.Addr(), LocalNet4: RedNetA4, RemoteNet4: RedNetB4,
		LocalNet6: RedNetA6, RemoteNet6: RedNetB6}
	cfg := g.SwanctlConfig(SiteToSite{
		Proposals: []string{"aes128-sha256-modp3072", "aes256-sha384-ecp384"}, ESPProposals: []string{"aes128gcm16"},
		PSK: `a "quoted" psk\`, DPDDelay: 1500 * time.Millisecond, StartAction: "trap",
	})
	out := cfg.Render()
	for _, want := range []string{
		"\tgw-gw {\n", "local_addrs = 203.0.113.1\n", "remote_addrs = 203.0.113.2\n",
		"proposals = aes128-sha256-modp3072,aes256-sha384-ecp384\n", "mobike = no\n", "dpd_delay = 2s\n",
		"id = gw-a.example\n", "id = gw-b.example\n", "\tnet {\n",
		"local_ts = 192.168.1.0/24,fd00:1::/64\n", "remote_ts = 192.168.2.0/24,fd00:2::/64\n",
		"esp_proposals = aes128gcm16\n", "start_action = trap\n",
		"id-1 = gw-a.example\n", "id-2 = gw-b.example\n", `secret = "a \"quoted\" psk\\"` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "{") != strings.Count(out, "}") {
		t.Errorf("unbalanced braces:\n%s", out)
	}
}

// Frame builders for the leak checker.
func ether(et uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	binary.BigEndian.PutUint16(f[12:], et)
	return append(f, payload...)
}

func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0], h[9] = 0x45, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	return append(h, payload...)
}

func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	return append(h, payload...)
}

func TestCleartextLeaks(t *testing.T) {
	a, b := GwABlack4.Addr(), GwBBlack4.Addr()
	red := []netip.Prefix{RedNetA4, RedNetB4}
	redAddrs := []netip.Addr{HostA4, HostB4}
	withRed := append([]byte{1, 2, 3}, HostA4.AsSlice()...)
	ikeInit := make([]byte, 28)
	ikeInit[16] = 33 // SA payload first: IKE_SA_INIT, clear
	ikeAuth := make([]byte, 28)
	ikeAuth[16] = 46 // SK
	frames := []struct {
		data []byte
		leak bool
	}{
		{ether(etherIPv4, ipv4(a, b, protoESP, withRed)), false},                                                 // ciphertext
		{ether(etherIPv4, ipv4(a, b, protoUDP, udp(4500, 4500, append([]byte{0, 0, 1, 1}, withRed...)))), false}, // ESP in UDP
		{ether(etherIPv4, ipv4(a, b, protoUDP, udp(500, 500, ikeInit))), false},
		{ether(etherIPv4, ipv4(a, b, protoUDP, udp(4500, 4500, append([]byte{0, 0, 0, 0}, append(ikeAuth, withRed...)...)))), false},
		{ether(etherIPv4, ipv4(a, b, protoUDP, udp(4500, 4500, []byte{0xff}))), false}, // keepalive
		{ether(etherIPv4, ipv4(HostA4, HostB4, 1, []byte{8, 0, 0, 0})), true},          // red ping in clear
		{ether(etherIPv4, ipv4(a, b, protoUDP, udp(500, 500, append(ikeInit, withRed...)))), true},
		{ether(etherIPv4, ipv4(a, b, 47, ipv4(HostA4, HostB4, 1, nil))), true}, // GRE-like tunnel in clear
		{ether(0x0806, append(make([]byte, 14), HostB4.AsSlice()...)), true},   // ARP for a red address
		{ether(0x0806, append(make([]byte, 14), b.AsSlice()...)), false},
	}
	var fs []Frame
	for _, f := range frames {
		fs = append(fs, Frame{LinkType: LinkTypeEthernet, Data: f.data})
	}
	leaks := CleartextLeaks(fs, red, redAddrs)
	got := map[int]bool{}
	for _, l := range leaks {
		got[l.Index] = true
	}
	for i, f := range frames {
		if got[i+1] != f.leak {
			t.Errorf("frame %d: leak=%v, want %v (%v)", i+1, got[i+1], f.leak, leaks)
		}
	}
}

func TestReadPcap(t *testing.T) {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], LinkTypeEthernet)
	b.Write(hdr)
	frame := ether(etherIPv4, ipv4(GwABlack4.Addr(), GwBBlack4.Addr(), protoESP, []byte{1, 2, 3, 4}))
	for i := 0; i < 2; i++ {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec, 1700000000)
		binary.LittleEndian.PutUint32(rec[4:], 250000)
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		b.Write(rec)
		b.Write(frame)
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	frames, err := ReadPcap(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 || !bytes.Equal(frames[1].Data, frame) || frames[0].Time.Nanosecond() != 250000000 {
		t.Fatalf("read %d frames: %+v", len(frames), frames)
	}
	et, nw, ok := frames[0].Network()
	ip, ok2 := ParseIP(nw)
	if !ok || !ok2 || et != etherIPv4 || ip.Proto != protoESP || ip.Dst != GwBBlack4.Addr() {
		t.Errorf("decoded %#x %+v", et, ip)
	}
	if _, err := parsePcap(b.Bytes()[:b.Len()-1]); err == nil {
		t.Error("a truncated file was accepted")
	}
}

func TestStalePrefix(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	dead := cmd.Process.Pid
	for name, want := range map[string]bool{
		fmt.Sprintf("bte-%d-1-ga", os.Getpid()): false, // this process
		fmt.Sprintf("bte-%d-1-ga", dead):        true,
		"bte-x-1-ga":                            false,
		"other-1-1":                             false,
		fmt.Sprintf("bte-%d", dead):             false, // no role part
	} {
		if got := stalePrefix(name); got != want {
			t.Errorf("stalePrefix(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzParseListSAs(f *testing.F) {
	f.Add(listSASample)
	f.Add("a {\n b = [\n c\n ]\n}\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseListSAs(s)
	})
}

func FuzzParseCharonLog(f *testing.F) {
	var l charonLog
	childLog(&l, "gw-gw|1", true, "c0000001", "c0000002", "203.0.113.1", "203.0.113.2")
	f.Add(l.b.String())
	f.Add("00[IKE] <x|1> SKEYSEED => 3 bytes @ 0x1\n00[IKE] <x|1>    0: 01 02 03\n")
	f.Fuzz(func(t *testing.T, s string) {
		ks, err := ParseCharonLog(strings.NewReader(s))
		if err != nil {
			return
		}
		_ = ks.UAT()
	})
}

func FuzzReadPcap(f *testing.F) {
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, _ := parsePcap(b)
		for _, fr := range frames {
			if _, nw, ok := fr.Network(); ok {
				ParseIP(nw)
			}
		}
		CleartextLeaks(frames, []netip.Prefix{RedNetA4}, []netip.Addr{HostA4})
	})
}

func TestBitwConfig(t *testing.T) {
	g := &Gateway{Name: "gw-b", NS: &Netns{Name: "bte-test-gb"}, RedLink: RedLink, BlackLink: BlackLink,
		Red4: GwBRed4, Black4: NATGwB4, NextHop4: NATRouter4.Addr(), Peer4: GwABlack4.Addr(),
		LocalNet4: RedNetB4, RemoteNet4: RedNetA4}
	files := BitwFiles{Socket: "/tmp/bte-test-gb/bitw.sock", KeysDir: "/tmp/keys"}
	out := g.renderBitwConfig(BitwSite{Proposals: []string{"aes128gcm16-prfsha256-x25519"}, ESPProposals: []string{"aes128gcm16"},
		PSK: `psk with "quotes"`, DPDDelay: 10 * time.Second, RekeyTime: 4 * time.Hour, StartAction: "start"}, files)
	for _, want := range []string{
		"[device]\nname = \"gw-b\"\ncontrol = \"/tmp/bte-test-gb/bitw.sock\"\n", "save_keys = \"/tmp/keys\"\n",
		"[interfaces.red]\nlink = \"red0\"\naddress = \"192.168.2.1/24\"\n",
		"[interfaces.black]\nlink = \"black0\"\naddress = \"192.0.2.2/24\"\ngateway = \"192.0.2.1\"\n",
		"[connections.gw-gw]\nremote_addrs = [\"203.0.113.1\"]\nproposals = [\"aes128gcm16-prfsha256-x25519\"]\n",
		"dpd_delay = \"10s\"\nrekey_time = \"4h\"\n",
		"local = { auth = \"psk\", id = \"gw-b.example\" }\nremote = { auth = \"psk\", id = \"gw-a.example\" }\n",
		"[connections.gw-gw.children.net]\nlocal_ts = [\"192.168.2.0/24\"]\nremote_ts = [\"192.168.1.0/24\"]\n",
		"start_action = \"start\"\n",
		"[secrets.ike-gw-gw]\nid = [\"gw-b.example\", \"gw-a.example\"]\nsecret = \"psk with \\\"quotes\\\"\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bitw config lacks %q:\n%s", want, out)
		}
	}
	var decoded map[string]any
	if _, err := toml.Decode(out, &decoded); err != nil {
		t.Errorf("generated config is not TOML: %v\n%s", err, out)
	}
	if tomlString("a\nb\\") != `"a\u000ab\\"` {
		t.Errorf("tomlString escapes: %s", tomlString("a\nb\\"))
	}
}

func TestTcpdumpStats(t *testing.T) {
	log := "tcpdump: listening on gwa, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n" +
		"tcpdump: 15 packets captured, 16 packets received by filter, 0 packets dropped by kernel\n" +
		"17 packets captured\n17 packets received by filter\n1 packet dropped by kernel\n"
	st, ok := lastTcpdumpStats(log)
	if !ok || st != (tcpdumpStats{17, 17, 1}) {
		t.Errorf("exit statistics: %+v %v", st, ok)
	}
	st, ok = lastTcpdumpStats(log[:strings.Index(log, "17 packets")])
	if !ok || st != (tcpdumpStats{15, 16, 0}) {
		t.Errorf("SIGUSR1 statistics: %+v %v", st, ok)
	}
	if _, ok := lastTcpdumpStats("tcpdump: listening on gwa\n"); ok {
		t.Error("statistics found where there are none")
	}
}
