package ipsec

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Direction says whether an SA protects traffic we send or traffic we
// receive.
type Direction uint8

const (
	DirIn Direction = iota + 1
	DirOut
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "dir?"
}

// Mode is the IPsec mode of an SA (RFC 4301 §4.1).
type Mode uint8

const (
	ModeTunnel Mode = iota + 1
	ModeTransport
)

// String prints the mode as the status JSON does.
func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "TUNNEL"
	case ModeTransport:
		return "TRANSPORT"
	}
	return "MODE?"
}

// UDPEncap holds the UDP ports of ESP-in-UDP (RFC 3948), as seen from
// the SA's direction: for an outbound SA SrcPort is ours and DstPort the
// peer's; for an inbound SA the reverse. Both zero means no encapsulation.
type UDPEncap struct {
	SrcPort, DstPort uint16
}

// Enabled reports whether ESP travels in UDP.
func (u UDPEncap) Enabled() bool { return u.SrcPort != 0 || u.DstPort != 0 }

// Limits are one set of lifetime limits; zero fields are unlimited.
type Limits struct {
	Bytes   uint64
	Packets uint64
	Time    time.Duration
}

// Lifetime holds the soft limits, which raise EventSoftExpire once so
// that IKE rekeys, and the hard limits, which raise EventHardExpire and
// stop the SA (RFC 4301 §4.4.2.1).
type Lifetime struct {
	Soft, Hard Limits
}

// DFPolicy chooses the outer IPv4 DF bit in tunnel mode (RFC 4301 §8.1).
type DFPolicy uint8

const (
	// DFCopy copies DF from an IPv4 inner header and sets it for an
	// IPv6 inner packet, which no router may fragment.
	DFCopy DFPolicy = iota
	DFSet
	DFClear
)

// ECNMode chooses tunnel ECN handling (RFC 6040).
type ECNMode uint8

const (
	// ECNNormal copies the inner ECN field to the outer header on
	// encapsulation (RFC 6040 §4.1, normal mode) and combines them on
	// decapsulation (§4.2).
	ECNNormal ECNMode = iota
	// ECNCompat writes Not-ECT into the outer header (compatibility
	// mode, RFC 6040 §4.1); decapsulation is the same.
	ECNCompat
)

// OuterHeader is how tunnel mode builds the outer IP header.
type OuterHeader struct {
	// TTL is the outer TTL or hop limit; zero means 64.
	TTL uint8
	DF  DFPolicy
	ECN ECNMode
	// SetDSCP writes DSCP into the outer header instead of copying the
	// inner one (RFC 4301 §5.1.2.1 leaves the choice to the SA).
	SetDSCP bool
	DSCP    uint8
}

// NATOA carries the original addresses of a transport-mode SA behind a
// NAT (RFC 3948 §3.1.2; IKE learns them from NAT-OA payloads or the
// traffic selectors): Src is the peer's address before translation and
// Dst ours as the peer saw it. Inbound transport decapsulation adjusts
// TCP, UDP and ICMPv6 checksums from these to the packet's addresses.
// Without them the checksum is recomputed in full.
type NATOA struct {
	Src, Dst netip.Addr
}

// SAConfig is everything the control plane knows about one SA.
type SAConfig struct {
	Dir  Direction
	SPI  uint32
	Mode Mode
	// Src and Dst are the outer addresses: tunnel endpoints, or the two
	// hosts in transport mode. Their family picks the outer header.
	Src, Dst netip.Addr
	Encap    UDPEncap
	// Suite is the negotiated proposal; its Protocol chooses ESP or AH
	// and its ESN flag 64-bit sequence numbers.
	Suite proposal.Suite
	// EncKey is the encryption key followed by any salt (RFC 7296
	// §2.17); IntegKey the integrity key (AUTH_AES_*_GMAC: key and salt).
	EncKey, IntegKey []byte
	// ReplayWindow is the inbound anti-replay window in packets; zero
	// takes the engine default.
	ReplayWindow int
	Lifetime     Lifetime
	// Selectors are the SA's traffic selectors (Local = our side). An
	// inbound SA drops decapsulated packets outside them.
	Selectors Selectors
	// TFC pads every tunnel-mode packet up to the MTU passed to
	// Outbound, as far as the buffer's tailroom allows (RFC 4303 §2.7).
	TFC   bool
	Outer OuterHeader
	NATOA NATOA
	// ReqID ties the SA to policies (Policy.ReqID) and to IKE's child
	// SA in events.
	ReqID uint32
	// MatchSrc and MatchDst make an inbound lookup compare the outer
	// source and destination besides the SPI (RFC 4301 §4.1).
	MatchSrc, MatchDst bool
	// InitialSeq starts the outbound counter (the first packet carries
	// InitialSeq+1), or for an inbound SA places the replay window as if
	// InitialSeq had arrived. Tests use it to reach exhaustion or the
	// 2^32 boundary quickly; IKE leaves it zero.
	InitialSeq uint64
}

