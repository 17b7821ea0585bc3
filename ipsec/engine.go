package ipsec

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitw-dev/bitw/crypto/hw"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// Config configures an Engine.
type Config struct {
	// Now is a monotonic clock in nanoseconds. Only acquires, AddSA and
	// Tick read it, never the per-packet path. Nil uses the process's
	// monotonic clock.
	Now func() int64
	// Rand supplies CBC IVs, SPIs and IPv4 ID offsets. It must be safe
	// for concurrent use. Nil uses crypto/rand.
	Rand io.Reader
	// Events receives SA lifecycle events and acquires. The engine never
	// blocks on it; a full channel drops the event and counts it. Nil
	// discards events.
	Events chan<- Event
	// Policy is the device's transform policy (allow_legacy,
	// allow_integrity_only), enforced at AddSA through Suite.Check.
	Policy proposal.Policy
	// ReplayWindow is the default inbound window; zero means
	// DefaultReplayWindow.
	ReplayWindow int
	// AcquireInterval is the least time between two acquires for one
	// policy entry; zero means one second.
	AcquireInterval time.Duration
	// NATTPort is the UDP port of ESP-in-UDP (RFC 3948); zero means 4500.
	NATTPort uint16
	// SPIReserveTime is how long an SPI from AllocSPI stays reserved
	// without AddSA or ReleaseSPI; zero means ten minutes.
	SPIReserveTime time.Duration
	// Crypto is the crypto engine (crypto/hw, chosen and self-tested at
	// boot by hw.Select) that ESP SAs with ENCR_AES_CBC and
	// AUTH_HMAC_SHA2_256_128 run on, for the AES key sizes its Caps
	// offer. Other transforms, and all of them when Crypto is nil, use
	// Go's crypto. A packet whose engine call fails is dropped and
	// counted under DropCrypto.
	Crypto hw.Engine
}

// Engine is the data plane: the SAD, the SPD and packet processing.
// Outbound, Inbound and InboundBypass may run on any number of goroutines
// at once, concurrently with the installer methods. Readers never take a
// lock on the tables: they load an immutable snapshot that writers replace
// (copy on write, under one writer mutex).
type Engine struct {
	now             func() int64
	rand            io.Reader
	events          chan<- Event
	policy          proposal.Policy
	replayWindow    int
	acquireInterval time.Duration
	nattPort        uint16
	spiReserve      time.Duration

	tables atomic.Pointer[tables]

	mu        sync.Mutex // serializes writers and guards the fields below
	sas       map[SAKey]*assoc
	policies  map[PolicyID]*spdEntry
	nextPol   PolicyID
	order     uint64
	reserved  map[uint32]int64 // SPI -> reservation time
	lastTick  int64
	tickStart bool

	drops          [numDropReasons]atomic.Uint64
	eventOverflows atomic.Uint64

	crypto hw.Engine // Config.Crypto, read by AddSA only
}

// tables is one immutable snapshot of the SAD and SPD.
type tables struct {
	in  spiTable   // inbound SAs by SPI
	spd []spdEntry // ordered; values, to save a pointer hop per entry
	all []*assoc
}

// spiTable is an open-addressing hash table from SPI to the inbound SAs
// carrying it: built once per snapshot, then only read, with one probe in
// the common case.
type spiTable struct {
	slots []spiSlot // a power of two, at most half full
	shift uint
}

type spiSlot struct {
	spi uint32
	sas []*assoc // nil marks an empty slot
}

func newSPITable(m map[uint32][]*assoc) spiTable {
	bits := uint(1)
	for 1<<bits < 2*len(m) {
		bits++
	}
	t := spiTable{slots: make([]spiSlot, 1<<bits), shift: 32 - bits}
	for spi, sas := range m {
		i := t.index(spi)
		for t.slots[i].sas != nil {
			i = (i + 1) & uint32(len(t.slots)-1)
		}
		t.slots[i] = spiSlot{spi: spi, sas: sas}
	}
	return t
}

// index spreads SPIs, which a peer may choose sequentially, by Fibonacci
// hashing.
func (t *spiTable) index(spi uint32) uint32 { return (spi * 0x9e3779b1) >> t.shift }

func (t *spiTable) get(spi uint32) []*assoc {
	mask := uint32(len(t.slots) - 1)
	for i := t.index(spi); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.sas == nil || s.spi == spi {
			return s.sas
		}
	}
}

