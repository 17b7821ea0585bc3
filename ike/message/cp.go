package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Configuration payload, RFC 7296 §3.15:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C| RESERVED    |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                   Configuration Attributes                    ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Configuration attribute, §3.15.1:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|         Attribute Type      |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                             Value                             ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	cpType       = 0
	cpAttributes = 4

	cfgAttrType     = 0
	cfgAttrLength   = 2
	cfgAttrValue    = 4
	cfgAttrTypeMask = 0x7fff // the R bit is ignored on receipt
)

// CfgType is the CFG Type of a CP payload (§3.15).
type CfgType uint8

const (
	CfgRequest CfgType = 1
	CfgReply   CfgType = 2
	CfgSet     CfgType = 3
	CfgAck     CfgType = 4
)

func (t CfgType) String() string {
	switch t {
	case CfgRequest:
		return "CFG_REQUEST"
	case CfgReply:
		return "CFG_REPLY"
	case CfgSet:
		return "CFG_SET"
	case CfgAck:
		return "CFG_ACK"
	}
	return fmt.Sprintf("CFG_TYPE(%d)", uint8(t))
}

// CfgAttrType is a configuration attribute type (§3.15.1).
type CfgAttrType uint16

const (
	CfgInternalIP4Address CfgAttrType = 1
	CfgInternalIP4Netmask CfgAttrType = 2
	CfgInternalIP4DNS     CfgAttrType = 3
	CfgInternalIP4NBNS    CfgAttrType = 4
	CfgInternalIP4DHCP    CfgAttrType = 6
	CfgApplicationVersion CfgAttrType = 7
	CfgInternalIP6Address CfgAttrType = 8
	CfgInternalIP6DNS     CfgAttrType = 10
	CfgInternalIP6DHCP    CfgAttrType = 12
	CfgInternalIP4Subnet  CfgAttrType = 13
	CfgSupportedAttrs     CfgAttrType = 14
	CfgInternalIP6Subnet  CfgAttrType = 15
	CfgPCSCFIP4Address    CfgAttrType = 20 // RFC 7651
	CfgPCSCFIP6Address    CfgAttrType = 21 // RFC 7651
	CfgInternalDNSDomain  CfgAttrType = 25 // RFC 8598
)

type cfgAttrInfo struct {
	name string
	size int // the one non-zero length allowed; -1 any; -2 a multiple of 2
}

// cfgAttrs lists the lengths §3.15.1 allows: each attribute is either empty
// (a request for a value) or exactly its size.
var cfgAttrs = map[CfgAttrType]cfgAttrInfo{
	CfgInternalIP4Address: {"INTERNAL_IP4_ADDRESS", 4},
	CfgInternalIP4Netmask: {"INTERNAL_IP4_NETMASK", 4},
	CfgInternalIP4DNS:     {"INTERNAL_IP4_DNS", 4},
	CfgInternalIP4NBNS:    {"INTERNAL_IP4_NBNS", 4},
	CfgInternalIP4DHCP:    {"INTERNAL_IP4_DHCP", 4},
	CfgApplicationVersion: {"APPLICATION_VERSION", -1},
	CfgInternalIP6Address: {"INTERNAL_IP6_ADDRESS", 17},
	CfgInternalIP6DNS:     {"INTERNAL_IP6_DNS", 16},
	CfgInternalIP6DHCP:    {"INTERNAL_IP6_DHCP", 16},
	CfgInternalIP4Subnet:  {"INTERNAL_IP4_SUBNET", 8},
	CfgSupportedAttrs:     {"SUPPORTED_ATTRIBUTES", -2},
	CfgInternalIP6Subnet:  {"INTERNAL_IP6_SUBNET", 17},
	CfgPCSCFIP4Address:    {"P_CSCF_IP4_ADDRESS", 4},
	CfgPCSCFIP6Address:    {"P_CSCF_IP6_ADDRESS", 16},
	CfgInternalDNSDomain:  {"INTERNAL_DNS_DOMAIN", -1},
}

func (t CfgAttrType) String() string {
	if i, ok := cfgAttrs[t]; ok {
		return i.name
	}
	return fmt.Sprintf("CFG_ATTRIBUTE(%d)", uint16(t))
}

func cfgAttrValid(t CfgAttrType, n int) error {
	i, ok := cfgAttrs[t]
	if !ok || n == 0 {
		return nil
	}
	switch {
	case i.size == -1, i.size == -2 && n%2 == 0, n == i.size:
		return nil
	}
	return fmt.Errorf("%v of %d octets", t, n)
}

