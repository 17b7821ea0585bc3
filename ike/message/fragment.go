package message

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Encrypted Fragment payload, RFC 7383 §2.5:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Encrypted content                        ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Next Payload is the first inner payload's type in fragment 1 and 0 in
// the others. Each fragment is protected on its own, the fragment numbers
// inside the associated data.
const (
	skfFragNum  = 0
	skfTotal    = 2
	skfFixedLen = 4
)

// Path MTUs RFC 7383 §2.5.1 recommends assuming when the real one is not
// known: the minimum every IPv4 host accepts, and the IPv6 minimum MTU.
const (
	DefaultFragmentMTUv4 = 576
	DefaultFragmentMTUv6 = 1280
)

// FragmentSize is the largest IKE message (fragment) that fits one IP
// datagram of mtu octets: mtu less the IP header (20 or 40 octets, no
// options), the UDP header and, on port 4500, the non-ESP marker. mtu 0
// picks the RFC 7383 §2.5.1 default for the family.
func FragmentSize(mtu int, ipv6, nonESPMarker bool) int {
	ipHdr, defaultMTU := 20, DefaultFragmentMTUv4
	if ipv6 {
		ipHdr, defaultMTU = 40, DefaultFragmentMTUv6
	}
	if mtu <= 0 {
		mtu = defaultMTU
	}
	size := mtu - ipHdr - 8
	if nonESPMarker {
		size -= 4
	}
	return size
}

// EncodeFragments encodes the message as SKF fragments of at most maxSize
// octets each (FragmentSize gives maxSize from the path MTU), every one
// sealed by c. It always fragments, even into one fragment; the engine uses
// it when the peer announced IKEV2_FRAGMENTATION_SUPPORTED and Encode's
// result is larger than maxSize (RFC 7383 §2.5).
func (m *Message) EncodeFragments(c Cipher, maxSize int) ([][]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("ike/message: fragments need a Cipher")
	}
	if err := checkCipher(c); err != nil {
		return nil, err
	}
	inner, err := appendPayloads(nil, m.Payloads)
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	bs := c.BlockSize()
	room := maxSize - HeaderLen - genericLen - skfFixedLen - c.IVSize() - c.ICVSize()
	room = room/bs*bs - 1 // whole blocks, one octet kept for Pad Length
	if room < 1 {
		return nil, fmt.Errorf("ike/message: fragment size %d leaves no room for content", maxSize)
	}
	total := (len(inner) + room - 1) / room
	if total == 0 {
		total = 1
	}
	if total > 0xffff {
		return nil, fmt.Errorf("ike/message: %d octets need %d fragments", len(inner), total)
	}
	frags := make([][]byte, 0, total)
	for i := range total {
		chunk := inner[min(i*room, len(inner)):min((i+1)*room, len(inner))]
		next := PayloadNone
		if i == 0 {
			next = firstType(m.Payloads)
		}
		var fixed [skfFixedLen]byte
		binary.BigEndian.PutUint16(fixed[skfFragNum:], uint16(i+1))
		binary.BigEndian.PutUint16(fixed[skfTotal:], uint16(total))
		f, err := appendProtected(nil, m.Header, PayloadSKF, next, fixed[:], chunk, c)
		if err != nil {
			return nil, err
		}
		frags = append(frags, f)
	}
	return frags, nil
}

// ReassemblyLimits bound a Reassembler. Zero fields take the defaults.
type ReassemblyLimits struct {
	MaxFragments int           // Total Fragments accepted per message
	MaxSize      int           // octets of decrypted content per message
	MaxMessages  int           // messages under reassembly at once
	Timeout      time.Duration // Expire drops a message this long after its first fragment
}

// Reassembly defaults: a certificate chain fits, a flood does not.
const (
	DefaultMaxFragments = 64
	DefaultMaxSize      = 64 << 10
	DefaultMaxMessages  = 4
	DefaultTimeout      = 30 * time.Second
)

// Reassembler collects the SKF fragments of one IKE SA's incoming messages
// (RFC 7383 §2.6), one Cipher per direction. It checks every fragment's ICV
// before it keeps or acts on it, ignores duplicates, accepts any order,
// restarts a message when a retransmission arrives with more fragments and
// drops fragments of a superseded one with fewer. The caller drives time:
// Add and Expire take the current time. Not safe for concurrent use.
type Reassembler struct {
	limits  ReassemblyLimits
	pending []*partial
}

type partial struct {
	header  Header
	first   PayloadType
	frags   [][]byte // by Fragment Number - 1; nil until received
	count   int
	size    int
	started time.Time
}

