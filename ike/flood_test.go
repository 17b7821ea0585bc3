package ike_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// router hands datagrams to Managers by destination address, as their
// UDP socket readers would, and counts what goes nowhere (answers to
// spoofed sources).
type router struct {
	nodes   map[netip.Addr]*ike.Manager
	nowhere atomic.Uint64
}

func (r *router) Send(data []byte, local, remote netip.AddrPort) error {
	m := r.nodes[remote.Addr()]
	if m == nil {
		r.nowhere.Add(1)
		return nil
	}
	m.Deliver(append([]byte(nil), data...), remote, local)
	return nil
}

// TestFlood: while IKE_SA_INIT requests from spoofed addresses arrive at
// 10,000 per second or more for 10 s, a legitimate peer still gets an IKE
// SA and its Child SA up within 2 s. Cookies must engage and half-open
// state stay bounded.
//
// The flood enters through Deliver into the running Manager (Run with the
// system clock), the path a socket reader feeds: in one process, so the
// source addresses can be spoofed freely and the kernel's UDP buffers,
// which are not ike's, do not set the limit.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 10 s")
	}
	const rate, duration = 12000, 10 * time.Second
	r := &router{nodes: map[netip.Addr]*ike.Manager{}}
	mk := func(local, remote netip.Addr, lnet, rnet netip.Prefix, anyone bool) *ike.Manager {
		conn := siteConn(t, local, remote, lnet, rnet, "aes128gcm16-prfsha256-x25519", "aes128gcm16")
		conn.Unique = ike.UniqueNever
		if anyone {
			// The responder takes anyone, so the flood reaches the
			// proposal and cookie processing.
			conn.RemoteAddrs = nil
		}
		m, err := ike.New(ike.Config{Connections: []*ike.Connection{conn}, QueueLen: 1 << 15},
			ike.Deps{Sender: r, Installer: &nullInstaller{}, Credentials: ike.StaticCredentials{PSKs: []ike.PSK{{Secret: psk}}}})
		if err != nil {
			t.Fatal(err)
		}
		m.Prepare()
		return m
	}
	a := mk(addrA, addrB, netA, netB, false)
	b := mk(addrB, addrA, netB, netA, true)
	r.nodes[addrA], r.nodes[addrB] = a, b
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	go b.Run(ctx)

	// The flood: one template request, SPI and nonce changed each time,
	// from random addresses and ports.
	tmpl := spoofTemplate(t)
	nonceAt := bytes.Index(tmpl, bytes.Repeat([]byte{0xab}, 32))
	var sent atomic.Uint64
	floodDone := make(chan struct{})
	floodStart := time.Now()
	go func() {
		defer close(floodDone)
		start := floodStart
		local := netip.AddrPortFrom(addrB, ike.PortIKE)
		var n uint64
		for time.Since(start) < duration {
			due := uint64(time.Since(start).Seconds()*rate) + 1
			for ; n < due; n++ {
				d := append([]byte(nil), tmpl...)
				binary.BigEndian.PutUint64(d[0:], n|1<<63)
				binary.BigEndian.PutUint64(d[nonceAt:], n)
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), uint16(1024+n%60000))
				b.Deliver(d, local, src)
			}
			sent.Store(n)
			time.Sleep(time.Millisecond)
		}
		sent.Store(n)
	}()

	// Legitimate attempts during the flood.
	var worst time.Duration
	for i, at := range []time.Duration{time.Second, 4 * time.Second, 7 * time.Second} {
		time.Sleep(time.Until(floodStart.Add(at)))
		res := make(chan error, 1)
		start := time.Now()
		conn := "gw"
		if err := a.Call(ctx, func() {
			// A new IKE SA each time: tear the previous one down first.
			a.Down(conn, func(error) {
				if err := a.Up(conn, "net", func(err error) { res <- err }); err != nil {
					res <- err
				}
			})
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-res:
			took := time.Since(start)
			worst = max(worst, took)
			if err != nil {
				t.Fatalf("attempt %d: %v", i, err)
			}
			t.Logf("attempt %d at %v into the flood: established in %v", i, at, took.Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d: not established after 10 s", i)
		}
	}
	<-floodDone
	var s ike.Stats
	b.Call(ctx, func() { s = b.Stats() })
	achieved := float64(sent.Load()) / duration.Seconds()
	t.Logf("flood: %d spoofed IKE_SA_INIT in %v (%.0f/s); responder: %d cookies sent, %d verified, half-open max %d, queue drops %d, answers to nowhere %d",
		sent.Load(), duration, achieved, s.CookiesSent, s.CookiesVerified, s.HalfOpenMax, s.Drops[ike.DropQueueFull], r.nowhere.Load())
	if achieved < 10000 {
		t.Errorf("the flood reached only %.0f requests/s", achieved)
	}
	if worst > 2*time.Second {
		t.Errorf("a legitimate peer took %v", worst)
	}
	if s.CookiesSent < sent.Load()/2 {
		t.Errorf("cookies did not engage: %d sent for %d requests", s.CookiesSent, sent.Load())
	}
	if s.HalfOpenMax > ike.DefaultCookieThreshold+3 {
		t.Errorf("half-open SAs reached %d", s.HalfOpenMax)
	}
}

// spoofTemplate is a valid first IKE_SA_INIT request (no cookie) with a
// nonce of 0xab octets to patch.
func spoofTemplate(t *testing.T) []byte {
	props := mustParse(t, "aes128gcm16-prfsha256-x25519", proposal.ProtoIKE)
	ke := bytes.Repeat([]byte{9}, 32)
	msg := &message.Message{Header: message.Header{SPIi: 1, Exchange: message.ExchangeIKESAInit, Flags: message.FlagInitiator},
		Payloads: []message.Payload{
			&message.SA{Proposals: []message.Proposal{message.ProposalFrom(1, nil, props[0])}},
			&message.KE{Group: proposal.KEX25519, Data: ke},
			&message.Nonce{Data: bytes.Repeat([]byte{0xab}, 32)},
		}}
	b, err := msg.Encode(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nullInstaller keeps nothing.
type nullInstaller struct{ spi atomic.Uint32 }

func (n *nullInstaller) AllocSPI(proposal.Protocol) (uint32, error) {
	return 0x1000 + n.spi.Add(1), nil
}
func (n *nullInstaller) ReleaseSPI(proposal.Protocol, uint32)              {}
func (n *nullInstaller) AddSA(ike.SAParams) error                          { return nil }
func (n *nullInstaller) UpdateSA(ike.SAKey, ike.SAUpdate) error            { return nil }
func (n *nullInstaller) DeleteSA(ike.SAKey) error                          { return nil }
func (n *nullInstaller) AddPolicy(ike.PolicyParams) (ike.PolicyID, error)  { return 1, nil }
func (n *nullInstaller) UpdatePolicy(ike.PolicyID, ike.PolicyParams) error { return nil }
func (n *nullInstaller) DeletePolicy(ike.PolicyID) error                   { return nil }
