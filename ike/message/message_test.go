package message

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func mustProposals(t testing.TB, s string, proto proposal.Protocol) []proposal.Proposal {
	t.Helper()
	ps, err := proposal.Parse(s, proto)
	if err != nil {
		t.Fatalf("proposal.Parse(%q): %v", s, err)
	}
	return ps
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

var (
	addrA = netip.MustParseAddrPort("203.0.113.1:500")
	addrB = netip.MustParseAddrPort("203.0.113.2:500")
)

type sample struct {
	name string
	m    *Message
}

// samples are messages of the kinds the engine builds, and one carrying
// every payload type with unusual but valid contents.
func samples(t testing.TB) []sample {
	ike := mustProposals(t, "aes128-sha256-x25519", proposal.ProtoIKE)
	ike = append(ike, mustProposals(t, "aes256gcm16-prfsha384-ecp384", proposal.ProtoIKE)...)
	esp := mustProposals(t, "aes128gcm16-x25519-esn", proposal.ProtoESP)
	spii, spir := uint64(0x53a9cd7448f7db2a), uint64(0x492acad65aa40396)
	lan := SelectorFromPrefix(netip.MustParsePrefix("192.168.1.0/24"))
	remote := SelectorFromPrefix(netip.MustParsePrefix("192.168.2.0/24"))
	cookie, err := CookieNotify(seq(32, 0xc0))
	if err != nil {
		t.Fatal(err)
	}

	initReq := &Message{
		Header: Header{SPIi: spii, Exchange: ExchangeIKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{
			cookie,
			&SA{Proposals: []Proposal{ProposalFrom(1, nil, ike[0]), ProposalFrom(2, nil, ike[1])}},
			&KE{Group: proposal.KEX25519, Data: seq(32, 1)},
			&Nonce{Data: seq(32, 0x40)},
			NATDetectionNotify(NotifyNATDetectionSourceIP, spii, 0, addrA),
			NATDetectionNotify(NotifyNATDetectionDestinationIP, spii, 0, addrB),
			&Notify{Type: NotifyIKEv2FragmentationSupported},
			&Notify{Type: NotifySignatureHashAlgorithms, Data: []byte{0, 2, 0, 3, 0, 4}},
		},
	}
	authReq := &Message{
		Header: Header{SPIi: spii, SPIr: spir, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{
			&IDi{AddrID(addrA.Addr())},
			&Cert{Encoding: CertX509Signature, Data: seq(300, 0)},
			&CertReq{Encoding: CertX509Signature, Data: seq(40, 9)},
			&Notify{Type: NotifyInitialContact},
			&IDr{FQDNID("gw-b.example")},
			&Auth{Method: AuthSharedKey, Data: seq(32, 7)},
			&CP{Type: CfgRequest, Attributes: []CfgAttribute{{Type: CfgInternalIP4Address}, {Type: CfgInternalIP4DNS}, {Type: CfgInternalIP6Address}}},
			&SA{Proposals: []Proposal{ProposalFrom(1, []byte{0x8a, 0x3e, 0x51, 0x9f}, esp[0])}},
			&TSi{Selectors: []Selector{lan}},
			&TSr{Selectors: []Selector{remote}},
			&Notify{Type: NotifyEAPOnlyAuthentication},
		},
	}
	rekey := &Message{
		Header: Header{SPIi: spii, SPIr: spir, Exchange: ExchangeCreateChildSA, Flags: FlagResponse, MessageID: 7},
		Payloads: []Payload{
			&Notify{Protocol: proposal.ProtoESP, SPI: []byte{0x64, 0xd8, 0xd0, 0x86}, Type: NotifyRekeySA},
			&SA{Proposals: []Proposal{ProposalFromSuite(3, []byte{1, 2, 3, 4}, proposal.Suite{
				Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 256}, KE: proposal.KEX25519, ESN: true})}},
			&Nonce{Data: seq(MaxNonceLen, 0)},
			&KE{Group: proposal.KEX25519, Data: seq(32, 0x80)},
			&TSi{Selectors: []Selector{lan}},
			&TSr{Selectors: []Selector{remote}},
		},
	}
	del := &Message{
		Header: Header{SPIi: spii, SPIr: spir, Exchange: ExchangeInformational, Flags: FlagInitiator, MessageID: 9},
		Payloads: []Payload{
			&Delete{Protocol: proposal.ProtoESP, SPIs: []uint32{0x8a3e519f, 0x01020304}},
			&Delete{Protocol: proposal.ProtoIKE},
		},
	}
	dpd := &Message{Header: Header{SPIi: spii, SPIr: spir, Exchange: ExchangeInformational, Flags: FlagResponse, MessageID: 10}}

	icmp := Selector{Type: TSIPv4AddrRange, IPProtocol: 1, StartPort: ICMPPort(8, 0), EndPort: ICMPPort(8, 255),
		Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.9")}
	v6 := SelectorFromPrefix(netip.MustParsePrefix("2001:db8::/48"))
	v6.IPProtocol, v6.StartPort, v6.EndPort = 6, 443, 443
	opaque := Selector{Type: TSIPv6AddrRange, IPProtocol: 17, StartPort: 65535, EndPort: 0,
		Start: netip.MustParseAddr("::"), End: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	label := Selector{Type: 10, Raw: []byte{10, 0, 0, 9, 's', 'e', 'c', 'r', 't'}}
	everything := &Message{
		Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEIntermediate, Flags: FlagInitiator | FlagResponse, MessageID: 0xfffffffe},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{{Number: 1, Protocol: proposal.ProtoIKE, SPI: seq(8, 0x10), Transforms: []Transform{
				{Type: proposal.TypeEncr, ID: uint16(proposal.EncrAESCBC), Attributes: []Attribute{
					{Type: proposal.AttrKeyLength, Value: 256}, {Type: 99, TLV: true, Data: []byte("tlv")}, {Type: 98, TLV: true}}},
				{Type: proposal.TypeAddKE1, ID: uint16(proposal.KEMLKEM768)},
				{Type: 200, ID: 7},
			}}, {Number: 2, Protocol: 9, SPI: []byte{1, 2, 3}}}},
			&KE{Group: 0xffff, Data: []byte{0}},
			&IDi{ID{Type: IDIPv6Addr, Reserved: [3]byte{1, 2, 3}, Data: netip.MustParseAddr("2001:db8::1").AsSlice()}},
			&IDr{ID{Type: IDNull}},
			&Cert{Encoding: 200},
			&CertReq{Encoding: CertX509Signature},
			&Auth{Method: AuthDigitalSignature},
			&Nonce{Data: seq(MinNonceLen, 0)},
			&Notify{Protocol: proposal.ProtoIKE, SPI: seq(8, 1), Type: 60000, Data: []byte("private")},
			&Notify{Protocol: 200, Type: NotifyInvalidSyntax},
			&Delete{Protocol: proposal.ProtoAH},
			&VendorID{},
			&VendorID{Data: []byte("bitw")},
			&TSi{Selectors: []Selector{icmp, v6, label}},
			&TSr{Selectors: []Selector{opaque}},
			&CP{Type: CfgReply, Attributes: []CfgAttribute{
				CfgAddr(CfgInternalIP4Address, netip.MustParseAddr("10.9.0.7")),
				CfgPrefix(CfgInternalIP4Subnet, netip.MustParsePrefix("10.9.0.0/24")),
				CfgPrefix(CfgInternalIP6Address, netip.MustParsePrefix("2001:db8::7/64")),
				{Type: CfgSupportedAttrs, Value: []byte{0, 1, 0, 3}},
				{Type: CfgApplicationVersion, Value: []byte("bitw 1")},
				{Type: 0x7000, Value: []byte{1}},
			}},
			&CP{Type: CfgAck},
			&EAP{Code: EAPRequest, Identifier: 3, Type: 1},
			&EAP{Code: EAPResponse, Identifier: 3, Type: 1, Data: []byte("user")},
			&EAP{Code: EAPSuccess, Identifier: 4},
			&EAP{Code: 9, Identifier: 5, Data: []byte{1, 2}},
			&Unknown{Type: 49, Body: []byte("gspm")},
			&Unknown{Type: 200},
		},
	}
	return []sample{{"ike_sa_init", initReq}, {"ike_auth", authReq}, {"create_child_sa", rekey},
		{"informational_delete", del}, {"informational_empty", dpd}, {"every_payload", everything}}
}

// sameMessage compares what a Message means: header, payloads, protection.
func sameMessage(t testing.TB, want, got *Message) {
	t.Helper()
	if want.Header != got.Header {
		t.Errorf("header: got %+v, want %+v", got.Header, want.Header)
	}
	if want.Encrypted != got.Encrypted {
		t.Errorf("Encrypted: got %v, want %v", got.Encrypted, want.Encrypted)
	}
	if len(want.Payloads) != len(got.Payloads) {
		t.Fatalf("payloads: got %v, want %v", got, want)
	}
	for i := range want.Payloads {
		if !reflect.DeepEqual(want.Payloads[i], got.Payloads[i]) {
			t.Errorf("payload %d: got %#v, want %#v", i, got.Payloads[i], want.Payloads[i])
		}
	}
}

func parseErr(t testing.TB, err error) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	return pe
}

