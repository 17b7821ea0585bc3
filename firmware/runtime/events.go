package runtime

import (
	"context"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
)

// tickInterval is how often the engine checks time lifetimes and expires
// SPI reservations; once a second is what ipsec.Engine.Tick asks for.
const tickInterval = time.Second

// eventQueueLen bounds the engine's event channel. The engine never
// blocks on it: a full channel drops the event and counts it
// (Engine.EventOverflows), and acquires are rate-limited per policy.
const eventQueueLen = 1024

// dataPlaneLoop carries the engine's events to the IKE manager, ticks
// the engine's lifetimes and, when a child sets inactivity, samples the
// SAs' use, until ctx ends. It is the only reader of the event channel.
func (r *Runtime) dataPlaneLoop(ctx context.Context) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.events:
			de := dataPlaneEvent(ev)
			r.log.Debug("data plane event", "kind", de.Kind, "reqid", de.ReqID, "sa", ev.SA.String())
			if !r.ike.Event(de) {
				r.log.Warn("IKE event queue full: data plane event dropped", "kind", de.Kind, "reqid", de.ReqID)
			}
		case <-t.C:
			r.engine.Tick(r.engineNow())
			if r.inactivity {
				r.usage.sample()
			}
		}
	}
}

// dataPlaneEvent translates an engine event for IKE: expiries and
// exhaustion name the SA, an acquire carries the packet's selector
// fields, from which IKE builds the first TS pair (RFC 7296 §2.9).
func dataPlaneEvent(ev ipsec.Event) ike.DataPlaneEvent {
	out := ike.DataPlaneEvent{ReqID: ev.ReqID, SA: ikeKey(ev.SA)}
	switch ev.Kind {
	case ipsec.EventSoftExpire:
		out.Kind = ike.EventSoftExpire
	case ipsec.EventHardExpire:
		out.Kind = ike.EventHardExpire
	case ipsec.EventSeqExhausted:
		out.Kind = ike.EventSeqExhausted
	case ipsec.EventAcquire:
		out.Kind = ike.EventAcquire
		out.Src, out.Dst = ev.Packet.Src, ev.Packet.Dst
		out.Proto, out.SrcPort, out.DstPort = ev.Packet.Proto, ev.Packet.SrcPort, ev.Packet.DstPort
	}
	return out
}
