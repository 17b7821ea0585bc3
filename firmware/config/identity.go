package config

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// IDType is an IKEv2 identification type (RFC 7296 §3.5).
type IDType uint8

const (
	IDAny    IDType = 0 // "%any": matches every identity; never sent
	IDIPv4   IDType = 1
	IDFQDN   IDType = 2
	IDRFC822 IDType = 3
	IDIPv6   IDType = 5
	IDDN     IDType = 9  // ID_DER_ASN1_DN
	IDGN     IDType = 10 // ID_DER_ASN1_GN
	IDKeyID  IDType = 11
	IDNull   IDType = 13 // RFC 7619 §3
)

func (t IDType) String() string {
	switch t {
	case IDAny:
		return "ANY"
	case IDIPv4:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822:
		return "ID_RFC822_ADDR"
	case IDIPv6:
		return "ID_IPV6_ADDR"
	case IDDN:
		return "ID_DER_ASN1_DN"
	case IDGN:
		return "ID_DER_ASN1_GN"
	case IDKeyID:
		return "ID_KEY_ID"
	case IDNull:
		return "ID_NULL"
	}
	return fmt.Sprintf("ID_%d", uint8(t))
}

// Identity is an IKE identity: its type and the bytes of its
// Identification payload data.
type Identity struct {
	Type IDType
	Data []byte
	text string // as configured, for messages and status
}

// String returns the identity as the configuration wrote it, or a
// rendering of it for identities bitw derived itself.
func (id Identity) String() string {
	if id.text != "" {
		return id.text
	}
	switch id.Type {
	case IDAny:
		return "%any"
	case IDNull:
		return "%null"
	case IDIPv4, IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822:
		return string(id.Data)
	case IDDN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &rdn); err == nil && len(rest) == 0 {
			var n pkix.Name
			n.FillFromRDNSequence(&rdn)
			return n.String()
		}
	}
	return fmt.Sprintf("%s:#%x", strings.ToLower(strings.TrimPrefix(id.Type.String(), "ID_")), id.Data)
}

// IsAny reports whether the identity is %any.
func (id Identity) IsAny() bool { return id.Type == IDAny }

// Equal reports whether two identities are the same. Distinguished names
// compare by attribute and value, whatever string types encode them.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	if id.Type == IDDN {
		return dnEqual(id.Data, o.Data)
	}
	if id.Type == IDFQDN {
		return strings.EqualFold(string(id.Data), string(o.Data))
	}
	return bytes.Equal(id.Data, o.Data)
}

// addrIdentity is the identity of an IP address.
func addrIdentity(a netip.Addr) Identity {
	if a.Is4() {
		return Identity{Type: IDIPv4, Data: a.AsSlice()}
	}
	return Identity{Type: IDIPv6, Data: a.AsSlice()}
}

// idPrefixes are swanctl.conf's explicit type prefixes.
var idPrefixes = map[string]IDType{
	"ipv4":     IDIPv4,
	"ipv6":     IDIPv6,
	"rfc822":   IDRFC822,
	"email":    IDRFC822,
	"userfqdn": IDRFC822,
	"fqdn":     IDFQDN,
	"dns":      IDFQDN,
	"asn1dn":   IDDN,
	"asn1gn":   IDGN,
	"keyid":    IDKeyID,
}

// ParseIdentity reads an identity as swanctl.conf writes it: an IP
// address, an FQDN, user@domain, a distinguished name ("C=CH, O=Org,
// CN=gw"), "@name" (an FQDN however it looks), "@#hex" (a key ID), "%any",
// or TYPE:value and TYPE:#hex with swanctl's type prefixes. Wildcards are
// not supported: bitw matches identities exactly or with %any.
func ParseIdentity(s string) (Identity, error) {
	id, err := parseIdentity(s)
	id.text = s
	return id, err
}

func parseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, errors.New("an identity cannot be empty")
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Identity{}, fmt.Errorf("identity %q holds control characters", s)
	}
	if s == "%any" || s == "%any6" {
		return Identity{Type: IDAny}, nil
	}
	if strings.Contains(s, "*") {
		return Identity{}, fmt.Errorf("identity %q: wildcards are not supported; name the identity or use %%any", s)
	}
	if prefix, rest, ok := strings.Cut(s, ":"); ok {
		if t, known := idPrefixes[prefix]; known {
			return typedIdentity(s, t, rest)
		}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return addrIdentity(a.Unmap()), nil
	}
	if hexID, ok := strings.CutPrefix(s, "@#"); ok {
		data, err := hex.DecodeString(hexID)
		if err != nil || len(data) == 0 {
			return Identity{}, fmt.Errorf("key ID %q is not hex", s)
		}
		return Identity{Type: IDKeyID, Data: data}, nil
	}
	if name, ok := strings.CutPrefix(s, "@"); ok {
		if name == "" {
			return Identity{}, errors.New(`identity "@" names nothing`)
		}
		return Identity{Type: IDFQDN, Data: []byte(name)}, nil
	}
	if strings.Contains(s, "=") {
		der, err := encodeDN(s)
		if err != nil {
			return Identity{}, fmt.Errorf("distinguished name %q: %w", s, err)
		}
		return Identity{Type: IDDN, Data: der}, nil
	}
	if strings.Contains(s, "@") {
		return Identity{Type: IDRFC822, Data: []byte(s)}, nil
	}
	if strings.ContainsAny(s, " \t") {
		return Identity{}, fmt.Errorf("identity %q holds blanks; a distinguished name needs attribute=value parts", s)
	}
	return Identity{Type: IDFQDN, Data: []byte(s)}, nil
}

// typedIdentity reads TYPE:value. As in swanctl.conf, "#" introduces hex
// and anything else is taken as the payload bytes unchanged, which is
// only meaningful for the string types.
func typedIdentity(s string, t IDType, v string) (Identity, error) {
	var data []byte
	if h, ok := strings.CutPrefix(v, "#"); ok {
		var err error
		if data, err = hex.DecodeString(h); err != nil {
			return Identity{}, fmt.Errorf("identity %q: %q is not hex", s, h)
		}
	} else {
		data = []byte(v)
	}
	if len(data) == 0 {
		return Identity{}, fmt.Errorf("identity %q is empty", s)
	}
	switch t {
	case IDIPv4, IDIPv6:
		want := 4
		if t == IDIPv6 {
			want = 16
		}
		if len(data) != want {
			return Identity{}, fmt.Errorf("identity %q: an address identity takes %d bytes in hex (e.g. ipv4:#c0000201) or, simpler, the plain address", s, want)
		}
	case IDDN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(data, &rdn); err != nil || len(rest) != 0 {
			return Identity{}, fmt.Errorf("identity %q: asn1dn takes DER in hex (asn1dn:#30...); write a plain C=.., O=.., CN=.. name instead", s)
		}
	case IDGN:
		var raw asn1.RawValue
		if rest, err := asn1.Unmarshal(data, &raw); err != nil || len(rest) != 0 {
			return Identity{}, fmt.Errorf("identity %q: asn1gn takes DER in hex", s)
		}
	}
	return Identity{Type: t, Data: data}, nil
}

// dnAttributes are the attribute names a distinguished name may use.
var dnAttributes = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SN":           {2, 5, 4, 4},
	"serialNumber": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"S":            {2, 5, 4, 8},
	"street":       {2, 5, 4, 9},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"T":            {2, 5, 4, 12},
	"title":        {2, 5, 4, 12},
	"G":            {2, 5, 4, 42},
	"GN":           {2, 5, 4, 42},
	"dnQualifier":  {2, 5, 4, 46},
	"pseudonym":    {2, 5, 4, 65},
	"E":            {1, 2, 840, 113549, 1, 9, 1},
	"Email":        {1, 2, 840, 113549, 1, 9, 1},
	"emailAddress": {1, 2, 840, 113549, 1, 9, 1},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
}

