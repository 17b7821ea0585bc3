package keymat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// RFC 4434 §5 (AES-XCBC-PRF-128) and RFC 4615 §4 (AES-CMAC-PRF-128): the
// message is 0x00..0x13 and the key 16 octets, shorter (padded or
// compressed) or longer (compressed).
func TestAESPRFVectors(t *testing.T) {
	msg := seq(20)
	key16 := seq(16)
	key10 := seq(10)
	key18 := append(seq(16), 0xed, 0xcb)
	for _, v := range []struct {
		id   proposal.PRFID
		key  []byte
		want string
	}{
		{proposal.PRFAES128XCBC, key16, "47f51b4564966215b8985c63055ed308"},
		{proposal.PRFAES128XCBC, key10, "0fa087af7d866e7653434e602fdde835"},
		{proposal.PRFAES128XCBC, key18, "8cd3c93ae598a9803006ffb67c40e9e4"},
		{proposal.PRFAES128CMAC, key18, "84a348a4a45d235babfffc0d2b4da09a"},
		{proposal.PRFAES128CMAC, key16, "980ae87b5f4c9c5214f5b6a8455e4c2d"},
		{proposal.PRFAES128CMAC, key10, "290d9e112edb09ee141fcf64c0b72f3d"},
	} {
		p, err := NewPRF(v.id)
		if err != nil {
			t.Fatal(err)
		}
		// Feeding the message in pieces must not matter.
		if got := p.Compute(v.key, msg[:7], msg[7:]); !bytes.Equal(got, testvec.MustHex(t, v.want)) {
			t.Errorf("%s key %d octets: %x, want %s", v.id, len(v.key), got, v.want)
		}
	}
}