// SAKey names an installed SA: RFC 4301 §4.1 identifies an SA by SPI,
// destination and protocol, and by source too where the SA's lookup asks
// for it (Src is set only for SAs with MatchSrc); the direction separates
// our inbound SAs from outbound ones that a peer may have given the same
// SPI.
type SAKey struct {
	Dir   Direction
	Proto proposal.Protocol
	SPI   uint32
	Dst   netip.Addr
	Src   netip.Addr
}

func (k SAKey) String() string {
	s := fmt.Sprintf("%s %s %08x dst %s", k.Dir, k.Proto, k.SPI, k.Dst)
	if k.Src.IsValid() {
		s += " src " + k.Src.String()
	}
	return s
}

// Key returns the key the SA will be installed under.
func (c *SAConfig) Key() SAKey {
	k := SAKey{Dir: c.Dir, Proto: c.Suite.Protocol, SPI: c.SPI, Dst: c.Dst.Unmap()}
	if c.MatchSrc {
		k.Src = c.Src.Unmap()
	}
	return k
}

// SA state bits.
const (
	stateSoft      = 1 << iota // soft lifetime reached, event sent
	stateHard                  // hard lifetime reached: no more traffic
	stateExhausted             // outbound sequence numbers used up
)

// path is the part of an SA that UpdateSA may change after a NAT float.
type path struct {
	src, dst   netip.Addr
	srcK, dstK addrKey // the addresses as keys, for lookups
	encap      UDPEncap
	v4         bool
	udpLen     int // udpLen with encap, else 0
	hdrLen     int // the outer header's length
	// hdr is the tunnel's outer header as far as the path fixes it:
	// version, TTL or hop limit, protocol and addresses; the rest is
	// zero. sum is the IPv4 checksum's sum over those fields.
	hdr [ipv6Len]byte
	sum uint32
}

// newPath builds sa's path toward dst. The outer protocol is ESP, or UDP
// when encapsulating, or AH.
func (sa *assoc) newPath(src, dst netip.Addr, encap UDPEncap) *path {
	p := &path{src: src, dst: dst, srcK: keyOf(src), dstK: keyOf(dst), encap: encap, v4: dst.Is4(), hdrLen: ipv6Len}
	if p.v4 {
		p.hdrLen = ipv4MinLen
	}
	if encap.Enabled() {
		p.udpLen = udpLen
	}
	proto := byte(protoESP)
	switch {
	case sa.ah != nil:
		proto = protoAH
	case encap.Enabled():
		proto = protoUDP
	}
	ttl := sa.outer.TTL
	if ttl == 0 {
		ttl = 64 // RFC 4301 leaves it to the encapsulator; the common default
	}
	h := p.hdr[:]
	if p.v4 {
		h[0] = 0x45
		h[ipv4TTL], h[ipv4Proto] = ttl, proto
		copy(h[ipv4Src:], src.AsSlice())
		copy(h[ipv4Dst:], dst.AsSlice())
		p.sum = checksumAdd(0, h[:ipv4MinLen])
	} else {
		h[0] = 0x60
		h[ipv6NextHeader], h[ipv6HopLimit] = proto, ttl
		copy(h[ipv6Src:], src.AsSlice())
		copy(h[ipv6Dst:], dst.AsSlice())
	}
	return p
}

