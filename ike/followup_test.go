package ike_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/keymat"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// keyLog is a KeyHook that keeps every IKE and Child SA key it is given.
type keyLog struct {
	ike   []ike.IKEKeyInfo
	child []ike.ChildKeyInfo
}

func (k *keyLog) IKEKeys(i ike.IKEKeyInfo)     { k.ike = append(k.ike, i) }
func (k *keyLog) ChildKeys(c ike.ChildKeyInfo) { k.child = append(k.child, c) }

// ikeKeys returns the last keys reported for the IKE SA with these SPIs.
func (k *keyLog) ikeKeys(t *testing.T, spii, spir uint64) ike.IKEKeyInfo {
	t.Helper()
	for i := len(k.ike) - 1; i >= 0; i-- {
		if k.ike[i].SPIi == spii && k.ike[i].SPIr == spir {
			return k.ike[i]
		}
	}
	t.Fatalf("no keys for IKE SA %016x/%016x", spii, spir)
	return ike.IKEKeyInfo{}
}

// childKey returns the encryption key reported for one direction's SPI.
func (k *keyLog) childKey(t *testing.T, dir ike.Direction, spi uint32) []byte {
	t.Helper()
	for _, c := range k.child {
		if c.Dir == dir && c.SPI == spi {
			return c.EncKey
		}
	}
	t.Fatalf("no %v key for SPI %08x", dir, spi)
	return nil
}

// sameIKEKeys fails unless both sides derived the same keys for the IKE
// SA a and b describe.
func sameIKEKeys(t *testing.T, ka, kb *keyLog, a, b ike.IKESAStatus) {
	t.Helper()
	if a.SPIi != b.SPIi || a.SPIr != b.SPIr {
		t.Fatalf("different IKE SAs: %016x/%016x and %016x/%016x", a.SPIi, a.SPIr, b.SPIi, b.SPIr)
	}
	x, y := ka.ikeKeys(t, a.SPIi, a.SPIr), kb.ikeKeys(t, b.SPIi, b.SPIr)
	if !bytes.Equal(x.SKei, y.SKei) || !bytes.Equal(x.SKer, y.SKer) || !bytes.Equal(x.SKai, y.SKai) || !bytes.Equal(x.SKar, y.SKar) {
		t.Errorf("the peers derived different keys for IKE SA %016x/%016x", a.SPIi, a.SPIr)
	}
}

// countFollowups counts the IKE_FOLLOWUP_KE requests sent so far, first
// transmissions only.
func countFollowups(net *iketest.Network) int {
	seen := map[string]bool{}
	for _, d := range net.Sent {
		h, _, ok := d.IKE()
		if !ok || h.Exchange != message.ExchangeIKEFollowupKE || h.IsResponse() {
			continue
		}
		seen[fmt.Sprintf("%v/%016x/%d", d.From, h.SPIi, h.MessageID)] = true
	}
	return len(seen)
}

// addKEs counts a suite's additional key exchanges.
func addKEs(s proposal.Suite) int {
	n := 0
	for _, k := range s.AddKE {
		if k != proposal.KENone {
			n++
		}
	}
	return n
}

// noLeaks fails if a side holds SPIs no installed SA uses once all
// negotiations are over.
func (p *pair) noLeaks() {
	p.t.Helper()
	for _, n := range []*iketest.Node{p.a, p.b} {
		if u := n.Installer.Unused(); len(u) > 0 {
			p.t.Errorf("%v: SPIs reserved but unused: %08x", n.Addr, u)
		}
	}
}

func childOf(s ike.IKESAStatus) ike.ChildSAStatus {
	for _, c := range s.Children {
		if c.State == ike.ChildInstalled {
			return c
		}
	}
	return ike.ChildSAStatus{}
}

