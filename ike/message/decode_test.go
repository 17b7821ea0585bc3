package message

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// rawP is a payload given as raw body octets, for building malformed
// messages.
type rawP struct {
	typ      PayloadType
	critical bool
	body     []byte
}

// rawMessage chains the raw payloads behind header h, computing every
// Next Payload and length.
func rawMessage(h Header, ps ...rawP) []byte {
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].typ
	}
	b := appendHeader(nil, h, first)
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].typ
		}
		flags := byte(0)
		if p.critical {
			flags = flagCritical
		}
		b = append(b, byte(next), flags)
		b = binary.BigEndian.AppendUint16(b, uint16(genericLen+len(p.body)))
		b = append(b, p.body...)
	}
	if err := putLength(b); err != nil {
		panic(err)
	}
	return b
}

var testHeader = Header{SPIi: 0x1122334455667788, SPIr: 0x99aabbccddeeff00, Exchange: ExchangeIKESAInit, Flags: FlagInitiator, MessageID: 5}

func nonceBody() []byte { return seq(16, 0) }

func TestParseHeader(t *testing.T) {
	good := rawMessage(testHeader, rawP{typ: PayloadNonce, body: nonceBody()})
	h, next, err := ParseHeader(good)
	if err != nil || h != testHeader || next != PayloadNonce {
		t.Fatalf("ParseHeader = %+v, %v, %v", h, next, err)
	}

	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name   string
		b      []byte
		reason Reason
		notify NotifyType
	}{
		{"27 octets", good[:HeaderLen-1], ReasonTruncated, 0},
		{"empty", nil, ReasonTruncated, 0},
		{"major 3", mod(func(b []byte) []byte { b[hdrVersion] = 0x30; return b }), ReasonMajorVersion, NotifyInvalidMajorVersion},
		{"major 15", mod(func(b []byte) []byte { b[hdrVersion] = 0xf0; return b }), ReasonMajorVersion, NotifyInvalidMajorVersion},
		{"IKEv1", mod(func(b []byte) []byte { b[hdrVersion] = 0x10; return b }), ReasonIKEv1, 0},
		{"major 0", mod(func(b []byte) []byte { b[hdrVersion] = 0x02; return b }), ReasonIKEv1, 0},
		{"length beyond datagram", good[:len(good)-1], ReasonTruncated, 0},
		{"length short of datagram", append(bytes.Clone(good), 0), ReasonLength, NotifyInvalidSyntax},
		{"length 0", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[hdrLength:], 0); return b }), ReasonLength, NotifyInvalidSyntax},
		{"length 2^32-1", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[hdrLength:], 1<<32-1); return b }), ReasonTruncated, 0},
	}
	for _, c := range cases {
		_, _, err := ParseHeader(c.b)
		pe := parseErr(t, err)
		if pe.Reason != c.reason || pe.Notify != c.notify {
			t.Errorf("%s: got %v (notify %v), want %v (notify %v)", c.name, pe.Reason, pe.Notify, c.reason, c.notify)
		}
		if _, err := Decode(c.b, nil); err == nil {
			t.Errorf("%s: Decode accepted it", c.name)
		}
	}

	// §2.5: the engine answers INVALID_MAJOR_VERSION with the sender's
	// SPIs and Message ID, so those come back with the error.
	v3 := mod(func(b []byte) []byte { b[hdrVersion] = 0x30; return b })
	if h, _, _ := ParseHeader(v3); h != testHeader {
		t.Errorf("header with major version 3: %+v", h)
	}
	// Minor version and reserved flag bits are ignored on receipt (§3.1).
	odd := mod(func(b []byte) []byte { b[hdrVersion] = 0x27; b[hdrFlags] = 0xff; return b })
	h, _, err = ParseHeader(odd)
	if err != nil || h.Flags != FlagInitiator|FlagVersion|FlagResponse {
		t.Errorf("minor version 7, flags 0xff: %+v, %v", h, err)
	}
	if !h.IsInitiator() || !h.IsResponse() || h.Flags.String() != "I|V|R" {
		t.Errorf("flag accessors on %v", h.Flags)
	}
}

