package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed corpora in testdata/fuzz from the samples and the shared capture")

func fuzzCipher(gcm bool) Cipher {
	if gcm {
		return testGCM()
	}
	return testCBC()
}

// mustParseError fails unless err is nil or a *ParseError.
func mustParseError(t *testing.T, err error) *ParseError {
	t.Helper()
	if err == nil {
		return nil
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is a %T, not a *ParseError", err, err)
	}
	if pe.Reason == 0 || int(pe.Reason) >= NumReasons {
		t.Fatalf("error %v has reason %d", err, pe.Reason)
	}
	return pe
}

// roundTrip checks Decode(Encode(m)) == m for a decoded message, protected
// with c if it came protected, and for unprotected messages that encoding
// is then stable.
func roundTrip(t *testing.T, m *Message, c Cipher) {
	t.Helper()
	if !m.Encrypted {
		c = nil
	}
	enc, err := m.Encode(nil, c)
	if err != nil {
		t.Fatalf("a decoded message does not encode: %v\n%v", err, m)
	}
	m2, err := Decode(enc, c)
	if err != nil {
		t.Fatalf("an encoded message does not decode: %v\n%v", err, m)
	}
	sameMessage(t, m, m2)
	if c == nil {
		enc2, err := m2.Encode(nil, nil)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v)", err)
		}
	}
}

// FuzzDecode feeds arbitrary datagrams to Decode, without keys and with the
// fixed test cipher (seeds sealed with it reach the inner payloads).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := ParseHeader(data); err != nil {
			mustParseError(t, err)
		}
		m, err := Decode(data, nil)
		if mustParseError(t, err) == nil {
			if m.Encrypted {
				t.Fatal("a message decoded without keys says Encrypted")
			}
			roundTrip(t, m, nil)
		}
		c := testCBC()
		m, err = Decode(data, c)
		if mustParseError(t, err) == nil {
			roundTrip(t, m, c)
		}
	})
}

// FuzzDecodeSK seals arbitrary plaintext (inner payloads, padding, Pad
// Length; data[0] is the first inner payload type) with a fixed test
// cipher, so that every input passes the ICV and exercises what lies
// behind it.
func FuzzDecodeSK(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, gcm bool) {
		if len(data) == 0 || len(data) > 60000 {
			return
		}
		c := fuzzCipher(gcm)
		first, plain := PayloadType(data[0]), bytes.Clone(data[1:])
		if bs := c.BlockSize(); len(plain) == 0 || len(plain)%bs != 0 {
			plain = append(plain, make([]byte, bs-len(plain)%bs)...) // zeros: Pad Length 0
		}
		msg := sealRaw(authHeader(), first, plain, c)
		m, err := Decode(msg, c)
		if pe := mustParseError(t, err); pe != nil {
			if !pe.Authenticated {
				t.Fatalf("error in a message sealed with the right keys is not Authenticated: %v", pe)
			}
			return
		}
		if !m.Encrypted || m.Header != authHeader() {
			t.Fatalf("decoded %+v", m.Header)
		}
		roundTrip(t, m, c)
	})
}

// Reassembly script record, for FuzzReassemble:
//
//	0..1 Fragment Number, 2..3 Total Fragments, 4 Next Payload,
//	5 control (frag*), 6 content length L, then L octets of content
const (
	fragResponse = 1 << 0 // R flag
	fragMsgIDs   = 3 << 1 // Message ID 0..3
	fragTamper   = 1 << 3 // flip an ICV bit: must be refused
	fragTick     = 1 << 4 // advance the clock 11 s and Expire first
	fragVerbatim = 1 << 5 // content is the whole datagram, unsealed
)

type fragRecord struct {
	num, total uint16
	next       PayloadType
	ctrl       byte
	content    []byte
}

