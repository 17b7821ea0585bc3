package ike_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// fuzzRecords splits fuzz input into datagrams: a flags octet (bit 0: to
// the NAT-T port), a 2-octet length, the data.
func fuzzRecords(b []byte) (out []struct {
	natt bool
	data []byte
}) {
	for len(b) >= 3 && len(out) < 16 {
		n := int(binary.BigEndian.Uint16(b[1:]))
		rec := struct {
			natt bool
			data []byte
		}{natt: b[0]&1 == 1}
		b = b[3:]
		n = min(n, len(b))
		rec.data, b = b[:n], b[n:]
		out = append(out, rec)
	}
	return out
}

func fuzzRecord(natt bool, data []byte) []byte {
	flag := byte(0)
	if natt {
		flag = 1
	}
	out := []byte{flag, 0, 0}
	binary.BigEndian.PutUint16(out[1:], uint16(len(data)))
	return append(out, data...)
}

// fuzzPair is an established pair whose SPIs and keys are the same on
// every run (seeded randomness, manual clock), so seeds taken from one
// session keep naming live SAs.
func fuzzPair(t testing.TB) *pair {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		for _, c := range []*ike.Config{a, b} {
			c.Connections[0].DPDDelay = 30 * time.Second
			c.Pools = []*ike.Pool{{Name: "p", First: netip.MustParseAddr("10.9.0.1"), Last: netip.MustParseAddr("10.9.0.9")}}
			c.Connections[0].Pools = []string{"p"}
		}
	}})
	p.up(p.a, "gw", "net")
	return p
}

// FuzzHandlePacket feeds arbitrary datagrams to a Manager that holds an
// established IKE SA and answers IKE_SA_INIT: nothing may panic, every
// refusal is counted, and the state machine never takes a transition it
// does not allow.
func FuzzHandlePacket(f *testing.F) {
	f.Add(fuzzRecord(false, []byte{}))
	f.Fuzz(func(t *testing.T, in []byte) {
		p := fuzzPair(t)
		b := p.b.M
		for _, r := range fuzzRecords(in) {
			local, remote := netip.AddrPortFrom(addrB, ike.PortIKE), netip.AddrPortFrom(addrA, ike.PortIKE)
			if r.natt {
				local, remote = netip.AddrPortFrom(addrB, ike.PortNATT), netip.AddrPortFrom(addrA, ike.PortNATT)
			}
			b.HandlePacket(r.data, local, remote)
		}
		p.net.RunFor(3 * time.Minute)
		if s := b.Stats(); s.InvalidTransitions != 0 {
			t.Fatalf("%d invalid transitions", s.InvalidTransitions)
		}
	})
}

// FuzzProtectedRequest sends arbitrary payload chains inside a correctly
// protected request on the established IKE SA, so the fuzzer reaches the
// responders of CREATE_CHILD_SA, INFORMATIONAL and IKE_AUTH past the ICV.
// The first input octet picks the exchange, the second the first payload
// type.
func FuzzProtectedRequest(f *testing.F) {
	f.Add([]byte{37, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		keys := &keyRecorder{}
		p := newPair(t, pairOpts{keysA: keys})
		p.up(p.a, "gw", "net")
		st := p.a.M.Status()[0]
		k := keys.last()
		out, err := keymat.NewCipher(st.Suite, k.SKei, k.SKai, iketest.Rand(3))
		if err != nil {
			t.Fatal(err)
		}
		// A's requests so far: IKE_AUTH (1); the next is 2.
		exch := []message.ExchangeType{message.ExchangeCreateChildSA, message.ExchangeInformational,
			message.ExchangeIKEAuth, message.ExchangeIKEIntermediate, message.ExchangeIKEFollowupKE}[int(in[0])%5]
		msg := sealRaw(st.SPIi, st.SPIr, exch, 2, message.PayloadType(in[1]), in[2:], out)
		p.b.M.HandlePacket(msg, netip.AddrPortFrom(addrB, ike.PortIKE), netip.AddrPortFrom(addrA, ike.PortIKE))
		p.net.RunFor(5 * time.Minute)
		if s := p.b.M.Stats(); s.InvalidTransitions != 0 {
			t.Fatalf("%d invalid transitions", s.InvalidTransitions)
		}
	})
}

