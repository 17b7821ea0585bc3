package message

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Security Association payload, RFC 7296 §3.3: a list of proposals.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                          <Proposals>                          ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Proposal substructure, §3.3.1:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                        <Transforms>                           ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	propLast       = 0
	propLength     = 2
	propNum        = 4
	propProtocol   = 5
	propSPISize    = 6
	propTransforms = 7
	propFixedLen   = 8

	lastProposal  = 0
	moreProposals = 2
)

// Transform substructure, §3.3.2:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                      Transform Attributes                     ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	xformLast     = 0
	xformLength   = 2
	xformType     = 4
	xformID       = 6
	xformFixedLen = 8

	lastTransform  = 0
	moreTransforms = 3
)

// Data attribute, §3.3.5:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	attrFormatTV = 0x8000
	attrTypeMask = 0x7fff
)

// SA is the Security Association payload (RFC 7296 §3.3).
type SA struct {
	Proposals []Proposal
}

func (*SA) PayloadType() PayloadType { return PayloadSA }

// Proposal is one proposal substructure (§3.3.1). Numbers start at 1 and
// grow by one when offered; an accepted proposal keeps the number it was
// offered with.
type Proposal struct {
	Number   uint8
	Protocol proposal.Protocol
	// SPI is empty for IKE in IKE_SA_INIT, 8 octets for IKE when rekeying
	// it, 4 octets for AH and ESP (§3.3.1).
	SPI        []byte
	Transforms []Transform
}

// Transform is one transform substructure (§3.3.2). ID holds a
// proposal.EncrID, PRFID, IntegID or KEID, or the ESN value, by Type.
type Transform struct {
	Type       proposal.TransformType
	ID         uint16
	Attributes []Attribute
}

// Attribute is a transform attribute (§3.3.5). RFC 7296 defines only Key
// Length (proposal.AttrKeyLength), in TV format.
type Attribute struct {
	Type  uint16 // without the AF bit
	TLV   bool   // AF=0: the value is Data; otherwise it is the 2-octet Value
	Value uint16
	Data  []byte
}

// KeyLength returns the Key Length attribute, in bits.
func (t Transform) KeyLength() (uint16, bool) {
	for _, a := range t.Attributes {
		if a.Type == proposal.AttrKeyLength && !a.TLV {
			return a.Value, true
		}
	}
	return 0, false
}

// EncrTransform is the ENCR transform for e, with a Key Length attribute
// when e has a key size (§3.3.5: only for variable-length ciphers).
func EncrTransform(e proposal.Encr) Transform {
	t := Transform{Type: proposal.TypeEncr, ID: uint16(e.ID)}
	if e.KeyBits != 0 {
		if info, ok := e.ID.Info(); !ok || info.KeyBits != nil {
			t.Attributes = []Attribute{{Type: proposal.AttrKeyLength, Value: e.KeyBits}}
		}
	}
	return t
}

// ProposalFrom encodes a configured proposal, every alternative listed, in
// the transform order strongSwan uses: ENCR, INTEG, PRF, KE, ADDKE, ESN.
func ProposalFrom(num uint8, spi []byte, p proposal.Proposal) Proposal {
	out := Proposal{Number: num, Protocol: p.Protocol, SPI: spi}
	add := func(t proposal.TransformType, id uint16) {
		out.Transforms = append(out.Transforms, Transform{Type: t, ID: id})
	}
	for _, e := range p.Encr {
		out.Transforms = append(out.Transforms, EncrTransform(e))
	}
	for _, a := range p.Integ {
		add(proposal.TypeInteg, uint16(a))
	}
	for _, f := range p.PRF {
		add(proposal.TypePRF, uint16(f))
	}
	for _, k := range p.KE {
		add(proposal.TypeKE, uint16(k))
	}
	for i, l := range p.AddKE {
		for _, k := range l {
			add(proposal.TypeAddKE1+proposal.TransformType(i), uint16(k))
		}
	}
	for _, e := range p.ESN {
		add(proposal.TypeESN, esnID(e))
	}
	return out
}

