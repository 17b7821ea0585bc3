package ike_test

import (
	"bytes"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// TestInitiatorAuthFailed: when A, the initiator, refuses B's
// authentication in the IKE_AUTH response (B's identity is not the one
// configured, or its certificate chain leads to no trusted CA), A tells B
// with AUTHENTICATION_FAILED in an INFORMATIONAL request of its own (RFC
// 7296 §2.21.2) and forgets the IKE SA; B, which had established it,
// deletes it and its Child SA at once instead of keeping them until its
// timers end them. Both log the notify by name.
func TestInitiatorAuthFailed(t *testing.T) {
	k := testKeys(t)
	ca, rogue := newCA(t, "bitw test CA", nil), newCA(t, "rogue CA", nil)
	for _, c := range []struct {
		name string
		make func(t *testing.T, o *pairOpts)
	}{
		{"identity", func(t *testing.T, o *pairOpts) {
			// B authenticates as its address, A expects gw-b.example.
			o.tweak = func(a, b *ike.Config) { b.Connections[0].Local.ID = ike.Identity{} }
		}},
		{"untrusted-ca", func(t *testing.T, o *pairOpts) {
			a := certSide{key: k["p256a"], id: ike.FQDNIdentity("gw-a.example")}
			a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
			b := certSide{key: k["p256b"], id: ike.FQDNIdentity("gw-b.example")}
			b.chain = []*x509.Certificate{rogue.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
			*o = certPairOpts(a, b, ca.cert, ca.cert, nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			o := pairOpts{}
			c.make(t, &o)
			tweak := o.tweak
			o.tweak = func(a, b *ike.Config) {
				if tweak != nil {
					tweak(a, b)
				}
				a.Connections[0].KeyingTries = 1
			}
			o.logTo = &logs
			p := newPair(t, o)
			var sent []message.ExchangeType
			p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
				if h, _, ok := d.IKE(); ok && d.From.Addr() == addrA && !h.IsResponse() {
					sent = append(sent, h.Exchange)
				}
				return iketest.Deliver
			}
			var result error
			done := false
			p.a.M.Up("gw", "net", func(err error) { result, done = err, true })
			if !p.net.RunUntil(time.Minute, func() bool { return done }) {
				t.Fatal("up did not finish")
			}
			if result == nil || errorsIsNotify(result, message.NotifyAuthenticationFailed) {
				t.Fatalf("up: %v, want A's own refusal", result)
			}
			if st := p.a.M.Status(); len(st) != 0 {
				t.Errorf("A kept an IKE SA: %s", describe(st))
			}
			// Promptly: one trip across the network, no timer.
			p.net.Settle(time.Second)
			if st := p.b.M.Status(); len(st) != 0 {
				t.Errorf("B kept an IKE SA: %s", describe(st))
			}
			if n := len(p.ib.SAs); n != 0 {
				t.Errorf("B kept %d Child SA keys in its data plane", n)
			}
			want := []message.ExchangeType{message.ExchangeIKESAInit, message.ExchangeIKEAuth, message.ExchangeInformational}
			if !slices.Equal(sent, want) {
				t.Errorf("A sent %v, want %v", sent, want)
			}
			// A sends it once: no retransmission follows.
			p.net.RunFor(5 * time.Minute)
			if !slices.Equal(sent, want) {
				t.Errorf("A sent %v after five minutes, want %v", sent, want)
			}
			if n := p.b.M.Stats().ErrorNotifies[message.NotifyAuthenticationFailed]; n != 1 {
				t.Errorf("B counted %d AUTHENTICATION_FAILED", n)
			}
			if n := p.a.M.Stats().AuthFailures; n != 1 {
				t.Errorf("A counted %d authentication failures", n)
			}
			for _, node := range []string{"A", "B"} {
				found := false
				for _, line := range strings.Split(logs.String(), "\n") {
					if strings.Contains(line, "node="+node) && strings.Contains(line, "AUTHENTICATION_FAILED") {
						found = true
					}
				}
				if !found {
					t.Errorf("%s did not log AUTHENTICATION_FAILED", node)
				}
			}
		})
	}
}