func appendFragRecord(b []byte, r fragRecord) []byte {
	b = binary.BigEndian.AppendUint16(b, r.num)
	b = binary.BigEndian.AppendUint16(b, r.total)
	return append(append(b, byte(r.next), r.ctrl, byte(len(r.content))), r.content...)
}

// FuzzReassemble runs a script of fragments through a small Reassembler:
// any order, duplicates, forged and expired fragments, several messages.
func FuzzReassemble(f *testing.F) {
	f.Fuzz(func(t *testing.T, script []byte, gcm bool) {
		c := fuzzCipher(gcm)
		limits := ReassemblyLimits{MaxFragments: 8, MaxSize: 600, MaxMessages: 2, Timeout: 10 * time.Second}
		r := NewReassembler(limits)
		now := time.Unix(0, 0)
		for len(script) >= 7 {
			rec := fragRecord{num: binary.BigEndian.Uint16(script), total: binary.BigEndian.Uint16(script[2:]),
				next: PayloadType(script[4]), ctrl: script[5]}
			n := min(int(script[6]), len(script)-7)
			rec.content, script = script[7:7+n], script[7+n:]

			if rec.ctrl&fragTick != 0 {
				now = now.Add(11 * time.Second)
				r.Expire(now)
				if r.Pending() != 0 {
					t.Fatalf("%d messages survived their timeout", r.Pending())
				}
			}
			h := authHeader()
			h.MessageID = uint32(rec.ctrl&fragMsgIDs) >> 1
			if rec.ctrl&fragResponse != 0 {
				h.Flags = FlagResponse
			}
			msg := rec.content
			if rec.ctrl&fragVerbatim == 0 {
				var fixed [skfFixedLen]byte
				binary.BigEndian.PutUint16(fixed[skfFragNum:], rec.num)
				binary.BigEndian.PutUint16(fixed[skfTotal:], rec.total)
				var err error
				if msg, err = appendProtected(nil, h, PayloadSKF, rec.next, fixed[:], rec.content, c); err != nil {
					t.Fatal(err)
				}
				if rec.ctrl&fragTamper != 0 {
					msg[len(msg)-1] ^= 0x10
				}
			}
			m, err := r.Add(msg, c, now)
			pe := mustParseError(t, err)
			if rec.ctrl&(fragTamper|fragVerbatim) == fragTamper && pe == nil {
				t.Fatal("a forged fragment was accepted")
			}
			if r.Pending() > limits.MaxMessages {
				t.Fatalf("%d messages pending, limit %d", r.Pending(), limits.MaxMessages)
			}
			if m != nil {
				if !m.Encrypted {
					t.Fatal("a reassembled message is not Encrypted")
				}
				if plain, err := m.EncodePlain(nil); err != nil || len(plain)-HeaderLen > limits.MaxSize {
					t.Fatalf("reassembled %d octets past the %d limit (%v)", len(plain)-HeaderLen, limits.MaxSize, err)
				}
				roundTrip(t, m, c)
			}
		}
	})
}

// Seed corpora. The files under testdata/fuzz are generated by
//
//	go test ./ike/message -run TestFuzzSeeds -update-fuzz-seeds
//
// from the sample messages and, where present, the plaintext IKE_SA_INIT
// messages of the shared strongSwan capture; TestFuzzSeeds checks they are
// current.

type fuzzSeed struct {
	target, name string
	args         []any // []byte and bool, in the target's order
}

func corpusFile(args []any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("corpus value %T", a))
		}
	}
	return b.Bytes()
}

// skSeed is FuzzDecodeSK's input for an inner payload chain: the first
// type, the chain, minimal padding and the Pad Length.
func skSeed(first PayloadType, chain []byte, bs int) []byte {
	pad := padLength(len(chain), bs)
	return cat([]byte{byte(first)}, chain, make([]byte, pad), []byte{byte(pad)})
}

