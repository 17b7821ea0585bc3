package ike_test

import (
	"testing"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

func TestHandshakePSK(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.up(p.a, "gw", "net")
	sa := p.established(p.a, 1)
	sb := p.established(p.b, 1)
	if !sa.Initiator || sb.Initiator {
		t.Error("initiator flags wrong")
	}
	if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
		t.Errorf("SPIs differ: %x/%x vs %x/%x", sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
	}
	if sa.Proposal != "aes128gcm16-prfsha256-x25519" {
		t.Errorf("proposal %q", sa.Proposal)
	}
	ca, cb := sa.Children[0], sb.Children[0]
	if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
		t.Errorf("child SPIs do not pair: %08x/%08x vs %08x/%08x", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
	}
	if ca.Proposal != "aes128gcm16" || ca.Mode != ike.ModeTunnel || ca.Protocol != proposal.ProtoESP {
		t.Errorf("child %+v", ca)
	}
	if len(ca.LocalTS) != 1 || ca.LocalTS[0].String() != "192.168.1.0/24" || ca.RemoteTS[0].String() != "192.168.2.0/24" {
		t.Errorf("selectors %v %v", ca.LocalTS, ca.RemoteTS)
	}
	p.checkTraffic()
	if in, out := p.ia.Count(); in != 1 || out != 1 {
		t.Errorf("A holds %d/%d SAs", in, out)
	}
	if len(p.ia.Policies) != 1 || len(p.ib.Policies) != 1 {
		t.Errorf("policies %d %d", len(p.ia.Policies), len(p.ib.Policies))
	}
}