func TestValidateChain(t *testing.T) {
	nonce := rawP{typ: PayloadNonce, body: nonceBody()}
	valid := rawMessage(testHeader, nonce, nonce)
	setLen := func(b []byte, off, l int) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint16(b[off+genLength:], uint16(l))
		return b
	}
	second := HeaderLen + genericLen + 16
	cases := []struct {
		name    string
		b       []byte
		reason  Reason
		payload PayloadType
	}{
		{"payload length 3", setLen(valid, HeaderLen, 3), ReasonChain, PayloadNonce},
		{"payload length 0", setLen(valid, HeaderLen, 0), ReasonChain, PayloadNonce},
		{"length overruns", setLen(valid, second, 21), ReasonChain, PayloadNonce},
		{"length leaves octets", setLen(valid, second, 19), ReasonPayloadSize, PayloadNonce},
		{"next payload without payload", func() []byte {
			b := bytes.Clone(valid)
			b[second+genNext] = byte(PayloadNonce)
			return b
		}(), ReasonChain, PayloadNonce},
		{"first payload none, octets follow", func() []byte {
			b := bytes.Clone(valid)
			b[hdrNext] = 0
			return b
		}(), ReasonChain, PayloadNone},
		{"nonce of 15", rawMessage(testHeader, rawP{typ: PayloadNonce, body: seq(15, 0)}), ReasonPayloadSize, PayloadNonce},
		{"SA of 7", rawMessage(testHeader, rawP{typ: PayloadSA, body: seq(7, 0)}), ReasonPayloadSize, PayloadSA},
		{"notify of 3", rawMessage(testHeader, rawP{typ: PayloadNotify, body: seq(3, 0)}), ReasonPayloadSize, PayloadNotify},
		{"SKF of 3", rawMessage(testHeader, rawP{typ: PayloadSKF, body: seq(3, 0)}), ReasonPayloadSize, PayloadSKF},
		{"empty CERT", rawMessage(testHeader, rawP{typ: PayloadCert}), ReasonPayloadSize, PayloadCert},
		{"SK followed by a payload", func() []byte {
			b := rawMessage(testHeader, rawP{typ: PayloadSK, body: seq(48, 0)}, nonce)
			b[HeaderLen+genNext] = byte(PayloadNonce) // SK's Next Payload is its first inner payload
			return b
		}(), ReasonPlacement, PayloadSK},
		{"payload before SK", rawMessage(testHeader, nonce, rawP{typ: PayloadSK, body: seq(48, 0)}), ReasonPlacement, PayloadNonce},
		{"SKF to Decode", rawMessage(testHeader, rawP{typ: PayloadSKF, body: seq(52, 0)}), ReasonPlacement, PayloadSKF},
		{"unknown critical", rawMessage(testHeader, nonce, rawP{typ: 200, critical: true}), ReasonCritical, 200},
		{"reserved type 1 critical", rawMessage(testHeader, rawP{typ: 1, critical: true, body: []byte{1}}), ReasonCritical, 1},
		{"unknown critical, then a bad chain", setLen(rawMessage(testHeader, rawP{typ: 200, critical: true}, nonce), HeaderLen+genericLen, 2), ReasonChain, PayloadNonce},
	}
	for _, c := range cases {
		_, err := Decode(c.b, testCBC())
		pe := parseErr(t, err)
		if pe.Reason != c.reason || pe.Payload != c.payload {
			t.Errorf("%s: got %v in %v (%v), want %v in %v", c.name, pe.Reason, pe.Payload, pe, c.reason, c.payload)
		}
		if pe.Authenticated {
			t.Errorf("%s: an unprotected message's error says Authenticated", c.name)
		}
		if pe.Reason == ReasonCritical {
			if pe.Notify != NotifyUnsupportedCriticalPayload || !bytes.Equal(pe.NotifyData(), []byte{byte(c.payload)}) {
				t.Errorf("%s: notify %v data %x", c.name, pe.Notify, pe.NotifyData())
			}
		} else if pe.Reason != ReasonPlacement && pe.Notify != NotifyInvalidSyntax {
			t.Errorf("%s: notify %v, want INVALID_SYNTAX", c.name, pe.Notify)
		}
	}
}

