package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bitw-dev/bitw/firmware/mgmt"
	"github.com/bitw-dev/bitw/firmware/status"
	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ike/message"
	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
)

// Snapshot implements status.Source: IKE's view of every SA, joined with
// the data plane's live counters by SA key, and the drop counters of both
// the engine and the frame path. Safe for concurrent use.
func (r *Runtime) Snapshot() status.Status {
	st := status.Status{Device: r.cfg.Device.Name, Version: r.opts.Version, UptimeSecs: int64(time.Since(r.start) / time.Second)}
	var sas []ike.IKESAStatus
	var stats ike.Stats
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := r.ike.Call(ctx, func() { sas, stats = r.ike.Status(), r.ike.Stats() })
	if err != nil {
		r.log.Warn("status: IKE did not answer; reporting the data plane only", "err", err)
	}
	now := time.Now()
	for _, sa := range sas {
		st.IKESAs = append(st.IKESAs, r.ikeSA(sa, now))
	}
	drops := r.engine.Drops()
	ctr := r.stack.Counters()
	st.Drops = map[string]map[string]uint64{}
	if m := status.DropCounts(drops[:], ipsecReason); len(m) > 0 {
		st.Drops[status.SourceIPsec] = m
	}
	if m := status.DropCounts(ctr.Drops[:], netstackReason); len(m) > 0 {
		st.Drops[status.SourceNetstack] = m
	}
	if m := ikeDrops(&stats); len(m) > 0 {
		st.Drops[SourceIKE] = m
	}
	return st
}

// SourceIKE is the status drop source of the IKE engine: datagrams it
// discarded (ike.DropReason) and messages it refused as malformed
// (message.Reason, as "malformed_..."), beside status.SourceIPsec and
// status.SourceNetstack.
const SourceIKE = "ike"

// dropLabel writes an IKE drop reason in the style of the data plane's
// metric labels (lower case, underscores).
func dropLabel(s string) string {
	return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(s))
}

// ikeDrops names IKE's drop counters for the status: those that occurred.
func ikeDrops(s *ike.Stats) map[string]uint64 {
	m := map[string]uint64{}
	for i, n := range s.Drops {
		if i > 0 && n > 0 {
			m[dropLabel(ike.DropReason(i).String())] += n
		}
	}
	for i, n := range s.Malformed {
		if n == 0 {
			continue
		}
		name := "malformed"
		if i > 0 {
			name += "_" + dropLabel(message.Reason(i).String())
		}
		m[name] += n
	}
	return m
}

// ikeDropList is IKE's drop counters for the metrics, with the labels of
// ikeDrops: every reason, zero counts included, so that every series
// exists from the start.
func ikeDropList(s *ike.Stats) []mgmt.Drop {
	drops := mgmt.DropsFrom(SourceIKE, s.Drops[:], func(i int) string { return dropLabel(ike.DropReason(i).String()) })
	drops = append(drops, mgmt.Drop{Source: SourceIKE, Reason: "malformed", Count: s.Malformed[0]})
	for i := 1; i < message.NumReasons; i++ {
		drops = append(drops, mgmt.Drop{Source: SourceIKE, Reason: "malformed_" + dropLabel(message.Reason(i).String()), Count: s.Malformed[i]})
	}
	return drops
}

// ikeCounters are the IKE counters of the metrics. Requests we sent are
// exchanges we initiated; requests we received, exchanges the peer
// initiated (retransmissions are counted apart).
func ikeCounters(st *ike.Stats) mgmt.IKECounters {
	c := mgmt.IKECounters{
		Retransmits:     st.Retransmits,
		AuthFailures:    st.AuthFailures,
		CookiesSent:     st.CookiesSent,
		CookiesVerified: st.CookiesVerified,
		UnprotectedReplies: []mgmt.NotifyCount{
			{Notify: message.NotifyInvalidIKESPI.String(), Count: st.InvalidIKESPISent},
			{Notify: message.NotifyInvalidMajorVersion.String(), Count: st.InvalidMajorVersionSent},
		},
		UnprotectedRepliesLimited: st.UnprotectedRepliesLimited,
		IdleChildSAsClosed:        st.ChildrenIdle,
		EventsDropped:             st.EventsDropped,
	}
	for i := range ike.NumExchangeSlots {
		name := ike.ExchangeOfSlot(i)
		c.Exchanges = append(c.Exchanges,
			mgmt.Exchange{Type: name, Direction: "out", Count: st.Out[i][0]},
			mgmt.Exchange{Type: name, Direction: "in", Count: st.In[i][0]})
	}
	return c
}

// ipsecCounters are the engine's counters of the metrics beside its drops.
func ipsecCounters(e *ipsec.Engine) mgmt.IPsecCounters {
	return mgmt.IPsecCounters{EventOverflows: e.EventOverflows()}
}

func ipsecReason(i int) string    { return ipsec.DropReason(i).String() }
func netstackReason(i int) string { return netstack.DropReason(i).String() }