// assoc is an installed security association (an SA). Its configuration is
// immutable; counters, the replay window and the path change under the
// rules noted at each field.
type assoc struct {
	key SAKey // as installed; the addresses live on in path

	reqID uint32
	mode  Mode
	suite proposal.Suite
	esn   bool
	esp   *espCipher
	ah    *integrity
	ahICV [2]int // AH ICV field length for IPv4 [0] and IPv6 [1] outer headers
	tfc   bool
	outer OuterHeader
	// The outer TOS octet is the inner one's bits in tosKeep with tosSet
	// added (DSCP copied or set, ECN copied or Not-ECT); the outer DF is
	// dfSet, with dfCopy added when the inner packet has DF.
	tosKeep, tosSet uint8
	dfSet, dfCopy   uint8
	selectors       Selectors
	sel             matcher // selectors, compiled for the inbound check
	natOA           NATOA
	matchSrc        bool
	matchDst        bool
	life            Lifetime
	// countLimits says whether any byte or packet limit is set, so
	// that packets skip the lifetime checks when none is.
	countLimits bool
	// fastOut and fastIn say the SA takes Engine.outboundFast or
	// Engine.inboundFast, which leave out what such SAs never need.
	fastOut, fastIn bool
	installed       int64  // engine clock at AddSA
	order           uint64 // install order, to pick the newest outbound SA
	initialSeq      uint64
	maxSeq          uint64
	ipIDBase        uint16

	path  atomic.Pointer[path]
	state atomic.Uint32

	// Outbound: the last sequence number issued, and bytes sent.
	seq      atomic.Uint64
	outBytes atomic.Uint64

	// Inbound: the replay window, whose updates mu serializes, and the
	// counters mu guards.
	mu          sync.Mutex
	replay      *replayWindow
	inBytes     uint64
	inPackets   uint64
	replayDrops atomic.Uint64
	authDrops   atomic.Uint64
	// resync is RFC 4303 Appendix A.3 state, for inbound ESN ESP SAs.
	resync     *esnResync
	otherDrops atomic.Uint64
}

// currentKey is the SA's key with the destination a NAT float may have
// changed since AddSA.
func (sa *assoc) currentKey() SAKey {
	k := sa.key
	p := sa.path.Load()
	k.Dst = p.dst
	if sa.matchSrc {
		k.Src = p.src
	}
	return k
}

