package ike

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/ike/message"
)

// Manager owns every IKE SA. Its methods HandlePacket, Tick,
// HandleDataPlaneEvent and the commands are not safe for concurrent use:
// one goroutine drives them, either a test or Run, which serialises
// sockets, data-plane events, timers and calls from other goroutines.
type Manager struct {
	cfg   Config
	deps  Deps
	clock Clock
	rand  io.Reader
	log   *slog.Logger
	now   time.Time

	conns         map[string]*Connection
	sas           map[uint64]*ikeSA      // by our SPI
	initIndex     map[halfOpenKey]*ikeSA // responder SAs by their IKE_SA_INIT request
	halfOpenCount int
	// halfOpenSources counts half-open SAs per source (HalfOpenPerSource).
	halfOpenSources map[netip.Prefix]halfOpenSource
	// replies limits unprotected error replies (UnprotectedReplyRate).
	replies       tokenBucket
	timers        timerHeap
	cookies       cookieJar
	pools         map[string]*addrPool
	reqIDs        map[string]*reqIDEntry // by child and selectors
	byReqID       map[uint32]*reqIDEntry
	lastReqID     uint32
	traps         map[*Child]*trapEntry
	retries       map[*Connection]*retryState
	connLive      map[*Connection]int  // live IKE SAs per connection
	peers         map[peerKey][]*ikeSA // live IKE SAs per connection and remote identity
	childIndex    map[SAKey]*childSA   // installed SAs, for data-plane events
	usage         SAUsage              // the Installer's use times; nil without inactivity
	nextSAID      uint64
	lastLink      uint64 // ADDITIONAL_KEY_EXCHANGE data last handed out
	stats         Stats
	scratch       []byte // transmit: the datagram with its non-ESP marker
	scratchEncode []byte // stateless IKE_SA_INIT answers
	hashSeed      maphash.Seed

	// Run's queues.
	packets    chan inPacket
	events     chan DataPlaneEvent
	calls      chan func()
	queueDrops atomic.Uint64
	eventDrops atomic.Uint64
}

// halfOpenKey finds a responder's SA from a retransmitted IKE_SA_INIT
// request, which carries no responder SPI.
type halfOpenKey struct {
	spiI   uint64
	remote netip.AddrPort
}

type inPacket struct {
	data          []byte
	local, remote netip.AddrPort
}

