package keymat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

// skSuites is every IKE encryption and integrity combination the SK
// payload supports.
func skSuites() []proposal.Suite {
	var out []proposal.Suite
	integs := []proposal.IntegID{proposal.IntegHMACSHA196, proposal.IntegHMACSHA256128,
		proposal.IntegHMACSHA384192, proposal.IntegHMACSHA512256, proposal.IntegAESXCBC96, proposal.IntegAESCMAC96}
	for _, bits := range []uint16{128, 192, 256} {
		for _, e := range []proposal.EncrID{proposal.EncrAESCBC, proposal.EncrAESCTR} {
			for _, a := range integs {
				out = append(out, ikeSuite(e, bits, a))
			}
		}
		for _, e := range aeadIDs() {
			out = append(out, ikeSuite(e, bits, proposal.IntegNone))
		}
	}
	return append(out, ikeSuite(proposal.EncrChaCha20Poly13, 0, proposal.IntegNone))
}

func aeadIDs() []proposal.EncrID {
	return []proposal.EncrID{proposal.EncrAESGCM8, proposal.EncrAESGCM12, proposal.EncrAESGCM16,
		proposal.EncrAESCCM8, proposal.EncrAESCCM12, proposal.EncrAESCCM16}
}

func ikeSuite(e proposal.EncrID, bits uint16, a proposal.IntegID) proposal.Suite {
	return proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: e, KeyBits: bits},
		Integ: a, PRF: proposal.PRFHMACSHA256, KE: proposal.KEX25519}
}

func suiteName(s proposal.Suite) string {
	return proposal.EncrKeyword(s.Encr) + "-" + s.Integ.String()
}

func testKeys(t testing.TB, s proposal.Suite, seed uint64) *IKEKeys {
	t.Helper()
	r := seeded(seed)
	ni, nr, gir := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	r.Read(ni)
	r.Read(nr)
	r.Read(gir)
	k, err := DeriveIKE(s, ni, nr, gir, 0x1122334455667788, 0x99aabbccddeeff00)
	if err != nil {
		t.Fatalf("%s: %v", suiteName(s), err)
	}
	return k
}

// fakeMessage returns an aad (IKE header and SK header) and a padded
// plaintext for a cipher, as the codec would lay them out.
func fakeMessage(c message.Cipher, n int) (aad, pt []byte) {
	aad = make([]byte, 32)
	for i := range aad {
		aad[i] = byte(0xa0 + i)
	}
	pt = bytes.Repeat([]byte("payloads"), (n+7)/8)[:n]
	pad := (c.BlockSize() - (n+1)%c.BlockSize()) % c.BlockSize()
	pt = append(pt, make([]byte, pad)...)
	return aad, append(pt, byte(pad))
}

