package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Keys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() map[string]Signer {
	m := map[string]Signer{}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	m["rsa"] = rk
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	m["ed25519"] = ek
	return m
})

var octets = []byte("RealMessage1 | NonceRData | MACedIDForI")

func TestSignVerifyEveryMethod(t *testing.T) {
	keys := testKeys()
	sha1OK := Policy{AllowSHA1: true}
	pkcs1 := Policy{RSAPKCS1v15: true}
	for _, c := range []struct {
		name   string
		key    string
		m      message.AuthMethod
		h      HashAlgorithm
		pol    Policy
		sigLen int // 0: do not check
	}{
		{"RSA method 1", "rsa", message.AuthRSASignature, HashSHA1, sha1OK, 256},
		{"ECDSA-256 method 9", "p256", message.AuthECDSAP256SHA256, 0, Policy{}, 64},
		{"ECDSA-384 method 10", "p384", message.AuthECDSAP384SHA384, 0, Policy{}, 96},
		{"ECDSA-521 method 11", "p521", message.AuthECDSAP521SHA512, 0, Policy{}, 132},
		{"RSA-PSS SHA-256", "rsa", message.AuthDigitalSignature, HashSHA256, Policy{}, 0},
		{"RSA-PSS SHA-384", "rsa", message.AuthDigitalSignature, HashSHA384, Policy{}, 0},
		{"RSA-PSS SHA-512", "rsa", message.AuthDigitalSignature, HashSHA512, Policy{}, 0},
		{"RSA PKCS#1 SHA-256", "rsa", message.AuthDigitalSignature, HashSHA256, pkcs1, 0},
		{"RSA PKCS#1 SHA-384", "rsa", message.AuthDigitalSignature, HashSHA384, pkcs1, 0},
		{"RSA PKCS#1 SHA-512", "rsa", message.AuthDigitalSignature, HashSHA512, pkcs1, 0},
		{"RSA PKCS#1 SHA-1", "rsa", message.AuthDigitalSignature, HashSHA1, Policy{AllowSHA1: true, RSAPKCS1v15: true}, 0},
		{"ECDSA P-256 SHA-256", "p256", message.AuthDigitalSignature, HashSHA256, Policy{}, 0},
		{"ECDSA P-256 SHA-512", "p256", message.AuthDigitalSignature, HashSHA512, Policy{}, 0},
		{"ECDSA P-384 SHA-384", "p384", message.AuthDigitalSignature, HashSHA384, Policy{}, 0},
		{"ECDSA P-521 SHA-512", "p521", message.AuthDigitalSignature, HashSHA512, Policy{}, 0},
		{"Ed25519", "ed25519", message.AuthDigitalSignature, HashIdentity, Policy{}, 1 + 7 + 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := keys[c.key]
			data, err := Sign(rand.Reader, key, c.m, c.h, octets, c.pol)
			if err != nil {
				t.Fatal(err)
			}
			if c.sigLen != 0 && len(data) != c.sigLen {
				t.Errorf("AUTH data of %d octets, want %d", len(data), c.sigLen)
			}
			if err := Verify(key.Public(), c.m, data, octets, c.pol); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// A different message, a flipped signature octet, another key.
			if err := Verify(key.Public(), c.m, data, append([]byte("x"), octets...), c.pol); !errors.Is(err, ErrAuthFailed) {
				t.Errorf("other octets: %v", err)
			}
			bad := bytes.Clone(data)
			bad[len(bad)-1] ^= 1
			if err := Verify(key.Public(), c.m, bad, octets, c.pol); err == nil {
				t.Error("modified signature verified")
			}
			for name, other := range keys {
				if name == c.key {
					continue
				}
				if err := Verify(other.Public(), c.m, data, octets, c.pol); err == nil {
					t.Errorf("verified with the %s key", name)
				}
			}
			if c.m == message.AuthDigitalSignature {
				alg, sig, err := message.SplitDigitalSignature(data)
				if err != nil {
					t.Fatal(err)
				}
				a, err := parseSigAlg(alg)
				if err != nil {
					t.Fatal(err)
				}
				if hashID(a.hash) != c.h && !(c.h == HashIdentity && a.scheme == schemeEd25519) {
					t.Errorf("AlgorithmIdentifier names hash %v, want %s", a.hash, c.h)
				}
				if c.key == "rsa" && (a.scheme == schemeRSAPKCS1) != c.pol.RSAPKCS1v15 {
					t.Errorf("RSA scheme %d with RSAPKCS1v15=%v", a.scheme, c.pol.RSAPKCS1v15)
				}
				if len(sig) == 0 {
					t.Error("empty signature")
				}
			}
		})
	}
}

