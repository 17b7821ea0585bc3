package keymat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func TestIKEKeyLengths(t *testing.T) {
	for _, c := range []struct {
		s                   proposal.Suite
		d, a, e             int
		wantNoIntegrityKeys bool
		description         string
	}{
		{ikeSuite(proposal.EncrAESCBC, 256, proposal.IntegHMACSHA512256), 32, 64, 32, false, "CBC-256/SHA-512, PRF SHA-256"},
		{ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone), 32, 0, 20, true, "GCM-128 key + 4-octet salt"},
		{ikeSuite(proposal.EncrAESGCM16, 256, proposal.IntegNone), 32, 0, 36, true, "GCM-256"},
		{ikeSuite(proposal.EncrAESCTR, 192, proposal.IntegAESXCBC96), 32, 16, 28, false, "CTR-192 key + nonce"},
		{ikeSuite(proposal.EncrChaCha20Poly13, 0, proposal.IntegNone), 32, 0, 36, true, "ChaCha20 key + salt"},
	} {
		k := testKeys(t, c.s, 1)
		if len(k.SKd) != c.d || len(k.SKpi) != c.d || len(k.SKpr) != c.d {
			t.Errorf("%s: SK_d/SK_p %d octets, want %d", c.description, len(k.SKd), c.d)
		}
		if len(k.SKai) != c.a || len(k.SKar) != c.a || (c.wantNoIntegrityKeys && k.SKai != nil) {
			t.Errorf("%s: SK_a %d octets, want %d", c.description, len(k.SKai), c.a)
		}
		if len(k.SKei) != c.e || len(k.SKer) != c.e {
			t.Errorf("%s: SK_e %d octets, want %d", c.description, len(k.SKei), c.e)
		}
	}
	// AES-XCBC-PRF-128's preferred key length is its 16-octet key.
	s := ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegAESXCBC96)
	s.PRF = proposal.PRFAES128XCBC
	if k := testKeys(t, s, 1); len(k.SKd) != 16 || len(k.SKpr) != 16 {
		t.Errorf("XCBC PRF: SK_d %d octets", len(k.SKd))
	}
}

// expand is prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr) cut into the seven
// keys, written independently of expandIKE.
func expand(t *testing.T, prf PRF, seed, ni, nr []byte, spii, spir uint64, lens [7]int) [7][]byte {
	t.Helper()
	spis := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, spii), spir)
	total := 0
	for _, n := range lens {
		total += n
	}
	km, err := prf.Plus(seed, total, append(append(bytes.Clone(ni), nr...), spis...))
	if err != nil {
		t.Fatal(err)
	}
	var out [7][]byte
	for i, n := range lens {
		out[i], km = km[:n], km[n:]
	}
	return out
}

func keysOf(k *IKEKeys) [7][]byte {
	return [7][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr}
}

func sameKeys(t *testing.T, what string, got *IKEKeys, want [7][]byte) {
	t.Helper()
	names := [7]string{"SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr"}
	for i, g := range keysOf(got) {
		if !bytes.Equal(g, want[i]) {
			t.Errorf("%s: %s = %x, want %x", what, names[i], g, want[i])
		}
	}
}

// RFC 9370 §2.2.2: each IKE_INTERMEDIATE key exchange re-derives all
// seven keys from SK_d of the previous generation and the new secret,
// with IKE_SA_INIT's nonces and SPIs.
func TestAddKeyExchange(t *testing.T) {
	s := ikeSuite(proposal.EncrAESGCM16, 256, proposal.IntegNone)
	s.AddKE[0] = proposal.KEMLKEM768
	k0 := testKeys(t, s, 3)
	old := keysOf(k0)
	sk1 := bytes.Repeat([]byte{0x51}, 32)
	k1, err := k0.AddKeyExchange(sk1)
	if err != nil {
		t.Fatal(err)
	}
	seed := k0.PRF.Compute(k0.SKd, append(append(bytes.Clone(sk1), k0.Ni...), k0.Nr...))
	sameKeys(t, "generation 1", k1, expand(t, k0.PRF, seed, k0.Ni, k0.Nr, k0.SPIi, k0.SPIr, [7]int{32, 0, 0, 36, 36, 32, 32}))
	if !bytes.Equal(keysOf(k0)[0], old[0]) || !bytes.Equal(keysOf(k0)[3], old[3]) {
		t.Error("AddKeyExchange changed the previous generation")
	}
	sk2 := bytes.Repeat([]byte{0x52}, 32)
	k2, _ := k1.AddKeyExchange(sk2)
	seed2 := k1.PRF.Compute(k1.SKd, sk2, k0.Ni, k0.Nr)
	sameKeys(t, "generation 2", k2, expand(t, k0.PRF, seed2, k0.Ni, k0.Nr, k0.SPIi, k0.SPIr, [7]int{32, 0, 0, 36, 36, 32, 32}))
	if _, err := k1.AddKeyExchange(nil); err == nil {
		t.Error("empty shared secret accepted")
	}
}