// TestFollowupKE rekeys IKE SAs and rekeys and creates Child SAs with
// additional key exchanges in IKE_FOLLOWUP_KE (RFC 9370 §2.2.4), from
// either side: the suites keep their ML-KEM, one IKE_FOLLOWUP_KE runs per
// additional key exchange, both sides derive the same keys, and traffic
// never breaks.
func TestFollowupKE(t *testing.T) {
	for _, c := range []struct{ ike, esp string }{
		{"aes256gcm16-prfsha384-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768"},
		{"aes256gcm16-prfsha384-ecp384-ke1_mlkem1024", "aes256gcm16-ecp384-ke1_mlkem1024"},
		{"aes128-sha256-x25519-ke1_mlkem768-ke2_mlkem1024", "aes128gcm16-x25519-ke1_mlkem768-ke2_mlkem1024"},
	} {
		for _, from := range []string{"A", "B"} {
			t.Run(c.esp+"/from"+from, func(t *testing.T) {
				ka, kb := &keyLog{}, &keyLog{}
				p := newPair(t, pairOpts{ikeProp: c.ike, espProp: c.esp, keysA: ka, keysB: kb})
				p.up(p.a, "gw", "net")
				n := p.a
				if from == "B" {
					n = p.b
				}
				wantIKE := mustParse(t, c.ike, proposal.ProtoIKE)[0].String()
				wantESP := strings.TrimSuffix(mustParse(t, c.esp, proposal.ProtoESP)[0].String(), "-noesn")
				adds := addKEs(p.established(p.a, 1).Suite)
				p.watchTraffic()

				// IKE SA rekey.
				before := countFollowups(p.net)
				if err := n.M.Rekey("gw", ""); err != nil {
					t.Fatal(err)
				}
				p.net.Settle(time.Minute)
				sa, sb := p.established(p.a, 1), p.established(p.b, 1)
				if sa.Proposal != wantIKE {
					t.Errorf("rekeyed IKE SA has %q, want %q", sa.Proposal, wantIKE)
				}
				if got := countFollowups(p.net) - before; got != adds {
					t.Errorf("IKE SA rekey: %d IKE_FOLLOWUP_KE exchanges, want %d", got, adds)
				}
				if sa.Initiator != (from == "A") {
					t.Errorf("A is initiator=%v of the rekeyed IKE SA", sa.Initiator)
				}
				sameIKEKeys(t, ka, kb, sa, sb)

				// Child SA rekey with PFS over the new IKE SA.
				before = countFollowups(p.net)
				old := childOf(sa)
				if err := n.M.Rekey("gw", "net"); err != nil {
					t.Fatal(err)
				}
				p.net.Settle(time.Minute)
				sa = p.established(p.a, 1)
				p.established(p.b, 1)
				ch := childOf(sa)
				if ch.SPIIn == old.SPIIn || ch.Proposal != wantESP {
					t.Errorf("rekeyed Child SA %08x with %q (was %08x), want %q", ch.SPIIn, ch.Proposal, old.SPIIn, wantESP)
				}
				if got := countFollowups(p.net) - before; got != addKEs(ch.Suite) || got == 0 {
					t.Errorf("Child SA rekey: %d IKE_FOLLOWUP_KE exchanges for %s", got, ch.Proposal)
				}
				if !bytes.Equal(ka.childKey(t, ike.DirOut, ch.SPIOut), kb.childKey(t, ike.DirIn, ch.SPIOut)) ||
					!bytes.Equal(ka.childKey(t, ike.DirIn, ch.SPIIn), kb.childKey(t, ike.DirOut, ch.SPIIn)) {
					t.Error("the peers derived different Child SA keys")
				}
				p.checkTraffic()
				checkOrder(t, p.ia)
				checkOrder(t, p.ib)

				// A new Child SA with PFS over the existing IKE SA.
				p.net.AfterDeliver = nil
				if err := n.M.DownChild("gw", "net", nil); err != nil {
					t.Fatal(err)
				}
				p.net.Settle(time.Minute)
				before = countFollowups(p.net)
				p.up(n, "gw", "net")
				if got := countFollowups(p.net) - before; got != addKEs(childOf(p.established(p.a, 1)).Suite) {
					t.Errorf("new Child SA: %d IKE_FOLLOWUP_KE exchanges", got)
				}
				if pr := childOf(p.established(p.b, 1)).Proposal; pr != wantESP {
					t.Errorf("new Child SA has %q, want %q", pr, wantESP)
				}
				p.checkTraffic()
				p.noLeaks()
				if s := p.b.M.Stats(); s.StateNotFoundSent+s.FollowupTimeouts != 0 {
					t.Errorf("B: %d STATE_NOT_FOUND, %d timeouts", s.StateNotFoundSent, s.FollowupTimeouts)
				}
			})
		}
	}
}