// New validates cfg (filling in defaults) and returns a Manager. Nothing
// is sent and nothing installed until Start or a command.
func New(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Sender == nil || deps.Installer == nil {
		return nil, errors.New("ike: a Sender and an Installer are required")
	}
	if deps.Credentials == nil {
		deps.Credentials = StaticCredentials{}
	}
	m := &Manager{
		cfg:             cfg,
		deps:            deps,
		clock:           deps.Clock,
		rand:            deps.Rand,
		log:             deps.Logger,
		conns:           map[string]*Connection{},
		sas:             map[uint64]*ikeSA{},
		initIndex:       map[halfOpenKey]*ikeSA{},
		halfOpenSources: map[netip.Prefix]halfOpenSource{},
		pools:           map[string]*addrPool{},
		byReqID:         map[uint32]*reqIDEntry{},
		reqIDs:          map[string]*reqIDEntry{},
		traps:           map[*Child]*trapEntry{},
		retries:         map[*Connection]*retryState{},
		connLive:        map[*Connection]int{},
		peers:           map[peerKey][]*ikeSA{},
		childIndex:      map[SAKey]*childSA{},
		hashSeed:        maphash.MakeSeed(),
		stats:           Stats{ErrorNotifies: map[message.NotifyType]uint64{}},
	}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.rand == nil {
		m.rand = crand.Reader
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range cfg.Connections {
		m.conns[c.Name] = c
		for _, ch := range c.Children {
			if ch.Inactivity == 0 || m.usage != nil {
				continue
			}
			u, ok := deps.Installer.(SAUsage)
			if !ok {
				return nil, fmt.Errorf("ike: child %s/%s: inactivity needs an Installer that reports when SAs carry traffic (SAUsage)", c.Name, ch.Name)
			}
			m.usage = u
		}
	}
	for _, p := range cfg.Pools {
		m.pools[p.Name] = newAddrPool(p)
	}
	m.now = m.clock.Now()
	if err := m.cookies.init(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Start installs trap policies and initiates the children whose
// start_action is start. Errors are logged; Start reports the first.
func (m *Manager) Start() error {
	m.now = m.clock.Now()
	var first error
	for _, conn := range m.cfg.Connections {
		for _, ch := range conn.Children {
			var err error
			switch ch.StartAction {
			case ActionTrap:
				err = m.installTrap(conn, ch)
			case ActionStart:
				err = m.Up(conn.Name, ch.Name, nil)
			}
			if err != nil {
				m.log.Warn("start action failed", "conn", conn.Name, "child", ch.Name, "err", err)
				if first == nil {
					first = err
				}
			}
		}
	}
	return first
}

// HandlePacket processes one datagram received on our address local from
// remote: the UDP payload as it arrived, with the non-ESP marker when it
// came to the NAT-T port. It borrows data for the call. Anything that is
// not a valid IKE message for us is dropped and counted.
func (m *Manager) HandlePacket(data []byte, local, remote netip.AddrPort) {
	m.now = m.clock.Now()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if local.Port() == m.cfg.NATTPort {
		if len(data) == 1 && data[0] == 0xff {
			m.stats.KeepalivesReceived++
			return
		}
		// RFC 3948 §2.2: IKE on port 4500 starts with four zero octets;
		// anything else there is ESP, which is the data plane's.
		if len(data) < 4 || binary.BigEndian.Uint32(data) != 0 {
			m.drop(DropESP)
			return
		}
		data = data[4:]
	}
	h, first, err := message.ParseHeader(data)
	if err != nil {
		m.malformed(nil, err)
		var pe *message.ParseError
		if errors.As(err, &pe) && pe.Reason == message.ReasonMajorVersion {
			m.answerMajorVersion(h, local, remote)
		}
		return
	}
	if h.Exchange == message.ExchangeIKESAInit && !h.IsResponse() {
		m.handleInitRequest(data, h, local, remote)
		return
	}
	ours := h.SPIi
	if h.IsInitiator() {
		ours = h.SPIr
	}
	sa := m.sas[ours]
	if sa == nil || sa.initiator == h.IsInitiator() ||
		(sa.spiR != 0 && h.SPIr != sa.spiR && h.Exchange != message.ExchangeIKESAInit) {
		m.drop(DropUnknownSPI)
		m.answerUnknownSPI(h, first, local, remote)
		return
	}
	m.handleSAMessage(sa, data, h, first, local, remote)
}

// malformed counts a refused message by its reason.
func (m *Manager) malformed(sa *ikeSA, err error) {
	var pe *message.ParseError
	if errors.As(err, &pe) {
		m.stats.Malformed[pe.Reason]++
		if sa != nil {
			m.logIKE(sa, slog.LevelDebug, "message refused", "reason", pe.Reason, "err", err)
		}
		return
	}
	m.stats.Malformed[0]++
}

// transmit sends one IKE message, adding the non-ESP marker on the NAT-T
// port.
func (m *Manager) transmit(data []byte, local, remote netip.AddrPort) {
	if local.Port() == m.cfg.NATTPort {
		m.scratch = append(append(m.scratch[:0], 0, 0, 0, 0), data...)
		data = m.scratch
	}
	if err := m.deps.Sender.Send(data, local, remote); err != nil {
		m.stats.SendErrors++
		m.log.Debug("send failed", "local", local, "remote", remote, "err", err)
	}
}

// logIKE logs with the IKE SA's connection and SPIs.
func (m *Manager) logIKE(sa *ikeSA, level slog.Level, msg string, args ...any) {
	if !m.log.Enabled(context.Background(), level) {
		return
	}
	conn := ""
	if sa.conn != nil {
		conn = sa.conn.Name
	}
	m.log.Log(context.Background(), level, msg, append([]any{"conn", conn,
		"ike", fmt.Sprintf("%016x_i%s %016x_r%s", sa.spiI, star(sa.initiator), sa.spiR, star(!sa.initiator))}, args...)...)
}

func star(b bool) string {
	if b {
		return "*"
	}
	return ""
}

// logChild logs with the Child SA's names and SPIs.
func (m *Manager) logChild(c *childSA, level slog.Level, msg string, args ...any) {
	if !m.log.Enabled(context.Background(), level) {
		return
	}
	m.logIKE(c.ike, level, msg, append([]any{"child", c.cfg.Name,
		"spis", fmt.Sprintf("%08x_i %08x_o", c.spiIn, c.spiOut)}, args...)...)
}

// Stats returns a copy of the counters.
func (m *Manager) Stats() Stats {
	s := m.stats.clone()
	s.Drops[DropQueueFull] += m.queueDrops.Load()
	s.EventsDropped = m.eventDrops.Load()
	s.HalfOpen = m.halfOpenCount
	s.IKESAs = len(m.sas)
	n := 0
	for _, sa := range m.sas {
		n += len(sa.children)
	}
	s.ChildSAs = n
	return s
}

// HalfOpen is the number of half-open responder IKE SAs.
func (m *Manager) HalfOpen() int { return m.halfOpenCount }

// Run drives the Manager from one goroutine until ctx ends: datagrams
// from Deliver, data-plane events from Event, calls from Call, and the
// timers. It returns ctx's error.
func (m *Manager) Run(ctx context.Context) error {
	m.initQueues()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.now = m.clock.Now()
		wait := time.Hour
		if next, ok := m.NextDeadline(); ok {
			wait = max(next.Sub(m.now), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-m.packets:
			m.HandlePacket(p.data, p.local, p.remote)
		case ev := <-m.events:
			m.HandleDataPlaneEvent(ev)
		case f := <-m.calls:
			m.now = m.clock.Now()
			f()
		case <-t.C:
			m.Tick()
		}
	}
}

func (m *Manager) initQueues() {
	if m.packets == nil {
		m.packets = make(chan inPacket, m.cfg.QueueLen)
		m.events = make(chan DataPlaneEvent, m.cfg.QueueLen)
		m.calls = make(chan func(), 64)
	}
}

// Prepare creates Run's queues, so that Deliver, Event and Call may be
// used before Run starts. Call it before sharing the Manager.
func (m *Manager) Prepare() { m.initQueues() }

// Deliver queues a datagram for Run and takes ownership of data. It never
// blocks: when the queue is full the datagram is dropped and counted.
// Safe for concurrent use once Prepare or Run has been called.
func (m *Manager) Deliver(data []byte, local, remote netip.AddrPort) bool {
	select {
	case m.packets <- inPacket{data: data, local: local, remote: remote}:
		return true
	default:
		m.queueDrops.Add(1)
		return false
	}
}

// Event queues a data-plane event for Run without blocking; a full queue
// drops it and counts it.
func (m *Manager) Event(ev DataPlaneEvent) bool {
	select {
	case m.events <- ev:
		return true
	default:
		m.eventDrops.Add(1)
		return false
	}
}

// Call runs f on Run's goroutine and waits for it, so other goroutines
// can use the Manager's methods (Status, Up, ...). It returns ctx's error
// if ctx ends first.
func (m *Manager) Call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case m.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// randUint64 draws a non-zero 64-bit value (an IKE SPI).
func (m *Manager) randUint64() uint64 {
	var b [8]byte
	for {
		if _, err := io.ReadFull(m.rand, b[:]); err != nil {
			panic("ike: random source failed: " + err.Error())
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			if _, taken := m.sas[v]; !taken {
				return v
			}
		}
	}
}

// nonce draws a fresh nonce (RFC 7296 §2.10: at least half the PRF key
// size and 128 bits; 32 octets covers every PRF).
func (m *Manager) nonce() []byte {
	b := make([]byte, 32)
	if _, err := io.ReadFull(m.rand, b); err != nil {
		panic("ike: random source failed: " + err.Error())
	}
	return b
}
