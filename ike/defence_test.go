package ike_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/iketest"
	"github.com/bitw-dev/bitw/ike/message"
)

// rawHeader builds the 28-octet IKE header and an optional body.
func rawHeader(spii, spir uint64, first message.PayloadType, version byte, exch message.ExchangeType, flags message.Flags, id uint32, body []byte) []byte {
	b := make([]byte, message.HeaderLen, message.HeaderLen+len(body))
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	b[16], b[17], b[18], b[19] = byte(first), version, byte(exch), byte(flags)
	binary.BigEndian.PutUint32(b[20:], id)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// skBody is an SK payload of n opaque octets: what a protected request
// looks like to a node without its keys.
func skBody(n int) []byte {
	b := make([]byte, 4+n)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// sentTo returns the datagrams sent to remote since index from.
func sentTo(net *iketest.Network, from int, remote netip.AddrPort) []iketest.Datagram {
	var out []iketest.Datagram
	for _, d := range net.Sent[from:] {
		if d.To == remote {
			out = append(out, d)
		}
	}
	return out
}

// checkReply checks an unprotected error reply to a request with header
// req: same SPIs, Message ID and exchange, R set, I opposite, version 2.0,
// one notification of type n without data.
func checkReply(t *testing.T, d iketest.Datagram, req message.Header, n message.NotifyType) {
	t.Helper()
	data := d.Data
	if d.From.Port() == ike.PortNATT {
		if !bytes.Equal(data[:4], []byte{0, 0, 0, 0}) {
			t.Fatalf("reply from port 4500 without the non-ESP marker")
		}
		data = data[4:]
	}
	if data[17] != 0x20 {
		t.Errorf("reply version %#x, want 2.0", data[17])
	}
	msg, err := message.Decode(data, nil)
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if msg.SPIi != req.SPIi || msg.SPIr != req.SPIr || msg.MessageID != req.MessageID || msg.Exchange != req.Exchange {
		t.Errorf("reply header %+v for request %+v", msg.Header, req)
	}
	if !msg.IsResponse() || msg.IsInitiator() == req.IsInitiator() {
		t.Errorf("reply flags %v for request flags %v", msg.Flags, req.Flags)
	}
	if len(msg.Payloads) != 1 || msg.Notify(n) == nil || len(msg.Notify(n).Data) != 0 || msg.Encrypted {
		t.Errorf("reply %v, want N(%v) alone, in clear", msg, n)
	}
}

// TestInvalidMajorVersion: a request of IKE major version 3 is answered
// with INVALID_MAJOR_VERSION (RFC 7296 §2.5, §1.5); a response is not.
func TestInvalidMajorVersion(t *testing.T) {
	p := newPair(t, pairOpts{})
	local := netip.AddrPortFrom(addrB, ike.PortIKE)
	src := netip.MustParseAddrPort("198.51.100.7:500")
	for _, c := range []struct {
		name  string
		h     message.Header
		first message.PayloadType
		reply bool
	}{
		{"IKE_SA_INIT request", message.Header{SPIi: 0x1111, Exchange: message.ExchangeIKESAInit, Flags: message.FlagInitiator}, message.PayloadSA, true},
		{"other request", message.Header{SPIi: 0x2222, SPIr: 0x3333, Exchange: 40, MessageID: 7, Flags: message.FlagInitiator}, message.PayloadSK, true},
		{"request from a responder", message.Header{SPIi: 0x4444, SPIr: 0x5555, Exchange: message.ExchangeInformational, MessageID: 2}, message.PayloadSK, true},
		{"response", message.Header{SPIi: 0x6666, SPIr: 0x7777, Exchange: message.ExchangeIKESAInit, Flags: message.FlagResponse}, message.PayloadSA, false},
	} {
		from := len(p.net.Sent)
		req := rawHeader(c.h.SPIi, c.h.SPIr, c.first, 0x30, c.h.Exchange, c.h.Flags, c.h.MessageID, skBody(40))
		p.b.M.HandlePacket(req, local, src)
		got := sentTo(p.net, from, src)
		switch {
		case c.reply && len(got) != 1:
			t.Errorf("%s: %d replies", c.name, len(got))
		case c.reply:
			checkReply(t, got[0], c.h, message.NotifyInvalidMajorVersion)
		case len(got) != 0:
			t.Errorf("%s: answered", c.name)
		}
	}
	s := p.b.M.Stats()
	if s.InvalidMajorVersionSent != 3 || s.Malformed[message.ReasonMajorVersion] != 4 {
		t.Errorf("%d INVALID_MAJOR_VERSION sent, %d counted as major version", s.InvalidMajorVersionSent, s.Malformed[message.ReasonMajorVersion])
	}
}

// TestInvalidIKESPI: a protected request naming no IKE SA is answered with
// INVALID_IKE_SPI (RFC 7296 §2.21.4), from the port it came to; an
// unprotected one, a response, or a request on another port is not.
func TestInvalidIKESPI(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	live := p.b.M.Status()[0]
	src := netip.MustParseAddrPort("198.51.100.7:4500")
	for _, c := range []struct {
		name  string
		port  uint16
		h     message.Header
		first message.PayloadType
		reply bool
	}{
		{"unknown SPIs", ike.PortIKE, message.Header{SPIi: 0xaa, SPIr: 0xbb, Exchange: message.ExchangeInformational, MessageID: 3, Flags: message.FlagInitiator}, message.PayloadSK, true},
		{"NAT-T port", ike.PortNATT, message.Header{SPIi: 0xaa, SPIr: 0xbb, Exchange: message.ExchangeCreateChildSA, MessageID: 9, Flags: message.FlagInitiator}, message.PayloadSK, true},
		{"fragment", ike.PortIKE, message.Header{SPIi: 0xcc, SPIr: 0xdd, Exchange: message.ExchangeIKEAuth, MessageID: 1, Flags: message.FlagInitiator}, message.PayloadSKF, true},
		{"from the responder", ike.PortIKE, message.Header{SPIi: 0xcc, SPIr: 0xdd, Exchange: message.ExchangeInformational}, message.PayloadSK, true},
		{"known SPIi, wrong SPIr", ike.PortIKE, message.Header{SPIi: live.SPIi, SPIr: live.SPIr + 1, Exchange: message.ExchangeInformational, MessageID: 2, Flags: message.FlagInitiator}, message.PayloadSK, true},
		{"response", ike.PortIKE, message.Header{SPIi: 0xaa, SPIr: 0xbb, Exchange: message.ExchangeInformational, Flags: message.FlagResponse}, message.PayloadSK, false},
		{"unprotected", ike.PortIKE, message.Header{SPIi: 0xaa, SPIr: 0xbb, Exchange: message.ExchangeInformational, Flags: message.FlagInitiator}, message.PayloadNotify, false},
		{"other port", 4501, message.Header{SPIi: 0xaa, SPIr: 0xbb, Exchange: message.ExchangeInformational, Flags: message.FlagInitiator}, message.PayloadSK, false},
	} {
		from := len(p.net.Sent)
		body := skBody(40)
		if c.first == message.PayloadSKF {
			body = append(skBody(4), make([]byte, 40)...)
			binary.BigEndian.PutUint16(body[2:], uint16(len(body)))
			binary.BigEndian.PutUint16(body[4:], 1)
			binary.BigEndian.PutUint16(body[6:], 2)
		}
		req := rawHeader(c.h.SPIi, c.h.SPIr, c.first, 0x20, c.h.Exchange, c.h.Flags, c.h.MessageID, body)
		if c.port == ike.PortNATT {
			req = append([]byte{0, 0, 0, 0}, req...)
		}
		p.b.M.HandlePacket(req, netip.AddrPortFrom(addrB, c.port), src)
		got := sentTo(p.net, from, src)
		switch {
		case c.reply && len(got) != 1:
			t.Errorf("%s: %d replies", c.name, len(got))
		case c.reply:
			if got[0].From.Port() != c.port {
				t.Errorf("%s: reply from port %d", c.name, got[0].From.Port())
			}
			checkReply(t, got[0], c.h, message.NotifyInvalidIKESPI)
		case len(got) != 0:
			t.Errorf("%s: answered", c.name)
		}
	}
	if s := p.b.M.Stats(); s.InvalidIKESPISent != 5 {
		t.Errorf("%d INVALID_IKE_SPI sent", s.InvalidIKESPISent)
	}
	// The live IKE SA is untouched.
	p.established(p.b, 1)
	p.checkTraffic()
}

// TestUnprotectedReplyRate: spoofed requests from many sources at once
// get at most UnprotectedReplyRate replies per second together, and no
// reply at all when it is negative.
func TestUnprotectedReplyRate(t *testing.T) {
	for _, rate := range []int{0, 3, -1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { b.UnprotectedReplyRate = rate }})
			want := rate
			if rate == 0 {
				want = ike.DefaultUnprotectedReplyRate
			}
			if rate < 0 {
				want = 0
			}
			send := func(n int) int {
				from := len(p.net.Sent)
				for i := range n {
					src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 500)
					req := rawHeader(uint64(i+1), 99, message.PayloadSK, 0x20, message.ExchangeInformational, message.FlagInitiator, 1, skBody(40))
					if i%2 == 1 {
						req[17] = 0x30 // the two replies share the budget
					}
					p.b.M.HandlePacket(req, netip.AddrPortFrom(addrB, ike.PortIKE), src)
				}
				return len(p.net.Sent) - from
			}
			if got := send(100); got != want {
				t.Errorf("burst of 100: %d replies, want %d", got, want)
			}
			p.clock.Advance(500 * time.Millisecond)
			if got := send(100); got != want/2 {
				t.Errorf("half a second later: %d replies, want %d", got, want/2)
			}
			p.clock.Advance(time.Hour)
			if got := send(100); got != want {
				t.Errorf("an hour later: %d replies, want %d (no more than one second's worth saved)", got, want)
			}
			s := p.b.M.Stats()
			if sent := s.InvalidIKESPISent + s.InvalidMajorVersionSent; sent != uint64(want+want/2+want) || s.UnprotectedRepliesLimited != 300-sent {
				t.Errorf("sent %d, limited %d", sent, s.UnprotectedRepliesLimited)
			}
		})
	}
}