// TestFollowupKEKeys checks that the additional key exchanges enter the
// keys: two runs whose every random draw up to the rekey is the same, one
// rekeying with ML-KEM and one without. Nonces, SPIs and SK(0) are then
// equal, so only SK(1) can make the keys differ, and it must.
func TestFollowupKEKeys(t *testing.T) {
	t.Run("child", func(t *testing.T) {
		run := func(esp string) (ike.ChildSAStatus, []byte) {
			ka, kb := &keyLog{}, &keyLog{}
			p := newPair(t, pairOpts{espProp: esp, keysA: ka, keysB: kb})
			p.up(p.a, "gw", "net")
			if err := p.a.M.Rekey("gw", "net"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			ch := childOf(p.established(p.a, 1))
			p.checkTraffic()
			key := ka.childKey(t, ike.DirOut, ch.SPIOut)
			if !bytes.Equal(key, kb.childKey(t, ike.DirIn, ch.SPIOut)) {
				t.Errorf("%s: the peers derived different keys", esp)
			}
			return ch, key
		}
		with, kWith := run("aes128gcm16-x25519-ke1_mlkem768")
		without, kWithout := run("aes128gcm16-x25519")
		if with.SPIIn != without.SPIIn || with.SPIOut != without.SPIOut {
			t.Fatalf("the runs diverged before the rekey: SPIs %08x/%08x and %08x/%08x",
				with.SPIIn, with.SPIOut, without.SPIIn, without.SPIOut)
		}
		if addKEs(with.Suite) != 1 || addKEs(without.Suite) != 0 {
			t.Fatalf("negotiated %s and %s", with.Proposal, without.Proposal)
		}
		if bytes.Equal(kWith, kWithout) {
			t.Error("the ML-KEM secret did not change the Child SA's keys")
		}
	})
	t.Run("ike", func(t *testing.T) {
		// IKE_SA_INIT chooses by B's preference (no ML-KEM) in both runs;
		// B's rekey is answered by A's preference: ML-KEM in one run.
		run := func(propsA string) (ike.IKESAStatus, ike.IKEKeyInfo) {
			ka, kb := &keyLog{}, &keyLog{}
			p := newPair(t, pairOpts{keysA: ka, keysB: kb, tweak: func(a, b *ike.Config) {
				a.Connections[0].Proposals = mustParse(t, propsA, proposal.ProtoIKE)
				b.Connections[0].Proposals = mustParse(t, "aes128gcm16-prfsha256-x25519,aes128gcm16-prfsha256-x25519-ke1_mlkem768", proposal.ProtoIKE)
			}})
			p.up(p.a, "gw", "net")
			if s := p.established(p.a, 1); addKEs(s.Suite) != 0 {
				t.Fatalf("IKE_SA_INIT chose %s", s.Proposal)
			}
			if err := p.b.M.Rekey("gw", ""); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			sa, sb := p.established(p.a, 1), p.established(p.b, 1)
			sameIKEKeys(t, ka, kb, sa, sb)
			p.checkTraffic()
			return sa, ka.ikeKeys(t, sa.SPIi, sa.SPIr)
		}
		with, kWith := run("aes128gcm16-prfsha256-x25519-ke1_mlkem768,aes128gcm16-prfsha256-x25519")
		without, kWithout := run("aes128gcm16-prfsha256-x25519,aes128gcm16-prfsha256-x25519-ke1_mlkem768")
		if with.SPIi != without.SPIi || with.SPIr != without.SPIr {
			t.Fatalf("the runs diverged before the rekey")
		}
		if addKEs(with.Suite) != 1 || addKEs(without.Suite) != 0 {
			t.Fatalf("negotiated %s and %s", with.Proposal, without.Proposal)
		}
		if bytes.Equal(kWith.SKei, kWithout.SKei) || bytes.Equal(kWith.SKer, kWithout.SKer) {
			t.Error("the ML-KEM secret did not change the IKE SA's keys")
		}
	})
}

// dropFollowups drops the first n transmissions (every fragment of them)
// of the k-th (from 1) IKE_FOLLOWUP_KE request, or of the response to it.
func dropFollowups(p *pair, k int, response bool, n int) {
	type id struct {
		from  string
		spi   uint64
		msgID uint32
	}
	var order []id
	sent := 0
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		h, first, ok := d.IKE()
		if !ok || h.Exchange != message.ExchangeIKEFollowupKE || h.IsResponse() != response {
			return iketest.Deliver
		}
		this := id{d.From.String(), h.SPIi, h.MessageID}
		if len(order) == 0 || order[len(order)-1] != this {
			order = append(order, this)
			sent = 0
		}
		if first != message.PayloadSKF || fragmentNumber(d) == 1 {
			sent++
		}
		if len(order) == k && sent <= n {
			return iketest.Drop
		}
		return iketest.Deliver
	}
}