// newSA validates cfg and builds the SA's transforms, on eng where it
// can (Config.Crypto).
func newSA(cfg *SAConfig, pol proposal.Policy, defWindow int, rnd io.Reader, now int64, eng hw.Engine) (*assoc, error) {
	if cfg.Dir != DirIn && cfg.Dir != DirOut {
		return nil, fmt.Errorf("ipsec: SA %08x: direction must be in or out", cfg.SPI)
	}
	if cfg.SPI < 256 {
		return nil, fmt.Errorf("ipsec: SPI %d is reserved (RFC 4303 §2.1)", cfg.SPI)
	}
	if cfg.Mode != ModeTunnel && cfg.Mode != ModeTransport {
		return nil, fmt.Errorf("ipsec: SA %08x: mode must be tunnel or transport", cfg.SPI)
	}
	src, dst := cfg.Src.Unmap(), cfg.Dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("ipsec: SA %08x: outer addresses %v and %v must be valid and of one family", cfg.SPI, cfg.Src, cfg.Dst)
	}
	if err := cfg.Suite.Check(pol); err != nil {
		return nil, fmt.Errorf("ipsec: SA %08x refused: %w", cfg.SPI, err)
	}
	sa := &assoc{
		key:        cfg.Key(),
		reqID:      cfg.ReqID,
		mode:       cfg.Mode,
		suite:      cfg.Suite,
		esn:        cfg.Suite.ESN,
		tfc:        cfg.TFC,
		outer:      cfg.Outer,
		selectors:  cfg.Selectors.clone(),
		natOA:      NATOA{Src: cfg.NATOA.Src.Unmap(), Dst: cfg.NATOA.Dst.Unmap()},
		matchSrc:   cfg.MatchSrc,
		matchDst:   cfg.MatchDst,
		life:       cfg.Lifetime,
		installed:  now,
		initialSeq: cfg.InitialSeq,
		maxSeq:     1<<32 - 1,
	}
	if sa.esn {
		sa.maxSeq = ^uint64(0)
	}
	l := &cfg.Lifetime
	sa.countLimits = l.Soft.Bytes|l.Soft.Packets|l.Hard.Bytes|l.Hard.Packets != 0
	if cfg.InitialSeq >= sa.maxSeq {
		return nil, fmt.Errorf("ipsec: SA %08x: initial sequence number %d leaves no room", cfg.SPI, cfg.InitialSeq)
	}
	sa.seq.Store(cfg.InitialSeq)
	if err := sa.selectors.validate(); err != nil {
		return nil, fmt.Errorf("ipsec: SA %08x: %w", cfg.SPI, err)
	}
	sa.sel = sa.selectors.compile()
	if sa.outer.DSCP > 63 {
		return nil, fmt.Errorf("ipsec: SA %08x: DSCP %d out of range", cfg.SPI, sa.outer.DSCP)
	}
	sa.tosKeep = 0xff
	if sa.outer.SetDSCP {
		sa.tosKeep, sa.tosSet = 0x03, sa.outer.DSCP<<2
	}
	if sa.outer.ECN == ECNCompat {
		sa.tosKeep &^= 0x03
	}
	switch sa.outer.DF {
	case DFSet:
		sa.dfSet = ipv4FlagDF
	case DFCopy:
		sa.dfCopy = ipv4FlagDF
	}
	var err error
	switch cfg.Suite.Protocol {
	case proposal.ProtoESP:
		if sa.esp, err = newESPCipher(cfg.Suite, cfg.EncKey, cfg.IntegKey, rnd, eng); err != nil {
			return nil, fmt.Errorf("ipsec: SA %08x: %w", cfg.SPI, err)
		}
	case proposal.ProtoAH:
		if cfg.Encap.Enabled() {
			return nil, fmt.Errorf("ipsec: SA %08x: AH cannot be UDP-encapsulated (RFC 3948 covers ESP only)", cfg.SPI)
		}
		if len(cfg.EncKey) != 0 {
			return nil, fmt.Errorf("ipsec: SA %08x: AH takes no encryption key", cfg.SPI)
		}
		if sa.ah, err = newIntegrity(cfg.Suite.Integ, cfg.IntegKey); err != nil {
			return nil, fmt.Errorf("ipsec: SA %08x: %w", cfg.SPI, err)
		}
		field := sa.ah.icvLen
		if sa.ah.gmac != nil {
			field += gmacIVLen
		}
		sa.ahICV[0] = roundUp(ahFixedLen+field, 4) - ahFixedLen
		sa.ahICV[1] = roundUp(ahFixedLen+field, 8) - ahFixedLen
	default:
		return nil, fmt.Errorf("ipsec: SA %08x: protocol %s is not ESP or AH", cfg.SPI, cfg.Suite.Protocol)
	}
	if cfg.TFC && (cfg.Mode != ModeTunnel || sa.esp == nil) {
		return nil, fmt.Errorf("ipsec: SA %08x: TFC padding needs ESP in tunnel mode, where the inner header gives the length", cfg.SPI)
	}
	if cfg.Dir == DirIn {
		w := cfg.ReplayWindow
		if w == 0 {
			w = defWindow
		}
		if w < MinReplayWindow || w > MaxReplayWindow {
			return nil, fmt.Errorf("ipsec: SA %08x: replay window %d outside %d..%d", cfg.SPI, w, MinReplayWindow, MaxReplayWindow)
		}
		sa.replay = newReplayWindow(w)
		if sa.esn && sa.esp != nil {
			sa.resync = newESNResync()
		}
		if cfg.InitialSeq != 0 {
			sa.replay.update(cfg.InitialSeq)
		}
	} else {
		var id [2]byte
		if _, err := io.ReadFull(rnd, id[:]); err != nil {
			return nil, fmt.Errorf("ipsec: SA %08x: random source: %w", cfg.SPI, err)
		}
		sa.ipIDBase = binary.BigEndian.Uint16(id[:])
	}
	fast := sa.mode == ModeTunnel && sa.esp != nil && sa.esp.kind == kindAEAD && !sa.countLimits
	sa.fastOut = fast && cfg.Dir == DirOut && !sa.tfc
	sa.fastIn = fast && cfg.Dir == DirIn && !sa.esn
	sa.path.Store(sa.newPath(src, dst, cfg.Encap))
	return sa, nil
}

// roundUp rounds n up to a multiple of m, a power of two.
func roundUp(n, m int) int { return (n + m - 1) &^ (m - 1) }

// Limit names the lifetime limit that an expiry event reports.
type Limit uint8

const (
	LimitNone Limit = iota
	LimitBytes
	LimitPackets
	LimitTime
)