func TestCipherRoundTrip(t *testing.T) {
	for i, s := range skSuites() {
		t.Run(suiteName(s), func(t *testing.T) {
			k := testKeys(t, s, uint64(i))
			iOut, iIn, err := k.Ciphers(true, seeded(99))
			if err != nil {
				t.Fatal(err)
			}
			rOut, rIn, err := k.Ciphers(false, seeded(98))
			if err != nil {
				t.Fatal(err)
			}
			info, _ := s.Encr.ID.Info()
			wantICV := info.ICVLen
			if !info.AEAD {
				ii, _ := s.Integ.Info()
				wantICV = ii.ICVLen
			}
			if iOut.ICVSize() != wantICV {
				t.Errorf("ICVSize %d, want %d", iOut.ICVSize(), wantICV)
			}
			for _, pair := range []struct {
				name      string
				seal      message.Cipher
				open      message.Cipher
				wrongOpen message.Cipher
			}{
				{"i->r", iOut, rIn, iIn},
				{"r->i", rOut, iIn, rIn},
			} {
				for _, n := range []int{0, 1, 15, 16, 100, 1000} {
					aad, pt := fakeMessage(pair.seal, n)
					iv := make([]byte, pair.seal.IVSize())
					if err := pair.seal.NextIV(iv); err != nil {
						t.Fatal(err)
					}
					ct := pair.seal.Seal(nil, iv, pt, aad)
					if len(ct) != len(pt)+pair.seal.ICVSize() {
						t.Fatalf("%s: sealed %d octets into %d", pair.name, len(pt), len(ct))
					}
					got, err := pair.open.Open(nil, iv, ct, aad)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("%s %d octets: open: %v", pair.name, n, err)
					}
					if _, err := pair.wrongOpen.Open(nil, iv, ct, aad); err != ErrOpen {
						t.Errorf("%s: the other direction's key opened it: %v", pair.name, err)
					}
					for _, where := range []string{"aad", "iv", "ciphertext", "icv"} {
						a, v, c := bytes.Clone(aad), bytes.Clone(iv), bytes.Clone(ct)
						switch where {
						case "aad":
							a[5] ^= 0x40
						case "iv":
							v[len(v)-1] ^= 1
						case "ciphertext":
							if len(pt) == 0 {
								continue
							}
							c[0] ^= 0x80
						case "icv":
							c[len(c)-1] ^= 1
						}
						if _, err := pair.open.Open(nil, v, c, a); err != ErrOpen {
							t.Errorf("%s: %s modified: %v", pair.name, where, err)
						}
					}
					if _, err := pair.open.Open(nil, iv, ct[:len(ct)-1], aad); err != ErrOpen {
						t.Errorf("%s: truncated: %v", pair.name, err)
					}
					// In place, as the codec uses it: sealing into the
					// plaintext's own buffer and opening over the ciphertext.
					buf := make([]byte, len(pt), len(pt)+pair.seal.ICVSize()+16)
					copy(buf, pt)
					if err := pair.seal.NextIV(iv); err != nil {
						t.Fatal(err)
					}
					sealed := pair.seal.Seal(buf[:0], iv, buf, aad)
					opened, err := pair.open.Open(sealed[:0], iv, sealed, aad)
					if err != nil || !bytes.Equal(opened, pt) {
						t.Fatalf("%s: in place: %v", pair.name, err)
					}
				}
			}
		})
	}
}

func TestCounterIVs(t *testing.T) {
	s := ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone)
	k := testKeys(t, s, 1)
	out1, _, _ := k.Ciphers(true, nil)
	out2, _, _ := k.Ciphers(true, nil) // a second call must not restart the counter
	seen := map[string]bool{}
	for i := range 10 {
		c := out1
		if i%2 == 1 {
			c = out2
		}
		iv := make([]byte, 8)
		if err := c.NextIV(iv); err != nil {
			t.Fatal(err)
		}
		if seen[string(iv)] {
			t.Fatalf("IV %x issued twice", iv)
		}
		seen[string(iv)] = true
	}
	// The other direction has its own counter and its own key.
	rOut, _, _ := k.Ciphers(false, nil)
	iv := make([]byte, 8)
	rOut.NextIV(iv)
	if iv[7] != 1 {
		t.Errorf("responder's first IV %x, want 1", iv)
	}
	// Seal refuses an IV it did not issue, or one already used.
	aad, pt := fakeMessage(out1, 10)
	mustPanic(t, "unissued IV", func() { out1.Seal(nil, []byte{0, 0, 0, 0, 0, 0, 1, 0}, pt, aad) })
	out1.NextIV(iv)
	out1.Seal(nil, iv, pt, aad)
	mustPanic(t, "reused IV", func() { out1.Seal(nil, iv, pt, aad) })
	mustPanic(t, "zero IV", func() { out1.Seal(nil, make([]byte, 8), pt, aad) })

	// The last counter value is the end of the key.
	var c ivCounter
	c.issued.Store(1<<64 - 2)
	if err := c.next(iv); err != nil {
		t.Fatal(err)
	}
	if err := c.next(iv); err != ErrIVExhausted {
		t.Fatalf("after 2^64-1 IVs: %v", err)
	}
	if err := c.next(iv); err != ErrIVExhausted {
		t.Fatalf("counter wrapped: %v", err)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func TestCBCNeedsRandomAndPadding(t *testing.T) {
	s := ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128)
	k := testKeys(t, s, 2)
	if _, _, err := k.Ciphers(true, nil); err == nil {
		t.Error("AES-CBC without a random source")
	}
	out, _, _ := k.Ciphers(true, bytes.NewReader(make([]byte, 16)))
	iv := make([]byte, 16)
	if err := out.NextIV(iv); err != nil {
		t.Fatal(err)
	}
	if err := out.NextIV(iv); err == nil {
		t.Error("exhausted random source gave an IV")
	}
	mustPanic(t, "unpadded CBC plaintext", func() { out.Seal(nil, iv, make([]byte, 15), make([]byte, 32)) })
}