// fragmentNumber reads an SKF payload's Fragment Number (RFC 7383 §2.5).
func fragmentNumber(d *iketest.Datagram) int {
	b := d.Data
	if d.To.Port() == ike.PortNATT || d.From.Port() == ike.PortNATT {
		b = b[4:]
	}
	return int(binary.BigEndian.Uint16(b[message.HeaderLen+4:]))
}

// followupPair is a pair whose IKE and Child SAs use ML-KEM-768 as an
// additional key exchange.
func followupPair(t *testing.T, tweak func(a, b *ike.Config)) *pair {
	p := newPair(t, pairOpts{ikeProp: "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
		espProp: "aes256gcm16-x25519-ke1_mlkem768", tweak: tweak})
	p.up(p.a, "gw", "net")
	return p
}

// rekeyWhat runs a Child SA ("net") or IKE SA ("") rekey from A and lets
// it settle for the given virtual time.
func (p *pair) rekeyFromA(child string, settle time.Duration) {
	p.t.Helper()
	if err := p.a.M.Rekey("gw", child); err != nil {
		p.t.Fatal(err)
	}
	p.net.RunFor(settle)
}

// TestFollowupKELost loses an IKE_FOLLOWUP_KE request and, separately, a
// response: the request is retransmitted, the retransmission answered
// from the cache, and the rekey completes without breaking traffic.
func TestFollowupKELost(t *testing.T) {
	for _, child := range []string{"net", ""} {
		for _, response := range []bool{false, true} {
			t.Run(fmt.Sprintf("child=%q/response=%v", child, response), func(t *testing.T) {
				p := followupPair(t, nil)
				old := p.established(p.a, 1)
				p.watchTraffic()
				dropFollowups(p, 1, response, 1)
				p.rekeyFromA(child, time.Minute)
				s := p.established(p.a, 1)
				p.established(p.b, 1)
				if child == "" && (s.SPIi == old.SPIi || addKEs(s.Suite) != 1) {
					t.Errorf("IKE SA not rekeyed with ML-KEM: %s", describe(p.a.M.Status()))
				}
				if child != "" && (childOf(s).SPIIn == childOf(old).SPIIn || addKEs(childOf(s).Suite) != 1) {
					t.Errorf("Child SA not rekeyed with ML-KEM: %s", describe(p.a.M.Status()))
				}
				if n := p.a.M.Stats().Retransmits; n != 1 {
					t.Errorf("A retransmitted %d requests", n)
				}
				if n := p.b.M.Stats().ResponsesResent; response && n != 1 {
					t.Errorf("B resent %d cached responses", n)
				}
				p.checkTraffic()
				p.noLeaks()
			})
		}
	}
}

