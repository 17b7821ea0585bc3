package keymat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/internal/pcap"
	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

const captureDir = "strongswan-5.9.8-psk-x25519-aes128gcm16"

// charonLog is what the test reads from keys.txt: the key table at the
// top and every hexdump of the raw charon log, in order, by label.
type charonLog struct {
	table map[string][]byte
	dumps map[string][][]byte
}

var (
	tableLine = regexp.MustCompile(`^(SKEYSEED|Sk_\w+ secret|encryption (?:initiator|responder) key)\s+([0-9a-f]+)$`)
	dumpHead  = regexp.MustCompile(`^# \S+ \S+ <[^>]+> (.+) => (\d+) bytes @ 0x[0-9a-f]+$`)
	dumpLine  = regexp.MustCompile(`^# \S+ \S+ <[^>]+>\s+(\d+): ((?:[0-9A-F]{2} )+)`)
)

// readCharonLog parses charon's "label => N bytes @ addr" dumps, each
// followed by "offset: XX XX ..." lines.
func readCharonLog(t *testing.T) *charonLog {
	t.Helper()
	path := filepath.Join(testvec.SharedDir(t, "captures"), captureDir, "keys.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("capture keys absent: %v", err)
	}
	defer f.Close()
	l := &charonLog{table: map[string][]byte{}, dumps: map[string][][]byte{}}
	var label string
	var want int
	var cur []byte
	flush := func() {
		if label == "" {
			return
		}
		if len(cur) != want {
			t.Fatalf("%s: dump has %d octets, header says %d", label, len(cur), want)
		}
		l.dumps[label] = append(l.dumps[label], cur)
		label, cur = "", nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := tableLine.FindStringSubmatch(line); m != nil {
			l.table[m[1]] = mustHex(t, m[2])
			continue
		}
		if m := dumpLine.FindStringSubmatch(line); m != nil && label != "" {
			cur = append(cur, mustHex(t, strings.ReplaceAll(m[2], " ", ""))...)
			continue
		}
		flush()
		if m := dumpHead.FindStringSubmatch(line); m != nil {
			label = m[1]
			want = atoi(t, m[2])
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *charonLog) dump(t *testing.T, label string, i int) []byte {
	t.Helper()
	d := l.dumps[label]
	if i >= len(d) {
		t.Fatalf("keys.txt has %d %q dumps, want #%d", len(d), label, i)
	}
	return d[i]
}

func (l *charonLog) key(t *testing.T, name string) []byte {
	t.Helper()
	k, ok := l.table[name]
	if !ok {
		t.Fatalf("keys.txt has no %q line", name)
	}
	return k
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// The exchange: IKE AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/
// CURVE_25519 (swanctl --list-sas in keys.txt), ESP AES_GCM_16_128.
var (
	captureIKE = proposal.Suite{Protocol: proposal.ProtoIKE,
		Encr: proposal.Encr{ID: proposal.EncrAESCBC, KeyBits: 128}, Integ: proposal.IntegHMACSHA256128,
		PRF: proposal.PRFHMACSHA256, KE: proposal.KEX25519}
	captureESP = proposal.Suite{Protocol: proposal.ProtoESP,
		Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}}
)

// captureExchange holds the inputs recovered from the log: the two
// IKE_SA_INIT messages, the nonces, the X25519 secret and the SPIs.
type captureExchange struct {
	log          *charonLog
	msg1, msg2   []byte
	ni, nr       []byte
	gir          []byte
	spii, spir   uint64
	idi, idr     []byte // RestOfIDPayload of each side
	octI, octR   []byte // the AUTH octets charon printed
	authI, authR []byte
	psk          []byte
}

// readCaptureExchange splits charon's AUTH octets dumps: "message + nonce
// + prf(Sk_px, IDx')" is the signer's IKE_SA_INIT message (its length is
// in its IKE header), the peer's nonce, then a PRF output.
func readCaptureExchange(t *testing.T) *captureExchange {
	l := readCharonLog(t)
	const octets = "octets = message + nonce + prf(Sk_px, IDx')"
	x := &captureExchange{log: l}
	x.octI, x.octR = l.dump(t, octets, 0), l.dump(t, octets, 1)
	prfLen := 32 // PRF_HMAC_SHA2_256
	split := func(oct []byte) (msg, nonce []byte) {
		n := int(binary.BigEndian.Uint32(oct[24:28]))
		if n+prfLen >= len(oct) {
			t.Fatalf("octets dump of %d octets cannot hold a %d-octet message", len(oct), n)
		}
		return oct[:n], oct[n : len(oct)-prfLen]
	}
	x.msg1, x.nr = split(x.octI)
	x.msg2, x.ni = split(x.octR)
	x.gir = l.dump(t, "shared Diffie Hellman secret", 0)
	x.spii = binary.BigEndian.Uint64(x.msg1[0:8])
	x.spir = binary.BigEndian.Uint64(x.msg2[8:16])
	x.idi, x.idr = l.dump(t, "IDx'", 0), l.dump(t, "IDx'", 1)
	x.authI = l.dump(t, "AUTH = prf(prf(secret, keypad), octets)", 0)
	x.authR = l.dump(t, "AUTH = prf(prf(secret, keypad), octets)", 1)
	x.psk = l.dump(t, "secret", 0)
	// The Child SA's seed is Ni | Nr: an independent check of the split.
	if seed := l.dump(t, "seed", 0); !bytes.Equal(seed, concat(x.ni, x.nr)) {
		t.Fatalf("nonces from the octets dumps disagree with the Child SA seed")
	}
	return x
}

// TestStrongSwanCapture recomputes the whole key schedule of the captured
// strongSwan exchange from its nonces and X25519 secret and compares
// every value charon printed.
func TestStrongSwanCapture(t *testing.T) {
	x := readCaptureExchange(t)
	l := x.log
	prf, _ := NewPRF(proposal.PRFHMACSHA256)

	seed, err := SKEYSEED(prf, x.ni, x.nr, x.gir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seed, l.key(t, "SKEYSEED")) || !bytes.Equal(seed, l.dump(t, "SKEYSEED", 0)) {
		t.Errorf("SKEYSEED %x, want %x", seed, l.key(t, "SKEYSEED"))
	}

	k, err := DeriveIKE(captureIKE, x.ni, x.nr, x.gir, x.spii, x.spir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []byte
	}{
		{"Sk_d secret", k.SKd}, {"Sk_ai secret", k.SKai}, {"Sk_ar secret", k.SKar},
		{"Sk_ei secret", k.SKei}, {"Sk_er secret", k.SKer}, {"Sk_pi secret", k.SKpi}, {"Sk_pr secret", k.SKpr},
	} {
		if !bytes.Equal(c.got, l.key(t, c.name)) || !bytes.Equal(c.got, l.dump(t, c.name, 0)) {
			t.Errorf("%s = %x, want %x", c.name, c.got, l.key(t, c.name))
		}
	}
	if !bytes.Equal(l.dump(t, "SK_p", 0), k.SKpi) || !bytes.Equal(l.dump(t, "SK_p", 1), k.SKpr) {
		t.Error("the SK_p charon used for each AUTH is not SK_pi then SK_pr")
	}

	// AUTH octets, assembled from the raw first message, the peer's nonce
	// and prf(SK_px, IDx'), must be byte for byte what charon signed.
	if got := k.SignedOctets(true, x.msg1, x.idi, nil); !bytes.Equal(got, x.octI) {
		t.Errorf("InitiatorSignedOctets differ:\n got %x\nwant %x", got, x.octI)
	}
	if got := k.SignedOctets(false, x.msg2, x.idr, nil); !bytes.Equal(got, x.octR) {
		t.Errorf("ResponderSignedOctets differ:\n got %x\nwant %x", got, x.octR)
	}
	if got := prf.Compute(x.psk, []byte(keyPad)); !bytes.Equal(got, l.dump(t, "prf(secret, keypad)", 0)) {
		t.Errorf("prf(secret, keypad) = %x", got)
	}
	if got := SharedKeyAuth(prf, x.psk, x.octI); !bytes.Equal(got, x.authI) {
		t.Errorf("initiator AUTH = %x, want %x", got, x.authI)
	}
	if got := SharedKeyAuth(prf, x.psk, x.octR); !bytes.Equal(got, x.authR) {
		t.Errorf("responder AUTH = %x, want %x", got, x.authR)
	}

	// The Child SA of IKE_AUTH: no PFS, IKE_SA_INIT nonces, AES-GCM-16
	// with 128-bit keys: 16 octets of key and 4 of salt per direction.
	ck, err := k.ChildKeys(captureESP, k.Ni, k.Nr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ck.EncrI, l.key(t, "encryption initiator key")) || !bytes.Equal(ck.EncrR, l.key(t, "encryption responder key")) {
		t.Errorf("ESP keys %x / %x, want %x / %x", ck.EncrI, ck.EncrR,
			l.key(t, "encryption initiator key"), l.key(t, "encryption responder key"))
	}
	if ck.IntegI != nil || ck.IntegR != nil {
		t.Error("AEAD Child SA got integrity keys")
	}
}

// TestStrongSwanCaptureIKEAuth opens both IKE_AUTH messages of
// exchange.pcap with our AES-CBC/HMAC-SHA2-256-128 ciphers, finds in them
// the ID and AUTH payloads whose values the log predicts, and re-seals
// the plaintext to the captured bytes.
func TestStrongSwanCaptureIKEAuth(t *testing.T) {
	x := readCaptureExchange(t)
	k, err := DeriveIKE(captureIKE, x.ni, x.nr, x.gir, x.spii, x.spir)
	if err != nil {
		t.Fatal(err)
	}
	init, auth := capturePackets(t)
	if !bytes.Equal(init, x.msg1) {
		t.Error("IKE_SA_INIT request in the pcap differs from the message charon signed")
	}
	iOut, iIn, err := k.Ciphers(true, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	rOut, rIn, err := k.Ciphers(false, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		msg        []byte
		open, seal message.Cipher
		idType     byte
		id, authV  []byte
	}{
		{auth[0], rIn, iOut, 35, x.idi, x.authI}, // IDi, opened by the responder
		{auth[1], iIn, rOut, 36, x.idr, x.authR}, // IDr, opened by the initiator
	} {
		msg := c.msg
		if msg[16] != 46 {
			t.Fatalf("IKE_AUTH %d: first payload is %d, not SK", i, msg[16])
		}
		aad, iv, ct := msg[:32], msg[32:48], msg[48:]
		pt, err := c.open.Open(nil, iv, ct, aad)
		if err != nil {
			t.Fatalf("IKE_AUTH %d: %v", i, err)
		}
		if again := c.seal.Seal(nil, iv, pt, aad); !bytes.Equal(again, ct) {
			t.Errorf("IKE_AUTH %d: re-sealing does not reproduce the message", i)
		}
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		if _, err := c.open.Open(nil, iv, bad, aad); err != ErrOpen {
			t.Errorf("IKE_AUTH %d: tampered ICV: %v", i, err)
		}
		// NewCipher from the raw key bytes of the sender's direction
		// opens it too.
		enc, integ := k.SKei, k.SKai
		if i == 1 {
			enc, integ = k.SKer, k.SKar
		}
		raw, err := NewCipher(captureIKE, enc, integ, bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		if again, err := raw.Open(nil, iv, ct, aad); err != nil || !bytes.Equal(again, pt) {
			t.Errorf("IKE_AUTH %d: NewCipher does not open it: %v", i, err)
		}
		payloads := innerPayloads(t, msg[28], pt[:len(pt)-int(pt[len(pt)-1])-1])
		if !bytes.Equal(payloads[c.idType], c.id) {
			t.Errorf("IKE_AUTH %d: ID payload %x, log says %x", i, payloads[c.idType], c.id)
		}
		authBody := payloads[39] // AUTH: method, 3 reserved, data
		if len(authBody) < 4 || authBody[0] != 2 || !bytes.Equal(authBody[4:], c.authV) {
			t.Errorf("IKE_AUTH %d: AUTH payload %x, want shared-key AUTH %x", i, authBody, c.authV)
		}
	}
}

// innerPayloads walks a chain of generic payload headers (RFC 7296 §3.2)
// and returns each payload's body by type.
func innerPayloads(t *testing.T, next byte, b []byte) map[byte][]byte {
	t.Helper()
	out := map[byte][]byte{}
	for next != 0 {
		if len(b) < 4 {
			t.Fatalf("truncated payload chain")
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			t.Fatalf("payload length %d of %d", n, len(b))
		}
		out[next] = b[4:n]
		next, b = b[0], b[n:]
	}
	return out
}

// capturePackets returns the IKE_SA_INIT request and the two IKE_AUTH
// messages (without their non-ESP marker) of exchange.pcap.
func capturePackets(t *testing.T) (init []byte, auth [][]byte) {
	t.Helper()
	pkts, err := pcap.ReadFile(filepath.Join(testvec.SharedDir(t, "captures"), captureDir, "exchange.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		switch {
		case p.Proto == 17 && p.DstPort == 500 && p.SrcPort == 500 && len(p.UDPData) > 28 && p.UDPData[18] == 34 && p.UDPData[19]&0x20 == 0:
			init = p.UDPData // IKE_SA_INIT request
		case p.Proto == 17 && p.DstPort == 4500 && len(p.UDPData) > 32 && bytes.Equal(p.UDPData[:4], []byte{0, 0, 0, 0}) && p.UDPData[4+18] == 35:
			auth = append(auth, p.UDPData[4:]) // IKE_AUTH after the non-ESP marker
		}
	}
	if len(auth) != 2 {
		t.Fatalf("found %d IKE_AUTH messages, want 2", len(auth))
	}
	return init, auth
}

func captureAuthMessages(t *testing.T) [][]byte {
	_, auth := capturePackets(t)
	return auth
}