func (l Limit) String() string {
	switch l {
	case LimitBytes:
		return "bytes"
	case LimitPackets:
		return "packets"
	case LimitTime:
		return "time"
	}
	return "none"
}

// exceeded returns the first limit of l that bytes, packets or age reach.
func (l *Limits) exceeded(bytes, packets uint64, age time.Duration) Limit {
	switch {
	case l.Bytes != 0 && bytes >= l.Bytes:
		return LimitBytes
	case l.Packets != 0 && packets >= l.Packets:
		return LimitPackets
	case l.Time != 0 && age >= l.Time:
		return LimitTime
	}
	return LimitNone
}

// setState sets bit and reports whether this call set it, so each event
// is sent once.
func (sa *assoc) setState(bit uint32) bool {
	for {
		old := sa.state.Load()
		if old&bit != 0 {
			return false
		}
		if sa.state.CompareAndSwap(old, old|bit) {
			return true
		}
	}
}

// dead reports whether the SA may no longer carry traffic.
func (sa *assoc) dead() bool { return sa.state.Load()&(stateHard|stateExhausted) != 0 }

// nextSeq issues the next outbound sequence number. It never wraps: when
// the counter reaches its maximum (2^32-1, or 2^64-1 with ESN) the SA is
// exhausted (RFC 4303 §3.3.3).
func (sa *assoc) nextSeq() (uint64, bool) {
	for {
		s := sa.seq.Load()
		if s >= sa.maxSeq {
			return 0, false
		}
		if sa.seq.CompareAndSwap(s, s+1) {
			return s + 1, true
		}
	}
}

// SAStats are an SA's live counters. Bytes count inner packets (what the
// SA protects); packets count those that passed.
type SAStats struct {
	Bytes, Packets uint64
	// Inbound drops attributed to this SA.
	ReplayDrops, AuthDrops, OtherDrops uint64
	// ESNResyncs counts the times an inbound ESN SA found the sender's
	// sequence numbers 2^32 or more ahead and followed them (RFC 4303
	// Appendix A.3).
	ESNResyncs uint64
}

// SAState is the lifecycle state of an installed SA.
type SAState uint8

const (
	SAActive SAState = iota
	SASoftExpired
	SAHardExpired
	SAExhausted
)

func (s SAState) String() string {
	switch s {
	case SAActive:
		return "active"
	case SASoftExpired:
		return "soft_expired"
	case SAHardExpired:
		return "hard_expired"
	case SAExhausted:
		return "exhausted"
	}
	return "state?"
}

// SAInfo is a read-only snapshot of an SA for status and metrics.
type SAInfo struct {
	Key      SAKey
	ReqID    uint32
	Mode     Mode
	Suite    proposal.Suite
	Src, Dst netip.Addr
	Encap    UDPEncap
	State    SAState
	// Installed is the engine clock reading at AddSA.
	Installed int64
	// Seq is the last sequence number sent (outbound) or the highest
	// accepted (inbound).
	Seq   uint64
	Stats SAStats
}

func (sa *assoc) info() SAInfo {
	p := sa.path.Load()
	in := SAInfo{Key: sa.currentKey(), ReqID: sa.reqID, Mode: sa.mode, Suite: sa.suite, Src: p.src, Dst: p.dst,
		Encap: p.encap, Installed: sa.installed, Stats: sa.stats()}
	st := sa.state.Load()
	switch {
	case st&stateHard != 0:
		in.State = SAHardExpired
	case st&stateExhausted != 0:
		in.State = SAExhausted
	case st&stateSoft != 0:
		in.State = SASoftExpired
	}
	if sa.key.Dir == DirOut {
		in.Seq = sa.seq.Load()
	} else {
		in.Seq = sa.replay.top.Load()
	}
	return in
}

func (sa *assoc) stats() SAStats {
	s := SAStats{ReplayDrops: sa.replayDrops.Load(), AuthDrops: sa.authDrops.Load(), OtherDrops: sa.otherDrops.Load()}
	if sa.resync != nil {
		s.ESNResyncs = sa.resync.done.Load()
	}
	if sa.key.Dir == DirOut {
		s.Bytes = sa.outBytes.Load()
		s.Packets = sa.seq.Load() - sa.initialSeq
		return s
	}
	sa.mu.Lock()
	s.Bytes, s.Packets = sa.inBytes, sa.inPackets
	sa.mu.Unlock()
	return s
}
