package ike_test

import (
	"crypto"
	"crypto/x509"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// certSide is one peer's certificate setup.
type certSide struct {
	key   crypto.Signer
	chain []*x509.Certificate
	id    ike.Identity
	auth  func(*ike.AuthConfig)
}

// certPair builds a pair where both sides authenticate with
// certificates from cas (A's trust anchors check B and vice versa).
func certPair(t *testing.T, a, b certSide, caA, caB *x509.Certificate, tweak func(a, b *ike.Config)) *pair {
	return newPair(t, certPairOpts(a, b, caA, caB, tweak))
}

// certPairOpts are certPair's options.
func certPairOpts(a, b certSide, caA, caB *x509.Certificate, tweak func(a, b *ike.Config)) pairOpts {
	return pairOpts{
		credsA: ike.StaticCredentials{Keys: []crypto.Signer{a.key}},
		credsB: ike.StaticCredentials{Keys: []crypto.Signer{b.key}},
		tweak: func(ca, cb *ike.Config) {
			for _, x := range []struct {
				c        *ike.Config
				me, peer certSide
				trust    *x509.Certificate
			}{{ca, a, b, caB}, {cb, b, a, caA}} {
				conn := x.c.Connections[0]
				conn.Local = ike.AuthConfig{Method: ike.AuthPubkey, ID: x.me.id, Certs: x.me.chain}
				conn.Remote = ike.AuthConfig{Method: ike.AuthPubkey, ID: x.peer.id, CACerts: []*x509.Certificate{x.trust}}
				conn.SendCertReq = true
				if x.me.auth != nil {
					x.me.auth(&conn.Local)
				}
				if x.peer.auth != nil {
					x.peer.auth(&conn.Remote)
				}
			}
			if tweak != nil {
				tweak(ca, cb)
			}
		},
	}
}

func TestCertificateAuth(t *testing.T) {
	k := testKeys(t)
	ca := newCA(t, "bitw test CA", nil)
	for _, c := range []struct {
		name       string
		key        string
		auth       func(*ike.AuthConfig)
		wantMethod message.AuthMethod
	}{
		{"ecdsa-p256-rfc7427", "p256", nil, message.AuthDigitalSignature},
		{"ecdsa-p384-rfc7427", "p384", nil, message.AuthDigitalSignature},
		{"ecdsa-p256-method9", "p256", func(a *ike.AuthConfig) { a.Classic = true }, message.AuthECDSAP256SHA256},
		{"ecdsa-p384-method10", "p384", func(a *ike.AuthConfig) { a.Classic = true }, message.AuthECDSAP384SHA384},
		{"ecdsa-p521-method11", "p521", func(a *ike.AuthConfig) { a.Classic = true }, message.AuthECDSAP521SHA512},
		{"rsa-pss", "rsa", nil, message.AuthDigitalSignature},
		{"rsa-pkcs1v15-rfc7427", "rsa", func(a *ike.AuthConfig) { a.RSAPKCS1v15 = true }, message.AuthDigitalSignature},
		{"rsa-method1", "rsa", func(a *ike.AuthConfig) { a.Classic, a.AllowSHA1 = true, true }, message.AuthRSASignature},
		{"ed25519", "ed25519", nil, message.AuthDigitalSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := certSide{key: k[c.key+"a"], id: ike.FQDNIdentity("gw-a.example"), auth: c.auth}
			b := certSide{key: k[c.key+"b"], id: ike.FQDNIdentity("gw-b.example"), auth: c.auth}
			a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
			b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
			p := certPair(t, a, b, ca.cert, ca.cert, nil)
			p.up(p.a, "gw", "net")
			sa, sb := p.established(p.a, 1), p.established(p.b, 1)
			if sa.LocalAuth != c.wantMethod || sb.RemoteAuth != c.wantMethod || sb.LocalAuth != c.wantMethod {
				t.Errorf("AUTH methods: A sent %v, B sent %v, want %v", sa.LocalAuth, sb.LocalAuth, c.wantMethod)
			}
			if sa.RemoteID != "gw-b.example" {
				t.Errorf("A authenticated %q", sa.RemoteID)
			}
			p.checkTraffic()
		})
	}
}