func TestNewCipherRejects(t *testing.T) {
	var ctr ivCounter
	good := ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128)
	for name, c := range map[string]struct {
		s          proposal.Suite
		enc, integ []byte
	}{
		"short key":       {good, make([]byte, 15), make([]byte, 32)},
		"short integ key": {good, make([]byte, 16), make([]byte, 31)},
		"AEAD with integ": {ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegHMACSHA256128), make([]byte, 20), make([]byte, 32)},
		"CBC without":     {ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegNone), make([]byte, 16), nil},
		"GMAC integ":      {ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegAES128GMAC), make([]byte, 16), make([]byte, 20)},
		"NULL":            {ikeSuite(proposal.EncrNull, 0, proposal.IntegHMACSHA256128), nil, make([]byte, 32)},
		"3DES":            {ikeSuite(proposal.Encr3DES, 0, proposal.IntegHMACSHA256128), make([]byte, 24), make([]byte, 32)},
		"bad key bits":    {ikeSuite(proposal.EncrAESCBC, 100, proposal.IntegHMACSHA256128), make([]byte, 12), make([]byte, 32)},
	} {
		if _, err := newCipher(c.s, c.enc, c.integ, seeded(1), &ctr); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// GCM with a truncated tag must equal GCM-16 with its tag cut
// (SP 800-38D §5.2.1.2), and refuse a wrong short tag.
func TestGCMTruncatedTags(t *testing.T) {
	for _, bits := range []uint16{128, 192, 256} {
		s8 := ikeSuite(proposal.EncrAESGCM8, bits, proposal.IntegNone)
		k := testKeys(t, s8, uint64(bits))
		// The same key material as GCM-16 (the lengths agree).
		s16 := s8
		s16.Encr.ID = proposal.EncrAESGCM16
		var ctr8, ctr16 ivCounter
		c8, _ := newCipher(s8, k.SKei, nil, nil, &ctr8)
		c16, _ := newCipher(s16, k.SKei, nil, nil, &ctr16)
		for _, n := range []int{0, 1, 16, 17, 300} {
			aad, pt := fakeMessage(c8, n)
			iv8, iv16 := make([]byte, 8), make([]byte, 8)
			c8.NextIV(iv8)
			c16.NextIV(iv16)
			full := c16.Seal(nil, iv16, pt, aad)
			short := c8.Seal(nil, iv8, pt, aad)
			if !bytes.Equal(short, full[:len(full)-8]) {
				t.Fatalf("AES-%d GCM-8 of %d octets is not GCM-16 truncated", bits, n)
			}
			got, err := c8.Open(nil, iv8, short, aad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("GCM-8 open: %v", err)
			}
			for i := len(short) - 8; i < len(short); i++ {
				bad := bytes.Clone(short)
				bad[i] ^= 0x10
				if _, err := c8.Open(nil, iv8, bad, aad); err != ErrOpen {
					t.Fatalf("GCM-8 tag octet %d modified: %v", i, err)
				}
			}
		}
	}
}

// Wycheproof AES-GCM, AES-CCM and ChaCha20-Poly1305 run through the SK
// cipher: the nonce splits into RFC 5282's salt (the tail of the key
// material: 4 octets, 3 for CCM) and the 8-octet IV carried in the
// message, so only 12-octet (11 for CCM) nonces apply. Valid vectors must
// open to msg; invalid ones must be refused. Truncated to 8 and 12
// octets, each valid GCM tag must still open under GCM-8 and GCM-12.
func TestWycheproofSKAEAD(t *testing.T) {
	for _, f := range []struct {
		file    string
		ivBits  int
		encr    func(keyBits, tagBits int) (proposal.Encr, bool)
		gcmTrim bool
	}{
		{"aes_gcm_test.json", 96, func(k, tag int) (proposal.Encr, bool) {
			return proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: uint16(k)}, tag == 128
		}, true},
		{"aes_ccm_test.json", 88, func(k, tag int) (proposal.Encr, bool) {
			id := map[int]proposal.EncrID{64: proposal.EncrAESCCM8, 96: proposal.EncrAESCCM12, 128: proposal.EncrAESCCM16}[tag]
			return proposal.Encr{ID: id, KeyBits: uint16(k)}, id != 0
		}, false},
		{"chacha20_poly1305_test.json", 96, func(_, tag int) (proposal.Encr, bool) {
			return proposal.Encr{ID: proposal.EncrChaCha20Poly13}, tag == 128
		}, false},
	} {
		var v testvec.AEADFile
		testvec.Wycheproof(t, f.file, &v)
		var opened, refused, truncated, skipped int
		for _, g := range v.TestGroups {
			e, ok := f.encr(g.KeySize, g.TagSize)
			if !ok || g.IVSize != f.ivBits {
				skipped += len(g.Tests) // no IKE form: other nonce or tag size
				continue
			}
			saltLen := f.ivBits/8 - 8
			for _, tc := range g.Tests {
				var ctr ivCounter
				keymat := append(bytes.Clone(tc.Key), tc.IV[:saltLen]...)
				c, err := newCipher(ikeSuite(e.ID, e.KeyBits, proposal.IntegNone), keymat, nil, nil, &ctr)
				if err != nil {
					t.Fatalf("%s tc %d: %v", f.file, tc.TcID, err)
				}
				ct := tc.Sealed()
				pt, err := c.Open(nil, tc.IV[saltLen:], ct, tc.AAD)
				if tc.Result == testvec.Invalid {
					if err == nil {
						t.Errorf("%s tc %d (%s): invalid vector opened", f.file, tc.TcID, tc.Comment)
					}
					refused++
					continue
				}
				if err != nil || !bytes.Equal(pt, tc.Msg) {
					t.Errorf("%s tc %d (%s): %v", f.file, tc.TcID, tc.Comment, err)
					continue
				}
				opened++
				if !f.gcmTrim {
					continue
				}
				for _, short := range []proposal.EncrID{proposal.EncrAESGCM8, proposal.EncrAESGCM12} {
					info, _ := short.Info()
					c, _ := newCipher(ikeSuite(short, e.KeyBits, proposal.IntegNone), keymat, nil, nil, &ctr)
					st := append(bytes.Clone(tc.CT), tc.Tag[:info.ICVLen]...)
					if pt, err := c.Open(nil, tc.IV[saltLen:], st, tc.AAD); err != nil || !bytes.Equal(pt, tc.Msg) {
						t.Errorf("%s tc %d: %s: %v", f.file, tc.TcID, short, err)
					}
					truncated++
				}
			}
		}
		t.Logf("%s: %d valid opened, %d invalid refused, %d truncated-tag opens, %d skipped (nonce or tag size IKE does not use)",
			f.file, opened, refused, truncated, skipped)
		if opened == 0 {
			t.Fatalf("%s: no vectors exercised", f.file)
		}
	}
}

