package message

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFragmentSize(t *testing.T) {
	cases := []struct {
		mtu        int
		ipv6, natT bool
		want       int
	}{
		{0, false, false, 576 - 20 - 8},
		{0, false, true, 576 - 20 - 8 - 4},
		{0, true, false, 1280 - 40 - 8},
		{0, true, true, 1280 - 40 - 8 - 4},
		{1500, false, true, 1500 - 20 - 8 - 4},
		{1500, true, false, 1500 - 40 - 8},
	}
	for _, c := range cases {
		if got := FragmentSize(c.mtu, c.ipv6, c.natT); got != c.want {
			t.Errorf("FragmentSize(%d, %v, %v) = %d, want %d", c.mtu, c.ipv6, c.natT, got, c.want)
		}
	}
}

// bigAuth is an IKE_AUTH request that needs several fragments.
func bigAuth(t testing.TB) *Message {
	m := *samples(t)[1].m
	m.Payloads = append([]Payload(nil), m.Payloads...)
	m.Payloads[1] = &Cert{Encoding: CertX509Signature, Data: seq(3000, 0)}
	return &m
}

func fragmentsOf(t testing.TB, m *Message, c Cipher, size int) [][]byte {
	t.Helper()
	frags, err := m.EncodeFragments(c, size)
	if err != nil {
		t.Fatal(err)
	}
	return frags
}

func TestEncodeFragments(t *testing.T) {
	for _, c := range []Cipher{testCBC(), testGCM()} {
		m := bigAuth(t)
		size := FragmentSize(0, false, true)
		frags := fragmentsOf(t, m, c, size)
		plain, _ := m.EncodePlain(nil)
		if len(frags) < (len(plain)-HeaderLen)/size+1 {
			t.Errorf("%T: %d fragments for %d octets", c, len(frags), len(plain))
		}
		for i, f := range frags {
			h, first, err := ParseHeader(f)
			if err != nil || h != m.Header || first != PayloadSKF {
				t.Fatalf("fragment %d header: %+v %v %v", i+1, h, first, err)
			}
			if len(f) > size {
				t.Errorf("%T: fragment %d is %d octets, more than %d", c, i+1, len(f), size)
			}
			if i < len(frags)-1 && len(f) < size-c.BlockSize() {
				t.Errorf("%T: fragment %d is %d octets, wasting room below %d", c, i+1, len(f), size)
			}
			next := PayloadType(f[HeaderLen+genNext])
			num := binary.BigEndian.Uint16(f[HeaderLen+genericLen+skfFragNum:])
			total := binary.BigEndian.Uint16(f[HeaderLen+genericLen+skfTotal:])
			if int(num) != i+1 || int(total) != len(frags) {
				t.Errorf("fragment %d says %d of %d", i+1, num, total)
			}
			// RFC 7383 §2.5: fragment 1 names the first inner payload, the others 0.
			if (i == 0 && next != PayloadIDi) || (i > 0 && next != PayloadNone) {
				t.Errorf("fragment %d: Next Payload %v", i+1, next)
			}
		}
		got := reassemble(t, NewReassembler(ReassemblyLimits{}), c, frags)
		want := *m
		want.Encrypted = true
		sameMessage(t, &want, got)
		if got.Raw() != nil {
			t.Error("a reassembled message has Raw octets")
		}
	}
}

// reassemble feeds frags in order and expects the message with the last.
func reassemble(t testing.TB, r *Reassembler, c Cipher, frags [][]byte) *Message {
	t.Helper()
	now := time.Unix(1000, 0)
	for i, f := range frags {
		m, err := r.Add(f, c, now)
		if err != nil {
			t.Fatalf("fragment %d: %v", i+1, err)
		}
		if (m != nil) != (i == len(frags)-1) {
			t.Fatalf("fragment %d of %d completed: %v", i+1, len(frags), m != nil)
		}
		if m != nil {
			if r.Pending() != 0 {
				t.Errorf("%d messages still pending", r.Pending())
			}
			return m
		}
	}
	return nil
}