func (r *Runtime) ikeSA(sa ike.IKESAStatus, now time.Time) status.IKESA {
	out := status.IKESA{
		Conn:       sa.Conn,
		State:      sa.State.String(),
		Local:      sa.Local.Addr(),
		Remote:     sa.Remote.Addr(),
		Initiator:  sa.Initiator,
		Proposal:   sa.Proposal,
		SPIi:       status.IKESPI(sa.SPIi),
		SPIr:       status.IKESPI(sa.SPIr),
		LocalPort:  sa.Local.Port(),
		RemotePort: sa.Remote.Port(),
		LocalID:    sa.LocalID,
		RemoteID:   sa.RemoteID,
		NATLocal:   sa.NATLocal,
		NATRemote:  sa.NATRemote,
	}
	if !sa.Established.IsZero() {
		out.EstablishedSecs = int64(now.Sub(sa.Established) / time.Second)
	}
	out.RekeySecs, out.ExpireSecs = secsUntil(sa.RekeyAt, now), secsUntil(sa.ExpireAt, now)
	for _, c := range sa.Children {
		out.ChildSAs = append(out.ChildSAs, r.childSA(c, now))
	}
	return out
}

func (r *Runtime) childSA(c ike.ChildSAStatus, now time.Time) status.ChildSA {
	out := status.ChildSA{
		Name:     c.Name,
		State:    c.State.String(),
		Mode:     c.Mode.String(),
		Protocol: c.Protocol.String(),
		Encap:    c.Encap,
		SPIIn:    status.SPI(c.SPIIn),
		SPIOut:   status.SPI(c.SPIOut),
		Proposal: c.Proposal,
		ReqID:    c.ReqID,
	}
	for _, t := range c.LocalTS {
		out.LocalTS = append(out.LocalTS, t.String())
	}
	for _, t := range c.RemoteTS {
		out.RemoteTS = append(out.RemoteTS, t.String())
	}
	// The counters are the data plane's: what the SAs actually carried.
	if c.InSA.SPI != 0 {
		if in, ok := r.engine.SA(saKey(c.InSA)); ok {
			out.BytesIn, out.PacketsIn = in.Stats.Bytes, in.Stats.Packets
			out.ReplayDrops, out.AuthDrops, out.OtherDrops = in.Stats.ReplayDrops, in.Stats.AuthDrops, in.Stats.OtherDrops
		}
	}
	if c.OutSA.SPI != 0 {
		if o, ok := r.engine.SA(saKey(c.OutSA)); ok {
			out.BytesOut, out.PacketsOut, out.SeqOut = o.Stats.Bytes, o.Stats.Packets, o.Seq
		}
	}
	if !c.Installed.IsZero() {
		out.InstalledSecs = int64(now.Sub(c.Installed) / time.Second)
	}
	out.RekeySecs, out.ExpireSecs = secsUntil(c.RekeyAt, now), secsUntil(c.ExpireAt, now)
	return out
}

// secsUntil is the time from now to t in whole seconds, rounded up so that
// a scheduled time shows until it comes; 0 when t is unset or past (a
// timer IKE's goroutine has not run yet).
func secsUntil(t, now time.Time) int64 {
	if t.IsZero() || !t.After(now) {
		return 0
	}
	return int64((t.Sub(now) + time.Second - 1) / time.Second)
}

// Metrics implements mgmt.MetricsSource: the counters the status does not
// carry. Safe for concurrent use.
func (r *Runtime) Metrics() mgmt.Metrics {
	var st ike.Stats
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := r.ike.Call(ctx, func() { st = r.ike.Stats() }); err != nil {
		r.log.Warn("metrics: IKE did not answer; its counters read zero", "err", err)
	}
	drops := r.engine.Drops()
	ctr := r.stack.Counters()
	all := append(mgmt.DropsFrom(status.SourceIPsec, drops[:], ipsecReason),
		mgmt.DropsFrom(status.SourceNetstack, ctr.Drops[:], netstackReason)...)
	return mgmt.Metrics{
		Drops: append(all, ikeDropList(&st)...),
		IPsec: ipsecCounters(r.engine),
		IKE:   ikeCounters(&st),
		Pool:  mgmt.Pool{Available: ctr.PoolAvailable, Size: poolBuffers},
		Interfaces: []mgmt.Interface{
			portMetrics(netstack.Red, ctr.Red),
			portMetrics(netstack.Black, ctr.Black),
		},
	}
}

func portMetrics(p netstack.Port, c netstack.PortCounters) mgmt.Interface {
	return mgmt.Interface{Name: p.String(), RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets,
		TxBytes: c.TxBytes, RxErrors: c.RxErrors, TxErrors: c.TxErrors}
}

func spiString(spi uint32) string   { return fmt.Sprintf("%08x", spi) }
func spi64String(spi uint64) string { return fmt.Sprintf("%016x", spi) }