func TestSHA1NeedsPolicy(t *testing.T) {
	keys := testKeys()
	rk := keys["rsa"]
	if _, err := Sign(rand.Reader, rk, message.AuthRSASignature, HashSHA1, octets, Policy{}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("method 1 signed without AllowSHA1: %v", err)
	}
	data, _ := Sign(rand.Reader, rk, message.AuthRSASignature, HashSHA1, octets, Policy{AllowSHA1: true})
	if err := Verify(rk.Public(), message.AuthRSASignature, data, octets, Policy{}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("method 1 verified without AllowSHA1: %v", err)
	}
	for _, key := range []string{"rsa", "p256"} {
		if _, err := Sign(rand.Reader, keys[key], message.AuthDigitalSignature, HashSHA1, octets, Policy{}); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: SHA-1 digital signature made without AllowSHA1: %v", key, err)
		}
		data, err := Sign(rand.Reader, keys[key], message.AuthDigitalSignature, HashSHA1, octets, Policy{AllowSHA1: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(keys[key].Public(), message.AuthDigitalSignature, data, octets, Policy{}); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: SHA-1 digital signature accepted without AllowSHA1: %v", key, err)
		}
	}
}

func TestSignRefusesMismatchedKeys(t *testing.T) {
	keys := testKeys()
	for _, c := range []struct {
		key string
		m   message.AuthMethod
		h   HashAlgorithm
	}{
		{"p256", message.AuthECDSAP384SHA384, 0},
		{"rsa", message.AuthECDSAP256SHA256, 0},
		{"p256", message.AuthRSASignature, HashSHA1},
		{"ed25519", message.AuthDigitalSignature, HashSHA256},
		{"p256", message.AuthDigitalSignature, HashIdentity},
		{"rsa", message.AuthDigitalSignature, 99},
		{"rsa", message.AuthSharedKey, 0},
		{"rsa", message.AuthDSSSignature, 0},
	} {
		if _, err := Sign(rand.Reader, keys[c.key], c.m, c.h, octets, Policy{AllowSHA1: true}); err == nil {
			t.Errorf("%s key signed method %s hash %s", c.key, c.m, c.h)
		}
	}
	if err := Verify(keys["rsa"].Public(), message.AuthNull, nil, octets, Policy{AllowNull: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify of a NULL payload: %v", err)
	}
	// ECDSA methods want exactly r|s of the curve's size.
	data, _ := Sign(rand.Reader, keys["p256"], message.AuthECDSAP256SHA256, 0, octets, Policy{})
	if err := Verify(keys["p256"].Public(), message.AuthECDSAP256SHA256, append(data, 0), octets, Policy{}); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("65-octet r|s: %v", err)
	}
}

