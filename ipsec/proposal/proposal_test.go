package proposal

import (
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in    string
		proto Protocol
		want  []string
	}{
		{"aes256gcm16-prfsha384-ecp384", ProtoIKE, []string{"aes256gcm16-prfsha384-ecp384"}},
		{"aes128-sha256-x25519", ProtoIKE, []string{"aes128-sha256-prfsha256-x25519"}},
		{"aes128-aesxcbc-modp3072", ProtoIKE, []string{"aes128-aesxcbc-prfaesxcbc-modp3072"}},
		{"aes128gcm16-prfsha256-x25519-ke1_mlkem768", ProtoIKE, []string{"aes128gcm16-prfsha256-x25519-ke1_mlkem768"}},
		{"aes128gcm16", ProtoESP, []string{"aes128gcm16-noesn"}},
		{"aes128gcm16-x25519-esn", ProtoESP, []string{"aes128gcm16-x25519-esn"}},
		{"aes128gcm-aes128-sha256-modp2048", ProtoESP, []string{"aes128gcm16-modp2048-noesn", "aes128-sha256-modp2048-noesn"}},
		{"aes128gmac", ProtoESP, []string{"aes128gmac-noesn"}},
		{"aes128gmac-sha256", ProtoAH, []string{"aes128gmac-sha256-noesn"}},
		{"AES256CTR-SHA512-ESN-NOESN", ProtoESP, []string{"aes256ctr-sha512-esn-noesn"}},
	} {
		got, err := Parse(tc.in, tc.proto)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, s, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in    string
		proto Protocol
		want  string
	}{
		{"", ProtoIKE, "empty"},
		{"aes128gcm16-x25519", ProtoIKE, "needs a PRF"},
		{"aes128-x25519", ProtoIKE, "integrity"},
		{"aes128-sha256", ProtoIKE, "key exchange"},
		{"aes128-sha256-mlkem768", ProtoIKE, "additional key exchange"},
		{"aes128", ProtoESP, "integrity"},
		{"aes128-sha256-prfsha256", ProtoESP, "only IKE"},
		{"aes128-sha256", ProtoAH, "no encryption"},
		{"aes129-sha256", ProtoESP, "unknown algorithm keyword \"aes129\""},
		{"aes128-sha256-ke8_mlkem768", ProtoIKE, "unknown algorithm"},
		{"aes128-sha256-ke1_foo", ProtoIKE, "unknown key exchange"},
		{"null-sha256-x25519", ProtoIKE, "cannot protect IKE"},
		{"3des-sha256-modp2048", ProtoIKE, "ESP proposals only"},
	} {
		_, err := Parse(tc.in, tc.proto)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestSuiteCheck(t *testing.T) {
	strict := Policy{}
	open := Policy{AllowLegacy: true, AllowIntegrityOnly: true}
	for _, tc := range []struct {
		s        Suite
		strictOK bool
		openOK   bool
	}{
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESGCM16, 128}}, true, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESGCM16, 128}, Integ: IntegHMACSHA256128}, false, false},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESGCM16, 100}}, false, false},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrChaCha20Poly13, 0}}, true, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{Encr3DES, 0}, Integ: IntegHMACSHA256128}, false, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESCBC, 128}, Integ: IntegHMACSHA196}, false, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESCBC, 128}}, false, false},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrNull, 0}, Integ: IntegHMACSHA256128}, false, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrNullAuthGMAC, 256}}, false, true},
		{Suite{Protocol: ProtoESP, Encr: Encr{EncrAESCBC, 128}, Integ: IntegAES128GMAC}, false, false},
		{Suite{Protocol: ProtoAH, Integ: IntegAES128GMAC}, false, true},
		{Suite{Protocol: ProtoAH, Integ: IntegHMACSHA256128}, false, true},
		{Suite{Protocol: ProtoIKE, Encr: Encr{EncrAESGCM16, 256}, PRF: PRFHMACSHA384, KE: KEECP384}, true, true},
		{Suite{Protocol: ProtoIKE, Encr: Encr{EncrAESGCM16, 256}, PRF: PRFHMACSHA1, KE: KEECP384}, false, true},
		{Suite{Protocol: ProtoIKE, Encr: Encr{EncrAESGCM16, 256}, PRF: PRFHMACSHA256, KE: KEMODP1024}, false, true},
	} {
		if err := tc.s.Check(strict); (err == nil) != tc.strictOK {
			t.Errorf("%v strict: err = %v, want ok=%v", tc.s, err, tc.strictOK)
		}
		if err := tc.s.Check(open); (err == nil) != tc.openOK {
			t.Errorf("%v open: err = %v, want ok=%v", tc.s, err, tc.openOK)
		}
	}
}

func TestKeyLen(t *testing.T) {
	for _, tc := range []struct {
		e    Encr
		want int
	}{
		{Encr{EncrAESGCM16, 128}, 20},
		{Encr{EncrAESGCM16, 256}, 36},
		{Encr{EncrAESCCM8, 192}, 27},
		{Encr{EncrAESCTR, 128}, 20},
		{Encr{EncrAESCBC, 256}, 32},
		{Encr{EncrChaCha20Poly13, 0}, 36},
		{Encr{Encr3DES, 0}, 24},
		{Encr{EncrNull, 0}, 0},
	} {
		if got := tc.e.ID.KeyLen(tc.e.KeyBits); got != tc.want {
			t.Errorf("KeyLen(%v) = %d, want %d", tc.e, got, tc.want)
		}
	}
}
