package ipsec

import "net/netip"

// EventKind says what happened.
type EventKind uint8

const (
	// EventSoftExpire: an SA reached a soft lifetime; IKE should rekey.
	EventSoftExpire EventKind = iota + 1
	// EventHardExpire: an SA reached a hard lifetime and carries no more
	// traffic; IKE should delete it.
	EventHardExpire
	// EventSeqExhausted: an outbound SA used its last sequence number
	// and stopped; IKE must rekey.
	EventSeqExhausted
	// EventAcquire: PROTECT traffic found no SA (RFC 4301 §5.1 step 3a).
	EventAcquire
)

func (k EventKind) String() string {
	switch k {
	case EventSoftExpire:
		return "soft_expire"
	case EventHardExpire:
		return "hard_expire"
	case EventSeqExhausted:
		return "seq_exhausted"
	case EventAcquire:
		return "acquire"
	}
	return "event?"
}

// Event goes to the control plane over Config.Events. Sending never
// blocks the data path: when the channel is full the event is dropped and
// counted (Engine.EventOverflows).
type Event struct {
	Kind  EventKind
	ReqID uint32
	// SA and Limit describe expiry and exhaustion events.
	SA    SAKey
	Limit Limit
	// Policy and Packet describe an acquire: the entry that matched and
	// the packet's selector fields, from which IKE builds the first
	// traffic selector pair (RFC 7296 §2.9).
	Policy PolicyID
	Packet PacketSelector
}

// PacketSelector is the selector view of one packet.
type PacketSelector struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// saEvent reports an SA lifecycle event. It stays out of line so that the
// packet paths that may call it keep small frames.
//
//go:noinline
func (e *Engine) saEvent(kind EventKind, sa *assoc, limit Limit) {
	e.send(Event{Kind: kind, ReqID: sa.reqID, SA: sa.currentKey(), Limit: limit})
}

func (e *Engine) send(ev Event) {
	if e.events == nil {
		return
	}
	select {
	case e.events <- ev:
	default:
		e.eventOverflows.Add(1)
	}
}

// acquire sends at most one acquire per entry per interval.
//
//go:noinline
func (e *Engine) acquire(ent *spdEntry, f *flow) {
	if !ent.pol.Acquire || e.events == nil {
		return
	}
	now := e.now()
	last := ent.st.lastAcquire.Load()
	if ent.st.acquired.Load() && now-last < int64(e.acquireInterval) {
		return
	}
	if !ent.st.lastAcquire.CompareAndSwap(last, now) {
		return // another goroutine won the slot
	}
	ent.st.acquired.Store(true)
	e.send(Event{Kind: EventAcquire, ReqID: ent.pol.ReqID, Policy: ent.id, Packet: PacketSelector{
		Src: f.srcK.addr(f.v6), Dst: f.dstK.addr(f.v6), Proto: f.proto, SrcPort: uint16(f.srcPort), DstPort: uint16(f.dstPort)}})
}