// sealRaw builds a protected request around inner payload octets, as
// the codec would (RFC 7296 §3.14), with an AEAD cipher (no padding).
func sealRaw(spii, spir uint64, exch message.ExchangeType, id uint32, first message.PayloadType, inner []byte, c message.Cipher) []byte {
	plain := append(append([]byte(nil), inner...), 0) // Pad Length 0
	total := message.HeaderLen + 4 + c.IVSize() + len(plain) + c.ICVSize()
	b := make([]byte, message.HeaderLen+4, total)
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	b[16], b[17], b[18], b[19] = byte(message.PayloadSK), 0x20, byte(exch), byte(message.FlagInitiator)
	binary.BigEndian.PutUint32(b[20:], id)
	binary.BigEndian.PutUint32(b[24:], uint32(total))
	b[28] = byte(first)
	binary.BigEndian.PutUint16(b[30:], uint16(total-message.HeaderLen))
	iv := make([]byte, c.IVSize())
	c.NextIV(iv)
	aad := b[:message.HeaderLen+4]
	b = append(b, iv...)
	return c.Seal(b, iv, plain, aad)
}

// keyRecorder is a KeyHook that keeps IKE keys.
type keyRecorder struct{ ike []ike.IKEKeyInfo }

func (k *keyRecorder) IKEKeys(i ike.IKEKeyInfo)   { k.ike = append(k.ike, i) }
func (k *keyRecorder) ChildKeys(ike.ChildKeyInfo) {}
func (k *keyRecorder) last() ike.IKEKeyInfo       { return k.ike[len(k.ike)-1] }

// TestWriteFuzzSeeds writes the seed corpora from a real session (every
// datagram B received) when IKE_WRITE_SEEDS is set; they are committed in
// testdata/fuzz.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("IKE_WRITE_SEEDS") == "" {
		t.Skip("set IKE_WRITE_SEEDS=1 to regenerate the seed corpora")
	}
	p := fuzzPair(t)
	p.a.M.Rekey("gw", "net")
	p.net.Settle(time.Minute)
	p.a.M.Rekey("gw", "")
	p.net.Settle(time.Minute)
	p.net.RunFor(2 * time.Minute)
	p.a.M.Down("gw", nil)
	p.net.Settle(time.Minute)
	dir := filepath.Join("testdata", "fuzz", "FuzzHandlePacket")
	os.MkdirAll(dir, 0o755)
	var all []byte
	i := 0
	for _, d := range p.net.Sent {
		if d.To.Addr() != addrB {
			continue
		}
		data := d.Data
		natt := d.To.Port() == ike.PortNATT
		rec := fuzzRecord(natt, data)
		all = append(all, rec...)
		writeSeed(t, dir, fmt.Sprintf("session-%02d", i), rec)
		i++
	}
	writeSeed(t, dir, "session-all", all)
	// Protected requests: a delete, a liveness check, a CREATE_CHILD_SA.
	dir = filepath.Join("testdata", "fuzz", "FuzzProtectedRequest")
	os.MkdirAll(dir, 0o755)
	del := &message.Delete{Protocol: proposal.ProtoESP, SPIs: []uint32{0xb0000001}}
	for name, m := range map[string]*message.Message{
		"delete-esp": {Payloads: []message.Payload{del}},
		"delete-ike": {Payloads: []message.Payload{&message.Delete{Protocol: proposal.ProtoIKE}}},
		"create-child": {Payloads: []message.Payload{
			&message.SA{Proposals: []message.Proposal{message.ProposalFrom(1, []byte{1, 2, 3, 4}, mustParse(t, "aes128gcm16", proposal.ProtoESP)[0])}},
			&message.Nonce{Data: make([]byte, 32)},
			&message.TSi{Selectors: []message.Selector{message.SelectorFromPrefix(netA)}},
			&message.TSr{Selectors: []message.Selector{message.SelectorFromPrefix(netB)}}}},
		"rekey-ike": {Payloads: []message.Payload{
			&message.SA{Proposals: []message.Proposal{message.ProposalFrom(1, []byte{1, 2, 3, 4, 5, 6, 7, 8}, mustParse(t, "aes128gcm16-prfsha256-x25519", proposal.ProtoIKE)[0])}},
			&message.Nonce{Data: make([]byte, 32)},
			&message.KE{Group: proposal.KEX25519, Data: make([]byte, 32)}}},
		"followup-ke": {Payloads: []message.Payload{
			&message.KE{Group: proposal.KEMLKEM768, Data: make([]byte, 1184)},
			&message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: []byte{0, 0, 0, 0, 0, 0, 0, 1}}}},
	} {
		plain, err := m.EncodePlain(nil)
		if err != nil {
			t.Fatal(err)
		}
		exch := byte(1) // INFORMATIONAL
		switch name {
		case "create-child", "rekey-ike":
			exch = 0
		case "followup-ke":
			exch = 4
		}
		writeSeed(t, dir, name, append([]byte{exch, plain[16]}, plain[message.HeaderLen:]...))
	}
}

func writeSeed(t *testing.T, dir, name string, data []byte) {
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