func TestUnknownAndCriticalBits(t *testing.T) {
	// An unknown payload without the critical bit is skipped, kept raw and
	// re-encoded as it came; the critical bit of a known payload is ignored
	// (§2.5) and not re-sent.
	b := rawMessage(testHeader,
		rawP{typ: PayloadNonce, critical: true, body: nonceBody()},
		rawP{typ: 120, body: []byte("opaque")},
		rawP{typ: PayloadVendorID, body: []byte("v")})
	m, err := Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := m.Payloads[1].(*Unknown)
	if !ok || u.Type != 120 || u.Critical || string(u.Body) != "opaque" {
		t.Fatalf("payload 1 = %#v", m.Payloads[1])
	}
	out, err := m.Encode(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(b)
	want[HeaderLen+genFlags] = 0
	if !bytes.Equal(out, want) {
		t.Errorf("re-encoded\n%x\nwant\n%x", out, want)
	}
	if got := m.String(); got != "IKE_SA_INIT request 5 [ No PAYLOAD(120) V ]" {
		t.Errorf("String: %s", got)
	}
}

// sa builds an SA body from proposals given as raw octets.
func propBytes(last, num, proto, spiSize, count byte, rest ...byte) []byte {
	b := []byte{last, 0, 0, 0, num, proto, spiSize, count}
	b = append(b, rest...)
	binary.BigEndian.PutUint16(b[propLength:], uint16(len(b)))
	return b
}

func xformBytes(last, typ byte, id uint16, attrs ...byte) []byte {
	b := []byte{last, 0, 0, 0, typ, 0, byte(id >> 8), byte(id)}
	b = append(b, attrs...)
	binary.BigEndian.PutUint16(b[xformLength:], uint16(len(b)))
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestPayloadSyntax(t *testing.T) {
	aes := xformBytes(lastTransform, 1, 12, 0x80, 14, 0, 128)
	ikeProp := func(last, num byte) []byte { return propBytes(last, num, 1, 0, 1, aes...) }
	cases := []struct {
		name string
		typ  PayloadType
		body []byte
	}{
		{"SA: proposal length 7", PayloadSA, func() []byte { b := ikeProp(0, 1); b[propLength+1] = 7; return b }()},
		{"SA: proposal overruns", PayloadSA, func() []byte { b := ikeProp(0, 1); b[propLength+1]++; return b }()},
		{"SA: last proposal marked more", PayloadSA, ikeProp(moreProposals, 1)},
		{"SA: first of two marked last", PayloadSA, cat(ikeProp(0, 1), ikeProp(0, 2))},
		{"SA: proposals 1, 3", PayloadSA, cat(ikeProp(2, 1), ikeProp(0, 3))},
		{"SA: proposals 2, 3", PayloadSA, cat(ikeProp(2, 2), ikeProp(0, 3))},
		{"SA: proposal 0", PayloadSA, ikeProp(0, 0)},
		{"SA: ESP SPI of 8", PayloadSA, propBytes(0, 1, 3, 8, 1, cat(seq(8, 0), xformBytes(0, 1, 20))...)},
		{"SA: AH SPI of 0", PayloadSA, propBytes(0, 1, 2, 0, 1, xformBytes(0, 3, 12)...)},
		{"SA: IKE SPI of 4", PayloadSA, propBytes(0, 1, 1, 4, 1, cat(seq(4, 0), aes)...)},
		{"SA: SPI overruns", PayloadSA, propBytes(0, 1, 9, 200, 0)},
		{"SA: 2 transforms announced, 1 present", PayloadSA, propBytes(0, 1, 1, 0, 2, aes...)},
		{"SA: last transform marked more", PayloadSA, propBytes(0, 1, 1, 0, 1, xformBytes(moreTransforms, 1, 12)...)},
		{"SA: first transform marked last", PayloadSA, propBytes(0, 1, 1, 0, 2, cat(xformBytes(0, 1, 12), xformBytes(0, 2, 5))...)},
		{"SA: transform length 7", PayloadSA, propBytes(0, 1, 1, 0, 1, 0, 0, 0, 7, 1, 0, 0, 12)},
		{"SA: transform overruns", PayloadSA, propBytes(0, 1, 1, 0, 1, 0, 0, 0, 9, 1, 0, 0, 12)},
		{"SA: truncated attribute", PayloadSA, propBytes(0, 1, 1, 0, 1, xformBytes(0, 1, 12, 0x80, 14, 0)...)},
		{"SA: TLV attribute overruns", PayloadSA, propBytes(0, 1, 1, 0, 1, xformBytes(0, 1, 12, 0, 99, 0, 5, 1)...)},
		{"SA: Key Length as TLV", PayloadSA, propBytes(0, 1, 1, 0, 1, xformBytes(0, 1, 12, 0, 14, 0, 2, 0, 128)...)},
		{"KE without data", PayloadKE, []byte{0, 31, 0, 0}},
		{"IDi: IPv4 of 3", PayloadIDi, []byte{1, 0, 0, 0, 1, 2, 3}},
		{"IDr: IPv6 of 4", PayloadIDr, []byte{5, 0, 0, 0, 1, 2, 3, 4}},
		{"IDi: empty FQDN", PayloadIDi, []byte{2, 0, 0, 0}},
		{"CERTREQ: 19 octets of hashes", PayloadCertReq, append([]byte{4}, seq(19, 0)...)},
		{"nonce of 257", PayloadNonce, seq(257, 0)},
		{"notify: SPI of 4 for IKE", PayloadNotify, []byte{1, 4, 0x40, 0x09, 1, 2, 3, 4}},
		{"notify: SPI of 3", PayloadNotify, []byte{3, 3, 0x40, 0x09, 1, 2, 3}},
		{"notify: SPI overruns", PayloadNotify, []byte{3, 4, 0x40, 0x09, 1, 2}},
		{"delete: ESP, 2 SPIs in 4 octets", PayloadDelete, []byte{3, 4, 0, 2, 1, 2, 3, 4}},
		{"delete: ESP, SPI size 8", PayloadDelete, []byte{3, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"delete: IKE with an SPI", PayloadDelete, []byte{1, 0, 0, 1}},
		{"delete: protocol 7", PayloadDelete, []byte{7, 0, 0, 0}},
		{"TS: none", PayloadTSi, []byte{0, 0, 0, 0}},
		{"TS: 2 announced, 1 present", PayloadTSr, cat([]byte{2, 0, 0, 0}, []byte{7, 0, 0, 16, 0, 0, 255, 255}, seq(8, 0))},
		{"TS: IPv4 selector of 15", PayloadTSi, cat([]byte{1, 0, 0, 0}, []byte{7, 0, 0, 15, 0, 0, 255, 255}, seq(7, 0))},
		{"TS: IPv6 selector of 16", PayloadTSi, cat([]byte{1, 0, 0, 0}, []byte{8, 0, 0, 16, 0, 0, 255, 255}, seq(8, 0))},
		{"TS: selector length 3", PayloadTSi, cat([]byte{1, 0, 0, 0}, []byte{10, 0, 0, 3})},
		{"TS: truncated selector", PayloadTSi, cat([]byte{1, 0, 0, 0}, []byte{7, 0})},
		{"TS: octets after the selectors", PayloadTSi, cat([]byte{1, 0, 0, 0}, []byte{7, 0, 0, 16, 0, 0, 255, 255}, seq(8, 0), []byte{0})},
		{"CP: truncated attribute", PayloadCP, []byte{1, 0, 0, 0, 0, 1, 0}},
		{"CP: attribute overruns", PayloadCP, []byte{1, 0, 0, 0, 0, 1, 0, 4, 10, 0, 0}},
		{"CP: IPv4 address of 3", PayloadCP, []byte{2, 0, 0, 0, 0, 1, 0, 3, 10, 0, 0}},
		{"CP: IPv6 address of 16", PayloadCP, cat([]byte{2, 0, 0, 0, 0, 8, 0, 16}, seq(16, 0))},
		{"CP: supported attributes of 3", PayloadCP, []byte{2, 0, 0, 0, 0, 14, 0, 3, 0, 1, 0}},
		{"EAP: length mismatch", PayloadEAP, []byte{1, 1, 0, 6, 1}},
		{"EAP: request without type", PayloadEAP, []byte{1, 1, 0, 4}},
		{"EAP: success with data", PayloadEAP, []byte{3, 1, 0, 5, 1}},
	}
	for _, c := range cases {
		_, err := Decode(rawMessage(testHeader, rawP{typ: c.typ, body: c.body}), nil)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		pe := parseErr(t, err)
		if (pe.Reason != ReasonSyntax && pe.Reason != ReasonPayloadSize) || pe.Notify != NotifyInvalidSyntax || pe.Payload != c.typ {
			t.Errorf("%s: got %v", c.name, pe)
		}
	}
}

func TestPayloadDetails(t *testing.T) {
	// A single accepted proposal keeps the number it was offered with
	// (§3.3.1); the R bit of a configuration attribute is ignored; an
	// empty ESP deletion is harmless.
	b := rawMessage(testHeader,
		rawP{typ: PayloadSA, body: propBytes(0, 5, 3, 4, 1, cat([]byte{1, 2, 3, 4}, xformBytes(0, 1, 20, 0x80, 14, 0, 128))...)},
		rawP{typ: PayloadCP, body: []byte{2, 0, 0, 0, 0x80, 1, 0, 4, 10, 9, 0, 1}},
		rawP{typ: PayloadDelete, body: []byte{3, 4, 0, 0}})
	m, err := Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := Find[*SA](m).Proposals[0]
	if p.Number != 5 || p.Protocol != proposal.ProtoESP || !bytes.Equal(p.SPI, []byte{1, 2, 3, 4}) {
		t.Errorf("proposal %+v", p)
	}
	if kl, ok := p.Transforms[0].KeyLength(); !ok || kl != 128 {
		t.Errorf("key length %d %v", kl, ok)
	}
	cfg, err := p.Config()
	if err != nil || len(cfg.Encr) != 1 || cfg.Encr[0] != (proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}) {
		t.Errorf("Config: %+v, %v", cfg, err)
	}
	cp := Find[*CP](m)
	if a, ok := cp.Get(CfgInternalIP4Address)[0].Addr(); !ok || a.String() != "10.9.0.1" {
		t.Errorf("CP address %v %v", a, ok)
	}
	if d := Find[*Delete](m); d.Protocol != proposal.ProtoESP || len(d.SPIs) != 0 {
		t.Errorf("delete %+v", d)
	}
}

func TestProposalConversion(t *testing.T) {
	for _, s := range []struct {
		spec  string
		proto proposal.Protocol
	}{
		{"aes128-sha256-x25519", proposal.ProtoIKE},
		{"aes256gcm16-prfsha384-ecp384", proposal.ProtoIKE},
		{"aes128-aes256-sha256-sha384-modp3072-ecp256", proposal.ProtoIKE},
		{"aes128gcm16-x25519-esn", proposal.ProtoESP},
		{"chacha20poly1305-noesn-esn", proposal.ProtoESP},
		{"sha256", proposal.ProtoAH},
	} {
		for _, p := range mustProposals(t, s.spec, s.proto) {
			wire := ProposalFrom(1, nil, p)
			back, err := wire.Config()
			if err != nil {
				t.Fatalf("%s: %v", s.spec, err)
			}
			if back.String() != p.String() {
				t.Errorf("%s: round trip gives %s, want %s", s.spec, back.String(), p.String())
			}
		}
	}
	// A suite as a responder returns it: one transform of each type.
	suite := proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: proposal.EncrAESCBC, KeyBits: 128},
		PRF: proposal.PRFHMACSHA256, Integ: proposal.IntegHMACSHA256128, KE: proposal.KEX25519}
	wire := ProposalFromSuite(2, nil, suite)
	want := []Transform{
		{Type: proposal.TypeEncr, ID: 12, Attributes: []Attribute{{Type: proposal.AttrKeyLength, Value: 128}}},
		{Type: proposal.TypeInteg, ID: 12}, {Type: proposal.TypePRF, ID: 5}, {Type: proposal.TypeKE, ID: 31},
	}
	if wire.Number != 2 || len(wire.Transforms) != len(want) {
		t.Fatalf("suite proposal %+v", wire)
	}
	for i := range want {
		if wire.Transforms[i].Type != want[i].Type || wire.Transforms[i].ID != want[i].ID {
			t.Errorf("transform %d: %+v, want %+v", i, wire.Transforms[i], want[i])
		}
	}
	// ChaCha20-Poly1305 has a fixed key: no Key Length attribute (§3.3.5).
	if tr := EncrTransform(proposal.Encr{ID: proposal.EncrChaCha20Poly13, KeyBits: 256}); len(tr.Attributes) != 0 {
		t.Errorf("chacha20poly1305 with attributes %v", tr.Attributes)
	}
	// Unknown transform types and attributes make a proposal unacceptable.
	for _, p := range []Proposal{
		{Protocol: proposal.ProtoIKE, Transforms: []Transform{{Type: 200, ID: 1}}},
		{Protocol: proposal.ProtoIKE, Transforms: []Transform{{Type: proposal.TypePRF, ID: 5, Attributes: []Attribute{{Type: proposal.AttrKeyLength, Value: 1}}}}},
		{Protocol: proposal.ProtoESP, Transforms: []Transform{{Type: proposal.TypeESN, ID: 2}}},
	} {
		if _, err := p.Config(); err == nil {
			t.Errorf("Config accepted %+v", p)
		}
	}
}
