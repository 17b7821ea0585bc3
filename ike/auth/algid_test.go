package auth

import (
	"bytes"
	"crypto"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
)

func hx(t testing.TB, s string) []byte {
	return testvec.MustHex(t, strings.Join(strings.Fields(s), ""))
}

// RFC 7427 Appendix A (and RFC 8420 §2 for Ed25519), typed in: what we
// send must be these octets, and what we parse must mean these schemes.
func TestRFC7427AlgorithmIdentifiers(t *testing.T) {
	for _, v := range []struct {
		name string
		der  string
		alg  sigAlg
	}{
		{"A.1.1 sha1WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 05 05 00", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA1}},
		{"A.1.2 sha256WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA256}},
		{"A.1.3 sha384WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0c 05 00", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA384}},
		{"A.1.4 sha512WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0d 05 00", sigAlg{scheme: schemeRSAPKCS1, hash: crypto.SHA512}},
		{"A.3.1 ecdsa-with-sha1", "30 09 06 07 2a 86 48 ce 3d 04 01", sigAlg{scheme: schemeECDSA, hash: crypto.SHA1}},
		{"A.3.2 ecdsa-with-sha256", "30 0a 06 08 2a 86 48 ce 3d 04 03 02", sigAlg{scheme: schemeECDSA, hash: crypto.SHA256}},
		{"A.3.3 ecdsa-with-sha384", "30 0a 06 08 2a 86 48 ce 3d 04 03 03", sigAlg{scheme: schemeECDSA, hash: crypto.SHA384}},
		{"A.3.4 ecdsa-with-sha512", "30 0a 06 08 2a 86 48 ce 3d 04 03 04", sigAlg{scheme: schemeECDSA, hash: crypto.SHA512}},
		{"RFC 8420 id-Ed25519", "30 05 06 03 2b 65 70", sigAlg{scheme: schemeEd25519}},
	} {
		got, err := v.alg.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, hx(t, v.der)) {
			t.Errorf("%s: we send %x, the RFC has %s", v.name, got, v.der)
		}
		if p, err := parseSigAlg(hx(t, v.der)); err != nil || p != v.alg {
			t.Errorf("%s: parsed %+v, %v", v.name, p, err)
		}
	}

	// A.4.3 RSASSA-PSS with SHA-256 spells out the DEFAULT trailerField;
	// we parse it, and send the same parameters in DER, without it.
	a43 := hx(t, `30 46 06 09 2a 86 48 86 f7 0d 01 01 0a 30 39 a0 0f
		30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a1 1c 30 1a 06 09
		2a 86 48 86 f7 0d 01 01 08 30 0d 06 09 60 86 48 01 65 03 04 02
		01 05 00 a2 03 02 01 20 a3 03 02 01 01`)
	want := sigAlg{scheme: schemeRSAPSS, hash: crypto.SHA256, salt: 32}
	if p, err := parseSigAlg(a43); err != nil || p != want {
		t.Errorf("A.4.3: parsed %+v, %v", p, err)
	}
	a43DER := append([]byte{0x30, 0x41}, a43[2:len(a43)-5]...)
	a43DER[14] = 0x34 // params SEQUENCE length without the trailer
	if got, _ := want.marshal(); !bytes.Equal(got, a43DER) {
		t.Errorf("RSASSA-PSS SHA-256: we send %x, want %x", got, a43DER)
	}
	for _, h := range []crypto.Hash{crypto.SHA384, crypto.SHA512} {
		a := sigAlg{scheme: schemeRSAPSS, hash: h, salt: h.Size()}
		der, _ := a.marshal()
		if p, err := parseSigAlg(der); err != nil || p != a {
			t.Errorf("PSS %v does not round-trip: %+v %v", h, p, err)
		}
	}
	// Empty RSASSA-PSS parameters mean SHA-1, MGF1-SHA-1, salt 20.
	if p, err := parseSigAlg(hx(t, "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0a 30 00")); err != nil || p != (sigAlg{scheme: schemeRSAPSS, hash: crypto.SHA1, salt: 20}) {
		t.Errorf("PSS defaults: %+v %v", p, err)
	}
}

func TestParseSigAlgRejects(t *testing.T) {
	for name, der := range map[string]string{
		"trailing octet":          "30 0a 06 08 2a 86 48 ce 3d 04 03 02 00",
		"ECDSA with parameters":   "30 0c 06 08 2a 86 48 ce 3d 04 03 02 05 00",
		"PKCS#1 with INTEGER":     "30 0e 06 09 2a 86 48 86 f7 0d 01 01 0b 02 01 01",
		"NULL with content":       "30 0e 06 09 2a 86 48 86 f7 0d 01 01 0b 05 01 00",
		"DSA":                     "30 09 06 07 2a 86 48 ce 38 04 03",
		"unknown OID":             "30 05 06 03 2b 65 71",
		"not a SEQUENCE":          "31 05 06 03 2b 65 70",
		"truncated":               "30 0a 06 08 2a 86 48 ce 3d 04 03",
		"empty":                   "",
		"PSS trailer 2":           "30 12 06 09 2a 86 48 86 f7 0d 01 01 0a 30 05 a3 03 02 01 02",
		"PSS salt 0":              "30 12 06 09 2a 86 48 86 f7 0d 01 01 0a 30 05 a2 03 02 01 00",
		"PSS MGF1 hash differs":   "30 41 06 09 2a 86 48 86 f7 0d 01 01 0a 30 34 a0 0f 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d 06 09 60 86 48 01 65 03 04 02 02 05 00 a2 03 02 01 20",
		"PSS fields out of order": "30 17 06 09 2a 86 48 86 f7 0d 01 01 0a 30 0a a3 03 02 01 01 a2 03 02 01 20",
	} {
		if p, err := parseSigAlg(hx(t, der)); err == nil {
			t.Errorf("%s: parsed as %+v", name, p)
		}
	}
}

func FuzzParseSigAlg(f *testing.F) {
	for _, a := range []sigAlg{
		{scheme: schemeRSAPSS, hash: crypto.SHA256, salt: 32},
		{scheme: schemeECDSA, hash: crypto.SHA384},
		{scheme: schemeEd25519},
		{scheme: schemeRSAPKCS1, hash: crypto.SHA512},
	} {
		der, _ := a.marshal()
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := parseSigAlg(der)
		if err != nil {
			return
		}
		// Whatever parses must name a scheme we can use, and encode again
		// to something that parses the same.
		again, err := a.marshal()
		if err != nil {
			t.Fatalf("parsed %+v but cannot encode it: %v", a, err)
		}
		if b, err := parseSigAlg(again); err != nil || b != a {
			t.Fatalf("%+v re-encoded to %x parses as %+v, %v", a, again, b, err)
		}
	})
}
