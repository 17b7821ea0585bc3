package message

import (
	"encoding/hex"
	"fmt"
	"net/netip"
)

// Identification payloads, RFC 7296 §3.5:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                   Identification Data                         ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	idType     = 0
	idReserved = 1
	idData     = 4
)

// IDType is the ID Type of an Identification payload (§3.5).
type IDType uint8

const (
	IDIPv4Addr  IDType = 1
	IDFQDN      IDType = 2
	IDRFC822    IDType = 3
	IDIPv6Addr  IDType = 5
	IDDERASN1DN IDType = 9
	IDDERASN1GN IDType = 10
	IDKeyID     IDType = 11
	IDFCName    IDType = 12 // RFC 4595
	IDNull      IDType = 13 // RFC 7619
)

func (t IDType) String() string {
	switch t {
	case IDIPv4Addr:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822:
		return "ID_RFC822_ADDR"
	case IDIPv6Addr:
		return "ID_IPV6_ADDR"
	case IDDERASN1DN:
		return "ID_DER_ASN1_DN"
	case IDDERASN1GN:
		return "ID_DER_ASN1_GN"
	case IDKeyID:
		return "ID_KEY_ID"
	case IDFCName:
		return "ID_FC_NAME"
	case IDNull:
		return "ID_NULL"
	}
	return fmt.Sprintf("ID_TYPE(%d)", uint8(t))
}

// ID is the body of an IDi or IDr payload.
type ID struct {
	Type IDType
	// Reserved is kept as received: the AUTH computation covers it
	// (RestOfIDPayload, §2.15). Send zeros.
	Reserved [3]byte
	Data     []byte
}

// IDi is the initiator's Identification payload (§3.5).
type IDi struct{ ID }

// IDr is the responder's Identification payload (§3.5).
type IDr struct{ ID }

func (*IDi) PayloadType() PayloadType { return PayloadIDi }
func (*IDr) PayloadType() PayloadType { return PayloadIDr }

// AddrID is an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func AddrID(a netip.Addr) ID {
	a = a.Unmap()
	if a.Is4() {
		return ID{Type: IDIPv4Addr, Data: a.AsSlice()}
	}
	return ID{Type: IDIPv6Addr, Data: a.AsSlice()}
}

// FQDNID is an ID_FQDN identity.
func FQDNID(name string) ID { return ID{Type: IDFQDN, Data: []byte(name)} }

// RFC822ID is an ID_RFC822_ADDR (e-mail address) identity.
func RFC822ID(addr string) ID { return ID{Type: IDRFC822, Data: []byte(addr)} }

// RestOfIDPayload is the payload body after the generic header, which the
// AUTH computation MACs: MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
// (§2.15).
func (id *ID) RestOfIDPayload() []byte {
	b := make([]byte, 0, idData+len(id.Data))
	b = append(b, byte(id.Type), id.Reserved[0], id.Reserved[1], id.Reserved[2])
	return append(b, id.Data...)
}

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func (id *ID) Addr() (netip.Addr, bool) {
	switch id.Type {
	case IDIPv4Addr, IDIPv6Addr:
		return netip.AddrFromSlice(id.Data)
	}
	return netip.Addr{}, false
}

// String renders the identity for logs.
func (id ID) String() string {
	switch id.Type {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := id.Addr(); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822:
		return fmt.Sprintf("%q", id.Data)
	case IDNull:
		return "(null)"
	}
	return id.Type.String() + ":" + hex.EncodeToString(id.Data)
}

// idDataValid checks the Identification Data against its type: addresses
// have their fixed size, names and keys are not empty. ID_NULL and
// unassigned types carry anything.
func idDataValid(t IDType, n int) error {
	switch t {
	case IDIPv4Addr:
		if n != 4 {
			return fmt.Errorf("%v of %d octets", t, n)
		}
	case IDIPv6Addr:
		if n != 16 {
			return fmt.Errorf("%v of %d octets", t, n)
		}
	case IDFQDN, IDRFC822, IDDERASN1DN, IDDERASN1GN, IDKeyID, IDFCName:
		if n == 0 {
			return fmt.Errorf("empty %v", t)
		}
	}
	return nil
}

func parseID(body []byte) (ID, error) {
	id := ID{Type: IDType(body[idType]), Data: orNil(body[idData:])}
	copy(id.Reserved[:], body[idReserved:idData])
	return id, idDataValid(id.Type, len(id.Data))
}

func (id *ID) appendBody(b []byte) ([]byte, error) {
	if err := idDataValid(id.Type, len(id.Data)); err != nil {
		return nil, fmt.Errorf("ike/message: %w", err)
	}
	b = append(b, byte(id.Type), id.Reserved[0], id.Reserved[1], id.Reserved[2])
	return append(b, id.Data...), nil
}
