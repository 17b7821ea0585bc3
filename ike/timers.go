package ike

import (
	"container/heap"
	"time"
)

// timerKind says what a timer does when it fires.
type timerKind uint8

const (
	timerRetransmit    timerKind = iota + 1 // resend our outstanding request or give up
	timerHalfOpen                           // initial exchanges took too long
	timerDPD                                // idle: check liveness
	timerIKERekey                           // rekey the IKE SA
	timerIKEExpire                          // over_time passed without a successful rekey
	timerKeepalive                          // NAT keepalive (RFC 3948 §4)
	timerReassembly                         // expire incomplete fragmented messages
	timerDeleteWait                         // a deleted SA lingers for late messages
	timerChildRekey                         // rekey a Child SA
	timerChildExpire                        // a Child SA's life_time ends
	timerChildOutbound                      // responder of a rekey: the old SA's DELETE never came
	timerChildInactive                      // check whether a Child SA has been idle for its inactivity time
	timerRetry                              // initiate again (keyingtries, dpd_action, close_action)
	timerCookieRotate                       // new cookie secret
	timerFollowupKE                         // the next IKE_FOLLOWUP_KE of a sequence did not come
	timerChildCreate                        // create a Child SA again after TEMPORARY_FAILURE
)

// timer is one pending deadline. Timers live inside the SA they belong
// to, so scheduling allocates nothing.
type timer struct {
	when  time.Time
	index int // position in the heap; -1 when not scheduled
	kind  timerKind
	sa    *ikeSA
	child *childSA
	conn  *Connection   // timerRetry
	ke    *pendingKE    // timerFollowupKE
	req   *childRequest // timerChildCreate
}

func (t *timer) init(kind timerKind, sa *ikeSA, child *childSA) {
	t.kind, t.sa, t.child, t.index = kind, sa, child, -1
}

func (t *timer) scheduled() bool { return t.index >= 0 }

// due is when t fires, or the zero time when it is not scheduled.
func (t *timer) due() time.Time {
	if !t.scheduled() {
		return time.Time{}
	}
	return t.when
}

// timerHeap orders timers by deadline.
type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// schedule (re)arms t to fire d from now.
func (m *Manager) schedule(t *timer, d time.Duration) {
	m.scheduleAt(t, m.now.Add(d))
}

func (m *Manager) scheduleAt(t *timer, when time.Time) {
	t.when = when
	if t.scheduled() {
		heap.Fix(&m.timers, t.index)
		return
	}
	heap.Push(&m.timers, t)
}

// Retries of a rekey the peer refused (TEMPORARY_FAILURE and the like,
// RFC 7296 §2.25 asks for a random delay) or left to us: the n-th waits a
// random time in [w/2, w), w = rekeyRetryFirst·2ⁿ up to rekeyRetryMax. The
// first comes soon; a peer that keeps refusing then sees one request every
// 16-32 s rather than a steady stream. (strongSwan waits 6-15 s each time.)
const (
	rekeyRetryFirst = 2 * time.Second
	rekeyRetryMax   = 32 * time.Second
)

// scheduleRekeyRetry arms rekey (an SA's rekey timer) for the next try
// after *retries earlier ones, and counts it. expire is the SA's hard
// lifetime timer: a try must start a retransmission timeout before it, so
// that its request has a chance to be answered. A drawn delay beyond that
// is cut to it if the cut one is still in the window, [w/2, w); otherwise
// no try is scheduled (ok false) and the SA ends at its lifetime. Tries
// are thus never closer than w/2.
func (m *Manager) scheduleRekeyRetry(rekey *timer, retries *int, expire *timer) (d time.Duration, ok bool) {
	d, w := m.retryDelay(*retries)
	if expire.scheduled() {
		if left := expire.when.Sub(m.now) - m.cfg.RetransmitTimeout; d > left {
			if left < w/2 {
				return 0, false
			}
			d = left
		}
	}
	*retries++
	m.schedule(rekey, d)
	return d, true
}

// retryDelay draws the wait before a retry that follows n earlier ones: a
// random time in [w/2, w), w = rekeyRetryFirst·2ⁿ up to rekeyRetryMax.
func (m *Manager) retryDelay(n int) (d, w time.Duration) {
	w = rekeyRetryFirst
	for i := 0; i < n && w < rekeyRetryMax; i++ {
		w *= 2
	}
	w = min(w, rekeyRetryMax)
	return w/2 + m.jitter(w/2), w
}

// stop disarms t; stopping an idle timer does nothing.
func (m *Manager) stop(t *timer) {
	if t.scheduled() {
		heap.Remove(&m.timers, t.index)
	}
}

// NextDeadline returns when Tick next has work, if any timer is armed.
func (m *Manager) NextDeadline() (time.Time, bool) {
	if len(m.timers) == 0 {
		return time.Time{}, false
	}
	return m.timers[0].when, true
}

// Tick runs every timer due at the clock's current time.
func (m *Manager) Tick() {
	m.now = m.clock.Now()
	for len(m.timers) > 0 && !m.timers[0].when.After(m.now) {
		t := heap.Pop(&m.timers).(*timer)
		m.fire(t)
	}
}

func (m *Manager) fire(t *timer) {
	switch t.kind {
	case timerRetransmit:
		m.retransmit(t.sa)
	case timerHalfOpen:
		m.halfOpenExpired(t.sa)
	case timerDPD:
		m.dpdCheck(t.sa)
	case timerIKERekey:
		m.startIKERekey(t.sa)
	case timerIKEExpire:
		m.ikeExpired(t.sa)
	case timerKeepalive:
		m.sendKeepalive(t.sa)
	case timerReassembly:
		m.expireFragments(t.sa)
	case timerDeleteWait:
		m.deleteWaitOver(t.sa)
	case timerChildRekey:
		m.startChildRekey(t.child)
	case timerChildExpire:
		m.childExpired(t.child)
	case timerChildOutbound:
		if t.child.redundant {
			m.deleteRedundant(t.child)
		} else {
			m.installPendingOutbound(t.child, true)
		}
	case timerChildInactive:
		m.inactivityCheck(t.child)
	case timerRetry:
		m.retryTimerFired(t)
	case timerCookieRotate:
		m.cookies.rotate(m)
	case timerFollowupKE:
		m.pendingKEExpired(t.ke)
	case timerChildCreate:
		m.createAgain(t.req)
	}
}