// RFC 4231 §4 (HMAC-SHA-256/384/512) and RFC 2202 §3 (HMAC-SHA-1).
func TestHMACPRFVectors(t *testing.T) {
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	case4Key := seq(26)[1:]
	big := rep(0xaa, 131)
	cases := []struct {
		name      string
		key, data []byte
		sha1      string
		sha256    string
		sha384    string
		sha512    string
	}{
		{"1", rep(0x0b, 20), []byte("Hi There"),
			"b617318655057264e28bc0b6fb378c8ef146be00",
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{"2", []byte("Jefe"), []byte("what do ya want for nothing?"),
			"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{"3", rep(0xaa, 20), rep(0xdd, 50),
			"125d7342b9ac11cd91a39af48aa17b4f63f175d3",
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
		{"4", case4Key, rep(0xcd, 50),
			"4c9007f4026250c6bc8414f9bf50c86c2d7235da",
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
		{"6", big, []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
		{"7", big, []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
	}
	for _, c := range cases {
		for _, v := range []struct {
			id   proposal.PRFID
			want string
		}{
			{proposal.PRFHMACSHA1, c.sha1}, {proposal.PRFHMACSHA256, c.sha256},
			{proposal.PRFHMACSHA384, c.sha384}, {proposal.PRFHMACSHA512, c.sha512},
		} {
			if v.want == "" {
				continue
			}
			p, err := NewPRF(v.id)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Compute(c.key, c.data)
			if !bytes.Equal(got, testvec.MustHex(t, v.want)) {
				t.Errorf("case %s %s: %x, want %s", c.name, v.id, got, v.want)
			}
			if len(got) != p.Size() {
				t.Errorf("%s: %d octets, Size says %d", v.id, len(got), p.Size())
			}
		}
	}
}

func TestNewPRFRejects(t *testing.T) {
	for _, id := range []proposal.PRFID{proposal.PRFHMACMD5, 0, 3, 99} {
		if _, err := NewPRF(id); err == nil {
			t.Errorf("%s accepted", id)
		}
	}
}

// prf+ written out from RFC 7296 §2.13 with crypto/hmac directly.
func TestPlus(t *testing.T) {
	p, _ := NewPRF(proposal.PRFHMACSHA256)
	key := []byte("prf+ key")
	s1, s2 := []byte("seed part one|"), []byte("two")
	var want []byte
	var prev []byte
	for i := byte(1); i <= 4; i++ {
		m := hmac.New(sha256.New, key)
		m.Write(prev)
		m.Write(s1)
		m.Write(s2)
		m.Write([]byte{i})
		prev = m.Sum(nil)
		want = append(want, prev...)
	}
	for _, n := range []int{0, 1, 31, 32, 33, 100, 128} {
		got, err := p.Plus(key, n, s1, s2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[:n]) {
			t.Errorf("prf+ %d octets: %x, want %x", n, got, want[:n])
		}
	}
	if _, err := p.Plus(key, 255*32, s1); err != nil {
		t.Errorf("255 blocks: %v", err)
	}
	if _, err := p.Plus(key, 255*32+1, s1); err != ErrPlusTooLong {
		t.Errorf("256 blocks: %v", err)
	}
	if _, err := p.Plus(key, -1); err != ErrPlusTooLong {
		t.Errorf("negative length: %v", err)
	}
}

func TestSKEYSEEDAESPRFUsesHalfNonces(t *testing.T) {
	ni := []byte(strings.Repeat("I", 32))
	nr := []byte(strings.Repeat("R", 32))
	gir := []byte("shared secret")
	for _, id := range []proposal.PRFID{proposal.PRFAES128XCBC, proposal.PRFAES128CMAC} {
		p, _ := NewPRF(id)
		got, err := SKEYSEED(p, ni, nr, gir)
		if err != nil {
			t.Fatal(err)
		}
		// RFC 7296 §2.14: the first 64 bits of each nonce, not all of them.
		if want := p.Compute(append(ni[:8:8], nr[:8]...), gir); !bytes.Equal(got, want) {
			t.Errorf("%s: SKEYSEED does not use Ni[:8] | Nr[:8]", id)
		}
	}
	p, _ := NewPRF(proposal.PRFHMACSHA256)
	got, _ := SKEYSEED(p, ni, nr, gir)
	if want := p.Compute(append(bytes.Clone(ni), nr...), gir); !bytes.Equal(got, want) {
		t.Error("HMAC SKEYSEED does not use the whole nonces")
	}
	if _, err := SKEYSEED(p, ni[:15], nr, gir); err == nil {
		t.Error("15-octet nonce accepted")
	}
}

// Wycheproof HMAC through the PRF (full-length tags, any key size) and
// through the SK integrity transforms (their key length and truncation:
// SHA2-256-128, SHA2-384-192, SHA2-512-256; SHA1-96 has no 96-bit
// group, so its valid full tags are cut to 12 octets).
func TestWycheproofHMAC(t *testing.T) {
	for _, c := range []struct {
		file  string
		prf   proposal.PRFID
		integ proposal.IntegID
	}{
		{"hmac_sha1_test.json", proposal.PRFHMACSHA1, proposal.IntegHMACSHA196},
		{"hmac_sha256_test.json", proposal.PRFHMACSHA256, proposal.IntegHMACSHA256128},
		{"hmac_sha384_test.json", proposal.PRFHMACSHA384, proposal.IntegHMACSHA384192},
		{"hmac_sha512_test.json", proposal.PRFHMACSHA512, proposal.IntegHMACSHA512256},
	} {
		var v testvec.MACFile
		testvec.Wycheproof(t, c.file, &v)
		p, _ := NewPRF(c.prf)
		info, _ := c.integ.Info()
		var prfN, integN int
		for _, g := range v.TestGroups {
			full := g.TagSize == 8*p.Size()
			asInteg := g.KeySize == 8*info.KeyLen && (g.TagSize == 8*info.ICVLen || full)
			for _, tc := range g.Tests {
				valid := tc.Result == testvec.Valid
				if full {
					if got := p.Compute(tc.Key, tc.Msg); bytes.Equal(got, tc.Tag) != valid {
						t.Errorf("%s tc %d: PRF %x vs %s tag %x", c.file, tc.TcID, got, tc.Result, tc.Tag)
					}
					prfN++
				}
				if asInteg && (g.TagSize == 8*info.ICVLen || valid) {
					m, err := newInteg(c.integ, tc.Key)
					if err != nil {
						t.Fatal(err)
					}
					want := tc.Tag[:min(len(tc.Tag), info.ICVLen)]
					if got := m.mac(tc.Msg, nil, nil); bytes.Equal(got, want) != valid {
						t.Errorf("%s tc %d: %s %x vs %s tag %x", c.file, tc.TcID, c.integ, got, tc.Result, want)
					}
					integN++
				}
			}
		}
		t.Logf("%s: %d PRF and %d %s vectors", c.file, prfN, integN, c.integ)
		if prfN == 0 || integN == 0 {
			t.Fatalf("%s: no vectors exercised", c.file)
		}
	}
}

// Wycheproof AES-CMAC with 128-bit keys through AES-CMAC-PRF-128, which
// is AES-CMAC for 16-octet keys (valid tags match, invalid ones do not),
// and through AUTH_AES_CMAC_96, whose ICV must be each valid tag cut to
// 12 octets.
func TestWycheproofCMAC(t *testing.T) {
	var v testvec.MACFile
	testvec.Wycheproof(t, "aes_cmac_test.json", &v)
	p, _ := NewPRF(proposal.PRFAES128CMAC)
	var n int
	for _, g := range v.TestGroups {
		if g.KeySize != 128 || g.TagSize != 128 {
			continue
		}
		for _, tc := range g.Tests {
			valid := tc.Result == testvec.Valid
			m, err := newInteg(proposal.IntegAESCMAC96, tc.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.mac(tc.Msg, nil, nil); valid && !bytes.Equal(got, tc.Tag[:12]) {
				t.Errorf("tc %d: CMAC-96 %x, want %x", tc.TcID, got, tc.Tag[:12])
			}
			if got := p.Compute(tc.Key, tc.Msg); bytes.Equal(got, tc.Tag) != valid {
				t.Errorf("tc %d: CMAC-PRF %x vs %s tag %x", tc.TcID, got, tc.Result, tc.Tag)
			}
			n++
		}
	}
	t.Logf("aes_cmac: %d vectors", n)
	if n == 0 {
		t.Fatal("no vectors exercised")
	}
}
