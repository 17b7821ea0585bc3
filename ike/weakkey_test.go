package ike_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
)

// TestWeakPeerRSAKey: a peer whose certificate holds a 1024-bit RSA key,
// issued by a CA we trust or pinned, is refused whichever side it is on,
// and the log names the key size. As initiator its IKE_AUTH gets
// AUTHENTICATION_FAILED; as responder the initiator refuses the answer
// and gives the IKE SA up.
func TestWeakPeerRSAKey(t *testing.T) {
	k := testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t, "bitw test CA", nil)
	for _, c := range []struct {
		name      string
		initiator bool // the initiator (A) holds the weak key, else the responder (B)
		pinned    bool // the refusing side pins the weak certificate instead of trusting the CA
	}{
		{"initiator", true, false},
		{"responder", false, false},
		{"pinned initiator", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := certSide{key: k["rsaa"], id: ike.FQDNIdentity("gw-a.example")}
			b := certSide{key: k["rsab"], id: ike.FQDNIdentity("gw-b.example")}
			if c.initiator {
				a.key = weak
			} else {
				b.key = weak
			}
			a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
			b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
			var logs bytes.Buffer
			o := certPairOpts(a, b, ca.cert, ca.cert, func(ca, cb *ike.Config) {
				ca.Connections[0].KeyingTries = 1
				if c.pinned {
					cb.Connections[0].Remote.CACerts, cb.Connections[0].Remote.Certs = nil, a.chain
				}
			})
			o.logTo = &logs
			p := newPair(t, o)
			var result error
			p.a.M.Up("gw", "net", func(err error) { result = err })
			p.net.Settle(time.Minute)

			refuser := p.b
			if c.initiator {
				if !errorsIsNotify(result, message.NotifyAuthenticationFailed) {
					t.Errorf("up: %v, want AUTHENTICATION_FAILED", result)
				}
				if len(p.b.M.Status()) != 0 {
					t.Error("B kept an IKE SA with the weak peer")
				}
			} else {
				refuser = p.a
				if result == nil || !strings.Contains(result.Error(), "1024 bits") {
					t.Errorf("up: %v, want a refusal naming the 1024-bit key", result)
				}
			}
			if len(p.a.M.Status()) != 0 {
				t.Error("A kept an IKE SA")
			}
			if n := refuser.M.Stats().AuthFailures; n != 1 {
				t.Errorf("%v counted %d authentication failures", refuser.Addr, n)
			}
			found := false
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, "RSA key") &&
					strings.Contains(line, "1024 bits; at least 2048 are required") {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning names the 1024-bit key:\n%s", logs.String())
			}
		})
	}
}