func TestHashAlgorithmsNotify(t *testing.T) {
	// strongSwan's N(HASH_ALG) in the captured IKE_SA_INIT.
	got, err := ParseHashAlgorithms([]byte{0, 2, 0, 3, 0, 4, 0, 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}
	if len(got) != 4 || got[0] != want[0] || got[3] != want[3] {
		t.Errorf("parsed %v", got)
	}
	if b := AppendHashAlgorithms(nil, SupportedHashes(Policy{})); !bytes.Equal(b, []byte{0, 2, 0, 3, 0, 4, 0, 5}) {
		t.Errorf("we announce %x", b)
	}
	if b := AppendHashAlgorithms(nil, SupportedHashes(Policy{AllowSHA1: true})); !bytes.Equal(b[:2], []byte{0, 1}) {
		t.Errorf("SHA-1 not announced when allowed: %x", b)
	}
	if _, err := ParseHashAlgorithms([]byte{0, 2, 0}); err == nil {
		t.Error("odd length accepted")
	}
	if hs, err := ParseHashAlgorithms(nil); err != nil || len(hs) != 0 {
		t.Error("empty list")
	}
}

func TestChooseMethod(t *testing.T) {
	keys := testKeys()
	all := []HashAlgorithm{HashSHA1, HashSHA256, HashSHA384, HashSHA512, HashIdentity}
	for _, c := range []struct {
		key   string
		peer  []HashAlgorithm
		pol   Policy
		m     message.AuthMethod
		h     HashAlgorithm
		fails bool
	}{
		{"p256", all, Policy{}, message.AuthDigitalSignature, HashSHA256, false},
		{"p384", all, Policy{}, message.AuthDigitalSignature, HashSHA384, false},
		{"p521", all, Policy{}, message.AuthDigitalSignature, HashSHA512, false},
		{"p384", []HashAlgorithm{HashSHA256}, Policy{}, message.AuthDigitalSignature, HashSHA256, false},
		{"rsa", all, Policy{}, message.AuthDigitalSignature, HashSHA256, false},
		{"ed25519", all, Policy{}, message.AuthDigitalSignature, HashIdentity, false},
		{"p256", nil, Policy{}, message.AuthECDSAP256SHA256, HashSHA256, false},
		{"p521", []HashAlgorithm{HashIdentity}, Policy{}, message.AuthECDSAP521SHA512, HashSHA512, false},
		{"rsa", nil, Policy{AllowSHA1: true}, message.AuthRSASignature, HashSHA1, false},
		{"rsa", []HashAlgorithm{HashSHA1}, Policy{AllowSHA1: true}, message.AuthDigitalSignature, HashSHA1, false},
		{"rsa", []HashAlgorithm{HashSHA1, 77}, Policy{}, 0, 0, true},
		{"rsa", nil, Policy{}, 0, 0, true},
		{"ed25519", []HashAlgorithm{HashSHA256}, Policy{}, 0, 0, true},
	} {
		m, h, err := ChooseMethod(keys[c.key].Public(), c.peer, c.pol)
		if c.fails {
			if err == nil {
				t.Errorf("%s with peer %v: chose %s/%s", c.key, c.peer, m, h)
			}
			continue
		}
		if err != nil || m != c.m || h != c.h {
			t.Errorf("%s with peer %v: %s/%s %v, want %s/%s", c.key, c.peer, m, h, err, c.m, c.h)
			continue
		}
		// Whatever is chosen must sign and verify.
		data, err := Sign(rand.Reader, keys[c.key], m, h, octets, c.pol)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(keys[c.key].Public(), m, data, octets, c.pol); err != nil {
			t.Errorf("%s: chosen method does not verify: %v", c.key, err)
		}
	}
}

func TestSharedKeyAndNull(t *testing.T) {
	prf, _ := keymat.NewPRF(proposal.PRFHMACSHA256)
	psk := []byte("a long pre-shared key")
	data, err := SharedKeyData(prf, psk, octets)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySharedKey(prf, psk, octets, data); err != nil {
		t.Error(err)
	}
	if err := VerifySharedKey(prf, []byte("another key"), octets, data); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong PSK: %v", err)
	}
	if err := VerifySharedKey(prf, psk, octets, data[:31]); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("short AUTH: %v", err)
	}
	if _, err := SharedKeyData(prf, nil, octets); err == nil {
		t.Error("empty PSK accepted")
	}

	s := proposal.Suite{Protocol: proposal.ProtoIKE, Encr: proposal.Encr{ID: proposal.EncrAESGCM16, KeyBits: 128},
		PRF: proposal.PRFHMACSHA256, KE: proposal.KEX25519}
	n := bytes.Repeat([]byte{7}, 32)
	k, err := keymat.DeriveIKE(s, n, n, n, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NullData(k, true, octets, Policy{}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("NULL auth without AllowNull: %v", err)
	}
	allow := Policy{AllowNull: true}
	di, _ := NullData(k, true, octets, allow)
	dr, _ := NullData(k, false, octets, allow)
	if !bytes.Equal(di, keymat.SharedKeyAuth(k.PRF, k.SKpi, octets)) || !bytes.Equal(dr, keymat.SharedKeyAuth(k.PRF, k.SKpr, octets)) {
		t.Error("NULL AUTH is not the shared-key computation with SK_pi / SK_pr")
	}
	if err := VerifyNull(k, true, octets, di, allow); err != nil {
		t.Error(err)
	}
	if err := VerifyNull(k, false, octets, di, allow); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("initiator's NULL AUTH accepted as the responder's: %v", err)
	}
	if err := VerifyNull(k, true, octets, di, Policy{}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("NULL accepted without AllowNull: %v", err)
	}
}

