package iketest

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// OpKind names an Installer call.
type OpKind uint8

const (
	OpAllocSPI OpKind = iota + 1
	OpReleaseSPI
	OpAddSA
	OpUpdateSA
	OpDeleteSA
	OpAddPolicy
	OpUpdatePolicy
	OpDeletePolicy
)

func (k OpKind) String() string {
	return [...]string{"?", "alloc", "release", "add-sa", "update-sa", "delete-sa", "add-policy", "update-policy", "delete-policy"}[k]
}

// Op is one recorded Installer call.
type Op struct {
	Kind  OpKind
	Key   ike.SAKey // SA operations
	ReqID uint32
	SPI   uint32
}

func (o Op) String() string { return fmt.Sprintf("%v %v reqid %d", o.Kind, o.Key, o.ReqID) }

// Installer is a fake data plane: it keeps the SAs and policies IKE
// installs, refuses what a real one would (duplicate keys, unknown SAs),
// and models ReqID-linked outbound switching like ipsec.Engine: traffic of
// a ReqID uses the newest outbound SA with that ReqID.
type Installer struct {
	mu       sync.Mutex
	nextSPI  uint32
	reserved map[uint32]bool
	SAs      map[ike.SAKey]ike.SAParams
	order    map[uint32][]ike.SAKey // outbound SAs per ReqID, oldest first
	Policies map[ike.PolicyID]ike.PolicyParams
	lastPol  ike.PolicyID
	Ops      []Op
	// Violations lists calls a real data plane would have refused.
	Violations []string
	// Record keeps Ops; benchmarks turn it off.
	Record bool
	// FailAddSA, if set, makes AddSA fail for SAs it returns true for.
	FailAddSA func(p ike.SAParams) bool
	// FailAllocSPI, if set, makes AllocSPI fail when it returns true, as
	// a data plane out of SPIs would: IKE answers TEMPORARY_FAILURE.
	FailAllocSPI func(proto proposal.Protocol) bool
	// used holds the use times tests report with Use (ike.SAUsage).
	used map[ike.SAKey]time.Time
}

var _ ike.SAUsage = (*Installer)(nil)

// Use records that the installed SA k carried traffic at t, as a data
// plane would; LastUsed reports it.
func (f *Installer) Use(k ike.SAKey, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.SAs[k]; !ok {
		f.violate("Use of unknown %v", k)
		return
	}
	if f.used == nil {
		f.used = map[ike.SAKey]time.Time{}
	}
	f.used[k] = t
}

// LastUsed implements ike.SAUsage.
func (f *Installer) LastUsed(k ike.SAKey) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.used[k]
	return t, ok
}

// NewInstaller returns an Installer whose SPIs start at base.
func NewInstaller(base uint32) *Installer {
	return &Installer{nextSPI: base, reserved: map[uint32]bool{}, SAs: map[ike.SAKey]ike.SAParams{},
		order: map[uint32][]ike.SAKey{}, Policies: map[ike.PolicyID]ike.PolicyParams{}, Record: true}
}

func (f *Installer) rec(o Op) {
	if f.Record {
		f.Ops = append(f.Ops, o)
	}
}

func (f *Installer) violate(format string, args ...any) {
	f.Violations = append(f.Violations, fmt.Sprintf(format, args...))
}

func (f *Installer) AllocSPI(proto proposal.Protocol) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailAllocSPI != nil && f.FailAllocSPI(proto) {
		return 0, fmt.Errorf("iketest: no %v SPI left", proto)
	}
	for {
		f.nextSPI++
		if f.nextSPI >= 256 && !f.reserved[f.nextSPI] {
			break
		}
	}
	f.reserved[f.nextSPI] = true
	f.rec(Op{Kind: OpAllocSPI, SPI: f.nextSPI})
	return f.nextSPI, nil
}

func (f *Installer) ReleaseSPI(proto proposal.Protocol, spi uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.reserved[spi] {
		f.violate("release of unreserved SPI %08x", spi)
	}
	delete(f.reserved, spi)
	f.rec(Op{Kind: OpReleaseSPI, SPI: spi})
}

func (f *Installer) AddSA(p ike.SAParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := p.Key()
	if f.FailAddSA != nil && f.FailAddSA(p) {
		return fmt.Errorf("iketest: AddSA %v refused", k)
	}
	if _, dup := f.SAs[k]; dup {
		f.violate("AddSA of installed %v", k)
		return fmt.Errorf("iketest: %v exists", k)
	}
	if p.Dir == ike.DirIn && !f.reserved[p.SPI] {
		f.violate("inbound SA %v with an SPI not from AllocSPI", k)
	}
	if len(p.EncKey) == 0 && p.Suite.Protocol == proposal.ProtoESP && p.Suite.Encr.ID != proposal.EncrNull {
		f.violate("SA %v without an encryption key", k)
	}
	p.EncKey, p.IntegKey = bytes.Clone(p.EncKey), bytes.Clone(p.IntegKey)
	f.SAs[k] = p
	if p.Dir == ike.DirOut {
		f.order[p.ReqID] = append(f.order[p.ReqID], k)
	}
	f.rec(Op{Kind: OpAddSA, Key: k, ReqID: p.ReqID})
	return nil
}