// RFC 3686 §6 test vectors #1 and #2 for the AES-CTR counter block layout.
func TestCTRCounterBlock(t *testing.T) {
	h := func(s string) []byte { return testvec.MustHex(t, s) }
	for _, v := range []struct{ key, nonce, iv, pt, ct string }{
		{"AE6852F8121067CC4BF7A5765577F39E", "00000030", "0000000000000000",
			"53696E676C6520626C6F636B206D7367", "E4095D4FB7A7B3792D6175A3261311B8"},
		{"7E24067817FAE0D743D6CE1F32539163", "006CB6DB", "C0543B59DA48D90B",
			"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"5104A106168A72D9790D41EE8EDAD388EB2E1EFC46DA57C8FCE630DF9141BE28"},
	} {
		var ctr ivCounter
		s := ikeSuite(proposal.EncrAESCTR, 128, proposal.IntegHMACSHA256128)
		c, err := newCipher(s, append(h(v.key), h(v.nonce)...), make([]byte, 32), nil, &ctr)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(h(v.pt)))
		c.(*ctrCipher).stream(h(v.iv)).XORKeyStream(got, h(v.pt))
		if !bytes.Equal(got, h(v.ct)) {
			t.Errorf("key %s: %x, want %s", v.key, got, v.ct)
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(uint8(0), []byte{}, []byte{})
	f.Add(uint8(1), bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 44))
	f.Add(uint8(30), bytes.Repeat([]byte{1}, 8), bytes.Repeat([]byte{2}, 7))
	suites := skSuites()
	opens := make([]message.Cipher, len(suites))
	for i, s := range suites {
		_, in, err := testKeys(f, s, 5).Ciphers(true, seeded(1))
		if err != nil {
			f.Fatal(err)
		}
		opens[i] = in
	}
	aad := make([]byte, 32)
	f.Fuzz(func(t *testing.T, which uint8, iv, ct []byte) {
		c := opens[int(which)%len(opens)]
		if pt, err := c.Open(nil, iv, ct, aad); err == nil {
			t.Fatalf("forged message opened to %x", pt)
		} else if err != ErrOpen {
			t.Fatalf("error %v is not ErrOpen", err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, s := range []proposal.Suite{
		ikeSuite(proposal.EncrAESCBC, 128, proposal.IntegHMACSHA256128),
		ikeSuite(proposal.EncrAESCTR, 128, proposal.IntegAESXCBC96),
		ikeSuite(proposal.EncrAESGCM16, 256, proposal.IntegNone),
		ikeSuite(proposal.EncrAESGCM8, 128, proposal.IntegNone),
		ikeSuite(proposal.EncrAESCCM16, 128, proposal.IntegNone),
		ikeSuite(proposal.EncrChaCha20Poly13, 0, proposal.IntegNone),
	} {
		b.Run(suiteName(s), func(b *testing.B) {
			out, _, _ := testKeys(b, s, 1).Ciphers(true, seeded(2))
			_, peerIn, _ := testKeys(b, s, 1).Ciphers(false, seeded(3))
			aad, pt := fakeMessage(out, 1024)
			iv := make([]byte, out.IVSize())
			buf := make([]byte, 0, len(pt)+64)
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if err := out.NextIV(iv); err != nil {
					b.Fatal(err)
				}
				ct := out.Seal(buf[:0], iv, pt, aad)
				if _, err := peerIn.Open(ct[:0], iv, ct, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleIKEKeys_Ciphers() {
	s := proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 256},
		PRF: proposal.PRFHMACSHA384, KE: proposal.KEECP384}
	ni, nr, gir := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 48)
	k, _ := DeriveIKE(s, ni, nr, gir, 1, 2)
	out, _, _ := k.Ciphers(true, nil)
	_, peerIn, _ := k.Ciphers(false, nil)
	aad := make([]byte, 32) // IKE header and SK payload header
	iv := make([]byte, out.IVSize())
	out.NextIV(iv)
	sealed := out.Seal(nil, iv, []byte("inner payloads\x00"), aad)
	pt, err := peerIn.Open(nil, iv, sealed, aad)
	fmt.Println(len(sealed), string(pt[:14]), err)
	// Output: 31 inner payloads <nil>
}

// TestGCMReference checks the test's view of GCM-16 against crypto/cipher,
// so TestGCMTruncatedTags compares against the real thing.
func TestGCMReference(t *testing.T) {
	s := ikeSuite(proposal.EncrAESGCM16, 128, proposal.IntegNone)
	k := testKeys(t, s, 7)
	out, _, _ := k.Ciphers(true, nil)
	aad, pt := fakeMessage(out, 40)
	iv := make([]byte, 8)
	out.NextIV(iv)
	got := out.Seal(nil, iv, pt, aad)
	block, _ := aes.NewCipher(k.SKei[:16])
	g, _ := cipher.NewGCM(block)
	want := g.Seal(nil, append(bytes.Clone(k.SKei[16:]), iv...), pt, aad)
	if !bytes.Equal(got, want) {
		t.Fatal("SK AES-GCM-16 differs from crypto/cipher GCM with nonce salt|IV")
	}
}
