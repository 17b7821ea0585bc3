package mgmt

import (
	"bufio"
	"io"
	"strconv"
	"strings"

	"github.com/bitw-dev/bitw/firmware/status"
)

// MetricsSource gives the counters that the status snapshot does not carry.
// The runtime implements it from ipsec.Engine.Drops, netstack's Counters and
// the IKE manager's statistics; it is called on every GET /metrics, from the
// server's goroutines.
type MetricsSource interface {
	Metrics() Metrics
}

// MetricsFunc adapts a function to MetricsSource.
type MetricsFunc func() Metrics

// Metrics calls f.
func (f MetricsFunc) Metrics() Metrics { return f() }

// Metrics is one snapshot of the device counters.
type Metrics struct {
	// Drops lists every drop reason of each source, zero counts included
	// so the series exist before the first drop (see DropsFrom).
	Drops      []Drop
	IPsec      IPsecCounters
	IKE        IKECounters
	Pool       Pool
	Interfaces []Interface
}

// IPsecCounters are the data plane's counters beside its packet drops.
type IPsecCounters struct {
	// EventOverflows counts events (soft and hard expiries, sequence
	// number exhaustion, acquires) the engine dropped because its bounded
	// event channel was full: IKE never saw them.
	EventOverflows uint64
}

// Drop is the number of packets one source dropped for one reason.
type Drop struct {
	Source string // status.SourceIPsec or status.SourceNetstack
	Reason string // the reason's metric label (ipsec.DropReason.String)
	Count  uint64
}

// IKECounters are the IKE engine's protocol counters.
type IKECounters struct {
	// Exchanges counts IKE exchanges by type (IKE_SA_INIT, IKE_AUTH,
	// CREATE_CHILD_SA, INFORMATIONAL, IKE_INTERMEDIATE, ...) and direction:
	// "out" for exchanges we initiated, "in" for those the peer did.
	Exchanges []Exchange
	// Retransmits counts requests sent again for want of a response.
	Retransmits uint64
	// AuthFailures counts IKE_AUTH exchanges that failed authentication,
	// either side's.
	AuthFailures uint64
	// CookiesSent counts COOKIE challenges sent to IKE_SA_INIT requests
	// (RFC 7296 §2.6: above the half-open threshold, or from a source at
	// its half-open share); CookiesVerified the requests that came back
	// with a valid one.
	CookiesSent, CookiesVerified uint64
	// UnprotectedReplies counts the error notifications sent in clear to
	// requests outside any IKE SA, by type (INVALID_IKE_SPI,
	// INVALID_MAJOR_VERSION); UnprotectedRepliesLimited those the global
	// reply rate held back.
	UnprotectedReplies        []NotifyCount
	UnprotectedRepliesLimited uint64
	// IdleChildSAsClosed counts Child SAs deleted because they carried no
	// traffic for their inactivity time.
	IdleChildSAsClosed uint64
	// EventsDropped counts data-plane events the engine queued but IKE's
	// own bounded queue refused.
	EventsDropped uint64
}

// NotifyCount is the number of IKE notifications of one type.
type NotifyCount struct {
	Notify string // the type's name, "INVALID_IKE_SPI"
	Count  uint64
}

// Exchange is one (type, direction) counter of IKECounters.
type Exchange struct {
	Type      string
	Direction string // "in" or "out"
	Count     uint64
}

// Pool is the data path's buffer pool.
type Pool struct {
	Available int // free buffers now
	Size      int // buffers in the pool
}

// Interface is one port's traffic counters ("red", "black").
type Interface struct {
	Name               string
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	RxErrors, TxErrors uint64
}

// DropsFrom turns a drop counter array indexed by reason into Drop values
// of one source: reason(i) names index i, and index 0 ("none") is left
// out. Zero counts are kept, so every series exists from the start.
func DropsFrom(source string, counts []uint64, reason func(i int) string) []Drop {
	drops := make([]Drop, 0, len(counts))
	for i, n := range counts {
		if i == 0 {
			continue
		}
		drops = append(drops, Drop{Source: source, Reason: reason(i), Count: n})
	}
	return drops
}