// TestFollowupKEStateNotFound: the first IKE_FOLLOWUP_KE request is lost
// until the responder has forgotten the sequence (HalfOpenTimeout, RFC
// 9370 §2.2.4); its next retransmission gets STATE_NOT_FOUND, the
// initiator gives the sequence up and tries the rekey again, which works.
func TestFollowupKEStateNotFound(t *testing.T) {
	for _, child := range []string{"net", ""} {
		t.Run(fmt.Sprintf("child=%q", child), func(t *testing.T) {
			p := followupPair(t, func(a, b *ike.Config) {
				a.Connections[0].RekeyTime = time.Hour
				a.Connections[0].Children[0].RekeyTime = time.Hour
			})
			old := p.established(p.a, 1)
			p.watchTraffic()
			// Sent at 0, 4, 11.2 and 24.16 s; the next one, at 47.5 s,
			// comes after B's 30 s.
			dropFollowups(p, 1, false, 4)
			p.rekeyFromA(child, 2*time.Minute)
			sa, sb := p.a.M.Stats(), p.b.M.Stats()
			if sb.FollowupTimeouts != 1 || sb.StateNotFoundSent != 1 {
				t.Errorf("B: %d timeouts, %d STATE_NOT_FOUND", sb.FollowupTimeouts, sb.StateNotFoundSent)
			}
			if n := sa.ErrorNotifies[message.NotifyStateNotFound]; n != 1 {
				t.Errorf("A received %d STATE_NOT_FOUND", n)
			}
			s := p.established(p.a, 1)
			p.established(p.b, 1)
			if child == "" && (s.SPIi == old.SPIi || addKEs(s.Suite) != 1) {
				t.Errorf("IKE SA not rekeyed on the second try: %s", describe(p.a.M.Status()))
			}
			if child != "" && childOf(s).SPIIn == childOf(old).SPIIn {
				t.Errorf("Child SA not rekeyed on the second try: %s", describe(p.a.M.Status()))
			}
			p.checkTraffic()
			p.noLeaks()
		})
	}
}

// TestFollowupKEStateNotFoundFatal: when every try ends in
// STATE_NOT_FOUND, the initiator deletes the IKE SA (RFC 9370 §2.2.4).
func TestFollowupKEStateNotFoundFatal(t *testing.T) {
	p := followupPair(t, nil)
	// Each IKE_FOLLOWUP_KE request is lost four times.
	seen := map[string]int{}
	p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
		h, first, ok := d.IKE()
		if ok && h.Exchange == message.ExchangeIKEFollowupKE && !h.IsResponse() {
			k := fmt.Sprintf("%016x/%d", h.SPIi, h.MessageID)
			if first != message.PayloadSKF || fragmentNumber(d) == 1 {
				seen[k]++
			}
			if seen[k] <= 4 {
				return iketest.Drop
			}
		}
		return iketest.Deliver
	}
	p.rekeyFromA("net", 10*time.Minute)
	if n := p.a.M.Stats().ErrorNotifies[message.NotifyStateNotFound]; n != 3 {
		t.Errorf("A received %d STATE_NOT_FOUND", n)
	}
	if st := p.a.M.Status(); len(st) != 0 {
		t.Errorf("A keeps %s", describe(st))
	}
	if st := p.b.M.Status(); len(st) != 0 {
		t.Errorf("B keeps %s", describe(st))
	}
	p.noLeaks()
}

