package message

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/internal/pcap"
	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// The shared capture: one IKE_SA_INIT and one IKE_AUTH exchange between two
// strongSwan 5.9.8 gateways, gwA (203.0.113.1) initiating, with gwA's
// charon log and every key in keys.txt.
const captureName = "strongswan-5.9.8-psk-x25519-aes128gcm16"

type capture struct {
	pkts [4]pcap.Packet // IKE_SA_INIT request, response, IKE_AUTH request, response
	msgs [4][]byte      // their IKE messages, non-ESP marker removed
	keys map[string][]byte
	psk  []byte
	log  []string // charon log lines, after the "<gw-gw|67>" tag
}

func loadCapture(t testing.TB) *capture {
	t.Helper()
	dir := filepath.Join(testvec.SharedDir(t, "captures"), captureName)
	pkts, err := pcap.ReadFile(filepath.Join(dir, "exchange.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{keys: map[string][]byte{}}
	n := 0
	for _, p := range pkts {
		if p.Proto != 17 {
			continue
		}
		data := p.UDPData
		switch {
		case p.SrcPort == 500 || p.DstPort == 500:
		case p.SrcPort == 4500 || p.DstPort == 4500:
			// RFC 3948 §2.2: IKE on port 4500 follows a zero non-ESP marker;
			// anything else is ESP in UDP.
			if len(data) < 4 || binary.BigEndian.Uint32(data) != 0 {
				continue
			}
			data = data[4:]
		default:
			continue
		}
		if n == len(c.msgs) {
			t.Fatalf("more than %d IKE messages in the capture", n)
		}
		c.pkts[n], c.msgs[n] = p, data
		n++
	}
	if n != len(c.msgs) {
		t.Fatalf("%d IKE messages in the capture, want %d", n, len(c.msgs))
	}

	f, err := os.Open(filepath.Join(dir, "keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyLine := regexp.MustCompile(`^(Sk_\w+) secret\s+([0-9a-f]+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := keyLine.FindStringSubmatch(line); m != nil {
			c.keys[m[1]] = testvec.MustHex(t, m[2])
		}
		if s, ok := strings.CutPrefix(line, "# PSK: "); ok {
			c.psk = []byte(strings.TrimSpace(s))
		}
		if _, rest, ok := strings.Cut(line, "<gw-gw|67>"); ok {
			c.log = append(c.log, rest)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Sk_ei", "Sk_er", "Sk_ai", "Sk_ar", "Sk_pi", "Sk_pr"} {
		if c.keys[k] == nil {
			t.Fatalf("keys.txt lacks %s", k)
		}
	}
	if c.psk == nil {
		t.Fatal("keys.txt lacks the PSK")
	}
	return c
}

// dumps returns every chunk charon logged as "name => N bytes", decoded
// from the hex dump lines that follow.
func (c *capture) dumps(t testing.TB, name string) [][]byte {
	t.Helper()
	var out [][]byte
	for i, line := range c.log {
		s, ok := strings.CutPrefix(strings.TrimSpace(line), name+" => ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(s)[0])
		if err != nil {
			t.Fatalf("dump header %q", line)
		}
		var b []byte
		for j := i + 1; len(b) < n && j < len(c.log); j++ {
			_, hexpart, ok := strings.Cut(c.log[j], ": ")
			if !ok {
				t.Fatalf("dump line %q", c.log[j])
			}
			for _, tok := range strings.Split(hexpart, " ") {
				if len(tok) != 2 || len(b) == n {
					break
				}
				v, err := strconv.ParseUint(tok, 16, 8)
				if err != nil {
					t.Fatalf("dump line %q", c.log[j])
				}
				b = append(b, byte(v))
			}
		}
		if len(b) != n {
			t.Fatalf("dump %s: %d of %d octets", name, len(b), n)
		}
		out = append(out, b)
	}
	return out
}

// payloadLists returns the payload lists charon logged for each message it
// generated or parsed: "[ SA KE No N(NATD_S_IP) ... ]".
func (c *capture) payloadLists(t testing.TB) []string {
	re := regexp.MustCompile(`(generating|parsed) \S+ (request|response) \d+ \[ (.*) \]`)
	var out []string
	for _, line := range c.log {
		if m := re.FindStringSubmatch(line); m != nil {
			out = append(out, m[3])
		}
	}
	if len(out) != 4 {
		t.Fatalf("%d payload lists in the log, want 4", len(out))
	}
	return out
}

// strongSwanNotify maps charon's abbreviations to notify types.
var strongSwanNotify = map[NotifyType]string{
	NotifyNATDetectionSourceIP: "NATD_S_IP", NotifyNATDetectionDestinationIP: "NATD_D_IP",
	NotifyIKEv2FragmentationSupported: "FRAG_SUP", NotifySignatureHashAlgorithms: "HASH_ALG",
	NotifyRedirectSupported: "REDIR_SUP", NotifyChildlessIKEv2Supported: "CHDLESS_SUP",
	NotifyMultipleAuthSupported: "MULT_AUTH", NotifyInitialContact: "INIT_CONTACT",
	NotifyEAPOnlyAuthentication: "EAP_ONLY", NotifyIKEv2MessageIDSyncSupported: "MSG_ID_SYN_SUP",
}

// strongSwanList renders the payloads as charon's log does.
func strongSwanList(m *Message) string {
	var parts []string
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok {
			abbr, known := strongSwanNotify[n.Type]
			if !known {
				abbr = n.Type.String()
			}
			parts = append(parts, "N("+abbr+")")
			continue
		}
		parts = append(parts, p.PayloadType().String())
	}
	return strings.Join(parts, " ")
}

func prfSHA256(key []byte, data ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func TestCaptureStrongSwan(t *testing.T) {
	c := loadCapture(t)
	lists := c.payloadLists(t)
	const spii, spir = 0x53a9cd7448f7db2a, 0x492acad65aa40396

	// IKE_SA_INIT: plaintext, every payload checked, re-encoded octet for
	// octet.
	var init [2]*Message
	for i := range init {
		m, err := Decode(c.msgs[i], nil)
		if err != nil {
			t.Fatalf("IKE_SA_INIT %d: %v", i, err)
		}
		init[i] = m
		if got := strongSwanList(m); got != lists[i] {
			t.Errorf("IKE_SA_INIT %d payloads [ %s ], charon logged [ %s ]", i, got, lists[i])
		}
		out, err := m.Encode(nil, nil)
		if err != nil || !bytes.Equal(out, c.msgs[i]) {
			t.Errorf("IKE_SA_INIT %d re-encodes differently (%v):\n%x\n%x", i, err, out, c.msgs[i])
		}
		if !bytes.Equal(m.Raw(), c.msgs[i]) {
			t.Errorf("IKE_SA_INIT %d: Raw differs", i)
		}
	}
	req, resp := init[0], init[1]
	if want := (Header{SPIi: spii, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}); req.Header != want {
		t.Errorf("request header %+v", req.Header)
	}
	if want := (Header{SPIi: spii, SPIr: spir, Exchange: ExchangeIKESAInit, Flags: FlagResponse}); resp.Header != want {
		t.Errorf("response header %+v", resp.Header)
	}
	ikeSuite := proposal.Proposal{Protocol: proposal.ProtoIKE,
		Encr: []proposal.Encr{{ID: proposal.EncrAESCBC, KeyBits: 128}}, PRF: []proposal.PRFID{proposal.PRFHMACSHA256},
		Integ: []proposal.IntegID{proposal.IntegHMACSHA256128}, KE: []proposal.KEID{proposal.KEX25519}}
	for i, m := range init {
		sa := Find[*SA](m)
		if sa == nil || len(sa.Proposals) != 1 || sa.Proposals[0].Number != 1 || sa.Proposals[0].SPI != nil {
			t.Fatalf("IKE_SA_INIT %d SA %+v", i, sa)
		}
		got, err := sa.Proposals[0].Config()
		if err != nil || got.String() != ikeSuite.String() {
			t.Errorf("IKE_SA_INIT %d proposal %s (%v), want %s", i, got.String(), err, ikeSuite.String())
		}
		if ke := Find[*KE](m); ke.Group != proposal.KEX25519 || len(ke.Data) != 32 {
			t.Errorf("IKE_SA_INIT %d KE group %v, %d octets", i, ke.Group, len(ke.Data))
		}
		if n := Find[*Nonce](m); len(n.Data) != 32 {
			t.Errorf("IKE_SA_INIT %d nonce of %d octets", i, len(n.Data))
		}
		if algs, ok := m.Notify(NotifySignatureHashAlgorithms).HashAlgorithms(); !ok || len(algs) != 4 || algs[0] != 2 || algs[3] != 5 {
			t.Errorf("IKE_SA_INIT %d hash algorithms %v", i, algs)
		}
		for _, n := range FindAll[*Notify](m) {
			if n.Protocol != 0 || n.SPI != nil {
				t.Errorf("IKE_SA_INIT %d: %v with protocol %v SPI %x", i, n.Type, n.Protocol, n.SPI)
			}
			switch n.Type {
			case NotifyNATDetectionSourceIP, NotifyNATDetectionDestinationIP:
				if len(n.Data) != sha1.Size {
					t.Errorf("IKE_SA_INIT %d: %v of %d octets", i, n.Type, len(n.Data))
				}
			case NotifySignatureHashAlgorithms:
			default: // the feature announcements carry no data
				if n.Data != nil {
					t.Errorf("IKE_SA_INIT %d: %v with data %x", i, n.Type, n.Data)
				}
			}
		}
	}

	// NAT detection: every natd_chunk charon hashed is SPIi | SPIr | IP |
	// port and its natd_hash is SHA-1 of it; the builder gives the same.
	chunks, hashes := c.dumps(t, "natd_chunk"), c.dumps(t, "natd_hash")
	if len(chunks) != 4 || len(hashes) != 4 {
		t.Fatalf("%d natd chunks, %d hashes", len(chunks), len(hashes))
	}
	for i, ch := range chunks {
		if len(ch) != 22 {
			t.Fatalf("natd_chunk %d of %d octets", i, len(ch))
		}
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ch[16:20])), binary.BigEndian.Uint16(ch[20:]))
		h := NATDetectionHash(binary.BigEndian.Uint64(ch), binary.BigEndian.Uint64(ch[8:]), ap)
		if s := sha1.Sum(ch); !bytes.Equal(s[:], hashes[i]) || !bytes.Equal(h[:], hashes[i]) {
			t.Errorf("natd %d: builder %x, sha1 %x, charon %x", i, h, s, hashes[i])
		}
	}
	// gwA sent the first two; the destination hash covers the real peer.
	if !bytes.Equal(req.Notify(NotifyNATDetectionSourceIP).Data, hashes[0]) ||
		!bytes.Equal(req.Notify(NotifyNATDetectionDestinationIP).Data, hashes[1]) {
		t.Error("request NAT-D notifications differ from charon's hashes")
	}
	dst := netip.AddrPortFrom(c.pkts[0].Dst, c.pkts[0].DstPort)
	if h := NATDetectionHash(spii, 0, dst); !bytes.Equal(req.Notify(NotifyNATDetectionDestinationIP).Data, h[:]) {
		t.Error("request NAT_DETECTION_DESTINATION_IP is not the hash of the packet's destination")
	}
	// gwA received the response's hashes ("received src_hash/dst_hash").
	if src := c.dumps(t, "received src_hash"); !bytes.Equal(resp.Notify(NotifyNATDetectionSourceIP).Data, src[0]) {
		t.Error("response NAT_DETECTION_SOURCE_IP differs from charon's received src_hash")
	}
	respDst := netip.AddrPortFrom(c.pkts[1].Dst, c.pkts[1].DstPort)
	if h := NATDetectionHash(spii, spir, respDst); !bytes.Equal(resp.Notify(NotifyNATDetectionDestinationIP).Data, h[:]) {
		t.Error("response NAT_DETECTION_DESTINATION_IP is not the hash of the packet's destination")
	}

	// IKE_AUTH: decrypted with SK_e/SK_a of each direction, the ICV checked
	// first, then every inner payload.
	ciphers := [2]*cbcHMAC{newCBCHMAC(c.keys["Sk_ei"], c.keys["Sk_ai"]), newCBCHMAC(c.keys["Sk_er"], c.keys["Sk_ar"])}
	var auth [2]*Message
	for i := range auth {
		b := c.msgs[2+i]
		if _, err := Decode(b, ciphers[1-i]); parseErr(t, err).Reason != ReasonIntegrity {
			t.Errorf("IKE_AUTH %d opened with the other direction's keys: %v", i, err)
		}
		m, err := Decode(b, ciphers[i])
		if err != nil {
			t.Fatalf("IKE_AUTH %d: %v", i, err)
		}
		auth[i] = m
		if !m.Encrypted || m.Exchange != ExchangeIKEAuth || m.MessageID != 1 || m.SPIi != spii || m.SPIr != spir {
			t.Errorf("IKE_AUTH %d header %+v", i, m.Header)
		}
		if got := strongSwanList(m); got != lists[2+i] {
			t.Errorf("IKE_AUTH %d payloads [ %s ], charon logged [ %s ]", i, got, lists[2+i])
		}
		// The inner payloads re-encode to exactly what strongSwan encrypted.
		sk, _ := validateChain(b[HeaderLen:], PayloadSK)
		inner, err := openProtected(ciphers[i], PayloadSK, b[:HeaderLen+genericLen], sk[0].body)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := appendPayloads(nil, m.Payloads); err != nil || !bytes.Equal(out, inner) {
			t.Errorf("IKE_AUTH %d inner payloads re-encode differently (%v)", i, err)
		}
		// Sealed again under the captured IV, the message has strongSwan's
		// layout: same lengths (both pad minimally), header, SK header and
		// IV. The padding octets differ: strongSwan's are random, ours zero.
		iv := sk[0].body[:ciphers[i].IVSize()]
		fixed := HeaderLen + genericLen + len(iv)
		out, err := m.Encode(nil, fixedIV{ciphers[i], iv})
		if err != nil || len(out) != len(b) || !bytes.Equal(out[:fixed], b[:fixed]) {
			t.Errorf("IKE_AUTH %d re-sealed: %d octets (%v), captured %d\n%x\n%x", i, len(out), err, len(b), out[:fixed], b[:fixed])
		}
		if _, err := Decode(out, ciphers[i]); err != nil {
			t.Errorf("IKE_AUTH %d re-sealed does not decode: %v", i, err)
		}
	}
	if auth[0].IsResponse() || !auth[0].IsInitiator() || !auth[1].IsResponse() || auth[1].IsInitiator() {
		t.Error("IKE_AUTH flags")
	}

	// Identities, traffic selectors, the ESP proposal and SPIs.
	idi, idr := Find[*IDi](auth[0]), Find[*IDr](auth[1])
	if a, ok := idi.Addr(); !ok || a != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("IDi %v", idi)
	}
	if a, ok := idr.Addr(); !ok || a != netip.MustParseAddr("203.0.113.2") {
		t.Errorf("IDr %v", idr)
	}
	idx := c.dumps(t, "IDx'")
	if len(idx) != 2 || !bytes.Equal(idi.RestOfIDPayload(), idx[0]) || !bytes.Equal(idr.RestOfIDPayload(), idx[1]) {
		t.Errorf("RestOfIDPayload %x %x, charon's IDx' %x", idi.RestOfIDPayload(), idr.RestOfIDPayload(), idx)
	}
	espSPI := [2]uint32{0x8a3e519f, 0x64d8d086} // each side's inbound SPI
	for i, m := range auth {
		p := Find[*SA](m).Proposals
		if len(p) == 0 || p[0].Protocol != proposal.ProtoESP || binary.BigEndian.Uint32(p[0].SPI) != espSPI[i] {
			t.Fatalf("IKE_AUTH %d ESP proposal %+v", i, p)
		}
		cfg, err := p[0].Config()
		if err != nil || cfg.Encr[0] != (proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}) || len(cfg.ESN) == 0 || cfg.ESN[0] {
			t.Errorf("IKE_AUTH %d ESP proposal %+v, %v", i, cfg, err)
		}
		tsi, tsr := Find[*TSi](m), Find[*TSr](m)
		if len(tsi.Selectors) != 1 || tsi.Selectors[0].String() != "192.168.1.0/24" ||
			len(tsr.Selectors) != 1 || tsr.Selectors[0].String() != "192.168.2.0/24" {
			t.Errorf("IKE_AUTH %d selectors %v === %v", i, tsi.Selectors, tsr.Selectors)
		}
	}

	// AUTH (§2.15, PSK): prf(prf(PSK, "Key Pad for IKEv2"), RealMessage |
	// peer's nonce | prf(SK_p, RestOfIDPayload)). The octets match charon's
	// dump and the MAC matches the AUTH payload each side sent.
	octets := c.dumps(t, "octets = message + nonce + prf(Sk_px, IDx')")
	pad := prfSHA256(c.psk, []byte("Key Pad for IKEv2"))
	signed := [2][]byte{
		AppendSignedOctets(nil, req.Raw(), Find[*Nonce](resp).Data, prfSHA256(c.keys["Sk_pi"], idi.RestOfIDPayload())),
		AppendSignedOctets(nil, resp.Raw(), Find[*Nonce](req).Data, prfSHA256(c.keys["Sk_pr"], idr.RestOfIDPayload())),
	}
	for i := range signed {
		if len(octets) != 2 || !bytes.Equal(signed[i], octets[i]) {
			t.Errorf("signed octets %d differ from charon's", i)
		}
		a := Find[*Auth](auth[i])
		if a.Method != AuthSharedKey || !hmac.Equal(prfSHA256(pad, signed[i]), a.Data) {
			t.Errorf("AUTH %d (%v %x) does not verify", i, a.Method, a.Data)
		}
	}
	t.Logf("verified %s, %s, %s, %s", req, resp, auth[0], auth[1])
}
