package message

import (
	"encoding/binary"
	"fmt"
)

// EAP payload, RFC 7296 §3.16, carrying one EAP message (RFC 3748 §4):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Code      | Identifier    |           Length              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      | Type_Data...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	eapCode       = 0
	eapIdentifier = 1
	eapLength     = 2
	eapType       = 4
	eapHeaderLen  = 4
)

// EAPCode is the EAP message Code (RFC 3748 §4).
type EAPCode uint8

const (
	EAPRequest  EAPCode = 1
	EAPResponse EAPCode = 2
	EAPSuccess  EAPCode = 3
	EAPFailure  EAPCode = 4
)

func (c EAPCode) String() string {
	switch c {
	case EAPRequest:
		return "REQUEST"
	case EAPResponse:
		return "RESPONSE"
	case EAPSuccess:
		return "SUCCESS"
	case EAPFailure:
		return "FAILURE"
	}
	return fmt.Sprintf("EAP_CODE(%d)", uint8(c))
}

// EAP is the EAP payload (RFC 7296 §3.16). This package only frames the
// EAP message: Type is set for Request and Response; Success and Failure
// have neither Type nor Data; other codes keep everything after the
// 4-octet header in Data.
type EAP struct {
	Code       EAPCode
	Identifier uint8
	Type       uint8
	Data       []byte
}

func (*EAP) PayloadType() PayloadType { return PayloadEAP }

func parseEAP(body []byte) (*EAP, error) {
	e := &EAP{Code: EAPCode(body[eapCode]), Identifier: body[eapIdentifier]}
	if l := int(binary.BigEndian.Uint16(body[eapLength:])); l != len(body) {
		return nil, fmt.Errorf("EAP Length %d in a %d-octet payload body", l, len(body))
	}
	switch e.Code {
	case EAPRequest, EAPResponse:
		if len(body) <= eapType {
			return nil, fmt.Errorf("EAP %v without a Type", e.Code)
		}
		e.Type, e.Data = body[eapType], orNil(body[eapType+1:])
	case EAPSuccess, EAPFailure:
		if len(body) != eapHeaderLen {
			return nil, fmt.Errorf("EAP %v of %d octets", e.Code, len(body))
		}
	default:
		e.Data = orNil(body[eapHeaderLen:])
	}
	return e, nil
}

func (e *EAP) appendBody(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, byte(e.Code), e.Identifier, 0, 0)
	switch e.Code {
	case EAPRequest, EAPResponse:
		b = append(b, e.Type)
	case EAPSuccess, EAPFailure:
		if e.Type != 0 || len(e.Data) != 0 {
			return nil, fmt.Errorf("ike/message: EAP %v carries no Type or Data", e.Code)
		}
	default:
		if e.Type != 0 {
			return nil, fmt.Errorf("ike/message: EAP code %d carries no Type", e.Code)
		}
	}
	b = append(b, e.Data...)
	if len(b)-start > maxPayloadLen-genericLen {
		return nil, fmt.Errorf("ike/message: EAP message of %d octets", len(b)-start)
	}
	binary.BigEndian.PutUint16(b[start+eapLength:], uint16(len(b)-start))
	return b, nil
}
