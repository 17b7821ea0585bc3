package keymat

import (
	"bytes"
	"testing"

	"github.com/bitw-dev/bitw/ike/message"
)

// TestCodecRoundTrip puts every SK cipher through the message codec:
// Encode with one peer's out cipher, Decode with the other's in cipher,
// so padding, IV and ICV sizes agree with what ike/message lays out.
func TestCodecRoundTrip(t *testing.T) {
	for i, s := range skSuites() {
		k := testKeys(t, s, uint64(i))
		iOut, _, err := k.Ciphers(true, seeded(4))
		if err != nil {
			t.Fatal(err)
		}
		_, rIn, _ := k.Ciphers(false, seeded(5))
		for _, n := range []int{0, 1, 13, 200} {
			m := &message.Message{
				Header: message.Header{SPIi: k.SPIi, SPIr: k.SPIr, Exchange: message.ExchangeIKEAuth,
					Flags: message.FlagInitiator, MessageID: 1},
				Payloads: []message.Payload{&message.Notify{Type: message.NotifyInitialContact, Data: bytes.Repeat([]byte{7}, n)}},
			}
			wire, err := m.Encode(nil, iOut)
			if err != nil {
				t.Fatalf("%s: encode: %v", suiteName(s), err)
			}
			got, err := message.Decode(wire, rIn)
			if err != nil {
				t.Fatalf("%s: decode: %v", suiteName(s), err)
			}
			nt, ok := got.Payloads[0].(*message.Notify)
			if !got.Encrypted || len(got.Payloads) != 1 || !ok || !bytes.Equal(nt.Data, bytes.Repeat([]byte{7}, n)) {
				t.Fatalf("%s: decoded %v", suiteName(s), got)
			}
			wire[len(wire)-1] ^= 1
			if _, err := message.Decode(wire, rIn); err == nil {
				t.Fatalf("%s: tampered message decoded", suiteName(s))
			}
		}
	}
}

// TestCodecDecodesCapture decodes the captured IKE_AUTH request with the
// codec and our responder cipher, and checks the two values AUTH needs
// from it: RestOfIDPayload of IDi and the Authentication Data.
func TestCodecDecodesCapture(t *testing.T) {
	x := readCaptureExchange(t)
	k, err := DeriveIKE(captureIKE, x.ni, x.nr, x.gir, x.spii, x.spir)
	if err != nil {
		t.Fatal(err)
	}
	_, rIn, _ := k.Ciphers(false, bytes.NewReader(nil))
	req := captureAuthMessages(t)[0]
	m, err := message.Decode(req, rIn)
	if err != nil {
		t.Fatal(err)
	}
	idi, _ := m.Get(message.PayloadIDi).(*message.IDi)
	auth, _ := m.Get(message.PayloadAuth).(*message.Auth)
	if idi == nil || auth == nil {
		t.Fatalf("IDi or AUTH missing in %v", m)
	}
	if !bytes.Equal(idi.RestOfIDPayload(), x.idi) {
		t.Errorf("RestOfIDPayload %x, log has %x", idi.RestOfIDPayload(), x.idi)
	}
	octets := k.SignedOctets(true, x.msg1, idi.RestOfIDPayload(), nil)
	if auth.Method != message.AuthSharedKey || !bytes.Equal(auth.Data, SharedKeyAuth(k.PRF, x.psk, octets)) {
		t.Errorf("AUTH %s %x does not verify", auth.Method, auth.Data)
	}
}
