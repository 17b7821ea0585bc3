package message

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Encrypted payload, RFC 7296 §3.14:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Its Next Payload is the type of the first inner payload. The integrity
// check covers the message from the IKE header through the ciphertext;
// AEAD ciphers take the header and the SK generic header as associated
// data (RFC 5282 §5.1). Either way the Cipher receives aad = the octets
// before the IV.

// checkCipher rejects a Cipher whose sizes cannot describe a payload.
func checkCipher(c Cipher) error {
	if c.BlockSize() < 1 || c.BlockSize() > 256 || c.IVSize() < 0 || c.ICVSize() < 0 {
		return fmt.Errorf("ike/message: cipher reports block %d, IV %d, ICV %d octets", c.BlockSize(), c.IVSize(), c.ICVSize())
	}
	return nil
}

// padLength is the padding that aligns content plus the Pad Length octet
// to the block size; RFC 7296 §3.14 lets the sender pad more, but no more
// is needed.
func padLength(content, block int) int {
	return (block - (content+1)%block) % block
}

// appendProtected appends a complete protected message to dst: the IKE
// header naming outer (SK or SKF) as first payload, the outer payload's
// generic header with Next Payload next, its fixed fields (none for SK, the
// fragment numbers for SKF), the IV, and the sealed content with padding,
// Pad Length and ICV.
func appendProtected(dst []byte, h Header, outer, next PayloadType, fixed, content []byte, c Cipher) ([]byte, error) {
	if err := checkCipher(c); err != nil {
		return nil, err
	}
	ivs, icvs, bs := c.IVSize(), c.ICVSize(), c.BlockSize()
	pad := padLength(len(content), bs)
	plainLen := len(content) + pad + 1
	payloadLen := genericLen + len(fixed) + ivs + plainLen + icvs
	if payloadLen > maxPayloadLen {
		return nil, fmt.Errorf("ike/message: %v payload of %d octets exceeds the Payload Length field; fragment the message", outer, payloadLen)
	}
	start := len(dst)
	dst = slices.Grow(dst, HeaderLen+payloadLen)
	dst = appendHeader(dst, h, outer)
	dst = append(dst, byte(next), 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(payloadLen))
	dst = append(dst, fixed...)
	if err := putLength(dst[start : start+HeaderLen+payloadLen]); err != nil {
		return nil, err
	}
	ivStart := len(dst)
	dst = append(dst, make([]byte, ivs)...)
	if err := c.NextIV(dst[ivStart:]); err != nil {
		return nil, fmt.Errorf("ike/message: IV: %w", err)
	}
	plain := make([]byte, 0, plainLen)
	plain = append(plain, content...)
	plain = append(plain, make([]byte, pad)...)
	plain = append(plain, byte(pad))
	dst = c.Seal(dst, dst[ivStart:ivStart+ivs], plain, dst[start:ivStart])
	clear(plain)
	if len(dst)-start != HeaderLen+payloadLen {
		return nil, fmt.Errorf("ike/message: cipher sealed %d octets into %d, want %d", plainLen, len(dst)-ivStart-ivs, plainLen+icvs)
	}
	return dst, nil
}

// openProtected checks the ICV of an SK or SKF payload body (from its IV
// on) and returns the decrypted content without padding. aad is the
// message up to the IV. The ICV is checked before anything is decrypted
// or interpreted.
func openProtected(c Cipher, outer PayloadType, aad, body []byte) ([]byte, error) {
	if err := checkCipher(c); err != nil {
		return nil, &ParseError{Reason: ReasonNoCipher, Payload: outer, Detail: err.Error()}
	}
	ivs, icvs, bs := c.IVSize(), c.ICVSize(), c.BlockSize()
	ctLen := len(body) - ivs - icvs
	if ctLen < 1 || ctLen%bs != 0 {
		return nil, &ParseError{Reason: ReasonSyntax, Notify: NotifyInvalidSyntax, Payload: outer,
			Detail: fmt.Sprintf("%d octets do not hold IV %d, ICV %d and whole %d-octet blocks", len(body), ivs, icvs, bs)}
	}
	plain, err := c.Open(make([]byte, 0, ctLen), body[:ivs], body[ivs:], aad)
	if err != nil || len(plain) != ctLen {
		return nil, &ParseError{Reason: ReasonIntegrity, Payload: outer}
	}
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return nil, &ParseError{Reason: ReasonPadding, Notify: NotifyInvalidSyntax, Payload: outer, Authenticated: true,
			Detail: fmt.Sprintf("Pad Length %d in %d octets", pad, len(plain))}
	}
	return plain[:len(plain)-1-pad], nil
}

// parseInner parses the payloads found inside a verified SK or SKF payload.
func parseInner(b []byte, first PayloadType) ([]Payload, error) {
	ps, err := parseChain(b, first)
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			pe.Authenticated = true
		}
		return nil, err
	}
	return ps, nil
}