func TestReassembleAnyOrderWithDuplicates(t *testing.T) {
	c := testCBC()
	m := bigAuth(t)
	frags := fragmentsOf(t, m, c, 300)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		order := rng.Perm(len(frags))
		// every fragment once, plus duplicates of a few, before the last new one
		feed := append([]int(nil), order[:len(order)-1]...)
		for k := 0; k < 5; k++ {
			feed = append(feed, order[rng.IntN(len(order)-1)])
		}
		feed = append(feed, order[len(order)-1])
		r := NewReassembler(ReassemblyLimits{})
		var got *Message
		for i, idx := range feed {
			out, err := r.Add(frags[idx], c, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if out != nil && i != len(feed)-1 {
				t.Fatalf("trial %d completed early at %d of %d", trial, i, len(feed))
			}
			got = out
		}
		if got == nil {
			t.Fatalf("trial %d did not complete", trial)
		}
		want := *m
		want.Encrypted = true
		sameMessage(t, &want, got)
	}
}

func TestReassemblerRefusals(t *testing.T) {
	c := testCBC()
	m := bigAuth(t)
	frags := fragmentsOf(t, m, c, 500)
	now := time.Unix(0, 0)

	t.Run("tampered fragment changes nothing", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		bad := bytes.Clone(frags[1])
		bad[len(bad)-1] ^= 1
		if _, err := r.Add(bad, c, now); parseErr(t, err).Reason != ReasonIntegrity {
			t.Fatalf("tampered: %v", err)
		}
		if r.Pending() != 0 {
			t.Error("a forged fragment created state")
		}
		reassemble(t, r, c, frags)
	})
	t.Run("numbering", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		for _, nt := range [][2]uint16{{0, 3}, {4, 3}, {1, 0}} {
			bad := bytes.Clone(frags[0])
			binary.BigEndian.PutUint16(bad[HeaderLen+genericLen+skfFragNum:], nt[0])
			binary.BigEndian.PutUint16(bad[HeaderLen+genericLen+skfTotal:], nt[1])
			if _, err := r.Add(bad, c, now); parseErr(t, err).Reason != ReasonFragment {
				t.Errorf("fragment %d of %d: %v", nt[0], nt[1], err)
			}
		}
	})
	t.Run("too many fragments", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxFragments: len(frags) - 1})
		if _, err := r.Add(frags[0], c, now); parseErr(t, err).Reason != ReasonFragmentLimit {
			t.Errorf("%v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxSize: 1000})
		var err error
		for _, f := range frags {
			if _, err = r.Add(f, c, now); err != nil {
				break
			}
		}
		if parseErr(t, err).Reason != ReasonFragmentLimit || r.Pending() != 0 {
			t.Errorf("%v, %d pending", err, r.Pending())
		}
	})
	t.Run("too many messages", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxMessages: 2})
		for id := uint32(1); id <= 3; id++ {
			mm := *m
			mm.MessageID = id
			_, err := r.Add(fragmentsOf(t, &mm, c, 500)[0], c, now)
			if id < 3 && err != nil {
				t.Fatal(err)
			}
			if id == 3 && parseErr(t, err).Reason != ReasonFragmentLimit {
				t.Errorf("third message: %v", err)
			}
		}
	})
	t.Run("header changes between fragments", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		if _, err := r.Add(frags[0], c, now); err != nil {
			t.Fatal(err)
		}
		mm := *m
		mm.Exchange = ExchangeInformational
		if _, err := r.Add(fragmentsOf(t, &mm, c, 500)[1], c, now); parseErr(t, err).Reason != ReasonFragment {
			t.Errorf("%v", err)
		}
	})
	t.Run("not a fragment", func(t *testing.T) {
		b, _ := m.Encode(nil, c)
		if _, err := NewReassembler(ReassemblyLimits{}).Add(b, c, now); parseErr(t, err).Reason != ReasonPlacement {
			t.Errorf("%v", err)
		}
		if _, err := Decode(frags[0], c); parseErr(t, err).Reason != ReasonPlacement {
			t.Errorf("Decode of a fragment: %v", err)
		}
		if _, err := NewReassembler(ReassemblyLimits{}).Add(frags[0], nil, now); parseErr(t, err).Reason != ReasonNoCipher {
			t.Errorf("no cipher: %v", err)
		}
	})
	t.Run("too small to fragment", func(t *testing.T) {
		if _, err := m.EncodeFragments(c, HeaderLen+genericLen+skfFixedLen+16+16+15); err == nil {
			t.Error("no room for content, yet fragmented")
		}
		if _, err := m.EncodeFragments(nil, 500); err == nil {
			t.Error("fragmented without a cipher")
		}
	})
}