func FuzzVerifyDigitalSignature(f *testing.F) {
	keys := testKeys()
	for _, c := range []struct {
		key string
		h   HashAlgorithm
	}{{"rsa", HashSHA256}, {"p256", HashSHA256}, {"ed25519", HashIdentity}} {
		data, err := Sign(rand.Reader, keys[c.key], message.AuthDigitalSignature, c.h, octets, Policy{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), data)
	}
	pubs := []crypto.PublicKey{keys["rsa"].Public(), keys["p256"].Public(), keys["ed25519"].Public(), keys["p521"].Public()}
	methods := []message.AuthMethod{message.AuthDigitalSignature, message.AuthECDSAP256SHA256, message.AuthECDSAP521SHA512, message.AuthRSASignature}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		pub := pubs[int(which)%len(pubs)]
		m := methods[int(which/4)%len(methods)]
		// No key here ever signed these octets, so nothing may verify,
		// and malformed data must fail without a panic.
		if err := Verify(pub, m, data, []byte("fuzzed octets"), Policy{AllowSHA1: true}); err == nil {
			t.Fatalf("forged AUTH data verified: %x", data)
		}
	})
}

func BenchmarkSignVerify(b *testing.B) {
	keys := testKeys()
	for _, c := range []struct {
		name string
		key  string
		m    message.AuthMethod
		h    HashAlgorithm
	}{
		{"ECDSA-P256-method9", "p256", message.AuthECDSAP256SHA256, 0},
		{"ECDSA-P384-DS", "p384", message.AuthDigitalSignature, HashSHA384},
		{"Ed25519-DS", "ed25519", message.AuthDigitalSignature, HashIdentity},
		{"RSA2048-PSS-DS", "rsa", message.AuthDigitalSignature, HashSHA256},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				data, err := Sign(rand.Reader, keys[c.key], c.m, c.h, octets, Policy{})
				if err != nil {
					b.Fatal(err)
				}
				if err := Verify(keys[c.key].Public(), c.m, data, octets, Policy{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseHashAlgorithms(f *testing.F) {
	f.Add([]byte{0, 2, 0, 3, 0, 4, 0, 5})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseHashAlgorithms(data)
		if err != nil {
			if len(data)%2 == 0 {
				t.Fatalf("even-length data refused: %v", err)
			}
			return
		}
		if !bytes.Equal(AppendHashAlgorithms(nil, hs), data) {
			t.Fatal("does not round-trip")
		}
	})
}