// RFC 7296 §2.18 with RFC 9370 §2.2.4: the old PRF makes SKEYSEED, the
// new suite's PRF expands it with the new nonces and SPIs.
func TestRekey(t *testing.T) {
	oldSuite := ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128)
	k := testKeys(t, oldSuite, 4)
	newSuite := ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone)
	newSuite.PRF = proposal.PRFHMACSHA384
	ni, nr := bytes.Repeat([]byte{0x0a}, 24), bytes.Repeat([]byte{0x0b}, 40)
	g, f1 := bytes.Repeat([]byte{0x0c}, 56), bytes.Repeat([]byte{0x0d}, 32)
	n, err := k.Rekey(newSuite, ni, nr, 7, 8, g, f1)
	if err != nil {
		t.Fatal(err)
	}
	seed := k.PRF.Compute(k.SKd, g, ni, nr, f1)
	prf384, _ := NewPRF(proposal.PRFHMACSHA384)
	sameKeys(t, "rekeyed", n, expand(t, prf384, seed, ni, nr, 7, 8, [7]int{48, 0, 0, 20, 20, 48, 48}))
	if n.PRF.ID() != proposal.PRFHMACSHA384 || n.SPIi != 7 || !bytes.Equal(n.Ni, ni) {
		t.Error("rekeyed SA does not carry its own PRF, SPIs and nonces")
	}
	if _, err := k.Rekey(newSuite, ni, nr, 7, 8); err == nil {
		t.Error("rekey without a key exchange accepted")
	}
	if _, err := k.Rekey(newSuite, ni[:8], nr, 7, 8, g); err == nil {
		t.Error("short nonce accepted")
	}
}

// RFC 7296 §2.17 and RFC 9370 §2.2.4 KEYMAT, and its split: the
// initiator-to-responder keys first, encryption before integrity.
func TestChildKeys(t *testing.T) {
	k := testKeys(t, ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128), 6)
	esp := proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESCBC, KeyBits: 256},
		Integ: proposal.IntegHMACSHA512256}
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	g, f1, f2 := []byte("g^ir (new)"), []byte("SK(1)"), []byte("SK(2)")
	for _, c := range []struct {
		name   string
		shared [][]byte
		seed   []byte
	}{
		{"no PFS", nil, concat(ni, nr)},
		{"PFS", [][]byte{g}, concat(g, ni, nr)},
		{"additional", [][]byte{g, f1, f2}, concat(g, ni, nr, f1, f2)},
		{"additional without KE", [][]byte{nil, f1}, concat(ni, nr, f1)},
	} {
		ck, err := k.ChildKeys(esp, ni, nr, c.shared...)
		if err != nil {
			t.Fatal(err)
		}
		km, _ := k.PRF.Plus(k.SKd, 2*(32+64), c.seed)
		want := &ChildKeys{EncrI: km[:32], IntegI: km[32:96], EncrR: km[96:128], IntegR: km[128:]}
		for i, pair := range [][2][]byte{{ck.EncrI, want.EncrI}, {ck.IntegI, want.IntegI}, {ck.EncrR, want.EncrR}, {ck.IntegR, want.IntegR}} {
			if !bytes.Equal(pair[0], pair[1]) {
				t.Errorf("%s: key %d differs", c.name, i)
			}
		}
	}
	ah := proposal.Suite{Protocol: proposal.ProtoAH, Integ: proposal.IntegHMACSHA256128}
	ck, err := k.ChildKeys(ah, ni, nr)
	if err != nil || ck.EncrI != nil || len(ck.IntegI) != 32 || len(ck.IntegR) != 32 {
		t.Errorf("AH keys: %v %+v", err, ck)
	}
	if _, err := k.ChildKeys(k.Suite, ni, nr); err == nil {
		t.Error("IKE suite accepted for a Child SA")
	}
	bad := esp
	bad.Encr.KeyBits = 64
	if _, err := k.ChildKeys(bad, ni, nr); err == nil {
		t.Error("64-bit AES accepted")
	}
	ck.Wipe()
	if !bytes.Equal(ck.IntegI, make([]byte, 32)) {
		t.Error("Wipe left key octets")
	}
}

func TestDeriveIKERejects(t *testing.T) {
	n := make([]byte, 32)
	esp := proposal.Suite{Protocol: proposal.ProtoESP, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128}}
	if _, err := DeriveIKE(esp, n, n, n, 1, 2); err == nil {
		t.Error("ESP suite accepted for an IKE SA")
	}
	s := ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone)
	s.PRF = proposal.PRFHMACMD5
	if _, err := DeriveIKE(s, n, n, n, 1, 2); err == nil {
		t.Error("HMAC-MD5 PRF accepted")
	}
	s.PRF = proposal.PRFHMACSHA256
	if _, err := DeriveIKE(s, make([]byte, 257), n, n, 1, 2); err == nil {
		t.Error("257-octet nonce accepted")
	}
	k, _ := DeriveIKE(s, n, n, n, 1, 2)
	k.Wipe()
	for _, b := range keysOf(k) {
		if len(b) > 0 && !bytes.Equal(b, make([]byte, len(b))) {
			t.Error("Wipe left key octets")
		}
	}
}