// New returns an engine with empty tables.
func New(cfg Config) *Engine {
	e := &Engine{
		now:             cfg.Now,
		rand:            cfg.Rand,
		events:          cfg.Events,
		policy:          cfg.Policy,
		replayWindow:    cfg.ReplayWindow,
		acquireInterval: cfg.AcquireInterval,
		nattPort:        cfg.NATTPort,
		spiReserve:      cfg.SPIReserveTime,
		crypto:          cfg.Crypto,
		sas:             map[SAKey]*assoc{},
		policies:        map[PolicyID]*spdEntry{},
		reserved:        map[uint32]int64{},
	}
	if e.now == nil {
		start := time.Now()
		e.now = func() int64 { return int64(time.Since(start)) }
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.replayWindow == 0 {
		e.replayWindow = DefaultReplayWindow
	}
	if e.acquireInterval == 0 {
		e.acquireInterval = time.Second
	}
	if e.nattPort == 0 {
		e.nattPort = 4500
	}
	if e.spiReserve == 0 {
		e.spiReserve = 10 * time.Minute
	}
	e.tables.Store(&tables{in: newSPITable(nil)})
	return e
}

// Installer errors.
var (
	ErrSAExists     = errors.New("ipsec: an SA with this key is installed")
	ErrNoSA         = errors.New("ipsec: no such SA")
	ErrSPIInUse     = errors.New("ipsec: SPI already used by another inbound SA")
	ErrNoPolicy     = errors.New("ipsec: no such policy")
	ErrSPIExhausted = errors.New("ipsec: no free SPI found")
)

// AllocSPI reserves a random inbound SPI that no SA and no other
// reservation uses. AddSA with that SPI consumes the reservation;
// ReleaseSPI or SPIReserveTime frees an unused one.
func (e *Engine) AllocSPI() (uint32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tables.Load()
	var b [4]byte
	for range 64 {
		if _, err := io.ReadFull(e.rand, b[:]); err != nil {
			return 0, fmt.Errorf("ipsec: random source: %w", err)
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 {
			continue // reserved by IANA (RFC 4303 §2.1)
		}
		if _, ok := e.reserved[spi]; ok {
			continue
		}
		if len(t.in.get(spi)) != 0 {
			continue
		}
		e.reserved[spi] = e.now()
		return spi, nil
	}
	return 0, ErrSPIExhausted
}

// ReleaseSPI frees a reservation that will not be used.
func (e *Engine) ReleaseSPI(spi uint32) {
	e.mu.Lock()
	delete(e.reserved, spi)
	e.mu.Unlock()
}

// AddSA validates cfg, enforces the device policy on its suite and
// installs it. An outbound SA becomes the one PROTECT entries with its
// ReqID use at once. The keys are copied into the transforms; cfg may be
// reused or wiped afterwards.
func (e *Engine) AddSA(cfg SAConfig) error {
	sa, err := newSA(&cfg, e.policy, e.replayWindow, e.rand, e.now(), e.crypto)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.sas[sa.key]; ok {
		return fmt.Errorf("%w: %s", ErrSAExists, sa.key)
	}
	if sa.key.Dir == DirIn {
		for _, o := range e.tables.Load().in.get(sa.key.SPI) {
			if !distinguishable(sa, o) {
				return fmt.Errorf("%w: %08x", ErrSPIInUse, sa.key.SPI)
			}
		}
		delete(e.reserved, sa.key.SPI)
	}
	e.order++
	sa.order = e.order
	e.sas[sa.key] = sa
	e.rebuild()
	return nil
}

// distinguishable reports whether inbound lookups can tell a and b apart
// although they share an SPI: different protocols, or lookup flags with
// different addresses.
func distinguishable(a, b *assoc) bool {
	if a.key.Proto != b.key.Proto {
		return true
	}
	pa, pb := a.path.Load(), b.path.Load()
	if a.matchDst && b.matchDst && pa.dst != pb.dst {
		return true
	}
	return a.matchSrc && b.matchSrc && pa.src != pb.src
}

// SAUpdate changes an installed SA's outer path, as after a NAT mapping
// change (RFC 3948, RFC 7296 §2.23). Zero fields keep their value; set
// Encap to change the ports.
type SAUpdate struct {
	Src, Dst netip.Addr
	Encap    *UDPEncap
}

// UpdateSA applies u to the SA named k. Packets in flight use either the
// old or the new path, never a mix. A changed Dst (or Src, for an SA with
// MatchSrc) changes the SA's key; the new key is returned.
func (e *Engine) UpdateSA(k SAKey, u SAUpdate) (SAKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa, ok := e.sas[k]
	if !ok {
		return k, fmt.Errorf("%w: %s", ErrNoSA, k)
	}
	old := sa.path.Load()
	p := *old
	if u.Src.IsValid() {
		p.src = u.Src.Unmap()
	}
	if u.Dst.IsValid() {
		p.dst = u.Dst.Unmap()
	}
	if u.Encap != nil {
		if sa.ah != nil && u.Encap.Enabled() {
			return k, errors.New("ipsec: AH cannot be UDP-encapsulated")
		}
		p.encap = *u.Encap
	}
	if p.src.Is4() != p.dst.Is4() {
		return k, errors.New("ipsec: outer addresses must be of one family")
	}
	nk := k
	nk.Dst = p.dst
	if sa.matchSrc {
		nk.Src = p.src
	}
	if nk != k {
		if _, ok := e.sas[nk]; ok {
			return k, fmt.Errorf("%w: %s", ErrSAExists, nk)
		}
	}
	sa.path.Store(sa.newPath(p.src, p.dst, p.encap))
	if nk != k {
		delete(e.sas, k)
		e.sas[nk] = sa
	}
	e.rebuild()
	return nk, nil
}

// DeleteSA removes an SA. Packets already holding it finish normally.
func (e *Engine) DeleteSA(k SAKey) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.sas[k]; !ok {
		return fmt.Errorf("%w: %s", ErrNoSA, k)
	}
	delete(e.sas, k)
	e.rebuild()
	return nil
}

// AddPolicy installs an SPD entry and returns its ID.
func (e *Engine) AddPolicy(p Policy) (PolicyID, error) {
	p.Selectors = p.Selectors.clone()
	if err := p.validate(); err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkConflict(0, &p); err != nil {
		return 0, err
	}
	e.nextPol++
	e.order++
	id := e.nextPol
	e.policies[id] = &spdEntry{id: id, order: e.order, pol: p, sel: p.Selectors.compile(), st: &policyState{}}
	e.rebuild()
	return id, nil
}

// UpdatePolicy replaces the entry id in place, keeping its position among
// entries of equal priority.
func (e *Engine) UpdatePolicy(id PolicyID, p Policy) error {
	p.Selectors = p.Selectors.clone()
	if err := p.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old, ok := e.policies[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoPolicy, id)
	}
	if err := e.checkConflict(id, &p); err != nil {
		return err
	}
	e.policies[id] = &spdEntry{id: id, order: old.order, pol: p, sel: p.Selectors.compile(), st: old.st}
	e.rebuild()
	return nil
}