func (f *Installer) UpdateSA(k ike.SAKey, u ike.SAUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.SAs[k]
	if !ok {
		f.violate("UpdateSA of unknown %v", k)
		return fmt.Errorf("iketest: no SA %v", k)
	}
	delete(f.SAs, k)
	p.Src, p.Dst, p.Encap = u.Src, u.Dst, u.Encap
	nk := p.Key()
	f.SAs[nk] = p
	if t, ok := f.used[k]; ok {
		delete(f.used, k)
		f.used[nk] = t
	}
	if p.Dir == ike.DirOut {
		for i, o := range f.order[p.ReqID] {
			if o == k {
				f.order[p.ReqID][i] = nk
			}
		}
	}
	f.rec(Op{Kind: OpUpdateSA, Key: nk, ReqID: p.ReqID})
	return nil
}

func (f *Installer) DeleteSA(k ike.SAKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.SAs[k]
	if !ok {
		f.violate("DeleteSA of unknown %v", k)
		return fmt.Errorf("iketest: no SA %v", k)
	}
	delete(f.SAs, k)
	delete(f.used, k)
	if k.Dir == ike.DirIn {
		delete(f.reserved, k.SPI)
	}
	if p.Dir == ike.DirOut {
		l := f.order[p.ReqID]
		for i, o := range l {
			if o == k {
				f.order[p.ReqID] = append(l[:i:i], l[i+1:]...)
				break
			}
		}
		if len(f.order[p.ReqID]) == 0 {
			delete(f.order, p.ReqID)
		}
	}
	f.rec(Op{Kind: OpDeleteSA, Key: k, ReqID: p.ReqID})
	return nil
}

func (f *Installer) AddPolicy(p ike.PolicyParams) (ike.PolicyID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, o := range f.Policies {
		if o.ReqID == p.ReqID {
			f.violate("second policy %d for ReqID %d", id, p.ReqID)
		}
	}
	f.lastPol++
	f.Policies[f.lastPol] = p
	f.rec(Op{Kind: OpAddPolicy, ReqID: p.ReqID})
	return f.lastPol, nil
}

func (f *Installer) UpdatePolicy(id ike.PolicyID, p ike.PolicyParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Policies[id]; !ok {
		f.violate("UpdatePolicy of unknown %d", id)
		return fmt.Errorf("iketest: no policy %d", id)
	}
	f.Policies[id] = p
	f.rec(Op{Kind: OpUpdatePolicy, ReqID: p.ReqID})
	return nil
}

func (f *Installer) DeletePolicy(id ike.PolicyID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.Policies[id]
	if !ok {
		f.violate("DeletePolicy of unknown %d", id)
		return fmt.Errorf("iketest: no policy %d", id)
	}
	delete(f.Policies, id)
	f.rec(Op{Kind: OpDeletePolicy, ReqID: p.ReqID})
	return nil
}

// Outbound returns the SA that traffic of reqID uses now: the newest
// outbound SA with that ReqID.
func (f *Installer) Outbound(reqID uint32) (ike.SAParams, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.order[reqID]
	if len(l) == 0 {
		return ike.SAParams{}, false
	}
	return f.SAs[l[len(l)-1]], true
}

// Inbound returns the inbound SA with spi.
func (f *Installer) Inbound(spi uint32) (ike.SAParams, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, p := range f.SAs {
		if k.Dir == ike.DirIn && k.SPI == spi {
			return p, true
		}
	}
	return ike.SAParams{}, false
}

// Unused returns the SPIs reserved with AllocSPI that no installed inbound
// SA uses: negotiations under way, or leaks once everything has settled.
func (f *Installer) Unused() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	inUse := map[uint32]bool{}
	for k := range f.SAs {
		if k.Dir == ike.DirIn {
			inUse[k.SPI] = true
		}
	}
	var out []uint32
	for spi := range f.reserved {
		if !inUse[spi] {
			out = append(out, spi)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Count returns the number of installed SAs by direction.
func (f *Installer) Count() (in, out int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.SAs {
		if k.Dir == ike.DirIn {
			in++
		} else {
			out++
		}
	}
	return in, out
}

// ReqIDs lists the ReqIDs that have an outbound SA.
func (f *Installer) ReqIDs() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for r := range f.order {
		out = append(out, r)
	}
	return out
}

// CheckTraffic verifies that every packet a's data plane would send now
// is accepted by b's: for each ReqID, a's current outbound SA has an
// inbound twin at b with the same keys and algorithms. Checked after
// every step of a rekey, it proves make-before-break: no packet is lost.
func CheckTraffic(a, b *Installer) error {
	for _, r := range a.ReqIDs() {
		out, ok := a.Outbound(r)
		if !ok {
			continue
		}
		in, ok := b.Inbound(out.SPI)
		if !ok {
			return fmt.Errorf("outbound SA %08x (reqid %d) has no inbound SA at the peer", out.SPI, r)
		}
		if !bytes.Equal(in.EncKey, out.EncKey) || !bytes.Equal(in.IntegKey, out.IntegKey) || in.Suite != out.Suite {
			return fmt.Errorf("SA %08x: keys or algorithms differ between the peers", out.SPI)
		}
		if in.Encap.Enabled() != out.Encap.Enabled() {
			return fmt.Errorf("SA %08x: UDP encapsulation differs between the peers", out.SPI)
		}
	}
	return nil
}
