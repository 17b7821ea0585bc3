package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PayloadType is the IKEv2 payload type (RFC 7296 §3.2).
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33 // §3.3
	PayloadKE       PayloadType = 34 // §3.4
	PayloadIDi      PayloadType = 35 // §3.5
	PayloadIDr      PayloadType = 36 // §3.5
	PayloadCert     PayloadType = 37 // §3.6
	PayloadCertReq  PayloadType = 38 // §3.7
	PayloadAuth     PayloadType = 39 // §3.8
	PayloadNonce    PayloadType = 40 // §3.9
	PayloadNotify   PayloadType = 41 // §3.10
	PayloadDelete   PayloadType = 42 // §3.11
	PayloadVendorID PayloadType = 43 // §3.12
	PayloadTSi      PayloadType = 44 // §3.13
	PayloadTSr      PayloadType = 45 // §3.13
	PayloadSK       PayloadType = 46 // §3.14
	PayloadCP       PayloadType = 47 // §3.15
	PayloadEAP      PayloadType = 48 // §3.16
	PayloadSKF      PayloadType = 53 // RFC 7383 §2.5
)

// payloadNames uses the notation of RFC 7296 §3.2 (No for Ni/Nr).
var payloadNames = map[PayloadType]string{
	PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCert: "CERT", PayloadCertReq: "CERTREQ", PayloadAuth: "AUTH",
	PayloadNonce: "No", PayloadNotify: "N", PayloadDelete: "D", PayloadVendorID: "V",
	PayloadTSi: "TSi", PayloadTSr: "TSr", PayloadSK: "SK", PayloadCP: "CP",
	PayloadEAP: "EAP", PayloadSKF: "SKF",
}

func (t PayloadType) String() string {
	if n, ok := payloadNames[t]; ok {
		return n
	}
	if t == PayloadNone {
		return "NONE"
	}
	return fmt.Sprintf("PAYLOAD(%d)", uint8(t))
}

// Generic payload header, RFC 7296 §3.2:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	genNext      = 0
	genFlags     = 1
	genLength    = 2
	genericLen   = 4
	flagCritical = 0x80

	maxPayloadLen = 1<<16 - 1
)

// minBody is the smallest body (after the generic header) each payload
// type can have: its fixed fields. The validation pass enforces it before
// any body is parsed.
var minBody = map[PayloadType]int{
	PayloadSA:       8, // one proposal header
	PayloadKE:       4,
	PayloadIDi:      4,
	PayloadIDr:      4,
	PayloadCert:     1,
	PayloadCertReq:  1,
	PayloadAuth:     4,
	PayloadNonce:    MinNonceLen,
	PayloadNotify:   4,
	PayloadDelete:   4,
	PayloadVendorID: 0,
	PayloadTSi:      4,
	PayloadTSr:      4,
	PayloadSK:       0, // checked against the Cipher when opened
	PayloadCP:       4,
	PayloadEAP:      4,
	PayloadSKF:      skfFixedLen,
}

func known(t PayloadType) bool {
	_, ok := minBody[t]
	return ok
}

// Payload is one decoded payload. The concrete types are *SA, *KE, *IDi,
// *IDr, *Cert, *CertReq, *Auth, *Nonce, *Notify, *Delete, *VendorID, *TSi,
// *TSr, *CP, *EAP and *Unknown. SK and SKF are not payloads of a Message:
// they are how Encode and Decode protect Message.Payloads.
type Payload interface {
	PayloadType() PayloadType
	// appendBody appends the payload's body, after the generic header.
	appendBody(b []byte) ([]byte, error)
}

// Unknown is a payload of a type this package does not implement, kept raw
// so that it survives re-encoding. Decode yields it only for payloads
// without the critical bit; with the bit set the message is refused.
type Unknown struct {
	Type     PayloadType
	Critical bool
	Body     []byte
}

func (u *Unknown) PayloadType() PayloadType { return u.Type }

func (u *Unknown) appendBody(b []byte) ([]byte, error) {
	if known(u.Type) || u.Type == PayloadNone {
		return nil, fmt.Errorf("ike/message: Unknown payload cannot carry type %v", u.Type)
	}
	return append(b, u.Body...), nil
}

// rawPayload is one payload as the validation pass found it.
type rawPayload struct {
	typ      PayloadType
	next     PayloadType // the generic header's Next Payload; for SK/SKF the first inner payload
	critical bool
	body     []byte
}