// TestRSAMethod1Refused: method 1 (SHA-1) is off unless allowed.
func TestRSAMethod1Refused(t *testing.T) {
	k := testKeys(t)
	ca := newCA(t, "bitw test CA", nil)
	a := certSide{key: k["rsaa"], id: ike.FQDNIdentity("gw-a.example"), auth: func(x *ike.AuthConfig) {
		x.Classic, x.AllowSHA1 = true, true
	}}
	b := certSide{key: k["rsab"], id: ike.FQDNIdentity("gw-b.example")}
	a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
	b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
	// B's remote section does not allow SHA-1; A's local one does.
	p := certPair(t, a, b, ca.cert, ca.cert, func(ca, cb *ike.Config) {
		cb.Connections[0].Remote.AllowSHA1 = false
		ca.Connections[0].KeyingTries = 1
	})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyAuthenticationFailed) {
		t.Errorf("up: %v, want AUTHENTICATION_FAILED", result)
	}
	if n := p.b.M.Stats().AuthFailures; n != 1 {
		t.Errorf("B counted %d authentication failures", n)
	}
}

// TestCertificateChain: end entities issued by intermediates, which the
// peers send along; trust anchors are the roots.
func TestCertificateChain(t *testing.T) {
	k := testKeys(t)
	rootA, rootB := newCA(t, "root A", nil), newCA(t, "root B", nil)
	subA, subB := newCA(t, "intermediate A", rootA), newCA(t, "intermediate B", rootB)
	a := certSide{key: k["p256a"], id: ike.FQDNIdentity("gw-a.example")}
	b := certSide{key: k["rsab"], id: ike.FQDNIdentity("gw-b.example")}
	a.chain = []*x509.Certificate{subA.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil), subA.cert}
	b.chain = []*x509.Certificate{subB.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil), subB.cert}
	p := certPair(t, a, b, rootA.cert, rootB.cert, nil)
	p.up(p.a, "gw", "net")
	p.established(p.a, 1)
	p.established(p.b, 1)
}

// TestCertificateIDs binds every ID type a certificate can carry.
func TestCertificateIDs(t *testing.T) {
	k := testKeys(t)
	ca := newCA(t, "bitw test CA", nil)
	v6 := netip.MustParseAddr("2001:db8::2")
	for _, c := range []struct {
		name string
		id   func(cert *x509.Certificate) ike.Identity
	}{
		{"fqdn", func(*x509.Certificate) ike.Identity { return ike.FQDNIdentity("gw-b.example") }},
		{"ipv4", func(*x509.Certificate) ike.Identity { return ike.AddrIdentity(addrB) }},
		{"ipv6", func(*x509.Certificate) ike.Identity { return ike.AddrIdentity(v6) }},
		{"rfc822", func(*x509.Certificate) ike.Identity {
			return ike.Identity{Type: ike.IDRFC822, Data: []byte("ops@gw-b.example")}
		}},
		{"dn", func(cert *x509.Certificate) ike.Identity { return ike.Identity{Type: ike.IDDN, Data: cert.RawSubject} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := certSide{key: k["p256a"], id: ike.FQDNIdentity("gw-a.example")}
			a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
			b := certSide{key: k["p256b"]}
			b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"},
				[]netip.Addr{addrB, v6}, []string{"ops@gw-b.example"})}
			b.id = c.id(b.chain[0])
			p := certPair(t, a, b, ca.cert, ca.cert, nil)
			p.up(p.a, "gw", "net")
			s := p.established(p.a, 1)
			if s.RemoteID != b.id.String() {
				t.Errorf("remote ID %q, want %q", s.RemoteID, b.id)
			}
		})
	}
}