// TestFollowupKEPeerDeletes: while A's rekey runs its additional key
// exchanges, B deletes the Child SA being rekeyed, or the whole IKE SA, or
// A itself deletes the IKE SA. Nothing half-made survives on either side.
func TestFollowupKEPeerDeletes(t *testing.T) {
	for _, c := range []struct {
		name         string
		child, other string // what A rekeys, what B deletes
		self         bool   // A deletes instead
	}{
		{"child/child", "net", "net", false},
		{"child/ike", "net", "", false},
		{"ike/ike", "", "", false},
		{"child/own-ike", "net", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := followupPair(t, nil)
			if err := p.a.M.Rekey("gw", c.child); err != nil {
				t.Fatal(err)
			}
			if !p.net.RunUntil(time.Minute, func() bool { return countFollowups(p.net) > 0 }) {
				t.Fatal("no IKE_FOLLOWUP_KE")
			}
			var err error
			switch {
			case c.self:
				err = p.a.M.Down("gw", nil)
			case c.other == "":
				err = p.b.M.Down("gw", nil)
			default:
				err = p.b.M.DownChild("gw", c.other, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.net.RunFor(5 * time.Minute)
			if c.other == "" {
				if st := p.a.M.Status(); len(st) != 0 {
					t.Errorf("A keeps %s", describe(st))
				}
				if st := p.b.M.Status(); len(st) != 0 {
					t.Errorf("B keeps %s", describe(st))
				}
			} else {
				p.established(p.a, 0)
				p.established(p.b, 0)
			}
			for _, n := range []*iketest.Node{p.a, p.b} {
				if in, out := n.Installer.Count(); in+out != 0 {
					t.Errorf("%v keeps %d/%d SAs", n.Addr, in, out)
				}
			}
			p.noLeaks()
		})
	}
}

// TestFollowupKECollision rekeys the same SA from both sides at once with
// additional key exchanges, with delays that vary which side sees what
// first. The nonces decide before either new SA exists; exactly one
// survives and traffic flows throughout.
func TestFollowupKECollision(t *testing.T) {
	for _, child := range []string{"net", ""} {
		for seed := range 8 {
			t.Run(fmt.Sprintf("child=%q/%d", child, seed), func(t *testing.T) {
				p := followupPair(t, nil)
				p.watchTraffic()
				n := 0
				p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
					n++
					d.At = d.At.Add(time.Duration((n*7+seed*13)%11) * time.Millisecond)
					return iketest.Deliver
				}
				if err := p.a.M.Rekey("gw", child); err != nil {
					t.Fatal(err)
				}
				if err := p.b.M.Rekey("gw", child); err != nil {
					t.Fatal(err)
				}
				p.net.Settle(time.Minute)
				p.net.RunFor(5 * time.Minute)
				sa, sb := p.established(p.a, 1), p.established(p.b, 1)
				if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
					t.Fatalf("different IKE SAs: %s / %s", describe(p.a.M.Status()), describe(p.b.M.Status()))
				}
				if st := p.a.M.Status(); len(st) != 1 {
					t.Errorf("A holds %d IKE SAs: %s", len(st), describe(st))
				}
				ca, cb := childOf(sa), childOf(sb)
				if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
					t.Fatalf("children do not pair: %s / %s", describe(p.a.M.Status()), describe(p.b.M.Status()))
				}
				if child != "" && addKEs(ca.Suite) != 1 {
					t.Errorf("surviving Child SA is %s", ca.Proposal)
				}
				if in, out := p.ia.Count(); in != 1 || out != 1 {
					t.Errorf("A holds %d/%d SAs", in, out)
				}
				if in, out := p.ib.Count(); in != 1 || out != 1 {
					t.Errorf("B holds %d/%d SAs", in, out)
				}
				p.checkTraffic()
				p.noLeaks()
				// Still usable.
				p.rekeyFromA("net", time.Minute)
				p.established(p.a, 1)
				p.established(p.b, 1)
				p.checkTraffic()
			})
		}
	}
}

