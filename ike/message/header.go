package message

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// IKE header, RFC 7296 §3.1:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	hdrSPIi     = 0
	hdrSPIr     = 8
	hdrNext     = 16
	hdrVersion  = 17
	hdrExchange = 18
	hdrFlags    = 19
	hdrMsgID    = 20
	hdrLength   = 24

	// HeaderLen is the size of the fixed IKE header.
	HeaderLen = 28

	// MajorVersion is the IKE major version this package speaks; the
	// minor version is sent as 0 and ignored on receipt (§3.1).
	MajorVersion = 2
)

// ExchangeType is the IKE exchange type (RFC 7296 §3.1).
type ExchangeType uint8

const (
	ExchangeIKESAInit       ExchangeType = 34
	ExchangeIKEAuth         ExchangeType = 35
	ExchangeCreateChildSA   ExchangeType = 36
	ExchangeInformational   ExchangeType = 37
	ExchangeIKEIntermediate ExchangeType = 43 // RFC 9242
	ExchangeIKEFollowupKE   ExchangeType = 44 // RFC 9370
)

func (e ExchangeType) String() string {
	switch e {
	case ExchangeIKESAInit:
		return "IKE_SA_INIT"
	case ExchangeIKEAuth:
		return "IKE_AUTH"
	case ExchangeCreateChildSA:
		return "CREATE_CHILD_SA"
	case ExchangeInformational:
		return "INFORMATIONAL"
	case ExchangeIKEIntermediate:
		return "IKE_INTERMEDIATE"
	case ExchangeIKEFollowupKE:
		return "IKE_FOLLOWUP_KE"
	}
	return fmt.Sprintf("EXCHANGE(%d)", uint8(e))
}

// Flags are the IKE header flags (RFC 7296 §3.1). Reserved bits are
// cleared on receipt, as the RFC says to ignore them.
type Flags uint8

const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: sender speaks a higher major version; always 0 here
	FlagResponse  Flags = 0x20 // R: this message is a response

	flagsKnown = FlagInitiator | FlagVersion | FlagResponse
)

func (f Flags) String() string {
	var parts []string
	if f&FlagInitiator != 0 {
		parts = append(parts, "I")
	}
	if f&FlagVersion != 0 {
		parts = append(parts, "V")
	}
	if f&FlagResponse != 0 {
		parts = append(parts, "R")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "|")
}

// Header is the fixed IKE header without the two fields that describe the
// encoding: Next Payload and Length, which Encode computes and ParseHeader
// checks.
type Header struct {
	SPIi      uint64 // IKE SA initiator's SPI
	SPIr      uint64 // IKE SA responder's SPI; 0 in the first IKE_SA_INIT request
	Exchange  ExchangeType
	Flags     Flags
	MessageID uint32
}

// IsResponse reports whether the R flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set: the sender is the original
// initiator of the IKE SA.
func (h Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// ParseHeader reads the fixed header of the IKE message b (the whole UDP
// payload, after any non-ESP marker) and returns it with the type of the
// first payload. The Length field must equal len(b) exactly.
//
// For ReasonMajorVersion the returned Header is filled in, so the engine can
// answer INVALID_MAJOR_VERSION with the sender's SPIs and Message ID
// (RFC 7296 §2.5).
func ParseHeader(b []byte) (Header, PayloadType, error) {
	if len(b) < HeaderLen {
		return Header{}, PayloadNone, &ParseError{Reason: ReasonTruncated,
			Detail: fmt.Sprintf("%d octets, the IKE header alone is %d", len(b), HeaderLen)}
	}
	h := Header{
		SPIi:      binary.BigEndian.Uint64(b[hdrSPIi:]),
		SPIr:      binary.BigEndian.Uint64(b[hdrSPIr:]),
		Exchange:  ExchangeType(b[hdrExchange]),
		Flags:     Flags(b[hdrFlags]) & flagsKnown,
		MessageID: binary.BigEndian.Uint32(b[hdrMsgID:]),
	}
	next := PayloadType(b[hdrNext])
	switch major := b[hdrVersion] >> 4; {
	case major > MajorVersion:
		return h, next, &ParseError{Reason: ReasonMajorVersion, Notify: NotifyInvalidMajorVersion,
			Detail: fmt.Sprintf("major version %d", major)}
	case major < MajorVersion:
		return h, next, &ParseError{Reason: ReasonIKEv1, Detail: fmt.Sprintf("major version %d", major)}
	}
	length := binary.BigEndian.Uint32(b[hdrLength:])
	if uint64(length) > uint64(len(b)) {
		return h, next, &ParseError{Reason: ReasonTruncated,
			Detail: fmt.Sprintf("header says %d octets, datagram has %d", length, len(b))}
	}
	if int(length) != len(b) {
		return h, next, &ParseError{Reason: ReasonLength, Notify: NotifyInvalidSyntax,
			Detail: fmt.Sprintf("header says %d octets, datagram has %d", length, len(b))}
	}
	return h, next, nil
}

// appendHeader appends the fixed header with a zero Length, which the
// caller patches with putLength once the message is complete.
func appendHeader(b []byte, h Header, next PayloadType) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(next), MajorVersion<<4, byte(h.Exchange), byte(h.Flags&flagsKnown))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, 0)
}

// putLength sets the Length field of the message msg, which starts with
// its header.
func putLength(msg []byte) error {
	if uint64(len(msg)) > 1<<32-1 {
		return fmt.Errorf("ike/message: message of %d octets exceeds the Length field", len(msg))
	}
	binary.BigEndian.PutUint32(msg[hdrLength:], uint32(len(msg)))
	return nil
}