// DeletePolicy removes an SPD entry.
func (e *Engine) DeletePolicy(id PolicyID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.policies[id]; !ok {
		return fmt.Errorf("%w: %d", ErrNoPolicy, id)
	}
	delete(e.policies, id)
	e.rebuild()
	return nil
}

func (e *Engine) checkConflict(self PolicyID, p *Policy) error {
	for id, o := range e.policies {
		if id == self || o.pol.Priority != p.Priority {
			continue
		}
		if o.pol.Action == p.Action && o.pol.ReqID == p.ReqID {
			continue // same outcome either way: order cannot matter
		}
		if p.Selectors.overlaps(&o.pol.Selectors) {
			return fmt.Errorf("%w (entry %d); give one a lower priority number", ErrPolicyConflict, id)
		}
	}
	return nil
}

// rebuild publishes a new snapshot from the writer state. Called with
// e.mu held.
func (e *Engine) rebuild() {
	t := &tables{all: make([]*assoc, 0, len(e.sas))}
	in := map[uint32][]*assoc{}
	newest := map[uint32]*assoc{}
	for _, sa := range e.sas {
		t.all = append(t.all, sa)
		if sa.key.Dir == DirIn {
			in[sa.key.SPI] = append(in[sa.key.SPI], sa)
			continue
		}
		if cur := newest[sa.reqID]; cur == nil || sa.order > cur.order {
			newest[sa.reqID] = sa
		}
	}
	t.in = newSPITable(in)
	slices.SortFunc(t.all, func(a, b *assoc) int { return cmp.Compare(a.order, b.order) })
	t.spd = make([]spdEntry, 0, len(e.policies))
	for _, ent := range e.policies {
		c := *ent
		c.sa = nil
		if c.pol.Action == ActionProtect {
			c.sa = newest[c.pol.ReqID]
		}
		t.spd = append(t.spd, c)
	}
	slices.SortFunc(t.spd, func(a, b spdEntry) int {
		if a.pol.Priority != b.pol.Priority {
			return cmp.Compare(a.pol.Priority, b.pol.Priority)
		}
		return cmp.Compare(a.order, b.order)
	})
	e.tables.Store(t)
}