var (
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// encodeDN turns "C=CH, O=Org, CN=gw" (or "/C=CH/O=Org/CN=gw") into DER,
// one attribute per RDN. Values are PrintableString when they fit, else
// UTF8String; emailAddress and DC are IA5String (RFC 5280 §4.1.2.6).
func encodeDN(s string) ([]byte, error) {
	sep := byte(',')
	if strings.HasPrefix(s, "/") {
		sep, s = '/', s[1:]
	}
	parts, err := splitDN(s, sep)
	if err != nil {
		return nil, err
	}
	var rdns pkix.RDNSequence
	for _, part := range parts {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not attribute=value", part)
		}
		if strings.Contains(v, "+") {
			return nil, fmt.Errorf("%q: multi-valued RDNs are not supported", part)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if v == "" {
			return nil, fmt.Errorf("%q has an empty value", part)
		}
		oid, ok := dnAttributes[k]
		if !ok {
			if oid, err = parseOID(k); err != nil {
				return nil, fmt.Errorf("unknown attribute %q; use CN, O, OU, C, ST, L, E, DC, UID, serialNumber or a dotted OID", k)
			}
		}
		tag := asn1.TagUTF8String
		switch {
		case oid.Equal(oidEmail) || oid.Equal(oidDC):
			if !isASCII(v) {
				return nil, fmt.Errorf("%q: %s must be ASCII", part, k)
			}
			tag = asn1.TagIA5String
		case isPrintable(v):
			tag = asn1.TagPrintableString
		case oid.Equal(oidC):
			return nil, fmt.Errorf("%q: a country is two letters", part)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{
			Type:  oid,
			Value: asn1.RawValue{Tag: tag, Bytes: []byte(v)},
		}})
	}
	return asn1.Marshal(rdns)
}

// splitDN splits at sep outside double quotes.
func splitDN(s string, sep byte) ([]string, error) {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, errors.New("unbalanced quote")
	}
	return append(parts, s[start:]), nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n := 0
		if p == "" || len(p) > 9 {
			return nil, errors.New("bad OID")
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, errors.New("bad OID")
			}
			n = n*10 + int(c-'0')
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 || oid[0] > 2 {
		return nil, errors.New("bad OID")
	}
	return oid, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isPrintable reports whether s fits ASN.1 PrintableString (X.680 §41.4).
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" '()+,-./:=?", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// dnEqual compares two DER distinguished names attribute by attribute,
// ignoring which string type encodes each value.
func dnEqual(a, b []byte) bool {
	var x, y pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &x); err != nil || len(rest) != 0 {
		return bytes.Equal(a, b)
	}
	if rest, err := asn1.Unmarshal(b, &y); err != nil || len(rest) != 0 {
		return false
	}
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if len(x[i]) != len(y[i]) {
			return false
		}
		for j := range x[i] {
			if !x[i][j].Type.Equal(y[i][j].Type) || fmt.Sprint(x[i][j].Value) != fmt.Sprint(y[i][j].Value) {
				return false
			}
		}
	}
	return true
}

// certHasIdentity reports whether cert names id, as subject or as a
// subjectAltName (RFC 7296 §3.5 leaves the binding to the implementation;
// this is strongSwan's rule).
func certHasIdentity(cert *x509.Certificate, id Identity) bool {
	switch id.Type {
	case IDDN:
		return dnEqual(cert.RawSubject, id.Data)
	case IDFQDN:
		for _, n := range cert.DNSNames {
			if strings.EqualFold(n, string(id.Data)) {
				return true
			}
		}
	case IDRFC822:
		for _, e := range cert.EmailAddresses {
			if strings.EqualFold(e, string(id.Data)) {
				return true
			}
		}
	case IDIPv4, IDIPv6:
		for _, ip := range cert.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && bytes.Equal(a.Unmap().AsSlice(), id.Data) {
				return true
			}
		}
	case IDKeyID, IDGN:
		return true // not bound to a certificate field
	}
	return false
}