func TestSignedOctetsAndIntAuth(t *testing.T) {
	k := testKeys(t, ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone), 8)
	msg1, msg2 := []byte("IKE_SA_INIT request"), []byte("IKE_SA_INIT response")
	idi, idr := []byte{2, 0, 0, 0, 'a'}, []byte{2, 0, 0, 0, 'b'}
	got := k.SignedOctets(true, msg1, idi, nil)
	if want := concat(msg1, k.Nr, k.PRF.Compute(k.SKpi, idi)); !bytes.Equal(got, want) {
		t.Error("InitiatorSignedOctets")
	}
	got = k.SignedOctets(false, msg2, idr, nil)
	if want := concat(msg2, k.Ni, k.PRF.Compute(k.SKpr, idr)); !bytes.Equal(got, want) {
		t.Error("ResponderSignedOctets")
	}

	var ia IntAuth
	if ia.Octets(1) != nil {
		t.Error("IntAuth without IKE_INTERMEDIATE must add nothing")
	}
	// Two IKE_INTERMEDIATE exchanges: the first under generation 0, the
	// second under generation 1 after an additional key exchange.
	req1, resp1 := []byte("A|P of request 1"), []byte("A|P of response 1")
	req2, resp2 := []byte("A|P of request 2"), []byte("A|P of response 2")
	ia.AddInitiator(k, req1)
	ia.AddResponder(k, resp1)
	k1, _ := k.AddKeyExchange(bytes.Repeat([]byte{9}, 32))
	ia.AddInitiator(k1, req2)
	ia.AddResponder(k1, resp2)
	i1 := k.PRF.Compute(k.SKpi, req1)
	r1 := k.PRF.Compute(k.SKpr, resp1)
	i2 := k.PRF.Compute(k1.SKpi, i1, req2)
	r2 := k.PRF.Compute(k1.SKpr, r1, resp2)
	want := concat(i2, r2, []byte{0, 0, 0, 3})
	if got := ia.Octets(3); !bytes.Equal(got, want) {
		t.Errorf("IntAuth %x, want %x", got, want)
	}
	signed := k1.SignedOctets(true, msg1, idi, ia.Octets(3))
	if !bytes.HasSuffix(signed, want) || !bytes.HasPrefix(signed, concat(msg1, k.Nr, k1.PRF.Compute(k1.SKpi, idi))) {
		t.Error("SignedOctets with IntAuth")
	}
}

// RFC 9242 Figure 1: IntAuth covers the header and the Encrypted payload
// header with lengths as if IV, padding and ICV were absent.
func TestIntAuthData(t *testing.T) {
	aad := make([]byte, 28+8+4) // header, one unprotected 8-octet payload, SK header
	binary.BigEndian.PutUint32(aad[24:], 999)
	aad[28], aad[31] = 46, 8
	binary.BigEndian.PutUint16(aad[38:], 777)
	aad[36] = 41 // first inner payload: Notify
	inner := bytes.Repeat([]byte{0xee}, 50)
	got, err := IntAuthData(aad, inner)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(aad)+len(inner) || !bytes.Equal(got[len(aad):], inner) {
		t.Fatal("layout")
	}
	if binary.BigEndian.Uint32(got[24:]) != uint32(len(aad)+50) {
		t.Errorf("IKE Length %d", binary.BigEndian.Uint32(got[24:]))
	}
	if binary.BigEndian.Uint16(got[38:]) != 54 {
		t.Errorf("SK Payload Length %d", binary.BigEndian.Uint16(got[38:]))
	}
	if binary.BigEndian.Uint32(aad[24:]) != 999 {
		t.Error("aad modified")
	}
	if _, err := IntAuthData(aad[:31], inner); err == nil {
		t.Error("short aad accepted")
	}
	if _, err := IntAuthData(aad, make([]byte, 65532)); err == nil {
		t.Error("inner payloads beyond one Encrypted payload accepted")
	}
}

func TestSharedKeyAuth(t *testing.T) {
	p, _ := NewPRF(proposal.PRFHMACSHA256)
	secret, octets := []byte("secret"), []byte("octets")
	want := p.Compute(p.Compute(secret, []byte("Key Pad for IKEv2")), octets)
	if got := SharedKeyAuth(p, secret, octets); !bytes.Equal(got, want) {
		t.Error("SharedKeyAuth")
	}
}

func BenchmarkDeriveIKE(b *testing.B) {
	s := ikeSuite(proposal.EncrAESGCM16, 256, proposal.IntegNone)
	s.PRF = proposal.PRFHMACSHA384
	n := make([]byte, 32)
	for b.Loop() {
		if _, err := DeriveIKE(s, n, n, n, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
}