// TestPeerRestart: B loses its state (a reboot); A's next request on the
// old IKE SA gets INVALID_IKE_SPI, which A ignores as the unprotected hint
// it is (RFC 7296 §2.21.4) until its liveness check gives up and
// dpd_action brings the SAs back.
func TestPeerRestart(t *testing.T) {
	p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
		a.Connections[0].DPDDelay = 10 * time.Second
		a.Connections[0].Children[0].DPDAction = ike.ActionStart
	}})
	p.up(p.a, "gw", "net")
	old := p.established(p.a, 1)
	// A new Manager at B's address: the reboot.
	ib := iketest.NewInstaller(0xc0000000)
	mb, err := ike.New(p.cb, ike.Deps{Sender: p.net.Sender(), Installer: ib, Clock: p.clock, Rand: iketest.Rand(9),
		Credentials: ike.StaticCredentials{PSKs: []ike.PSK{{Secret: psk}}}, Logger: testLogger(t, "B2")})
	if err != nil {
		t.Fatal(err)
	}
	p.b = p.net.Attach(addrB, mb, ib)
	p.ib = ib
	p.net.RunFor(5 * time.Minute)
	if n := mb.Stats().InvalidIKESPISent; n == 0 {
		t.Error("the restarted B sent no INVALID_IKE_SPI")
	}
	if n := p.a.M.Stats().Drops[ike.DropUnprotected]; n == 0 {
		t.Error("A did not drop the unprotected replies")
	}
	s := p.established(p.a, 1)
	p.established(p.b, 1)
	if s.SPIi == old.SPIi {
		t.Error("A kept the old IKE SA")
	}
	p.checkTraffic()
}