// TestFollowupKEFallback: a peer without additional key exchanges (as
// strongSwan 5.9) picks the proposal without them (RFC 9370 §2.2.1), and
// a proposal whose ADDKE transforms include NONE is acceptable to it.
func TestFollowupKEFallback(t *testing.T) {
	t.Run("second-proposal", func(t *testing.T) {
		p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
			a.Connections[0].Proposals = mustParse(t, "aes256gcm16-prfsha384-x25519-ke1_mlkem768,aes256gcm16-prfsha384-x25519", proposal.ProtoIKE)
			a.Connections[0].Children[0].Proposals = mustParse(t, "aes256gcm16-x25519-ke1_mlkem768,aes256gcm16-x25519", proposal.ProtoESP)
			b.Connections[0].Proposals = mustParse(t, "aes256gcm16-prfsha384-x25519", proposal.ProtoIKE)
			b.Connections[0].Children[0].Proposals = mustParse(t, "aes256gcm16-x25519", proposal.ProtoESP)
		}})
		p.up(p.a, "gw", "net")
		p.watchTraffic()
		for _, n := range []*iketest.Node{p.a, p.b} {
			for _, child := range []string{"", "net"} {
				if err := n.M.Rekey("gw", child); err != nil {
					t.Fatal(err)
				}
				p.net.Settle(time.Minute)
			}
		}
		s := p.established(p.a, 1)
		p.established(p.b, 1)
		if addKEs(s.Suite) != 0 || addKEs(childOf(s).Suite) != 0 || childOf(s).Suite.KE != proposal.KEX25519 {
			t.Errorf("negotiated %s and %s", s.Proposal, childOf(s).Proposal)
		}
		if n := countFollowups(p.net); n != 0 {
			t.Errorf("%d IKE_FOLLOWUP_KE exchanges", n)
		}
		p.checkTraffic()
	})
	t.Run("none", func(t *testing.T) {
		for _, bProp := range []string{"aes256gcm16-x25519", "aes256gcm16-x25519-ke1_mlkem768"} {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
				props := mustParse(t, "aes256gcm16-x25519-ke1_mlkem768", proposal.ProtoESP)
				props[0].AddKE[0] = append(props[0].AddKE[0], proposal.KENone)
				a.Connections[0].Children[0].Proposals = props
				b.Connections[0].Children[0].Proposals = mustParse(t, bProp, proposal.ProtoESP)
			}})
			p.up(p.a, "gw", "net")
			p.rekeyFromA("net", time.Minute)
			ch := childOf(p.established(p.a, 1))
			want := 0
			if strings.Contains(bProp, "mlkem") {
				want = 1
			}
			if addKEs(ch.Suite) != want || countFollowups(p.net) != want {
				t.Errorf("B with %s: negotiated %s after %d IKE_FOLLOWUP_KE", bProp, ch.Proposal, countFollowups(p.net))
			}
			p.checkTraffic()
		}
	})
}

// TestFollowupKEUnknownLink: IKE_FOLLOWUP_KE requests naming no sequence
// (a forgotten or made-up link, or none) get STATE_NOT_FOUND, an error
// that leaves the IKE SA alone.
func TestFollowupKEUnknownLink(t *testing.T) {
	keys := &keyLog{}
	p := newPair(t, pairOpts{keysA: keys})
	p.up(p.a, "gw", "net")
	st := p.a.M.Status()[0]
	k := keys.ikeKeys(t, st.SPIi, st.SPIr)
	out, err := keymat.NewCipher(st.Suite, k.SKei, k.SKai, iketest.Rand(3))
	if err != nil {
		t.Fatal(err)
	}
	ke := &message.KE{Group: proposal.KEMLKEM768, Data: make([]byte, 1184)}
	for i, payloads := range [][]message.Payload{
		{ke, &message.Notify{Type: message.NotifyAdditionalKeyExchange, Data: []byte{0, 0, 0, 0, 0, 0, 0, 42}}},
		{ke},
	} {
		inner, err := (&message.Message{Payloads: payloads}).EncodePlain(nil)
		if err != nil {
			t.Fatal(err)
		}
		msg := sealRaw(st.SPIi, st.SPIr, message.ExchangeIKEFollowupKE, uint32(2+i), message.PayloadType(inner[16]), inner[message.HeaderLen:], out)
		p.b.M.HandlePacket(msg, netip.AddrPortFrom(addrB, ike.PortIKE), netip.AddrPortFrom(addrA, ike.PortIKE))
	}
	p.net.Settle(time.Minute)
	if n := p.b.M.Stats().StateNotFoundSent; n != 2 {
		t.Errorf("B sent %d STATE_NOT_FOUND", n)
	}
	var answers int
	for _, d := range p.net.Sent {
		if h, _, ok := d.IKE(); ok && d.From.Addr() == addrB && h.Exchange == message.ExchangeIKEFollowupKE && h.IsResponse() {
			answers++
		}
	}
	if answers != 2 {
		t.Errorf("B sent %d IKE_FOLLOWUP_KE responses", answers)
	}
	// The injected requests took Message IDs A will use, so only B's
	// view counts: the IKE SA and its Child SA are intact.
	p.established(p.b, 1)
	p.noLeaks()
}
