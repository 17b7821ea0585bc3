package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/internal/testvec"
)

type ecdsaVerifyFile struct {
	TestGroups []struct {
		PublicKeyDer testvec.Hex `json:"publicKeyDer"`
		Sha          string      `json:"sha"`
		Tests        []struct {
			TcID    int         `json:"tcId"`
			Comment string      `json:"comment"`
			Msg     testvec.Hex `json:"msg"`
			Sig     testvec.Hex `json:"sig"`
			Result  string      `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// digitalSignature frames a signature as method 14 data (RFC 7427 §3),
// by hand so that vectors with empty signatures keep their frame.
func digitalSignature(t *testing.T, alg sigAlg, sig []byte) []byte {
	t.Helper()
	der, err := alg.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{byte(len(der))}, der...), sig...)
}

// Wycheproof ECDSA P-256/SHA-256 through both IKE forms:
//
//   - method 14 (RFC 7427) carries the DER signature as it is: valid
//     vectors must verify, invalid ones must not;
//   - method 9 (RFC 4754) carries r|s. A DER signature that is not
//     strictly DER, or whose r or s is negative or longer than 32 octets,
//     has no r|s form and is counted as unrepresentable; every other one
//     is converted and must verify exactly when it is valid.
func TestWycheproofECDSAP256(t *testing.T) {
	var f ecdsaVerifyFile
	testvec.Wycheproof(t, "ecdsa_secp256r1_sha256_test.json", &f)
	var valid, invalid, asRS, unrepresentable, unrepresentableValid int
	for _, g := range f.TestGroups {
		if g.Sha != "SHA-256" {
			t.Fatalf("group hash %s", g.Sha)
		}
		k, err := x509.ParsePKIXPublicKey(g.PublicKeyDer)
		if err != nil {
			t.Fatalf("public key: %v", err)
		}
		pub := k.(*ecdsa.PublicKey)
		for _, tc := range g.Tests {
			ok := tc.Result == "valid"
			if tc.Result == "acceptable" {
				t.Fatalf("tc %d: acceptable vectors are not expected in this file", tc.TcID)
			}
			err := Verify(pub, message.AuthDigitalSignature, digitalSignature(t, sigAlg{scheme: schemeECDSA, hash: crypto.SHA256}, tc.Sig), tc.Msg, Policy{})
			if ok != (err == nil) {
				t.Errorf("tc %d (%s, %s): method 14: %v", tc.TcID, tc.Comment, tc.Result, err)
			}
			if err != nil && !errors.Is(err, ErrAuthFailed) {
				t.Errorf("tc %d: error %v is not ErrAuthFailed", tc.TcID, err)
			}
			if ok {
				valid++
			} else {
				invalid++
			}
			r, s, parsed := parseECDSASig(tc.Sig)
			if !parsed || len(r) > 32 || len(s) > 32 {
				unrepresentable++
				if ok {
					unrepresentableValid++
					t.Errorf("tc %d: a valid signature has no r|s form", tc.TcID)
				}
				continue
			}
			rs := make([]byte, 64)
			copy(rs[32-len(r):32], r)
			copy(rs[64-len(s):], s)
			err = Verify(pub, message.AuthECDSAP256SHA256, rs, tc.Msg, Policy{})
			if ok != (err == nil) {
				t.Errorf("tc %d (%s, %s): method 9: %v", tc.TcID, tc.Comment, tc.Result, err)
			}
			asRS++
		}
	}
	t.Logf("ecdsa_secp256r1_sha256: %d valid and %d invalid checked as DER (method 14); %d also as r|s (method 9); %d without an r|s form (%d of them valid)",
		valid, invalid, asRS, unrepresentable, unrepresentableValid)
	if valid == 0 || invalid == 0 || asRS == 0 {
		t.Fatal("no vectors exercised")
	}
}

type eddsaFile struct {
	TestGroups []struct {
		PublicKey struct {
			PK testvec.Hex `json:"pk"`
		} `json:"publicKey"`
		Tests []struct {
			TcID    int         `json:"tcId"`
			Comment string      `json:"comment"`
			Msg     testvec.Hex `json:"msg"`
			Sig     testvec.Hex `json:"sig"`
			Result  string      `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// Wycheproof Ed25519 through method 14 with id-Ed25519 (RFC 8420).
func TestWycheproofEd25519(t *testing.T) {
	var f eddsaFile
	testvec.Wycheproof(t, "ed25519_test.json", &f)
	var valid, invalid int
	for _, g := range f.TestGroups {
		pub := ed25519.PublicKey(g.PublicKey.PK)
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("public key of %d octets", len(pub))
		}
		for _, tc := range g.Tests {
			data := digitalSignature(t, sigAlg{scheme: schemeEd25519}, tc.Sig)
			err := Verify(pub, message.AuthDigitalSignature, data, tc.Msg, Policy{})
			switch tc.Result {
			case "valid":
				if err != nil {
					t.Errorf("tc %d (%s): %v", tc.TcID, tc.Comment, err)
				}
				valid++
			case "invalid":
				if err == nil {
					t.Errorf("tc %d (%s): invalid signature verified", tc.TcID, tc.Comment)
				}
				invalid++
			default:
				t.Fatalf("tc %d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	t.Logf("ed25519: %d valid verified, %d invalid rejected", valid, invalid)
	if valid == 0 || invalid == 0 {
		t.Fatal("no vectors exercised")
	}
}