// TestHalfOpenPerSource: requests spoofed from A's address fill A's share
// of half-open SAs, yet A still gets in with a cookie; and a source that
// answers cookies cannot hold more than twice its share.
func TestHalfOpenPerSource(t *testing.T) {
	t.Run("spoofed", func(t *testing.T) {
		p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) { b.HalfOpenPerSource = 3 }})
		tmpl := spoofTemplate(t)
		for i := range 5 {
			d := bytes.Clone(tmpl)
			binary.BigEndian.PutUint64(d, uint64(0x5000+i))
			p.b.M.HandlePacket(d, netip.AddrPortFrom(addrB, ike.PortIKE), netip.AddrPortFrom(addrA, 500))
		}
		if s := p.b.M.Stats(); s.HalfOpen != 3 || s.CookiesSent != 2 || s.Drops[ike.DropHalfOpenPerSource] != 0 {
			t.Fatalf("after 5 spoofed requests: half-open %d, cookies %d, dropped %d", s.HalfOpen, s.CookiesSent,
				s.Drops[ike.DropHalfOpenPerSource])
		}
		p.up(p.a, "gw", "net")
		p.established(p.a, 1)
		if s := p.b.M.Stats(); s.CookiesVerified != 1 {
			t.Errorf("A got in with %d cookies verified", s.CookiesVerified)
		}
		p.checkTraffic()
	})
	t.Run("cookies", func(t *testing.T) {
		const conns = 9
		p := newPair(t, pairOpts{tweak: func(a, b *ike.Config) {
			b.HalfOpenPerSource = 3
			b.CookieThreshold = 1000
			base := a.Connections[0]
			a.Connections = nil
			for i := range conns {
				c := *base
				c.Name = fmt.Sprintf("gw%d", i)
				a.Connections = append(a.Connections, &c)
			}
			b.Connections[0].Unique = ike.UniqueNever
		}})
		// IKE_AUTH never arrives: every SA stays half-open at B.
		p.net.Filter = func(d *iketest.Datagram) iketest.Verdict {
			if h, _, ok := d.IKE(); ok && h.Exchange == message.ExchangeIKEAuth {
				return iketest.Drop
			}
			return iketest.Deliver
		}
		for i := range conns {
			if err := p.a.M.Up(fmt.Sprintf("gw%d", i), "net", nil); err != nil {
				t.Fatal(err)
			}
		}
		p.net.RunFor(10 * time.Second)
		s := p.b.M.Stats()
		if s.HalfOpen != 6 || s.HalfOpenMax != 6 {
			t.Errorf("B holds %d half-open SAs (at most %d), want 3 without and 3 with a cookie", s.HalfOpen, s.HalfOpenMax)
		}
		// Three got in with a cookie; every other cookie, verified,
		// met a full share.
		if drops := s.Drops[ike.DropHalfOpenPerSource]; drops < conns-6 || s.CookiesVerified != 3+drops {
			t.Errorf("dropped %d beyond the share, %d cookies verified", drops, s.CookiesVerified)
		}
		// The cap delays A's surplus, it does not refuse it: once the
		// exchanges go through, every connection comes up.
		p.net.Filter = nil
		p.net.RunFor(5 * time.Minute)
		up := 0
		for _, sa := range p.a.M.Status() {
			if sa.State == ike.IKEEstablished {
				up++
			}
		}
		if up != conns || p.b.M.HalfOpen() != 0 {
			t.Errorf("%d of %d connections up, %d half-open at B", up, conns, p.b.M.HalfOpen())
		}
	})
}
