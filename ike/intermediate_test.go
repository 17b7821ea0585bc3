package ike_test

import (
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestMLKEM runs additional key exchanges (RFC 9370) in IKE_INTERMEDIATE
// (RFC 9242) between two Managers; ML-KEM-1024's key does not fit one
// datagram at the default MTU and goes in fragments.
func TestMLKEM(t *testing.T) {
	for _, prop := range []string{
		"aes256gcm16-prfsha384-x25519-ke1_mlkem768",
		"aes256gcm16-prfsha384-ecp384-ke1_mlkem1024",
		"aes128-sha256-x25519-ke1_mlkem768-ke2_mlkem1024",
	} {
		t.Run(prop, func(t *testing.T) {
			p := newPair(t, pairOpts{ikeProp: prop})
			intermediates := 0
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeIKEIntermediate && !h.IsResponse() {
					intermediates++
				}
				return iketest.Deliver
			}
			p.up(p.a, "gw", "net")
			s := p.established(p.a, 1)
			if want := mustParse(t, prop, proposal.ProtoIKE)[0].String(); s.Proposal != want {
				t.Errorf("negotiated %q, want %q", s.Proposal, want)
			}
			n := 0
			for _, k := range s.Suite.AddKE {
				if k != proposal.KENone {
					n++
				}
			}
			if got := p.b.M.Stats().In[4][0]; got != uint64(n) {
				t.Errorf("B processed %d IKE_INTERMEDIATE requests, want %d", got, n)
			}
			if intermediates < n {
				t.Errorf("%d IKE_INTERMEDIATE datagrams", intermediates)
			}
			p.checkTraffic()
			// Rekeys work afterwards, and the IKE SA keeps its additional
			// key exchanges (in IKE_FOLLOWUP_KE, RFC 9370 §2.2.4).
			p.a.M.Rekey("gw", "")
			p.net.Settle(time.Minute)
			p.b.M.Rekey("gw", "net")
			p.net.Settle(time.Minute)
			if r := p.established(p.a, 1); r.Proposal != s.Proposal || r.SPIi == s.SPIi {
				t.Errorf("rekeyed IKE SA %016x has %s, want %s", r.SPIi, r.Proposal, s.Proposal)
			}
			p.checkTraffic()
		})
	}
}

// TestMLKEMLostIntermediate loses an IKE_INTERMEDIATE response: the
// retransmitted request is answered from the cache, with the keys of
// its generation.
func TestMLKEMLostIntermediate(t *testing.T) {
	p := newPair(t, pairOpts{ikeProp: "aes256gcm16-prfsha384-x25519-ke1_mlkem768"})
	dropNth(p, message.ExchangeIKEIntermediate, true, 1)
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	if n := p.b.M.Stats().ResponsesResent; n != 1 {
		t.Errorf("B resent %d responses", n)
	}
}

// TestMLKEMRequired: a responder that demands ML-KEM refuses an initiator
// without it.
func TestMLKEMRequired(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].KeyingTries = 1
		b.Connections[0].Proposals = mustParse(t, "aes128gcm16-prfsha256-x25519-ke1_mlkem768", proposal.ProtoIKE)
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyNoProposalChosen) {
		t.Errorf("up: %v", result)
	}
}