// ProposalFromSuite encodes a negotiated suite, as a responder returns it:
// one transform of each type present. Zero values (no PRF, IntegNone,
// KENone) are left out; AH and ESP always carry their ESN transform.
func ProposalFromSuite(num uint8, spi []byte, s proposal.Suite) Proposal {
	out := Proposal{Number: num, Protocol: s.Protocol, SPI: spi}
	add := func(t proposal.TransformType, id uint16) {
		out.Transforms = append(out.Transforms, Transform{Type: t, ID: id})
	}
	if s.Encr.ID != 0 {
		out.Transforms = append(out.Transforms, EncrTransform(s.Encr))
	}
	if s.Integ != proposal.IntegNone {
		add(proposal.TypeInteg, uint16(s.Integ))
	}
	if s.PRF != 0 {
		add(proposal.TypePRF, uint16(s.PRF))
	}
	if s.KE != proposal.KENone {
		add(proposal.TypeKE, uint16(s.KE))
	}
	for i, k := range s.AddKE {
		if k != proposal.KENone {
			add(proposal.TypeAddKE1+proposal.TransformType(i), uint16(k))
		}
	}
	if s.Protocol == proposal.ProtoAH || s.Protocol == proposal.ProtoESP {
		add(proposal.TypeESN, esnID(s.ESN))
	}
	return out
}

func esnID(on bool) uint16 {
	if on {
		return proposal.ESNYes
	}
	return proposal.ESNNo
}

// Config returns the proposal's alternatives in the proposal package's
// form. RFC 7296 §3.3.6 makes a proposal with a transform type or
// attribute the receiver does not understand unacceptable; Config reports
// those as errors so the engine skips the proposal.
func (p *Proposal) Config() (proposal.Proposal, error) {
	out := proposal.Proposal{Protocol: p.Protocol}
	for _, t := range p.Transforms {
		var keyBits uint16
		for _, a := range t.Attributes {
			if t.Type == proposal.TypeEncr && a.Type == proposal.AttrKeyLength && !a.TLV {
				keyBits = a.Value
				continue
			}
			return proposal.Proposal{}, fmt.Errorf("ike/message: %v transform %d carries attribute %d", t.Type, t.ID, a.Type)
		}
		switch {
		case t.Type == proposal.TypeEncr:
			out.Encr = append(out.Encr, proposal.Encr{ID: proposal.EncrID(t.ID), KeyBits: keyBits})
		case t.Type == proposal.TypePRF:
			out.PRF = append(out.PRF, proposal.PRFID(t.ID))
		case t.Type == proposal.TypeInteg:
			out.Integ = append(out.Integ, proposal.IntegID(t.ID))
		case t.Type == proposal.TypeKE:
			out.KE = append(out.KE, proposal.KEID(t.ID))
		case t.Type == proposal.TypeESN:
			if t.ID != proposal.ESNNo && t.ID != proposal.ESNYes {
				return proposal.Proposal{}, fmt.Errorf("ike/message: ESN transform ID %d", t.ID)
			}
			out.ESN = append(out.ESN, t.ID == proposal.ESNYes)
		case t.Type >= proposal.TypeAddKE1 && t.Type <= proposal.TypeAddKE7:
			i := t.Type - proposal.TypeAddKE1
			out.AddKE[i] = append(out.AddKE[i], proposal.KEID(t.ID))
		default:
			return proposal.Proposal{}, fmt.Errorf("ike/message: unknown transform type %d", uint8(t.Type))
		}
	}
	return out, nil
}

// spiSizeValid applies §3.3.1: AH and ESP SPIs are 4 octets, IKE's are
// empty in IKE_SA_INIT and 8 octets when rekeying. For protocols this
// package does not know any size is carried.
func spiSizeValid(p proposal.Protocol, n int) bool {
	switch p {
	case proposal.ProtoIKE:
		return n == 0 || n == 8
	case proposal.ProtoAH, proposal.ProtoESP:
		return n == 4
	}
	return true
}