// CfgAttribute is one configuration attribute. An empty Value asks for
// one (in CFG_REQUEST) or acknowledges one (in CFG_ACK).
type CfgAttribute struct {
	Type  CfgAttrType
	Value []byte
}

// CP is the Configuration payload (RFC 7296 §3.15).
type CP struct {
	Type       CfgType
	Attributes []CfgAttribute
}

func (*CP) PayloadType() PayloadType { return PayloadCP }

// Get returns the attributes of type t, in order.
func (cp *CP) Get(t CfgAttrType) []CfgAttribute {
	var out []CfgAttribute
	for _, a := range cp.Attributes {
		if a.Type == t {
			out = append(out, a)
		}
	}
	return out
}

// CfgAddr is an address attribute (INTERNAL_IP4_ADDRESS, *_DNS, ...).
func CfgAddr(t CfgAttrType, a netip.Addr) CfgAttribute {
	return CfgAttribute{Type: t, Value: a.Unmap().AsSlice()}
}

// CfgPrefix is a prefix attribute: INTERNAL_IP6_ADDRESS and
// INTERNAL_IP6_SUBNET as address and prefix length (17 octets),
// INTERNAL_IP4_SUBNET as address and netmask (8 octets).
func CfgPrefix(t CfgAttrType, p netip.Prefix) CfgAttribute {
	a := p.Addr().Unmap()
	if a.Is4() {
		v := a.As4()
		out := append(v[:], 0, 0, 0, 0)
		binary.BigEndian.PutUint32(out[4:], ^uint32(0)<<(32-p.Bits()))
		return CfgAttribute{Type: t, Value: out}
	}
	v := a.As16()
	return CfgAttribute{Type: t, Value: append(v[:], byte(p.Bits()))}
}

// Addr returns a 4- or 16-octet address value.
func (a CfgAttribute) Addr() (netip.Addr, bool) {
	if len(a.Value) != 4 && len(a.Value) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(a.Value)
}

// Prefix returns a value in CfgPrefix's encodings.
func (a CfgAttribute) Prefix() (netip.Prefix, bool) {
	switch len(a.Value) {
	case 17:
		if a.Value[16] > 128 {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(netip.AddrFrom16([16]byte(a.Value[:16])), int(a.Value[16])), true
	case 8:
		mask := binary.BigEndian.Uint32(a.Value[4:])
		ones := 0
		for ; ones < 32 && mask&(1<<(31-ones)) != 0; ones++ {
		}
		if ones < 32 && mask<<ones != 0 {
			return netip.Prefix{}, false // not a contiguous netmask
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(a.Value[:4])), ones), true
	}
	return netip.Prefix{}, false
}

func parseCP(body []byte) (*CP, error) {
	cp := &CP{Type: CfgType(body[cpType])}
	rest := body[cpAttributes:]
	for len(rest) > 0 {
		if len(rest) < cfgAttrValue {
			return nil, errors.New("truncated configuration attribute")
		}
		t := CfgAttrType(binary.BigEndian.Uint16(rest[cfgAttrType:]) & cfgAttrTypeMask)
		l := int(binary.BigEndian.Uint16(rest[cfgAttrLength:]))
		if l > len(rest)-cfgAttrValue {
			return nil, fmt.Errorf("%v of %d octets, %d left", t, l, len(rest)-cfgAttrValue)
		}
		if err := cfgAttrValid(t, l); err != nil {
			return nil, err
		}
		cp.Attributes = append(cp.Attributes, CfgAttribute{Type: t, Value: orNil(rest[cfgAttrValue : cfgAttrValue+l])})
		rest = rest[cfgAttrValue+l:]
	}
	return cp, nil
}

func (cp *CP) appendBody(b []byte) ([]byte, error) {
	b = append(b, byte(cp.Type), 0, 0, 0)
	for _, a := range cp.Attributes {
		if a.Type > cfgAttrTypeMask || len(a.Value) > maxPayloadLen {
			return nil, fmt.Errorf("ike/message: configuration attribute %d of %d octets", a.Type, len(a.Value))
		}
		if err := cfgAttrValid(a.Type, len(a.Value)); err != nil {
			return nil, fmt.Errorf("ike/message: %w", err)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b, nil
}
