package hw

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// cbcVector is one AES-CBC known answer.
type cbcVector struct {
	name           string
	key, iv        []byte
	plain, ciphert []byte
}

// The AES-CBC known answers: RFC 3602 §4 cases 1 to 4 (AES-128, one to
// four blocks) and NIST SP 800-38A F.2.3 and F.2.5 (AES-192, AES-256).
var cbcVectors = []cbcVector{
	{"RFC 3602 case 1", unhex("06a9214036b8a15b512e03d534120006"), unhex("3dafba429d9eb430b422da802c9fac41"),
		[]byte("Single block msg"), unhex("e353779c1079aeb82708942dbe77181a")},
	{"RFC 3602 case 2", unhex("c286696d887c9aa0611bbb3e2025a45a"), unhex("562e17996d093d28ddb3ba695a2e6f58"),
		unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
		unhex("d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1")},
	{"RFC 3602 case 3", unhex("6c3ea0477630ce21a2ce334aa746c2cd"), unhex("c782dc4c098c66cbd9cd27d825682c81"),
		[]byte("This is a 48-byte message (exactly 3 AES blocks)"),
		unhex("d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684")},
	{"RFC 3602 case 4", unhex("56e47a38c5598974bc46903dba290349"), unhex("8ce82eefbea0da3c44699ed7db51b7d9"),
		unhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"),
		unhex("c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55")},
	{"SP 800-38A F.2.3", unhex("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b"), unhex("000102030405060708090a0b0c0d0e0f"),
		sp80038aPlain, unhex("4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd")},
	{"SP 800-38A F.2.5", unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"), unhex("000102030405060708090a0b0c0d0e0f"),
		sp80038aPlain, unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b")},
}

var sp80038aPlain = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")

// macVector is one HMAC-SHA-256 known answer; sum may be truncated.
type macVector struct {
	name      string
	key, data []byte
	sum       []byte
}

// The HMAC-SHA-256 known answers: RFC 4231 §4.2-4.8 (keys of 4 to 131
// octets, case 5 truncated to 128 bits) and RFC 4868 §2.7.1 (32-octet
// keys, the length AUTH_HMAC_SHA2_256_128 uses).
var macVectors = []macVector{
	{"RFC 4231 case 1", bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
		unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")},
	{"RFC 4231 case 2", []byte("Jefe"), []byte("what do ya want for nothing?"),
		unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")},
	{"RFC 4231 case 3", bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50),
		unhex("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")},
	{"RFC 4231 case 4", unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), bytes.Repeat([]byte{0xcd}, 50),
		unhex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")},
	{"RFC 4231 case 5", bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"),
		unhex("a3b6167473100ee06e0c796c2955552b")},
	{"RFC 4231 case 6", bytes.Repeat([]byte{0xaa}, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
		unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")},
	{"RFC 4231 case 7", bytes.Repeat([]byte{0xaa}, 131),
		[]byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
		unhex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")},
	{"RFC 4868 AUTH256-1", bytes.Repeat([]byte{0x0b}, 32), []byte("Hi There"),
		unhex("198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7")},
	{"RFC 4868 AUTH256-2", []byte("JefeJefeJefeJefeJefeJefeJefeJefe"), []byte("what do ya want for nothing?"),
		unhex("167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6")},
	{"RFC 4868 AUTH256-3", bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xdd}, 50),
		unhex("cdcb1220d1ecccea91e53aba3092f962e549fe6ce9ed7fdc43191fbde45c30b0")},
	{"RFC 4868 AUTH256-4", unhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"), bytes.Repeat([]byte{0xcd}, 50),
		unhex("372efcf9b40b35c2115b1346903d2ef42fced46f0846e7257bb156d3d7b30d3f")},
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("crypto/hw: bad test vector " + s)
	}
	return b
}

// packetLen is the size of the self-test's packet-sized operations: an
// ESP payload from a 1500-octet MTU, whole AES blocks.
const packetLen = 1504

// SelfTest checks e against known answers before it carries traffic, and
// returns the first failure (for an Absent engine, why it is absent):
//
//   - e offers at least ESPMinimum;
//   - AES-CBC: RFC 3602 §4 cases 1-4 and, for the key sizes Caps claims,
//     NIST SP 800-38A F.2.3 (AES-192) and F.2.5 (AES-256), each
//     encrypted and decrypted both in place and into a separate buffer,
//     with the source and IV left as they were; all keys are live at
//     once and used twice in opposite orders, so an engine that caches
//     keys (the DCP has four slots for five keys here) must swap them;
//   - a key size Caps does not claim is refused with errors.ErrUnsupported;
//   - HMAC-SHA-256: RFC 4231 §4.2-4.8 and RFC 4868 §2.7.1, in full and
//     truncated to the 16 octets of AUTH_HMAC_SHA2_256_128, and Verify
//     accepts the right MAC and rejects it with the first or last bit
//     flipped;
//   - one packet-sized buffer through both, compared with Go's crypto;
//   - Random, when claimed: two 32-octet draws that differ and are not
//     all zero (a stuck generator; no test can show randomness).
func SelfTest(e Engine) error {
	if a, ok := e.(absent); ok {
		return a.err
	}
	caps := e.Caps()
	if !caps.Has(ESPMinimum) {
		return fmt.Errorf("offers %s, needs at least %s", caps, ESPMinimum)
	}
	if err := selfTestCBC(e, caps); err != nil {
		return err
	}
	if err := selfTestMAC(e); err != nil {
		return err
	}
	if err := selfTestPacket(e); err != nil {
		return err
	}
	if caps.Has(Random) {
		return selfTestRandom(e)
	}
	return nil
}

func selfTestCBC(e Engine, caps Caps) error {
	type live struct {
		v   *cbcVector
		cbc CBC
	}
	var all []live
	for i := range cbcVectors {
		v := &cbcVectors[i]
		c, err := e.NewAESCBC(v.key)
		if !caps.AESKey(len(v.key)) {
			if !errors.Is(err, errors.ErrUnsupported) {
				return fmt.Errorf("AES-%d-CBC is not in its caps, but a key was not refused as unsupported (err %v)", 8*len(v.key), err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: new AES-CBC: %w", v.name, err)
		}
		all = append(all, live{v, c})
	}
	for pass := range 2 {
		for i := range all {
			l := all[i]
			if pass == 1 {
				l = all[len(all)-1-i]
			}
			if err := checkCBCVector(l.cbc, l.v); err != nil {
				return fmt.Errorf("%s: %w", l.v.name, err)
			}
		}
	}
	return nil
}

// checkCBCVector runs one vector four ways.
func checkCBCVector(c CBC, v *cbcVector) error {
	iv := bytes.Clone(v.iv)
	for _, inPlace := range []bool{false, true} {
		how := "into a separate buffer"
		if inPlace {
			how = "in place"
		}
		for _, enc := range []bool{true, false} {
			src, want, op, f := v.plain, v.ciphert, "encrypt", c.Encrypt
			if !enc {
				src, want, op, f = v.ciphert, v.plain, "decrypt", c.Decrypt
			}
			in := bytes.Clone(src)
			dst := in
			if !inPlace {
				dst = make([]byte, len(in))
			}
			if err := f(dst, in, iv); err != nil {
				return fmt.Errorf("%s %s: %w", op, how, err)
			}
			if !bytes.Equal(dst, want) {
				return fmt.Errorf("%s %s: wrong output", op, how)
			}
			if !inPlace && !bytes.Equal(in, src) {
				return fmt.Errorf("%s %s: changed its source", op, how)
			}
			if !bytes.Equal(iv, v.iv) {
				return fmt.Errorf("%s %s: changed the IV", op, how)
			}
		}
	}
	return nil
}

func selfTestMAC(e Engine) error {
	for i := range macVectors {
		v := &macVectors[i]
		m, err := e.NewHMACSHA256(v.key)
		if err != nil {
			return fmt.Errorf("%s: new HMAC-SHA-256: %w", v.name, err)
		}
		if err := checkMACVector(m, v.data, v.sum); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	return nil
}

// checkMACVector checks Sum at full and ICV length and Verify both ways.
func checkMACVector(m MAC, data, sum []byte) error {
	for _, n := range []int{len(sum), MinVerify} {
		out := make([]byte, n)
		if err := m.Sum(out, data); err != nil {
			return fmt.Errorf("sum of %d octets: %w", n, err)
		}
		if !bytes.Equal(out, sum[:n]) {
			return fmt.Errorf("sum of %d octets: wrong output", n)
		}
		ok, err := m.Verify(sum[:n], data)
		if err != nil {
			return fmt.Errorf("verify %d octets: %w", n, err)
		}
		if !ok {
			return fmt.Errorf("verify %d octets: rejected the right MAC", n)
		}
		for _, flip := range []struct {
			at  int
			bit byte
		}{{0, 0x80}, {n - 1, 0x01}} {
			bad := bytes.Clone(sum[:n])
			bad[flip.at] ^= flip.bit
			ok, err := m.Verify(bad, data)
			if err != nil {
				return fmt.Errorf("verify %d octets: %w", n, err)
			}
			if ok {
				return fmt.Errorf("verify %d octets: accepted a wrong MAC", n)
			}
		}
	}
	return nil
}

// selfTestPacket runs a packet-sized buffer through a fresh key of each
// kind and compares with Go's crypto, which the known answers above pin.
func selfTestPacket(e Engine) error {
	key := make([]byte, 16)
	iv := make([]byte, BlockSize)
	data := make([]byte, packetLen)
	for i := range key {
		key[i] = byte(0xf0 + i)
		iv[i] = byte(0x30 + i)
	}
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	c, err := e.NewAESCBC(key)
	if err != nil {
		return fmt.Errorf("packet: new AES-CBC: %w", err)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	want := make([]byte, len(data))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, data)
	got := bytes.Clone(data)
	if err := c.Encrypt(got, got, iv); err != nil {
		return fmt.Errorf("packet: encrypt %d octets: %w", len(got), err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("packet: encrypt %d octets: wrong output", len(got))
	}
	if err := c.Decrypt(got, got, iv); err != nil {
		return fmt.Errorf("packet: decrypt %d octets: %w", len(got), err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("packet: decrypt %d octets: wrong output", len(got))
	}

	m, err := e.NewHMACSHA256(key)
	if err != nil {
		return fmt.Errorf("packet: new HMAC-SHA-256: %w", err)
	}
	h := hmac.New(sha256.New, key)
	h.Write(data)
	if err := checkMACVector(m, data, h.Sum(nil)); err != nil {
		return fmt.Errorf("packet: HMAC of %d octets: %w", len(data), err)
	}
	return nil
}

func selfTestRandom(e Engine) error {
	var a, b [32]byte
	if err := e.Random(a[:]); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	if err := e.Random(b[:]); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	if a == b {
		return errors.New("random: two draws are equal")
	}
	if a == [32]byte{} || b == [32]byte{} {
		return errors.New("random: a draw is all zero")
	}
	return nil
}
