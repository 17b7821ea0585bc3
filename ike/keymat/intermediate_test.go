package keymat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// side is one peer's view of an IKE SA under construction.
type side struct {
	keys    *IKEKeys
	out, in message.Cipher
	intAuth IntAuth
	init    bool
}

// TestMLKEMIntermediateFlow runs the key schedule of an IKE SA with
// X25519 in IKE_SA_INIT and ML-KEM-768 in one IKE_INTERMEDIATE exchange
// (RFC 9370, draft-ietf-ipsecme-ikev2-mlkem) for both peers, the way the
// exchange engine uses this package and ike/group, and checks that the
// two sides agree on every key, open each other's messages, and sign the
// same IntAuth-extended AUTH octets.
func TestMLKEMIntermediateFlow(t *testing.T) {
	s := proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 256},
		PRF: proposal.PRFHMACSHA384, KE: proposal.KEX25519}
	s.AddKE[0] = proposal.KEMLKEM768
	pol := proposal.Policy{}
	ni, nr := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	const spii, spir = 0x0102030405060708, 0x1112131415161718

	// IKE_SA_INIT: X25519.
	xi, err := group.New(proposal.KEX25519, pol, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	kerData, girR, err := group.Respond(proposal.KEX25519, pol, seeded(2), xi.Public())
	if err != nil {
		t.Fatal(err)
	}
	girI, err := xi.Shared(kerData)
	if err != nil {
		t.Fatal(err)
	}
	ini, res := &side{init: true}, &side{}
	ini.keys, err = DeriveIKE(s, ni, nr, girI, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	res.keys, _ = DeriveIKE(s, ni, nr, girR, spii, spir)
	for _, p := range []*side{ini, res} {
		p.out, p.in, err = p.keys.Ciphers(p.init, nil)
		if err != nil {
			t.Fatal(err)
		}
	}

	// IKE_INTERMEDIATE (Message ID 1): KEi(1) carries the ML-KEM
	// encapsulation key, KEr(1) the ciphertext, both under generation 0.
	kem, err := group.New(proposal.KEMLKEM768, pol, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	reqInner := kePayload(proposal.KEMLKEM768, kem.Public())
	req := seal(t, ini, 1, false, reqInner)
	gotReq := open(t, res, req)
	ct, skR, err := group.Respond(proposal.KEMLKEM768, pol, nil, gotReq[8:])
	if err != nil {
		t.Fatal(err)
	}
	resp := seal(t, res, 1, true, kePayload(proposal.KEMLKEM768, ct))
	gotResp := open(t, ini, resp)
	skI, err := kem.Shared(gotResp[8:])
	if err != nil {
		t.Fatal(err)
	}

	// Each side folds both messages into IntAuth with the keys that
	// protected them, then moves to the next generation (RFC 9370 §2.2.2).
	for _, p := range []*side{ini, res} {
		sk := skI
		if !p.init {
			sk = skR
		}
		a, err := IntAuthData(req[:32], reqInner)
		if err != nil {
			t.Fatal(err)
		}
		p.intAuth.AddInitiator(p.keys, a)
		b, _ := IntAuthData(resp[:32], kePayload(proposal.KEMLKEM768, ct))
		p.intAuth.AddResponder(p.keys, b)
		p.keys, err = p.keys.AddKeyExchange(sk)
		if err != nil {
			t.Fatal(err)
		}
		p.out, p.in, _ = p.keys.Ciphers(p.init, nil)
	}
	for i, k := range keysOf(ini.keys) {
		if !bytes.Equal(k, keysOf(res.keys)[i]) {
			t.Fatalf("generation 1 key %d differs between the peers", i)
		}
	}

	// IKE_AUTH (Message ID 2) is protected by generation 1 and signs
	// IntAuth_i1 | IntAuth_r1 | 2 after the usual octets.
	msg1 := []byte("IKE_SA_INIT request as sent")
	idi := []byte{2, 0, 0, 0, 'g', 'w', '-', 'a'}
	octI := ini.keys.SignedOctets(true, msg1, idi, ini.intAuth.Octets(2))
	octR := res.keys.SignedOctets(true, msg1, idi, res.intAuth.Octets(2))
	if !bytes.Equal(octI, octR) {
		t.Fatal("the peers sign different InitiatorSignedOctets")
	}
	prf := ini.keys.PRF
	auth := SharedKeyAuth(prf, []byte("psk"), octI)
	authMsg := seal(t, ini, 2, false, append([]byte{0, 0, 0, byte(8 + len(auth)), 2, 0, 0, 0}, auth...))
	if got := open(t, res, authMsg); !bytes.Equal(got[8:], SharedKeyAuth(prf, []byte("psk"), octR)) {
		t.Fatal("AUTH does not verify at the responder")
	}
	// A generation-0 key no longer opens IKE_AUTH.
	k0, _ := DeriveIKE(s, ni, nr, girR, spii, spir)
	_, oldIn, _ := k0.Ciphers(false, nil)
	if _, err := oldIn.Open(nil, authMsg[32:40], authMsg[40:], authMsg[:32]); err != ErrOpen {
		t.Fatalf("generation 0 opened an IKE_AUTH message: %v", err)
	}
}

// kePayload is a KE payload body for the test: generic header, group,
// reserved, data (RFC 7296 §3.4).
func kePayload(id proposal.KEID, data []byte) []byte {
	b := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(8+len(data)))
	binary.BigEndian.PutUint16(b[4:], uint16(id))
	return append(b, data...)
}

// seal builds header | SK header | IV | ciphertext | ICV around inner,
// with the lengths the codec would write.
func seal(t *testing.T, p *side, msgID uint32, response bool, inner []byte) []byte {
	t.Helper()
	c := p.out
	padded := append(bytes.Clone(inner), 0) // Pad Length 0: AEAD needs no padding
	total := 28 + 4 + c.IVSize() + len(padded) + c.ICVSize()
	aad := make([]byte, 32)
	binary.BigEndian.PutUint64(aad[0:], 0x0102030405060708)
	binary.BigEndian.PutUint64(aad[8:], 0x1112131415161718)
	aad[16], aad[17], aad[18] = 46, 0x20, 43 // SK, version 2.0, IKE_INTERMEDIATE
	if p.init {
		aad[19] |= 0x08
	}
	if response {
		aad[19] |= 0x20
	}
	binary.BigEndian.PutUint32(aad[20:], msgID)
	binary.BigEndian.PutUint32(aad[24:], uint32(total))
	aad[28] = 34 // first inner payload: KE
	binary.BigEndian.PutUint16(aad[30:], uint16(total-28))
	iv := make([]byte, c.IVSize())
	if err := c.NextIV(iv); err != nil {
		t.Fatal(err)
	}
	return c.Seal(append(aad, iv...), iv, padded, aad)
}

func open(t *testing.T, p *side, msg []byte) []byte {
	t.Helper()
	aad, iv, ct := msg[:32], msg[32:32+p.in.IVSize()], msg[32+p.in.IVSize():]
	pt, err := p.in.Open(nil, iv, ct, aad)
	if err != nil {
		t.Fatal(err)
	}
	return pt[:len(pt)-1-int(pt[len(pt)-1])]
}