// TestCertificateRefused: a wrong identity, an untrusted CA and an
// expired certificate all end in AUTHENTICATION_FAILED.
func TestCertificateRefused(t *testing.T) {
	k := testKeys(t)
	ca, rogue := newCA(t, "bitw test CA", nil), newCA(t, "rogue CA", nil)
	for _, c := range []struct {
		name   string
		issuer *testCA
		names  []string
		id     string
	}{
		{"wrong-id", ca, []string{"other.example"}, "gw-a.example"},
		{"untrusted-ca", rogue, []string{"gw-a.example"}, "gw-a.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := certSide{key: k["p256a"], id: ike.FQDNIdentity(c.id)}
			a.chain = []*x509.Certificate{c.issuer.issue(t, "gw-a", a.key, c.names, nil, nil)}
			b := certSide{key: k["p256b"], id: ike.FQDNIdentity("gw-b.example")}
			b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
			p := certPair(t, a, b, ca.cert, ca.cert, func(ca, cb *ike.Config) { ca.Connections[0].KeyingTries = 1 })
			var result error
			p.a.M.Up("gw", "net", func(err error) { result = err })
			p.net.Settle(time.Minute)
			if !errorsIsNotify(result, message.NotifyAuthenticationFailed) {
				t.Errorf("up: %v", result)
			}
			if len(p.b.M.Status()) != 0 || len(p.a.M.Status()) != 0 {
				t.Error("an IKE SA survived")
			}
		})
	}
}

// TestCertRequests: with send_cert = ifasked, B sends its certificate
// only when A's IKE_AUTH carries a CERTREQ; a peer that pins B's
// certificate needs none. The CERT payload shows in the size of B's
// IKE_AUTH response.
func TestCertRequests(t *testing.T) {
	k := testKeys(t)
	ca := newCA(t, "bitw test CA", nil)
	a := certSide{key: k["p256a"], id: ike.FQDNIdentity("gw-a.example")}
	b := certSide{key: k["p256b"], id: ike.FQDNIdentity("gw-b.example")}
	a.chain = []*x509.Certificate{ca.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil)}
	b.chain = []*x509.Certificate{ca.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
	size := map[bool]int{}
	for _, ask := range []bool{false, true} {
		p := certPair(t, a, b, ca.cert, ca.cert, func(ca, cb *ike.Config) {
			ca.Connections[0].SendCertReq = ask
			if !ask {
				ca.Connections[0].Remote.CACerts = nil
				ca.Connections[0].Remote.Certs = b.chain
			}
			cb.Connections[0].SendCert = ike.SendCertIfAsked
			cb.Connections[0].SendCertReq = false // B asks A for nothing: A's send_cert decides
			ca.Connections[0].SendCert = ike.SendCertAlways
		})
		p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
			if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeIKEAuth && h.IsResponse() {
				size[ask] = len(d.Data)
			}
			return iketest.Deliver
		}
		p.up(p.a, "gw", "net")
		p.established(p.a, 1)
	}
	if size[true]-size[false] < len(b.chain[0].Raw) {
		t.Errorf("B's IKE_AUTH response is %d octets when asked and %d when not; the certificate is %d",
			size[true], size[false], len(b.chain[0].Raw))
	}
}

func TestPSKMismatch(t *testing.T) {
	p := newPair(t, pairOpts{credsB: ike.StaticCredentials{PSKs: []ike.PSK{{Secret: []byte("another key entirely")}}},
		tweak: func(a, b *ike.Config) { a.Connections[0].KeyingTries = 1 }})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyAuthenticationFailed) {
		t.Errorf("up: %v", result)
	}
	if n := p.b.M.Stats().AuthFailures; n != 1 {
		t.Errorf("B counted %d authentication failures", n)
	}
	if n := p.a.M.Stats().ErrorNotifies[message.NotifyAuthenticationFailed]; n != 1 {
		t.Errorf("A counted %d AUTHENTICATION_FAILED", n)
	}
}