func TestRoundTripPlain(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			b, err := s.m.Encode(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(b, nil)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			sameMessage(t, s.m, m)
			if !bytes.Equal(m.Raw(), b) {
				t.Error("Raw differs from the decoded bytes")
			}
			again, err := m.Encode([]byte("prefix"), nil)
			if err != nil || !bytes.Equal(again[6:], b) || string(again[:6]) != "prefix" {
				t.Errorf("re-encoding after the prefix differs (%v)", err)
			}
		})
	}
}

func TestRoundTripEncrypted(t *testing.T) {
	ciphers := map[string]func() Cipher{"aes-cbc-hmac": func() Cipher { return testCBC() }, "aes-gcm": func() Cipher { return testGCM() }}
	for cname, newCipher := range ciphers {
		for _, s := range samples(t) {
			t.Run(cname+"/"+s.name, func(t *testing.T) {
				c := newCipher()
				b, err := s.m.Encode(nil, c)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := s.m.EncodePlain(nil)
				if err != nil {
					t.Fatal(err)
				}
				inner := len(plain) - HeaderLen
				pad := padLength(inner, c.BlockSize())
				if want := HeaderLen + genericLen + c.IVSize() + inner + pad + 1 + c.ICVSize(); len(b) != want {
					t.Errorf("encrypted length %d, want %d", len(b), want)
				}
				if b[hdrNext] != byte(PayloadSK) || b[HeaderLen+genNext] != byte(firstType(s.m.Payloads)) {
					t.Errorf("next payloads %d/%d", b[hdrNext], b[HeaderLen+genNext])
				}
				m, err := Decode(b, c)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				want := *s.m
				want.Encrypted = true
				sameMessage(t, &want, m)

				if _, err := Decode(b, nil); parseErr(t, err).Reason != ReasonNoCipher {
					t.Errorf("without a cipher: %v", err)
				}
				pm, err := Decode(plain, nil)
				if err != nil {
					t.Fatalf("EncodePlain output does not decode: %v", err)
				}
				sameMessage(t, s.m, pm)
			})
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	h := Header{Exchange: ExchangeInformational}
	cases := map[string]Payload{
		"short nonce":          &Nonce{Data: seq(15, 0)},
		"long nonce":           &Nonce{Data: seq(257, 0)},
		"empty KE":             &KE{Group: proposal.KEX25519},
		"SA without proposals": &SA{},
		"proposal 0":           &SA{Proposals: []Proposal{{Number: 0, Protocol: proposal.ProtoIKE}}},
		"proposals 1,3":        &SA{Proposals: []Proposal{{Number: 1, Protocol: proposal.ProtoIKE}, {Number: 3, Protocol: proposal.ProtoIKE}}},
		"ESP SPI of 8":         &SA{Proposals: []Proposal{{Number: 1, Protocol: proposal.ProtoESP, SPI: seq(8, 0)}}},
		"TLV key length":       &SA{Proposals: []Proposal{{Number: 1, Protocol: proposal.ProtoIKE, Transforms: []Transform{{Type: proposal.TypeEncr, ID: 12, Attributes: []Attribute{{Type: proposal.AttrKeyLength, TLV: true, Data: []byte{0, 128}}}}}}}},
		"IPv4 ID of 5":         &IDi{ID{Type: IDIPv4Addr, Data: seq(5, 0)}},
		"empty FQDN":           &IDr{ID{Type: IDFQDN}},
		"CERTREQ of 21":        &CertReq{Encoding: CertX509Signature, Data: seq(21, 0)},
		"notify SPI of 3":      &Notify{Protocol: proposal.ProtoESP, SPI: seq(3, 0), Type: NotifyRekeySA},
		"IKE delete with SPI":  &Delete{Protocol: proposal.ProtoIKE, SPIs: []uint32{1}},
		"delete protocol 9":    &Delete{Protocol: 9},
		"no selectors":         &TSi{},
		"v6 in v4 selector":    &TSr{Selectors: []Selector{{Type: TSIPv4AddrRange, Start: netip.IPv6Unspecified(), End: netip.IPv6Unspecified()}}},
		"bad raw selector":     &TSr{Selectors: []Selector{{Type: 10, Raw: []byte{10, 0, 0, 5}}}},
		"CP attr length":       &CP{Type: CfgReply, Attributes: []CfgAttribute{{Type: CfgInternalIP4Address, Value: seq(5, 0)}}},
		"EAP success data":     &EAP{Code: EAPSuccess, Data: []byte{1}},
		"unknown as SA":        &Unknown{Type: PayloadSA},
		"unknown as SK":        &Unknown{Type: PayloadSK},
		"payload too long":     &VendorID{Data: make([]byte, maxPayloadLen)},
		"nil payload":          nil,
	}
	for name, p := range cases {
		m := &Message{Header: h, Payloads: []Payload{p}}
		if _, err := m.Encode(nil, nil); err == nil {
			t.Errorf("%s: Encode accepted it", name)
		}
	}
}

func TestFindAndString(t *testing.T) {
	m := samples(t)[1].m
	if got, want := m.String(), "IKE_AUTH request 1 [ IDi CERT CERTREQ N(INITIAL_CONTACT) IDr AUTH CP(CFG_REQUEST) SA TSi TSr N(EAP_ONLY_AUTHENTICATION) ]"; got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	if id := Find[*IDr](m); id == nil || string(id.Data) != "gw-b.example" {
		t.Errorf("Find[*IDr] = %v", id)
	}
	if n := Find[*Nonce](m); n != nil {
		t.Errorf("Find[*Nonce] = %v, want nil", n)
	}
	if got := len(FindAll[*Notify](m)); got != 2 {
		t.Errorf("FindAll[*Notify]: %d", got)
	}
	if m.Notify(NotifyInitialContact) == nil || m.Notify(NotifyCookie) != nil {
		t.Error("Notify lookup")
	}
	if _, ok := m.Get(PayloadAuth).(*Auth); !ok || m.Get(PayloadKE) != nil {
		t.Error("Get lookup")
	}
	if m.ErrorNotify() != nil {
		t.Error("ErrorNotify found an error in a request without one")
	}
	resp := &Message{Header: Header{Exchange: ExchangeIKEAuth, Flags: FlagResponse, MessageID: 1},
		Payloads: []Payload{&Notify{Type: NotifyHTTPCertLookupSupported}, &Notify{Type: NotifyAuthenticationFailed}}}
	if n := resp.ErrorNotify(); n == nil || n.Type != NotifyAuthenticationFailed {
		t.Errorf("ErrorNotify = %v", n)
	}
	if got := resp.String(); got != "IKE_AUTH response 1 [ N(HTTP_CERT_LOOKUP_SUPPORTED) N(AUTHENTICATION_FAILED) ]" {
		t.Errorf("String: %s", got)
	}
	if c, ok := samples(t)[0].m.Cookie(); !ok || !bytes.Equal(c, seq(32, 0xc0)) {
		t.Error("Cookie not found as the first payload")
	}
	if _, ok := m.Cookie(); ok {
		t.Error("Cookie found where there is none")
	}
}
