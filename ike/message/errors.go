package message

import (
	"fmt"
	"strings"
)

// Reason classifies why a message or fragment was refused, so that the
// engine can count drops by cause.
type Reason uint8

const (
	ReasonTruncated     Reason = iota + 1 // shorter than the IKE header or its Length field
	ReasonLength                          // header Length disagrees with the datagram
	ReasonIKEv1                           // major version 1: an IKEv1 message
	ReasonMajorVersion                    // major version above 2 (RFC 7296 §2.5)
	ReasonChain                           // generic payload headers overrun or leave trailing octets
	ReasonPayloadSize                     // a payload below its type's minimum size
	ReasonCritical                        // unknown payload type with the critical bit set (§2.5)
	ReasonSyntax                          // a payload body that does not parse
	ReasonPlacement                       // SK or SKF not alone and last, nested, or not expected here
	ReasonNoCipher                        // a protected message and no keys to open it
	ReasonIntegrity                       // the ICV did not verify
	ReasonPadding                         // Pad Length runs past the decrypted content
	ReasonFragment                        // fragment numbering invalid or inconsistent (RFC 7383 §2.6)
	ReasonFragmentStale                   // fragment of an older fragmentation (fewer fragments, §2.6)
	ReasonFragmentLimit                   // a reassembly bound was exceeded
	numReasons
)

// NumReasons sizes a counter array indexed by Reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	ReasonTruncated:     "truncated",
	ReasonLength:        "length mismatch",
	ReasonIKEv1:         "IKEv1 message",
	ReasonMajorVersion:  "unsupported major version",
	ReasonChain:         "bad payload chain",
	ReasonPayloadSize:   "payload too short",
	ReasonCritical:      "unsupported critical payload",
	ReasonSyntax:        "invalid syntax",
	ReasonPlacement:     "misplaced encrypted payload",
	ReasonNoCipher:      "protected message without keys",
	ReasonIntegrity:     "integrity check failed",
	ReasonPadding:       "bad padding",
	ReasonFragment:      "bad fragment",
	ReasonFragmentStale: "stale fragment",
	ReasonFragmentLimit: "reassembly limit",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ParseError is every error Decode, ParseHeader and the Reassembler return.
type ParseError struct {
	Reason Reason
	// Notify is the error notification RFC 7296 prescribes as the answer
	// (INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION),
	// or 0 when the message is to be dropped without one.
	Notify NotifyType
	// Payload is the payload type at fault, when one is.
	Payload PayloadType
	// Authenticated is true when the fault lies inside an SK or SKF payload
	// whose ICV verified. RFC 7296 §3.10.1 allows answering INVALID_SYNTAX
	// only then; for unprotected messages the engine decides.
	Authenticated bool
	Detail        string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("ike/message: ")
	b.WriteString(e.Reason.String())
	if e.Payload != PayloadNone {
		b.WriteString(" in ")
		b.WriteString(e.Payload.String())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// NotifyData is the Notification Data to send with e.Notify: the payload
// type octet for UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §3.10.1), else nil.
func (e *ParseError) NotifyData() []byte {
	if e.Notify == NotifyUnsupportedCriticalPayload {
		return []byte{byte(e.Payload)}
	}
	return nil
}

func syntaxErr(t PayloadType, format string, args ...any) *ParseError {
	return &ParseError{Reason: ReasonSyntax, Notify: NotifyInvalidSyntax, Payload: t, Detail: fmt.Sprintf(format, args...)}
}

func chainErr(r Reason, t PayloadType, format string, args ...any) *ParseError {
	return &ParseError{Reason: r, Notify: NotifyInvalidSyntax, Payload: t, Detail: fmt.Sprintf(format, args...)}
}