// validateChain walks the generic payload headers of b, starting with
// payload type first, checking bounds only: every payload fits, Next
// Payload chaining ends exactly at the end of b, each body reaches its
// type's minimum size. An SK or SKF payload ends the walk and must end b.
// Only after the whole chain checks out is an unknown critical payload
// reported.
func validateChain(b []byte, first PayloadType) ([]rawPayload, error) {
	var out []rawPayload
	critical := -1
	off := 0
	for next := first; next != PayloadNone; {
		typ := next
		if len(b)-off < genericLen {
			return nil, chainErr(ReasonChain, typ, "payload header at offset %d overruns the message", off)
		}
		next = PayloadType(b[off+genNext])
		length := int(binary.BigEndian.Uint16(b[off+genLength:]))
		if length < genericLen || length > len(b)-off {
			return nil, chainErr(ReasonChain, typ, "payload length %d at offset %d, %d octets left", length, off, len(b)-off)
		}
		p := rawPayload{typ: typ, next: next, critical: b[off+genFlags]&flagCritical != 0, body: b[off+genericLen : off+length]}
		if m, ok := minBody[typ]; ok && len(p.body) < m {
			return nil, chainErr(ReasonPayloadSize, typ, "body of %d octets, minimum %d", len(p.body), m)
		}
		if !known(typ) && p.critical && critical < 0 {
			critical = len(out)
		}
		out = append(out, p)
		off += length
		if typ == PayloadSK || typ == PayloadSKF {
			if off != len(b) {
				return nil, &ParseError{Reason: ReasonPlacement, Notify: NotifyInvalidSyntax, Payload: typ,
					Detail: fmt.Sprintf("%d octets follow it", len(b)-off)}
			}
			break
		}
	}
	if off != len(b) {
		return nil, chainErr(ReasonChain, PayloadNone, "%d octets after the last payload", len(b)-off)
	}
	if critical >= 0 {
		t := out[critical].typ
		return nil, &ParseError{Reason: ReasonCritical, Notify: NotifyUnsupportedCriticalPayload, Payload: t,
			Detail: fmt.Sprintf("payload type %d", uint8(t))}
	}
	return out, nil
}

// parsePayload gives a validated payload its meaning.
func parsePayload(r rawPayload) (Payload, error) {
	var (
		p   Payload
		err error
	)
	switch r.typ {
	case PayloadSA:
		p, err = parseSA(r.body)
	case PayloadKE:
		p, err = parseKE(r.body)
	case PayloadIDi:
		var id ID
		id, err = parseID(r.body)
		p = &IDi{id}
	case PayloadIDr:
		var id ID
		id, err = parseID(r.body)
		p = &IDr{id}
	case PayloadCert:
		p = &Cert{Encoding: CertEncoding(r.body[0]), Data: orNil(r.body[1:])}
	case PayloadCertReq:
		p, err = parseCertReq(r.body)
	case PayloadAuth:
		p = &Auth{Method: AuthMethod(r.body[0]), Data: orNil(r.body[4:])}
	case PayloadNonce:
		p, err = parseNonce(r.body)
	case PayloadNotify:
		p, err = parseNotify(r.body)
	case PayloadDelete:
		p, err = parseDelete(r.body)
	case PayloadVendorID:
		p = &VendorID{Data: orNil(r.body)}
	case PayloadTSi:
		var s []Selector
		s, err = parseTS(r.body)
		p = &TSi{Selectors: s}
	case PayloadTSr:
		var s []Selector
		s, err = parseTS(r.body)
		p = &TSr{Selectors: s}
	case PayloadCP:
		p, err = parseCP(r.body)
	case PayloadEAP:
		p, err = parseEAP(r.body)
	case PayloadSK, PayloadSKF:
		return nil, &ParseError{Reason: ReasonPlacement, Notify: NotifyInvalidSyntax, Payload: r.typ,
			Detail: "not expected here"}
	default:
		return &Unknown{Type: r.typ, Critical: r.critical, Body: orNil(r.body)}, nil
	}
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, syntaxErr(r.typ, "%v", err)
	}
	return p, nil
}

// parseChain validates and parses the payload chain b.
func parseChain(b []byte, first PayloadType) ([]Payload, error) {
	raws, err := validateChain(b, first)
	if err != nil {
		return nil, err
	}
	return parseRaws(raws)
}

// appendPayloads appends the generic-header chain of ps, the last Next
// Payload being 0.
func appendPayloads(b []byte, ps []Payload) ([]byte, error) {
	for i, p := range ps {
		if p == nil {
			return nil, fmt.Errorf("ike/message: payload %d is nil", i)
		}
		next := PayloadNone
		if i+1 < len(ps) {
			if ps[i+1] == nil {
				return nil, fmt.Errorf("ike/message: payload %d is nil", i+1)
			}
			next = ps[i+1].PayloadType()
		}
		start := len(b)
		flags := byte(0)
		if u, ok := p.(*Unknown); ok && u.Critical {
			flags = flagCritical
		}
		b = append(b, byte(next), flags, 0, 0)
		var err error
		if b, err = p.appendBody(b); err != nil {
			return nil, err
		}
		if len(b)-start > maxPayloadLen {
			return nil, fmt.Errorf("ike/message: %v payload of %d octets exceeds the Payload Length field", p.PayloadType(), len(b)-start)
		}
		binary.BigEndian.PutUint16(b[start+genLength:], uint16(len(b)-start))
	}
	return b, nil
}

// orNil maps an empty slice to nil, so that decoded payloads compare equal
// to built ones, which leave absent fields nil.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func firstType(ps []Payload) PayloadType {
	if len(ps) == 0 || ps[0] == nil {
		return PayloadNone
	}
	return ps[0].PayloadType()
}