// RFC 7383 §2.6: a retransmission split into more fragments restarts
// reassembly; fragments of a split into fewer are dropped.
func TestReassembleRefragmented(t *testing.T) {
	c := testGCM()
	m := bigAuth(t)
	coarse := fragmentsOf(t, m, c, 1200)
	fine := fragmentsOf(t, m, c, 500)
	if len(fine) <= len(coarse) {
		t.Fatalf("%d fine, %d coarse fragments", len(fine), len(coarse))
	}
	now := time.Unix(0, 0)
	r := NewReassembler(ReassemblyLimits{})
	if _, err := r.Add(coarse[0], c, now); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(fine[1], c, now); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(coarse[1], c, now); parseErr(t, err).Reason != ReasonFragmentStale {
		t.Errorf("coarse fragment after fine: %v", err)
	}
	var got *Message
	for i, f := range fine {
		if i == 1 {
			continue
		}
		out, err := r.Add(f, c, now)
		if err != nil {
			t.Fatal(err)
		}
		got = out
	}
	if got == nil {
		t.Fatal("fine fragmentation did not complete")
	}
	want := *m
	want.Encrypted = true
	sameMessage(t, &want, got)
}

func TestReassemblerSeparatesDirectionsAndExpires(t *testing.T) {
	c := testCBC()
	req := bigAuth(t)
	resp := *req
	resp.Flags = FlagResponse
	reqFrags := fragmentsOf(t, req, c, 800)
	respFrags := fragmentsOf(t, &resp, c, 800)
	t0 := time.Unix(100, 0)
	r := NewReassembler(ReassemblyLimits{Timeout: 10 * time.Second})
	for _, f := range [][]byte{reqFrags[0], respFrags[0]} {
		if _, err := r.Add(f, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	if r.Pending() != 2 {
		t.Fatalf("request and response with one Message ID share state: %d pending", r.Pending())
	}
	if n := r.Expire(t0.Add(10 * time.Second)); n != 0 || r.Pending() != 2 {
		t.Errorf("expired %d at the timeout", n)
	}
	if n := r.Expire(t0.Add(10*time.Second + 1)); n != 2 || r.Pending() != 0 {
		t.Errorf("expired %d after the timeout, %d pending", n, r.Pending())
	}
	// After expiry the message reassembles from scratch.
	got := reassemble(t, r, c, respFrags)
	if !got.IsResponse() {
		t.Error("reassembled response lost its R flag")
	}
}

func TestSingleAndEmptyFragments(t *testing.T) {
	c := testCBC()
	for _, m := range []*Message{samples(t)[4].m, samples(t)[3].m} {
		frags := fragmentsOf(t, m, c, 1000)
		if len(frags) != 1 {
			t.Fatalf("%d fragments", len(frags))
		}
		got := reassemble(t, NewReassembler(ReassemblyLimits{}), c, frags)
		want := *m
		want.Encrypted = true
		sameMessage(t, &want, got)
	}
}
