package message

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// sealRaw builds an SK message around plain, used verbatim as the
// plaintext (inner payloads, padding and Pad Length as a peer chose them).
func sealRaw(h Header, next PayloadType, plain []byte, c Cipher) []byte {
	b := appendHeader(nil, h, PayloadSK)
	b = append(b, byte(next), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(genericLen+c.IVSize()+len(plain)+c.ICVSize()))
	total := len(b) + c.IVSize() + len(plain) + c.ICVSize()
	binary.BigEndian.PutUint32(b[hdrLength:], uint32(total))
	ivAt := len(b)
	b = append(b, make([]byte, c.IVSize())...)
	if err := c.NextIV(b[ivAt:]); err != nil {
		panic(err)
	}
	return c.Seal(b, b[ivAt:], plain, b[:ivAt])
}

func authHeader() Header {
	return Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
}

func TestSKTamperedOctetsAreRefused(t *testing.T) {
	for _, c := range []Cipher{testCBC(), testGCM()} {
		m := samples(t)[1].m
		b, err := m.Encode(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(b)
				bad[i] ^= bit
				if _, err := Decode(bad, c); err == nil {
					t.Fatalf("%T: flipping bit %#x of octet %d went unnoticed", c, bit, i)
				}
			}
		}
		// Octets that change only the meaning of the message fail the ICV,
		// never a later check.
		bad := bytes.Clone(b)
		bad[hdrMsgID+3] ^= 1
		if _, err := Decode(bad, c); parseErr(t, err).Reason != ReasonIntegrity {
			t.Errorf("%T: changed Message ID: %v", c, err)
		}
		if _, err := Decode(b[:len(b)-1], c); err == nil {
			t.Errorf("%T: truncated message accepted", c)
		}
	}
}

func TestSKPadding(t *testing.T) {
	c := testCBC()
	nonce := rawMessage(Header{}, rawP{typ: PayloadNonce, body: nonceBody()})[HeaderLen:]

	// A peer may pad more than needed (§3.14): 20 inner octets, 27 of
	// padding, the Pad Length octet.
	plain := cat(nonce, make([]byte, 27), []byte{27})
	m, err := Decode(sealRaw(authHeader(), PayloadNonce, plain, c), c)
	if err != nil || len(m.Payloads) != 1 || !m.Encrypted {
		t.Fatalf("extra padding: %v, %v", m, err)
	}

	// Pad Length beyond the plaintext: authentic, but malformed.
	plain = cat(nonce, make([]byte, 11), []byte{47})
	_, err = Decode(sealRaw(authHeader(), PayloadNonce, plain, c), c)
	pe := parseErr(t, err)
	if pe.Reason != ReasonPadding || !pe.Authenticated || pe.Notify != NotifyInvalidSyntax {
		t.Errorf("oversized Pad Length: %v (authenticated %v)", pe, pe.Authenticated)
	}

	// Ciphertext not in whole blocks: refused before the ICV is computed.
	b := sealRaw(authHeader(), PayloadNonce, cat(nonce, make([]byte, 11), []byte{11}), c)
	short := bytes.Clone(b[:len(b)-1])
	binary.BigEndian.PutUint32(short[hdrLength:], uint32(len(short)))
	binary.BigEndian.PutUint16(short[HeaderLen+genLength:], uint16(len(short)-HeaderLen))
	_, err = Decode(short, c)
	if pe := parseErr(t, err); pe.Reason != ReasonSyntax || pe.Authenticated {
		t.Errorf("partial block: %v", pe)
	}
}

func TestSKInnerErrorsAreAuthenticated(t *testing.T) {
	c := testGCM()
	nonce := rawP{typ: PayloadNonce, body: nonceBody()}
	inner := func(ps ...rawP) []byte { return append(rawMessage(Header{}, ps...)[HeaderLen:], 0) }
	cases := []struct {
		name   string
		first  PayloadType
		plain  []byte
		reason Reason
		notify NotifyType
	}{
		{"unknown critical", PayloadNonce, inner(nonce, rawP{typ: 222, critical: true}), ReasonCritical, NotifyUnsupportedCriticalPayload},
		{"short nonce", PayloadNonce, inner(rawP{typ: PayloadNonce, body: seq(3, 0)}), ReasonPayloadSize, NotifyInvalidSyntax},
		{"nested SK", PayloadSK, inner(rawP{typ: PayloadSK, body: seq(40, 0)}), ReasonPlacement, NotifyInvalidSyntax},
		{"nested SKF", PayloadSKF, inner(rawP{typ: PayloadSKF, body: seq(40, 0)}), ReasonPlacement, NotifyInvalidSyntax},
		{"bad chain", PayloadNonce, append(inner(nonce)[:10], 0), ReasonChain, NotifyInvalidSyntax},
	}
	for _, tc := range cases {
		_, err := Decode(sealRaw(authHeader(), tc.first, tc.plain, c), c)
		pe := parseErr(t, err)
		if pe.Reason != tc.reason || pe.Notify != tc.notify || !pe.Authenticated {
			t.Errorf("%s: got %v notify %v authenticated %v", tc.name, pe, pe.Notify, pe.Authenticated)
		}
	}
}

// brokenCipher reports sizes no payload can have.
type brokenCipher struct{ Cipher }

func (brokenCipher) BlockSize() int { return 0 }

func TestCipherSizesChecked(t *testing.T) {
	m := samples(t)[4].m
	if _, err := m.Encode(nil, brokenCipher{testCBC()}); err == nil {
		t.Error("Encode with block size 0")
	}
	b, _ := m.Encode(nil, testCBC())
	if _, err := Decode(b, brokenCipher{testCBC()}); parseErr(t, err).Reason != ReasonNoCipher {
		t.Errorf("Decode with block size 0: %v", err)
	}
	if _, err := m.EncodeFragments(brokenCipher{testCBC()}, 500); err == nil {
		t.Error("EncodeFragments with block size 0")
	}
}

func TestEncodeTooLargeForSK(t *testing.T) {
	m := &Message{Header: authHeader(), Payloads: []Payload{
		&Cert{Encoding: CertX509Signature, Data: make([]byte, 40000)},
		&Cert{Encoding: CertX509Signature, Data: make([]byte, 40000)},
	}}
	if _, err := m.Encode(nil, testCBC()); err == nil {
		t.Error("an 80 kB SK payload was encoded")
	}
	frags, err := m.EncodeFragments(testCBC(), 1400)
	if err != nil || len(frags) < 58 {
		t.Errorf("fragments: %d, %v", len(frags), err)
	}
}