// lookupIn finds the inbound SA for a packet from h (RFC 4301 §4.1).
func (t *tables) lookupIn(spi uint32, proto proposal.Protocol, h *ipHeader) *assoc {
	for _, sa := range t.in.get(spi) {
		if sa.key.Proto != proto {
			continue
		}
		if sa.matchDst || sa.matchSrc {
			p := sa.path.Load()
			if p.dst.Is6() != h.v6 || sa.matchDst && p.dstK != h.dstK || sa.matchSrc && p.srcK != h.srcK {
				continue
			}
		}
		return sa
	}
	return nil
}

// lookupInbound returns the first entry matching a packet from the peer
// side.
func (t *tables) lookupInbound(f *flow) *spdEntry {
	for i := range t.spd {
		if t.spd[i].sel.matchIn(f) {
			return &t.spd[i]
		}
	}
	return nil
}

// Tick checks time-based lifetimes and expires SPI reservations. The
// control plane calls it periodically (once a second is plenty) with the
// engine clock's current reading; the data path never reads the clock.
func (e *Engine) Tick(now int64) {
	t := e.tables.Load()
	for _, sa := range t.all {
		age := time.Duration(now - sa.installed)
		if l := sa.life.Hard.exceeded(0, 0, age); l != LimitNone {
			if sa.setState(stateHard) {
				e.saEvent(EventHardExpire, sa, l)
			}
			continue
		}
		if l := sa.life.Soft.exceeded(0, 0, age); l != LimitNone && sa.setState(stateSoft) {
			e.saEvent(EventSoftExpire, sa, l)
		}
	}
	e.mu.Lock()
	for spi, at := range e.reserved {
		if time.Duration(now-at) >= e.spiReserve {
			delete(e.reserved, spi)
		}
	}
	e.mu.Unlock()
}

// Drops returns the drop counters, indexed by DropReason.
func (e *Engine) Drops() [NumDropReasons]uint64 {
	var d [NumDropReasons]uint64
	for i := range d {
		d[i] = e.drops[i].Load()
	}
	return d
}

// EventOverflows counts events dropped because the channel was full.
func (e *Engine) EventOverflows() uint64 { return e.eventOverflows.Load() }

// SAs returns a snapshot of every installed SA, oldest first.
func (e *Engine) SAs() []SAInfo {
	t := e.tables.Load()
	out := make([]SAInfo, 0, len(t.all))
	for _, sa := range t.all {
		out = append(out, sa.info())
	}
	return out
}

// SA returns the snapshot of one SA.
func (e *Engine) SA(k SAKey) (SAInfo, bool) {
	e.mu.Lock()
	sa, ok := e.sas[k]
	e.mu.Unlock()
	if !ok {
		return SAInfo{}, false
	}
	return sa.info(), true
}

// Policies returns a snapshot of the SPD in lookup order.
func (e *Engine) Policies() []PolicyInfo {
	t := e.tables.Load()
	out := make([]PolicyInfo, 0, len(t.spd))
	for i := range t.spd {
		ent := &t.spd[i]
		pi := PolicyInfo{ID: ent.id, Policy: ent.pol}
		pi.Policy.Selectors = ent.pol.Selectors.clone()
		if ent.sa != nil {
			pi.OutSA, pi.HasSA = ent.sa.currentKey(), true
		}
		out = append(out, pi)
	}
	return out
}

// dropOut and dropIn count a drop. Drops are the rare path, so they stay
// out of line and keep the packet functions small.
//
//go:noinline
func (e *Engine) dropOut(r DropReason) OutResult {
	e.drops[r].Add(1)
	return OutResult{Verdict: VerdictDrop, Reason: r}
}

// dropOutMTU is dropOut with the MTU that DropTooBig reports.
//
//go:noinline
func (e *Engine) dropOutMTU(r DropReason, mtu int) OutResult {
	e.drops[r].Add(1)
	return OutResult{Verdict: VerdictDrop, Reason: r, MTU: mtu}
}

//go:noinline
func (e *Engine) dropIn(r DropReason, spi uint32) InResult {
	e.drops[r].Add(1)
	return InResult{Verdict: VerdictDrop, Reason: r, SPI: spi}
}