// ContentType is the Prometheus text exposition format this server writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteMetrics writes the exposition text (Prometheus text format 0.0.4):
// per-SA counters and SA counts by state from st, the rest from m.
func WriteMetrics(w io.Writer, st status.Status, m Metrics) error {
	e := &exposition{w: bufio.NewWriter(w)}

	f := e.family("bitw_info", "gauge", "The running bitw: device name and version (always 1).")
	f.add(1, "device", st.Device, "version", st.Version)
	e.flush(f)
	e.single("bitw_uptime_seconds", "gauge", "Seconds since the runtime started.", uint64(max(st.UptimeSecs, 0)))

	ikeStates := e.family("bitw_ike_sas", "gauge", "IKE SAs by state.")
	childStates := e.family("bitw_child_sas", "gauge", "Child SAs by state.")
	for _, s := range status.IKEStates {
		ikeStates.add(0, "state", s)
	}
	for _, s := range status.ChildStates {
		childStates.add(0, "state", s)
	}
	saBytes := e.family("bitw_sa_bytes_total", "counter", "Inner bytes an SA carried, by connection, child, SPI and direction.")
	saPackets := e.family("bitw_sa_packets_total", "counter", "Inner packets an SA carried, by connection, child, SPI and direction.")
	saDrops := e.family("bitw_sa_drops_total", "counter", "Inbound packets dropped on an SA, by reason: replay, auth (integrity check failed) or other.")
	for _, ike := range st.IKESAs {
		ikeStates.add(1, "state", ike.State)
		for _, c := range ike.ChildSAs {
			childStates.add(1, "state", c.State)
			if c.SPIIn != 0 {
				spi := c.SPIIn.String()
				saBytes.add(c.BytesIn, "conn", ike.Conn, "child", c.Name, "spi", spi, "direction", "in")
				saPackets.add(c.PacketsIn, "conn", ike.Conn, "child", c.Name, "spi", spi, "direction", "in")
				saDrops.add(c.ReplayDrops, "conn", ike.Conn, "child", c.Name, "spi", spi, "reason", "replay")
				saDrops.add(c.AuthDrops, "conn", ike.Conn, "child", c.Name, "spi", spi, "reason", "auth")
				saDrops.add(c.OtherDrops, "conn", ike.Conn, "child", c.Name, "spi", spi, "reason", "other")
			}
			if c.SPIOut != 0 {
				spi := c.SPIOut.String()
				saBytes.add(c.BytesOut, "conn", ike.Conn, "child", c.Name, "spi", spi, "direction", "out")
				saPackets.add(c.PacketsOut, "conn", ike.Conn, "child", c.Name, "spi", spi, "direction", "out")
			}
		}
	}
	e.flush(ikeStates, childStates, saBytes, saPackets, saDrops)

	f = e.family("bitw_drops_total", "counter", "Packets dropped, by source (ipsec: the data plane, netstack: the frame path, ike: IKE datagrams discarded or refused as malformed) and reason.")
	for _, d := range m.Drops {
		f.add(d.Count, "source", d.Source, "reason", d.Reason)
	}
	e.flush(f)
	e.single("bitw_ipsec_event_overflows_total", "counter", "Data-plane events (expiries, sequence number exhaustion, acquires) dropped because the engine's event channel was full.", m.IPsec.EventOverflows)

	f = e.family("bitw_ike_exchanges_total", "counter", "IKE exchanges by type and direction (out: initiated by us, in: by the peer).")
	for _, x := range m.IKE.Exchanges {
		f.add(x.Count, "type", x.Type, "direction", x.Direction)
	}
	e.flush(f)
	e.single("bitw_ike_retransmits_total", "counter", "IKE requests retransmitted for want of a response.", m.IKE.Retransmits)
	e.single("bitw_ike_auth_failures_total", "counter", "IKE_AUTH exchanges that failed authentication.", m.IKE.AuthFailures)
	e.single("bitw_ike_cookies_sent_total", "counter", "COOKIE challenges sent to IKE_SA_INIT requests: above the half-open threshold, or from a source at its half-open share.", m.IKE.CookiesSent)
	e.single("bitw_ike_cookies_verified_total", "counter", "IKE_SA_INIT requests that returned a valid COOKIE.", m.IKE.CookiesVerified)
	f = e.family("bitw_ike_unprotected_replies_total", "counter", "Error notifications sent in clear to requests outside any IKE SA, by notify type.")
	for _, n := range m.IKE.UnprotectedReplies {
		f.add(n.Count, "notify", n.Notify)
	}
	e.flush(f)
	e.single("bitw_ike_unprotected_replies_limited_total", "counter", "Unprotected error replies not sent because the global reply rate was spent.", m.IKE.UnprotectedRepliesLimited)
	e.single("bitw_ike_idle_child_sas_closed_total", "counter", "Child SAs deleted because they carried no traffic for their inactivity time.", m.IKE.IdleChildSAsClosed)
	e.single("bitw_ike_events_dropped_total", "counter", "Data-plane events dropped because IKE's event queue was full.", m.IKE.EventsDropped)

	e.single("bitw_buffer_pool_available", "gauge", "Free buffers in the data path's pool.", uint64(max(m.Pool.Available, 0)))
	e.single("bitw_buffer_pool_size", "gauge", "Buffers in the data path's pool.", uint64(max(m.Pool.Size, 0)))

	packets := e.family("bitw_interface_packets_total", "counter", "Frames a port received (rx) or transmitted (tx).")
	bytes := e.family("bitw_interface_bytes_total", "counter", "Octets of the frames a port received (rx) or transmitted (tx).")
	errors := e.family("bitw_interface_errors_total", "counter", "Frames a port failed to read (rx) or the NIC refused (tx).")
	for _, i := range m.Interfaces {
		packets.add(i.RxPackets, "interface", i.Name, "direction", "rx")
		packets.add(i.TxPackets, "interface", i.Name, "direction", "tx")
		bytes.add(i.RxBytes, "interface", i.Name, "direction", "rx")
		bytes.add(i.TxBytes, "interface", i.Name, "direction", "tx")
		errors.add(i.RxErrors, "interface", i.Name, "direction", "rx")
		errors.add(i.TxErrors, "interface", i.Name, "direction", "tx")
	}
	e.flush(packets, bytes, errors)
	return e.w.Flush()
}