// NewReassembler returns a Reassembler with limits l.
func NewReassembler(l ReassemblyLimits) *Reassembler {
	if l.MaxFragments <= 0 {
		l.MaxFragments = DefaultMaxFragments
	}
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return &Reassembler{limits: l}
}

// Add takes one fragment message b (the UDP payload after the non-ESP
// marker) and returns the reassembled message once every fragment has
// arrived; (nil, nil) while some are missing or for a duplicate. Errors are
// *ParseError. Add does not retain b.
func (r *Reassembler) Add(b []byte, c Cipher, now time.Time) (*Message, error) {
	h, first, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if first != PayloadSKF {
		return nil, &ParseError{Reason: ReasonPlacement, Payload: first, Detail: "not a fragment"}
	}
	raws, err := validateChain(b[HeaderLen:], first)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &ParseError{Reason: ReasonNoCipher, Payload: PayloadSKF}
	}
	skf := raws[0]
	num := int(binary.BigEndian.Uint16(skf.body[skfFragNum:]))
	total := int(binary.BigEndian.Uint16(skf.body[skfTotal:]))
	if num == 0 || num > total {
		return nil, &ParseError{Reason: ReasonFragment, Notify: NotifyInvalidSyntax, Payload: PayloadSKF,
			Detail: fmt.Sprintf("fragment %d of %d", num, total)}
	}
	if total > r.limits.MaxFragments {
		return nil, &ParseError{Reason: ReasonFragmentLimit, Payload: PayloadSKF,
			Detail: fmt.Sprintf("%d fragments, at most %d", total, r.limits.MaxFragments)}
	}
	content, err := openProtected(c, PayloadSKF, b[:HeaderLen+genericLen+skfFixedLen], skf.body[skfFixedLen:])
	if err != nil {
		return nil, err
	}

	// The fragment is authentic; only now may it change state.
	p := r.find(h)
	if p != nil {
		switch {
		case p.header != h:
			return nil, &ParseError{Reason: ReasonFragment, Payload: PayloadSKF, Authenticated: true,
				Detail: "header differs from earlier fragments"}
		case total < len(p.frags):
			return nil, &ParseError{Reason: ReasonFragmentStale, Payload: PayloadSKF, Authenticated: true,
				Detail: fmt.Sprintf("%d fragments, reassembling %d", total, len(p.frags))}
		case total > len(p.frags):
			r.remove(p)
			p = nil
		}
	}
	if p == nil {
		if len(r.pending) >= r.limits.MaxMessages {
			return nil, &ParseError{Reason: ReasonFragmentLimit, Payload: PayloadSKF, Authenticated: true,
				Detail: fmt.Sprintf("%d messages under reassembly", len(r.pending))}
		}
		p = &partial{header: h, frags: make([][]byte, total), started: now}
		r.pending = append(r.pending, p)
	}
	if p.frags[num-1] != nil {
		return nil, nil
	}
	if p.size+len(content) > r.limits.MaxSize {
		r.remove(p)
		return nil, &ParseError{Reason: ReasonFragmentLimit, Payload: PayloadSKF, Authenticated: true,
			Detail: fmt.Sprintf("more than %d octets", r.limits.MaxSize)}
	}
	p.frags[num-1] = content
	p.count++
	p.size += len(content)
	if num == 1 {
		p.first = skf.next
	}
	if p.count < len(p.frags) {
		return nil, nil
	}
	r.remove(p)
	inner := make([]byte, 0, p.size)
	for _, f := range p.frags {
		inner = append(inner, f...)
	}
	payloads, err := parseInner(inner, p.first)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: payloads, Encrypted: true}, nil
}

// Expire drops messages whose first fragment arrived more than the timeout
// before now, and returns how many it dropped.
func (r *Reassembler) Expire(now time.Time) int {
	kept := r.pending[:0]
	for _, p := range r.pending {
		if now.Sub(p.started) <= r.limits.Timeout {
			kept = append(kept, p)
		}
	}
	dropped := len(r.pending) - len(kept)
	clear(r.pending[len(kept):])
	r.pending = kept
	return dropped
}

// Pending is the number of messages under reassembly.
func (r *Reassembler) Pending() int { return len(r.pending) }

// find returns the message under reassembly that h belongs to: requests
// and responses have separate Message ID spaces.
func (r *Reassembler) find(h Header) *partial {
	for _, p := range r.pending {
		if p.header.MessageID == h.MessageID && p.header.IsResponse() == h.IsResponse() {
			return p
		}
	}
	return nil
}

func (r *Reassembler) remove(p *partial) {
	for i, q := range r.pending {
		if q == p {
			r.pending = slices.Delete(r.pending, i, i+1)
			return
		}
	}
}