func parseSA(body []byte) (*SA, error) {
	s := cryptobyte.String(body)
	sa := &SA{}
	for !s.Empty() {
		var last, reserved uint8
		var length uint16
		if !s.ReadUint8(&last) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return nil, errors.New("truncated proposal header")
		}
		var ps []byte
		if length < propFixedLen || !s.ReadBytes(&ps, int(length)-4) {
			return nil, fmt.Errorf("proposal length %d, %d octets left", length, len(s)+4)
		}
		want := uint8(moreProposals)
		if s.Empty() {
			want = lastProposal
		}
		if last != want {
			return nil, fmt.Errorf("proposal %d: Last Substruc %d, want %d", len(sa.Proposals)+1, last, want)
		}
		p, err := parseProposal(ps)
		if err != nil {
			return nil, err
		}
		if p.Number == 0 {
			return nil, errors.New("proposal number 0")
		}
		if n := len(sa.Proposals); n > 0 && p.Number != sa.Proposals[n-1].Number+1 {
			return nil, fmt.Errorf("proposal number %d follows %d", p.Number, sa.Proposals[n-1].Number)
		}
		sa.Proposals = append(sa.Proposals, p)
	}
	if len(sa.Proposals) > 1 && sa.Proposals[0].Number != 1 {
		return nil, fmt.Errorf("first of %d proposals is number %d", len(sa.Proposals), sa.Proposals[0].Number)
	}
	return sa, nil
}

// parseProposal parses a proposal substructure after its first 4 octets.
func parseProposal(b []byte) (Proposal, error) {
	s := cryptobyte.String(b)
	var p Proposal
	var proto, spiSize, count uint8
	if !s.ReadUint8(&p.Number) || !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint8(&count) {
		return p, errors.New("truncated proposal")
	}
	p.Protocol = proposal.Protocol(proto)
	if !spiSizeValid(p.Protocol, int(spiSize)) {
		return p, fmt.Errorf("proposal %d: SPI size %d for %v", p.Number, spiSize, p.Protocol)
	}
	if !s.ReadBytes(&p.SPI, int(spiSize)) {
		return p, fmt.Errorf("proposal %d: SPI overruns the proposal", p.Number)
	}
	p.SPI = orNil(p.SPI)
	for !s.Empty() {
		var last, reserved uint8
		var length uint16
		if !s.ReadUint8(&last) || !s.ReadUint8(&reserved) || !s.ReadUint16(&length) {
			return p, fmt.Errorf("proposal %d: truncated transform header", p.Number)
		}
		var ts []byte
		if length < xformFixedLen || !s.ReadBytes(&ts, int(length)-4) {
			return p, fmt.Errorf("proposal %d: transform length %d, %d octets left", p.Number, length, len(s)+4)
		}
		want := uint8(moreTransforms)
		if s.Empty() {
			want = lastTransform
		}
		if last != want {
			return p, fmt.Errorf("proposal %d transform %d: Last Substruc %d, want %d", p.Number, len(p.Transforms)+1, last, want)
		}
		t, err := parseTransform(ts)
		if err != nil {
			return p, fmt.Errorf("proposal %d transform %d: %w", p.Number, len(p.Transforms)+1, err)
		}
		p.Transforms = append(p.Transforms, t)
	}
	if len(p.Transforms) != int(count) {
		return p, fmt.Errorf("proposal %d: %d transforms announced, %d present", p.Number, count, len(p.Transforms))
	}
	return p, nil
}

