package runtime

import (
	"sync"
	"time"

	"github.com/bitw-dev/bitw/ike"
	"github.com/bitw-dev/bitw/ipsec"
)

// saUsage turns the engine's per-SA packet counters into the use times
// IKE's inactivity checks ask for (ike.SAUsage): an SA was used when its
// counter last moved. The data-plane loop samples every SA once a tick,
// and a query samples its SA again, so a packet since the last tick
// counts as now: the answer is never older than the truth, and an SA is
// never closed as idle while it carries traffic.
type saUsage struct {
	engine *ipsec.Engine
	now    func() time.Time // IKE's clock

	mu   sync.Mutex
	seen map[ipsec.SAKey]saSample
}

type saSample struct {
	packets uint64
	last    time.Time // zero: no packet seen yet
}

func newSAUsage(engine *ipsec.Engine, now func() time.Time) *saUsage {
	return &saUsage{engine: engine, now: now, seen: make(map[ipsec.SAKey]saSample)}
}

// sample reads every SA's counter; SAs gone from the engine are forgotten.
func (u *saUsage) sample() {
	sas := u.engine.SAs()
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	live := make(map[ipsec.SAKey]bool, len(sas))
	for _, sa := range sas {
		live[sa.Key] = true
		u.update(sa.Key, sa.Stats.Packets, now)
	}
	for k := range u.seen {
		if !live[k] {
			delete(u.seen, k)
		}
	}
}

// update records a counter reading; the caller holds mu.
func (u *saUsage) update(k ipsec.SAKey, packets uint64, now time.Time) saSample {
	s, ok := u.seen[k]
	if packets != s.packets || !ok && packets > 0 {
		s = saSample{packets: packets, last: now}
	}
	u.seen[k] = s
	return s
}

// LastUsed implements ike.SAUsage.
func (u *saUsage) LastUsed(k ike.SAKey) (time.Time, bool) {
	info, ok := u.engine.SA(saKey(k))
	if !ok {
		return time.Time{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.update(info.Key, info.Stats.Packets, u.now())
	return s.last, !s.last.IsZero()
}
