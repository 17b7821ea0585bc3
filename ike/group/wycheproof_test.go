package group

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/bitw-dev/bitw/internal/testvec"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// ecdhFile is a file of Wycheproof's xdh_comp and ecdh_ecpoint schemas,
// whose tests have the same fields: our private key, the peer's public
// value and the shared secret they give.
type ecdhFile struct {
	TestGroups []struct {
		Curve string `json:"curve"`
		Tests []struct {
			TcID    int            `json:"tcId"`
			Comment string         `json:"comment"`
			Flags   []string       `json:"flags"`
			Public  testvec.Hex    `json:"public"`
			Private testvec.Hex    `json:"private"`
			Shared  testvec.Hex    `json:"shared"`
			Result  testvec.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// X25519: every valid and acceptable vector must give the published
// secret, except those whose secret is all zero, which RFC 8031 §2.3
// requires us to reject.
func TestWycheproofX25519(t *testing.T) {
	var f ecdhFile
	testvec.Wycheproof(t, "x25519_test.json", &f)
	var matched, rejected int
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			x, err := New(proposal.KEX25519, proposal.Policy{}, bytes.NewReader(tc.Private))
			if err != nil {
				t.Fatalf("tc %d: private key: %v", tc.TcID, err)
			}
			z, err := x.Shared(tc.Public)
			mustReject := tc.Result == testvec.Invalid || slices.Contains(tc.Flags, "ZeroSharedSecret")
			switch {
			case mustReject && err == nil:
				t.Errorf("tc %d (%s): accepted, secret %x", tc.TcID, tc.Comment, z)
			case mustReject:
				rejected++
			case err != nil:
				t.Errorf("tc %d (%s): %v", tc.TcID, tc.Comment, err)
			case !bytes.Equal(z, tc.Shared):
				t.Errorf("tc %d (%s): secret %x, want %x", tc.TcID, tc.Comment, z, tc.Shared)
			default:
				matched++
			}
		}
	}
	t.Logf("x25519: %d secrets matched, %d rejected", matched, rejected)
	if matched == 0 || rejected == 0 {
		t.Fatal("no vectors exercised")
	}
}

// ECDH with ecpoint encoding. IKE (RFC 5903 §7) carries x|y with no
// format octet, so an uncompressed 04|x|y point is converted by dropping
// the 04; compressed and malformed encodings have no IKE form at all, and
// both the raw bytes and the bytes after the first octet must be refused.
func TestWycheproofECDH(t *testing.T) {
	for _, c := range []struct {
		file string
		id   proposal.KEID
	}{
		{"ecdh_secp256r1_ecpoint_test.json", proposal.KEECP256},
		{"ecdh_secp384r1_ecpoint_test.json", proposal.KEECP384},
		{"ecdh_secp521r1_ecpoint_test.json", proposal.KEECP521},
	} {
		t.Run(c.id.String(), func(t *testing.T) {
			var f ecdhFile
			testvec.Wycheproof(t, c.file, &f)
			g := ecGroups[c.id]
			var matched, rejected, unrepresentable int
			for _, grp := range f.TestGroups {
				for i, tc := range grp.Tests {
					if raceEnabled && c.id != proposal.KEECP256 && i%8 != 0 && tc.Result == testvec.Valid {
						continue // see raceEnabled; invalid vectors always run
					}
					priv := leftPad(tc.Private, g.scalar)
					if priv == nil {
						t.Fatalf("tc %d: private key of %d octets", tc.TcID, len(tc.Private))
					}
					x, err := New(c.id, proposal.Policy{}, bytes.NewReader(priv))
					if err != nil {
						t.Fatalf("tc %d: private key: %v", tc.TcID, err)
					}
					uncompressed := len(tc.Public) == 1+g.dataSize && tc.Public[0] == 4
					if !uncompressed {
						for _, peer := range [][]byte{tc.Public, tc.Public[min(1, len(tc.Public)):]} {
							if _, err := x.Shared(peer); err == nil {
								t.Errorf("tc %d (%s, %s): non-RFC 5903 encoding accepted", tc.TcID, tc.Comment, tc.Result)
							}
						}
						if tc.Result == testvec.Invalid {
							rejected++
						} else {
							unrepresentable++
						}
						continue
					}
					z, err := x.Shared(tc.Public[1:])
					switch {
					case tc.Result == testvec.Invalid && err == nil:
						t.Errorf("tc %d (%s): invalid point accepted", tc.TcID, tc.Comment)
					case tc.Result == testvec.Invalid:
						if !errors.Is(err, ErrPeerValue) {
							t.Errorf("tc %d: error %v is not ErrPeerValue", tc.TcID, err)
						}
						rejected++
					case err != nil:
						t.Errorf("tc %d (%s): %v", tc.TcID, tc.Comment, err)
					case !bytes.Equal(z, tc.Shared):
						t.Errorf("tc %d (%s): secret %x, want %x", tc.TcID, tc.Comment, z, tc.Shared)
					default:
						matched++
					}
				}
			}
			t.Logf("%s: %d secrets matched, %d invalid rejected, %d acceptable compressed points refused (no RFC 5903 form)",
				c.id, matched, rejected, unrepresentable)
			if matched == 0 || rejected == 0 {
				t.Fatal("no vectors exercised")
			}
		})
	}
}

// leftPad returns b as an n-octet big-endian integer: Wycheproof prints
// scalars minimally, sometimes with a sign octet.
func leftPad(b []byte, n int) []byte {
	for len(b) > n && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > n {
		return nil
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

type mlkemFile struct {
	TestGroups []struct {
		ParameterSet string `json:"parameterSet"`
		Tests        []struct {
			TcID    int            `json:"tcId"`
			Comment string         `json:"comment"`
			Seed    testvec.Hex    `json:"seed"`
			EK      testvec.Hex    `json:"ek"`
			C       testvec.Hex    `json:"c"`
			K       testvec.Hex    `json:"K"`
			Result  testvec.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// ML-KEM: the schema gives a key-generation seed (d|z), the expected
// encapsulation key, a ciphertext and the expected shared key, which
// covers the initiator's side: key generation, our KE data, and
// decapsulation including implicit rejection. Invalid vectors have a seed
// or a ciphertext of the wrong length. The responder's encapsulation has
// no vector here (crypto/mlkem draws its own randomness); each valid
// encapsulation key is instead put through Respond and decapsulated back.
func TestWycheproofMLKEM(t *testing.T) {
	for _, c := range []struct {
		file string
		id   proposal.KEID
	}{
		{"mlkem_768_test.json", proposal.KEMLKEM768},
		{"mlkem_1024_test.json", proposal.KEMLKEM1024},
	} {
		t.Run(c.id.String(), func(t *testing.T) {
			var f mlkemFile
			testvec.Wycheproof(t, c.file, &f)
			var keys, decaps, roundTrips, rejected int
			for _, g := range f.TestGroups {
				for _, tc := range g.Tests {
					x, err := mlkemFromSeed(c.id, tc.Seed)
					if err != nil {
						if tc.Result != testvec.Invalid {
							t.Errorf("tc %d (%s): %v", tc.TcID, tc.Comment, err)
						}
						rejected++
						continue
					}
					if tc.EK != nil {
						if !bytes.Equal(x.Public(), tc.EK) {
							t.Errorf("tc %d (%s): encapsulation key differs", tc.TcID, tc.Comment)
						}
						keys++
					}
					k, err := x.Shared(tc.C)
					switch {
					case tc.Result == testvec.Invalid && err == nil:
						t.Errorf("tc %d (%s): accepted", tc.TcID, tc.Comment)
					case tc.Result == testvec.Invalid:
						rejected++
						continue
					case err != nil:
						t.Errorf("tc %d (%s): %v", tc.TcID, tc.Comment, err)
						continue
					case !bytes.Equal(k, tc.K):
						t.Errorf("tc %d (%s): shared key %x, want %x", tc.TcID, tc.Comment, k, tc.K)
					default:
						decaps++
					}
					ct, shared, err := Respond(c.id, proposal.Policy{}, nil, x.Public())
					if err != nil {
						t.Errorf("tc %d: Respond: %v", tc.TcID, err)
						continue
					}
					if back, err := x.Shared(ct); err != nil || !bytes.Equal(back, shared) {
						t.Errorf("tc %d: encapsulate/decapsulate round trip failed: %v", tc.TcID, err)
					} else {
						roundTrips++
					}
				}
			}
			t.Logf("%s: %d encapsulation keys matched, %d shared keys matched, %d round trips, %d invalid rejected",
				c.id, keys, decaps, roundTrips, rejected)
			if decaps == 0 || rejected == 0 {
				t.Fatal("no vectors exercised")
			}
		})
	}
}
