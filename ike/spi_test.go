package ike_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestChildSPIsReleased runs every way a Child SA negotiation can fail
// after an inbound SPI was reserved for it, and checks with the fake
// installer that each reserved SPI ends up in an installed SA or released:
// once the exchanges have settled, and again once the IKE SA is deleted,
// when nothing may remain reserved. A request for a Child SA must also be
// answered, whatever became of it.
func TestChildSPIsReleased(t *testing.T) {
	netA2, netB2 := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")
	second := func(t *testing.T, local, remote netip.Prefix, props string) *ike.Child {
		return &ike.Child{Name: "net2", LocalTS: []ike.TrafficSelector{{TS: ike.PrefixTS(local)}},
			RemoteTS: []ike.TrafficSelector{{TS: ike.PrefixTS(remote)}}, Proposals: mustParse(t, props, proposal.ProtoESP)}
	}
	for _, c := range []struct {
		name string
		// propsA, propsB are the second child's ESP proposals; an empty
		// propsB leaves B without the second child (TS_UNACCEPTABLE).
		propsA, propsB string
		// run drives the scenario once the first Child SA is up and
		// returns whether the second child's request was answered.
		run func(t *testing.T, p *pair) bool
		// saw reports whether the failure under test happened.
		saw func(p *pair, logs string) bool
	}{
		{"invalid-ke-retry", "aes128gcm16-x25519-ecp256", "aes128gcm16-ecp256", upSecond(nil), sentInvalidKE},
		{"invalid-ke-then-ike-deleted", "aes128gcm16-x25519-ecp256", "aes128gcm16-ecp256", upSecond(func(p *pair) {
			// Our IKE SA starts deleting while the CREATE_CHILD_SA that
			// will get INVALID_KE_PAYLOAD is in flight.
			if err := p.a.M.Down("gw", nil); err != nil {
				p.t.Fatal(err)
			}
		}), sentInvalidKE},
		{"no-proposal-chosen", "aes128gcm16", "aes256-sha512", upSecond(nil), gotNotify(message.NotifyNoProposalChosen)},
		{"ts-unacceptable", "aes128gcm16", "", upSecond(nil), gotNotify(message.NotifyTSUnacceptable)},
		{"no-answer", "aes128gcm16", "aes128gcm16", func(t *testing.T, p *pair) bool {
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeCreateChildSA && h.IsResponse() {
					return iketest.Drop
				}
				return iketest.Deliver
			}
			return upSecond(nil)(t, p)
		}, func(p *pair, _ string) bool { return p.a.M.Stats().PeersDead == 1 }},
		{"rekey-collision", "aes128gcm16-ecp256", "aes128gcm16-ecp256", func(t *testing.T, p *pair) bool {
			for _, n := range []*iketest.Node{p.a, p.b} {
				if err := n.M.Rekey("gw", "net"); err != nil {
					t.Fatal(err)
				}
			}
			p.net.Settle(time.Minute)
			p.checkTraffic()
			return true
		}, func(_ *pair, logs string) bool { return strings.Contains(logs, "rekey collision lost") }},
		{"rekey-invalid-ke", "aes128gcm16-x25519-ecp256", "aes128gcm16-ecp256", func(t *testing.T, p *pair) bool {
			done := upSecond(nil)(t, p)
			if err := p.a.M.Rekey("gw", "net2"); err != nil {
				t.Fatal(err)
			}
			p.net.Settle(time.Minute)
			p.checkTraffic()
			return done
		}, func(p *pair, _ string) bool { return p.b.M.Stats().InvalidKESent >= 2 }},
		{"rekey-invalid-ke-then-ike-deleted", "aes128gcm16-x25519-ecp256", "aes128gcm16-ecp256", func(t *testing.T, p *pair) bool {
			done := upSecond(nil)(t, p)
			if err := p.a.M.Rekey("gw", "net2"); err != nil {
				t.Fatal(err)
			}
			if err := p.a.M.Down("gw", nil); err != nil {
				t.Fatal(err)
			}
			return done
		}, func(p *pair, _ string) bool { return p.b.M.Stats().InvalidKESent >= 2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			p := newPair(t, pairOpts{logTo: &logs, tweak: func(a, b *ike.Config) {
				a.Connections[0].Children = append(a.Connections[0].Children, second(t, netA2, netB2, c.propsA))
				if c.propsB != "" {
					b.Connections[0].Children = append(b.Connections[0].Children, second(t, netB2, netA2, c.propsB))
				}
			}})
			p.up(p.a, "gw", "net")
			if !c.run(t, p) {
				t.Error("the second child's request was never answered")
			}
			p.net.Settle(5 * time.Minute)
			if !c.saw(p, logs.String()) {
				t.Error("the failure under test did not happen")
			}
			p.noLeaks()
			for _, n := range []*iketest.Node{p.a, p.b} {
				if err := n.M.Down("gw", nil); err != nil {
					t.Fatal(err)
				}
			}
			// A peer left with SAs the other forgot deletes them after its
			// retransmissions.
			p.net.RunFor(5 * time.Minute)
			for _, n := range []*iketest.Node{p.a, p.b} {
				if in, out := n.Installer.Count(); in+out != 0 {
					t.Errorf("%v: %d inbound and %d outbound SAs after the IKE SAs were deleted", n.Addr, in, out)
				}
			}
			p.noLeaks()
		})
	}
}

func sentInvalidKE(p *pair, _ string) bool { return p.b.M.Stats().InvalidKESent >= 1 }

func gotNotify(n message.NotifyType) func(p *pair, _ string) bool {
	return func(p *pair, _ string) bool { return p.a.M.Stats().ErrorNotifies[n] == 1 }
}

// upSecond asks A for the second child, runs meanwhile (if set) right
// after the request is queued, and waits for the answer.
func upSecond(meanwhile func(p *pair)) func(t *testing.T, p *pair) bool {
	return func(t *testing.T, p *pair) bool {
		done := false
		if err := p.a.M.Up("gw", "net2", func(error) { done = true }); err != nil {
			t.Fatal(err)
		}
		if meanwhile != nil {
			meanwhile(p)
		}
		p.net.RunUntil(5*time.Minute, func() bool { return done })
		return done
	}
}