// parseTransform parses a transform substructure after its first 4 octets.
func parseTransform(b []byte) (Transform, error) {
	s := cryptobyte.String(b)
	var t Transform
	var typ, reserved uint8
	if !s.ReadUint8(&typ) || !s.ReadUint8(&reserved) || !s.ReadUint16(&t.ID) {
		return t, errors.New("truncated transform")
	}
	t.Type = proposal.TransformType(typ)
	for !s.Empty() {
		var at, v uint16
		if !s.ReadUint16(&at) || !s.ReadUint16(&v) {
			return t, errors.New("truncated attribute")
		}
		a := Attribute{Type: at & attrTypeMask}
		if at&attrFormatTV != 0 {
			a.Value = v
		} else {
			a.TLV = true
			if !s.ReadBytes(&a.Data, int(v)) {
				return t, fmt.Errorf("attribute %d length %d overruns the transform", a.Type, v)
			}
			a.Data = orNil(a.Data)
		}
		if a.Type == proposal.AttrKeyLength && a.TLV {
			return t, errors.New("Key Length attribute in TLV format")
		}
		t.Attributes = append(t.Attributes, a)
	}
	return t, nil
}

func (sa *SA) appendBody(b []byte) ([]byte, error) {
	if len(sa.Proposals) == 0 {
		return nil, errors.New("ike/message: SA payload without proposals")
	}
	for i, p := range sa.Proposals {
		if p.Number == 0 || (i > 0 && p.Number != sa.Proposals[i-1].Number+1) ||
			(i == 0 && len(sa.Proposals) > 1 && p.Number != 1) {
			return nil, fmt.Errorf("ike/message: proposal %d numbered %d (§3.3.1: 1, 2, 3...)", i+1, p.Number)
		}
		if !spiSizeValid(p.Protocol, len(p.SPI)) || len(p.SPI) > 255 {
			return nil, fmt.Errorf("ike/message: proposal %d: SPI of %d octets for %v", p.Number, len(p.SPI), p.Protocol)
		}
		if len(p.Transforms) > 255 {
			return nil, fmt.Errorf("ike/message: proposal %d has %d transforms", p.Number, len(p.Transforms))
		}
		start := len(b)
		last := byte(moreProposals)
		if i == len(sa.Proposals)-1 {
			last = lastProposal
		}
		b = append(b, last, 0, 0, 0, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j, t := range p.Transforms {
			var err error
			if b, err = appendTransform(b, t, j == len(p.Transforms)-1); err != nil {
				return nil, fmt.Errorf("ike/message: proposal %d: %w", p.Number, err)
			}
		}
		if len(b)-start > maxPayloadLen {
			return nil, fmt.Errorf("ike/message: proposal %d is %d octets", p.Number, len(b)-start)
		}
		binary.BigEndian.PutUint16(b[start+propLength:], uint16(len(b)-start))
	}
	return b, nil
}

func appendTransform(b []byte, t Transform, isLast bool) ([]byte, error) {
	start := len(b)
	last := byte(moreTransforms)
	if isLast {
		last = lastTransform
	}
	b = append(b, last, 0, 0, 0, byte(t.Type), 0)
	b = binary.BigEndian.AppendUint16(b, t.ID)
	for _, a := range t.Attributes {
		if a.Type > attrTypeMask {
			return nil, fmt.Errorf("attribute type %d out of range", a.Type)
		}
		if !a.TLV {
			b = binary.BigEndian.AppendUint16(b, a.Type|attrFormatTV)
			b = binary.BigEndian.AppendUint16(b, a.Value)
			continue
		}
		if a.Type == proposal.AttrKeyLength {
			return nil, errors.New("Key Length attribute must be in TV format")
		}
		if len(a.Data) > maxPayloadLen {
			return nil, fmt.Errorf("attribute %d of %d octets", a.Type, len(a.Data))
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
		b = append(b, a.Data...)
	}
	if len(b)-start > maxPayloadLen {
		return nil, fmt.Errorf("transform of %d octets", len(b)-start)
	}
	binary.BigEndian.PutUint16(b[start+xformLength:], uint16(len(b)-start))
	return b, nil
}