// exposition writes metric families in order. A family collects its
// samples first, so a series reported twice (two SAs under one SPI, a
// source listing a reason twice) is summed rather than written twice,
// which would make the whole scrape invalid.
type exposition struct {
	w *bufio.Writer
}

type family struct {
	name, typ, help string
	series          []string // rendered label sets, in first-seen order
	values          map[string]uint64
}

func (e *exposition) family(name, typ, help string) *family {
	return &family{name: name, typ: typ, help: help, values: make(map[string]uint64)}
}

// add adds v to the series with the given label name/value pairs.
func (f *family) add(v uint64, labels ...string) {
	var b strings.Builder
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	key := b.String()
	if _, ok := f.values[key]; !ok {
		f.series = append(f.series, key)
	}
	f.values[key] += v
}

// single writes a family of one unlabelled series.
func (e *exposition) single(name, typ, help string, v uint64) {
	f := e.family(name, typ, help)
	f.add(v)
	e.flush(f)
}

func (e *exposition) flush(families ...*family) {
	for _, f := range families {
		e.w.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		e.w.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, s := range f.series {
			e.w.WriteString(f.name + s + " " + strconv.FormatUint(f.values[s], 10) + "\n")
		}
	}
}

// escapeLabel escapes a label value as the text format requires: backslash,
// double quote and line feed. Label values must be UTF-8, and a peer's or
// a config's odd bytes must not break the scrape.
func escapeLabel(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return labelEscaper.Replace(s)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeHelp(s string) string {
	return helpEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