// TestPSKByIdentity: PSKs are chosen by identity; KEY_ID, RFC822 and
// address identities work with PSK.
func TestPSKByIdentity(t *testing.T) {
	for _, ids := range [][2]ike.Identity{
		{{Type: ike.IDKeyID, Data: []byte{1, 2, 3, 4}}, {Type: ike.IDKeyID, Data: []byte{5, 6, 7, 8}}},
		{{Type: ike.IDRFC822, Data: []byte("a@example.org")}, {Type: ike.IDRFC822, Data: []byte("b@example.org")}},
		{ike.AddrIdentity(addrA), ike.AddrIdentity(addrB)},
	} {
		t.Run(ids[0].Type.String(), func(t *testing.T) {
			creds := ike.StaticCredentials{PSKs: []ike.PSK{
				{IDs: []ike.Identity{ike.FQDNIdentity("elsewhere.example")}, Secret: []byte("wrong wrong wrong wrong")},
				{IDs: []ike.Identity{ids[0], ids[1]}, Secret: psk},
			}}
			p := newPair(t, pairOpts{credsA: creds, credsB: creds, tweak: func(a, b *ike.Config) {
				a.Connections[0].Local.ID, a.Connections[0].Remote.ID = ids[0], ids[1]
				b.Connections[0].Local.ID, b.Connections[0].Remote.ID = ids[1], ids[0]
			}})
			p.up(p.a, "gw", "net")
			p.established(p.b, 1)
		})
	}
}

// TestNullAuth: RFC 7619 NULL authentication when both sides configure it.
func TestNullAuth(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		for _, c := range []*ike.Config{a, b} {
			c.Connections[0].Local = ike.AuthConfig{Method: ike.AuthNull}
			c.Connections[0].Remote = ike.AuthConfig{Method: ike.AuthNull}
		}
	}})
	p.up(p.a, "gw", "net")
	s := p.established(p.b, 1)
	if s.RemoteAuth != message.AuthNull || s.LocalAuth != message.AuthNull {
		t.Errorf("methods %v %v", s.LocalAuth, s.RemoteAuth)
	}
}

// TestNullAuthRefused: a peer using NULL authentication is refused where
// PSK is configured.
func TestNullAuthRefused(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].Local = ike.AuthConfig{Method: ike.AuthNull}
		a.Connections[0].KeyingTries = 1
	}})
	var result error
	p.a.M.Up("gw", "net", func(err error) { result = err })
	p.net.Settle(time.Minute)
	if !errorsIsNotify(result, message.NotifyAuthenticationFailed) {
		t.Errorf("up: %v", result)
	}
}

// TestCertificateFragments: an RSA-4096 chain does not fit 576 octets.
func TestCertificateFragments(t *testing.T) {
	k := testKeys(t)
	root := newCA(t, "root", nil)
	sub := newCA(t, "intermediate", root)
	a := certSide{key: k["rsa4096a"], id: ike.FQDNIdentity("gw-a.example")}
	b := certSide{key: k["p256b"], id: ike.FQDNIdentity("gw-b.example")}
	a.chain = []*x509.Certificate{sub.issue(t, "gw-a", a.key, []string{"gw-a.example"}, nil, nil), sub.cert}
	b.chain = []*x509.Certificate{root.issue(t, "gw-b", b.key, []string{"gw-b.example"}, nil, nil)}
	p := certPair(t, a, b, root.cert, root.cert, func(ca, cb *ike.Config) { ca.FragmentMTU, cb.FragmentMTU = 576, 576 })
	p.up(p.a, "gw", "net")
	p.established(p.b, 1)
	if n := p.a.M.Stats().FragmentsSent; n < 3 {
		t.Errorf("A sent %d fragments", n)
	}
}