// reassemblySeeds scripts the fragments of an inner chain split into room
// octets each: in order, shuffled with a duplicate, and with a forged
// fragment and a refragmented retransmission.
func reassemblySeeds(first PayloadType, chain []byte, room int) [][]byte {
	var recs []fragRecord
	total := (len(chain) + room - 1) / room
	for i := 0; i < total; i++ {
		next := PayloadNone
		if i == 0 {
			next = first
		}
		recs = append(recs, fragRecord{num: uint16(i + 1), total: uint16(total), next: next,
			content: chain[i*room : min((i+1)*room, len(chain))]})
	}
	script := func(rs ...fragRecord) []byte {
		var b []byte
		for _, r := range rs {
			b = appendFragRecord(b, r)
		}
		return b
	}
	inOrder := script(recs...)
	var shuffled []fragRecord
	for i := len(recs) - 1; i >= 0; i-- {
		shuffled = append(shuffled, recs[i])
		if i == len(recs)/2 {
			shuffled = append(shuffled, recs[i])
		}
	}
	forged := recs[0]
	forged.ctrl = fragTamper
	other := recs[len(recs)-1]
	other.ctrl = fragResponse | 1<<1
	late := recs[0]
	late.ctrl = fragTick
	return [][]byte{inOrder, script(shuffled...), script(append([]fragRecord{forged, other, late}, recs[1:]...)...)}
}

func builtSeeds(t testing.TB) []fuzzSeed {
	var seeds []fuzzSeed
	for _, s := range samples(t) {
		plain, err := s.m.EncodePlain(nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := s.m.Encode(nil, testCBC())
		if err != nil {
			t.Fatal(err)
		}
		chain, first := plain[HeaderLen:], firstType(s.m.Payloads)
		seeds = append(seeds,
			fuzzSeed{"FuzzDecode", "sample-" + s.name, []any{plain}},
			fuzzSeed{"FuzzDecode", "sample-sk-" + s.name, []any{sealed}},
			fuzzSeed{"FuzzDecodeSK", "sample-cbc-" + s.name, []any{skSeed(first, chain, testCBC().BlockSize()), false}},
			fuzzSeed{"FuzzDecodeSK", "sample-gcm-" + s.name, []any{skSeed(first, chain, 1), true}},
		)
		if len(chain) > 0 && len(chain) < 2000 {
			for i, sc := range reassemblySeeds(first, chain, 200) {
				seeds = append(seeds, fuzzSeed{"FuzzReassemble", fmt.Sprintf("sample-%s-%d", s.name, i), []any{sc, i%2 == 1}})
			}
		}
	}
	frags, err := samples(t)[1].m.EncodeFragments(testCBC(), 300)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, fuzzSeed{"FuzzDecode", "sample-skf", []any{frags[0]}})
	return seeds
}

func captureSeeds(t testing.TB) []fuzzSeed {
	c := loadCapture(t)
	var seeds []fuzzSeed
	for i, name := range []string{"ike-sa-init-request", "ike-sa-init-response"} {
		msg := c.msgs[i]
		chain, first := msg[HeaderLen:], PayloadType(msg[hdrNext])
		seeds = append(seeds,
			fuzzSeed{"FuzzDecode", "capture-" + name, []any{msg}},
			fuzzSeed{"FuzzDecodeSK", "capture-" + name, []any{skSeed(first, chain, 16), false}},
			fuzzSeed{"FuzzReassemble", "capture-" + name, []any{reassemblySeeds(first, chain, 90)[1], true}},
		)
	}
	return seeds
}

func checkSeeds(t *testing.T, seeds []fuzzSeed) {
	for _, s := range seeds {
		path := filepath.Join("testdata", "fuzz", s.target, s.name)
		want := corpusFile(s.args)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is missing or stale (%v); run with -update-fuzz-seeds", path, err)
		}
	}
}

func TestFuzzSeeds(t *testing.T) {
	t.Run("built", func(t *testing.T) { checkSeeds(t, builtSeeds(t)) })
	t.Run("capture", func(t *testing.T) { checkSeeds(t, captureSeeds(t)) })
}
