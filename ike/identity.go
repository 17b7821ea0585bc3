package ike

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/bitw-dev/bitw/ike/message"
)

// ID types of the Identification payload (RFC 7296 §3.5) that bitw
// configures, with IDAny (%any) as the zero value.
const (
	IDAny    message.IDType = 0
	IDIPv4   message.IDType = message.IDIPv4Addr
	IDFQDN   message.IDType = message.IDFQDN
	IDRFC822 message.IDType = message.IDRFC822
	IDIPv6   message.IDType = message.IDIPv6Addr
	IDDN     message.IDType = message.IDDERASN1DN
	IDKeyID  message.IDType = message.IDKeyID
	IDNull   message.IDType = message.IDNull
)

// Identity is an IKE identity: an ID type and its Identification Data.
// The zero value is %any: as a remote ID it accepts every peer; it is
// never sent.
type Identity struct {
	Type message.IDType
	Data []byte
}

// AddrIdentity is an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func AddrIdentity(a netip.Addr) Identity {
	id := message.AddrID(a)
	return Identity{Type: id.Type, Data: id.Data}
}

// FQDNIdentity is an ID_FQDN identity.
func FQDNIdentity(name string) Identity { return Identity{Type: IDFQDN, Data: []byte(name)} }

// IsAny reports whether the identity is %any.
func (id Identity) IsAny() bool { return id.Type == IDAny }

// wire is the identity as an ID payload body.
func (id Identity) wire() message.ID { return message.ID{Type: id.Type, Data: id.Data} }

func identityOf(id message.ID) Identity { return Identity{Type: id.Type, Data: bytes.Clone(id.Data)} }

// Matches reports whether a received ID payload satisfies this identity:
// %any matches all; FQDN and RFC 822 names compare without case;
// distinguished names compare attribute by attribute, whatever ASN.1
// string types carry them; everything else compares octet for octet.
func (id Identity) Matches(got message.ID) bool {
	if id.IsAny() {
		return true
	}
	if id.Type != got.Type {
		return false
	}
	switch id.Type {
	case IDFQDN, IDRFC822:
		return strings.EqualFold(string(id.Data), string(got.Data))
	case IDDN:
		return dnEqual(id.Data, got.Data)
	}
	return bytes.Equal(id.Data, got.Data)
}

// String renders the identity as swanctl.conf writes it: a name, an
// address, "C=CH, O=..., CN=gw" for a DN, "@#hex" for a key ID.
func (id Identity) String() string {
	switch id.Type {
	case IDAny:
		return "%any"
	case IDFQDN, IDRFC822:
		return string(id.Data)
	case IDIPv4, IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case IDDN:
		var seq pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &seq); err == nil && len(rest) == 0 {
			return seq.String()
		}
	case IDKeyID:
		return "@#" + hex.EncodeToString(id.Data)
	case IDNull:
		return "%null"
	}
	return id.wire().String()
}

// dnEqual compares two DER distinguished names by their attributes.
func dnEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var sa, sb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &sa); err != nil || len(rest) != 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &sb); err != nil || len(rest) != 0 {
		return false
	}
	if len(sa) != len(sb) {
		return false
	}
	for i := range sa {
		if len(sa[i]) != len(sb[i]) {
			return false
		}
		for j := range sa[i] {
			x, y := sa[i][j], sb[i][j]
			if !x.Type.Equal(y.Type) || fmt.Sprint(x.Value) != fmt.Sprint(y.Value) {
				return false
			}
		}
	}
	return true
}
