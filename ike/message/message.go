package message

import (
	"bytes"
	"fmt"
	"strings"
)

// Message is an IKE message: the header and its payloads in order. For a
// protected message Payloads are the payloads inside SK (or, once
// reassembled, inside the SKF fragments).
type Message struct {
	Header
	Payloads []Payload
	// Encrypted is set by Decode and the Reassembler when the payloads
	// arrived protected. Encode protects the payloads exactly when it is
	// given a Cipher; the engine checks this field to refuse unprotected
	// messages in exchanges that require protection.
	Encrypted bool

	raw []byte
}

// Decode parses the IKE message b (the UDP payload after any non-ESP
// marker). A message whose only payload is SK is opened with c, its ICV
// checked before any inner payload is looked at; c may be nil for
// unprotected messages. SKF fragments go to a Reassembler instead.
//
// Decode does not retain b. Every error is a *ParseError.
func Decode(b []byte, c Cipher) (*Message, error) {
	h, first, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	buf := bytes.Clone(b)
	raws, err := validateChain(buf[HeaderLen:], first)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h, raw: buf}
	n := len(raws)
	if n == 0 || (raws[n-1].typ != PayloadSK && raws[n-1].typ != PayloadSKF) {
		if m.Payloads, err = parseRaws(raws); err != nil {
			return nil, err
		}
		return m, nil
	}
	sk := raws[n-1]
	switch {
	case sk.typ == PayloadSKF:
		return nil, &ParseError{Reason: ReasonPlacement, Payload: PayloadSKF, Detail: "a fragment: use a Reassembler"}
	case n > 1:
		// RFC 7296 §3.14 allows unprotected payloads before SK; nothing
		// sends them and nothing here would trust them, so refuse.
		return nil, &ParseError{Reason: ReasonPlacement, Notify: NotifyInvalidSyntax, Payload: raws[0].typ,
			Detail: "unprotected payload before SK"}
	case c == nil:
		return nil, &ParseError{Reason: ReasonNoCipher, Payload: PayloadSK}
	}
	inner, err := openProtected(c, PayloadSK, buf[:HeaderLen+genericLen], sk.body)
	if err != nil {
		return nil, err
	}
	if m.Payloads, err = parseInner(inner, sk.next); err != nil {
		return nil, err
	}
	m.Encrypted = true
	return m, nil
}

func parseRaws(raws []rawPayload) ([]Payload, error) {
	if len(raws) == 0 {
		return nil, nil
	}
	out := make([]Payload, 0, len(raws))
	for _, r := range raws {
		p, err := parsePayload(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Encode appends the message to dst. With a Cipher the payloads go inside
// an SK payload (IV from c.NextIV, minimal padding, ICV); with nil they
// are sent in clear, as IKE_SA_INIT is. Next Payload and Length fields are
// computed; Header.Flags keeps only the I, V and R bits.
func (m *Message) Encode(dst []byte, c Cipher) ([]byte, error) {
	if c == nil {
		return m.EncodePlain(dst)
	}
	inner, err := appendPayloads(nil, m.Payloads)
	if err != nil {
		return nil, err
	}
	out, err := appendProtected(dst, m.Header, PayloadSK, firstType(m.Payloads), nil, inner, c)
	clear(inner)
	return out, err
}

// EncodePlain appends the message with its payloads in clear: the wire
// form of an unprotected message, and for a protected one the bytes before
// encryption, for logs and tests.
func (m *Message) EncodePlain(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = appendHeader(dst, m.Header, firstType(m.Payloads))
	dst, err := appendPayloads(dst, m.Payloads)
	if err != nil {
		return nil, err
	}
	if err := putLength(dst[start:]); err != nil {
		return nil, err
	}
	return dst, nil
}

// Raw returns the message octets as received, for a message from Decode;
// nil for messages built locally or reassembled from fragments. AUTH
// covers a peer's IKE_SA_INIT message exactly as received (§2.15).
func (m *Message) Raw() []byte { return m.raw }

// Get returns the first payload of type t, or nil.
func (m *Message) Get(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p.PayloadType() == t {
			return p
		}
	}
	return nil
}

// Notify returns the first notification of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.Type == t {
			return n
		}
	}
	return nil
}

// ErrorNotify returns the first error notification (type below 16384), or
// nil. In a response it means the request failed (§2.21).
func (m *Message) ErrorNotify() *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.Type.IsError() {
			return n
		}
	}
	return nil
}

// Find returns the first payload of concrete type P, or P's zero value:
// message.Find[*message.Nonce](m).
func Find[P Payload](m *Message) P {
	for _, p := range m.Payloads {
		if v, ok := p.(P); ok {
			return v
		}
	}
	var zero P
	return zero
}

// FindAll returns every payload of concrete type P, in order.
func FindAll[P Payload](m *Message) []P {
	var out []P
	for _, p := range m.Payloads {
		if v, ok := p.(P); ok {
			out = append(out, v)
		}
	}
	return out
}

// String summarises the message for logs, in the style of strongSwan:
// "IKE_AUTH request 1 [ IDi N(INITIAL_CONTACT) IDr AUTH SA TSi TSr ]".
func (m *Message) String() string {
	var b strings.Builder
	dir := "request"
	if m.IsResponse() {
		dir = "response"
	}
	fmt.Fprintf(&b, "%v %s %d [", m.Exchange, dir, m.MessageID)
	for _, p := range m.Payloads {
		b.WriteByte(' ')
		switch v := p.(type) {
		case *Notify:
			fmt.Fprintf(&b, "N(%v)", v.Type)
		case *Delete:
			fmt.Fprintf(&b, "D(%v)", v.Protocol)
		case *CP:
			fmt.Fprintf(&b, "CP(%v)", v.Type)
		case *EAP:
			fmt.Fprintf(&b, "EAP/%v", v.Code)
		default:
			b.WriteString(p.PayloadType().String())
		}
	}
	b.WriteString(" ]")
	return b.String()
}
