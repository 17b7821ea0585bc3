package ike

import (
	"errors"
	"slices"

	"github.com/bitw-dev/bitw/ike/group"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// selection is the outcome of choosing among offered proposals.
type selection struct {
	suite  proposal.Suite
	number uint8
	spi    []byte
}

// negotiateOpts adjust matching for the context of the exchange.
type negotiateOpts struct {
	// noKE ignores key exchange transforms on both sides: the Child SA of
	// IKE_AUTH takes its keys from the IKE SA (RFC 7296 §1.2).
	noKE bool
}

var errNoProposal = errors.New("ike: no acceptable proposal")

// choose picks a suite from the peer's offered proposals, preferring
// our configured order (as strongSwan does by default), and returns the
// number and SPI of the offered proposal it came from. Offered
// proposals with transforms or attributes we do not understand are
// skipped (RFC 7296 §3.3.6).
func choose(offered []message.Proposal, configured []proposal.Proposal, pol proposal.Policy, o negotiateOpts) (selection, error) {
	type cand struct {
		p   proposal.Proposal
		num uint8
		spi []byte
	}
	var cands []cand
	for i := range offered {
		op := &offered[i]
		p, err := op.Config()
		if err != nil {
			continue
		}
		cands = append(cands, cand{p, op.Number, op.SPI})
	}
	for _, ours := range configured {
		for _, c := range cands {
			if c.p.Protocol != ours.Protocol {
				continue
			}
			s, ok := match(ours, c.p, o)
			if !ok || s.Check(pol) != nil || !supported(s) {
				continue
			}
			return selection{suite: s, number: c.num, spi: c.spi}, nil
		}
	}
	return selection{}, errNoProposal
}

// match finds the first transforms of ours, in our order, that theirs
// also lists.
func match(ours, theirs proposal.Proposal, o negotiateOpts) (proposal.Suite, bool) {
	s := proposal.Suite{Protocol: ours.Protocol}
	if ours.Protocol != proposal.ProtoAH {
		found := false
		for _, e := range ours.Encr {
			if !slices.Contains(theirs.Encr, e) {
				continue
			}
			info, ok := e.ID.Info()
			if !ok {
				continue
			}
			if info.AEAD {
				if len(theirs.Integ) > 0 && !slices.Contains(theirs.Integ, proposal.IntegNone) {
					continue
				}
				s.Encr, s.Integ, found = e, proposal.IntegNone, true
				break
			}
			integ, ok := first(ours.Integ, theirs.Integ, func(a proposal.IntegID) bool { return a != proposal.IntegNone })
			if !ok {
				continue
			}
			s.Encr, s.Integ, found = e, integ, true
			break
		}
		if !found {
			return s, false
		}
	} else {
		integ, ok := first(ours.Integ, theirs.Integ, func(a proposal.IntegID) bool { return a != proposal.IntegNone })
		if !ok || len(theirs.Encr) > 0 {
			return s, false
		}
		s.Integ = integ
	}
	if ours.Protocol == proposal.ProtoIKE {
		prf, ok := first(ours.PRF, theirs.PRF, nil)
		if !ok {
			return s, false
		}
		s.PRF = prf
	} else if len(theirs.PRF) > 0 {
		return s, false
	}
	if !o.noKE {
		ke, ok := optional(ours.KE, theirs.KE)
		if !ok {
			return s, false
		}
		s.KE = ke
		for i := range ours.AddKE {
			add, ok := optional(ours.AddKE[i], theirs.AddKE[i])
			if !ok {
				return s, false
			}
			s.AddKE[i] = add
		}
		if s.KE == proposal.KENone && s.AddKE != [7]proposal.KEID{} {
			// Additional key exchanges follow the first one (RFC 9370
			// §2.2.4); without it they have nothing to follow.
			return s, false
		}
	}
	if ours.Protocol != proposal.ProtoIKE {
		esn, ok := first(orNoESN(ours.ESN), orNoESN(theirs.ESN), nil)
		if !ok {
			return s, false
		}
		s.ESN = esn
	} else if len(theirs.ESN) > 0 {
		return s, false
	}
	return s, true
}

// first returns our first value the peer also lists.
func first[T comparable](ours, theirs []T, ok func(T) bool) (T, bool) {
	for _, v := range ours {
		if (ok == nil || ok(v)) && slices.Contains(theirs, v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// optional matches a transform type that may be absent: absent on both
// sides is "none"; NONE (0) listed is an explicit option (RFC 9370 §2.2).
func optional(ours, theirs []proposal.KEID) (proposal.KEID, bool) {
	if len(ours) == 0 && len(theirs) == 0 {
		return proposal.KENone, true
	}
	if len(ours) == 0 {
		return proposal.KENone, slices.Contains(theirs, proposal.KENone)
	}
	if len(theirs) == 0 {
		return proposal.KENone, slices.Contains(ours, proposal.KENone)
	}
	return first(ours, theirs, nil)
}

func orNoESN(l []bool) []bool {
	if len(l) == 0 {
		return []bool{false}
	}
	return l
}

// supported reports whether bitw implements every transform of s.
func supported(s proposal.Suite) bool {
	if s.Protocol != proposal.ProtoAH {
		if _, ok := s.Encr.ID.Info(); !ok || !s.Encr.ID.ValidKeyBits(s.Encr.KeyBits) {
			return false
		}
	}
	if s.Integ != proposal.IntegNone {
		if _, ok := s.Integ.Info(); !ok {
			return false
		}
	}
	if s.Protocol == proposal.ProtoIKE {
		if _, ok := s.PRF.Info(); !ok {
			return false
		}
	}
	for _, ke := range append([]proposal.KEID{s.KE}, s.AddKE[:]...) {
		if ke == proposal.KENone {
			continue
		}
		if _, ok := group.DataLen(ke, true); !ok {
			return false
		}
	}
	return true
}

// checkChosen verifies a responder's choice against what we offered: one
// proposal, numbered as one of ours, whose single transforms we listed.
func checkChosen(sa *message.SA, offered []proposal.Proposal, o negotiateOpts) (selection, error) {
	if sa == nil || len(sa.Proposals) != 1 {
		return selection{}, errors.New("ike: the response must carry exactly one proposal")
	}
	got := &sa.Proposals[0]
	p, err := got.Config()
	if err != nil {
		return selection{}, err
	}
	n := int(got.Number)
	if n < 1 || n > len(offered) {
		return selection{}, errors.New("ike: the response names a proposal we did not offer")
	}
	ours := offered[n-1]
	if ours.Protocol != p.Protocol {
		return selection{}, errors.New("ike: the chosen proposal has another protocol")
	}
	single := func(k int) bool { return k <= 1 }
	if !single(len(p.Encr)) || !single(len(p.Integ)) || !single(len(p.PRF)) || !single(len(p.KE)) || !single(len(p.ESN)) {
		return selection{}, errors.New("ike: the chosen proposal lists alternatives")
	}
	for _, l := range p.AddKE {
		if !single(len(l)) {
			return selection{}, errors.New("ike: the chosen proposal lists alternatives")
		}
	}
	s, ok := match(p, ours, o)
	if !ok {
		return selection{}, errors.New("ike: the chosen transforms were not offered")
	}
	return selection{suite: s, number: got.Number, spi: got.SPI}, nil
}

// offerFor encodes our proposals for a request, with spi in each.
func offerFor(configured []proposal.Proposal, spi []byte, o negotiateOpts) []message.Proposal {
	out := make([]message.Proposal, 0, len(configured))
	for i, p := range configured {
		if o.noKE {
			p.KE = nil
			p.AddKE = [7][]proposal.KEID{}
		}
		out = append(out, message.ProposalFrom(uint8(i+1), spi, p))
	}
	return out
}
