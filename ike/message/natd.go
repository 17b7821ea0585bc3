package message

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// NATDetectionHash is the Notification Data of NAT_DETECTION_SOURCE_IP and
// NAT_DETECTION_DESTINATION_IP (RFC 7296 §2.23):
//
//	SHA-1(SPIi | SPIr | IP | Port)
//
// with the SPIs as they appear in the message header (SPIr is 0 in the
// first IKE_SA_INIT request) and the address and UDP port of the source,
// respectively destination, of the packet. IPv4 addresses are 4 octets.
func NATDetectionHash(spii, spir uint64, ap netip.AddrPort) [sha1.Size]byte {
	var b [8 + 8 + 16 + 2]byte
	binary.BigEndian.PutUint64(b[0:], spii)
	binary.BigEndian.PutUint64(b[8:], spir)
	n := 16 + copy(b[16:], ap.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[n:], ap.Port())
	return sha1.Sum(b[:n+2])
}

// NATDetectionNotify builds a NAT_DETECTION_SOURCE_IP or
// NAT_DETECTION_DESTINATION_IP notification for the endpoint ap.
func NATDetectionNotify(t NotifyType, spii, spir uint64, ap netip.AddrPort) *Notify {
	h := NATDetectionHash(spii, spir, ap)
	return &Notify{Type: t, Data: h[:]}
}

// Cookie sizes, RFC 7296 §3.10.1: the COOKIE data is 1 to 64 octets.
const (
	MinCookieLen = 1
	MaxCookieLen = 64
)

// CookieNotify builds the COOKIE notification a responder under load
// returns, and the initiator repeats as the first payload of its retried
// IKE_SA_INIT request (RFC 7296 §2.6).
func CookieNotify(cookie []byte) (*Notify, error) {
	if len(cookie) < MinCookieLen || len(cookie) > MaxCookieLen {
		return nil, errors.New("ike/message: COOKIE data must be 1 to 64 octets")
	}
	return &Notify{Type: NotifyCookie, Data: cookie}, nil
}

// Cookie returns the COOKIE data when the message's first payload is a
// COOKIE notification of valid size, as §2.6 places it.
func (m *Message) Cookie() ([]byte, bool) {
	if len(m.Payloads) == 0 {
		return nil, false
	}
	n, ok := m.Payloads[0].(*Notify)
	if !ok || n.Type != NotifyCookie || len(n.Data) < MinCookieLen || len(n.Data) > MaxCookieLen {
		return nil, false
	}
	return n.Data, true
}

// InvalidKENotify builds INVALID_KE_PAYLOAD naming the group the responder
// wants (§3.10.1: 2 octets of Notification Data).
func InvalidKENotify(group proposal.KEID) *Notify {
	return &Notify{Type: NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, uint16(group))}
}

// KEGroup returns the group of an INVALID_KE_PAYLOAD notification.
func (n *Notify) KEGroup() (proposal.KEID, bool) {
	if n.Type != NotifyInvalidKEPayload || len(n.Data) != 2 {
		return 0, false
	}
	return proposal.KEID(binary.BigEndian.Uint16(n.Data)), true
}

// HashAlgorithms returns the 2-octet hash algorithm identifiers of a
// SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4).
func (n *Notify) HashAlgorithms() ([]uint16, bool) {
	if n.Type != NotifySignatureHashAlgorithms || len(n.Data)%2 != 0 {
		return nil, false
	}
	out := make([]uint16, 0, len(n.Data)/2)
	for d := n.Data; len(d) > 0; d = d[2:] {
		out = append(out, binary.BigEndian.Uint16(d))
	}
	return out, true
}
