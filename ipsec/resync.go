package ipsec

import "sync/atomic"

// ESN resynchronization (RFC 4303 Appendix A.3): after a loss of 2^32 or
// more consecutive packets the receiver's inferred high half of the
// sequence number (A.2.1) trails the sender's, and every packet fails its
// ICV. Tuning values, which A.3 leaves local:
const (
	// esnResyncAfter consecutive ICV failures start resynchronization
	// (A.3.1). Any packet that authenticates resets the count.
	esnResyncAfter = 32
	// esnResyncEpochs bounds the search (A.3.2): high halves up to this
	// many ahead of the inferred one are tried, one per failing packet.
	esnResyncEpochs = 4
)

// esnResync is an inbound ESN SA's resynchronization state.
//
// The work it adds is bounded and only ever follows an ICV failure: while
// the failure count is below esnResyncAfter nothing happens beyond
// counting; from then on each failing packet gets one more ICV check, with
// a candidate high half, and a copy of its ciphertext. An attacker who
// knows the SPI can therefore double the cost of the packets it forges, no
// more, and cannot keep authentic packets from their own attempt. A
// candidate that verifies is an authentic packet of the sender's current
// sequence number space: only then does the window move, through the same
// accept as any packet, so forged packets cannot move it. A replayed
// authentic packet carries a high half at or below the window's and fails
// every candidate, which lies above.
type esnResync struct {
	fails atomic.Uint32 // consecutive packets that failed their ICV
	done  atomic.Uint64 // resynchronizations that succeeded
	// work keeps a packet's ciphertext and ICV for the retry, since a
	// failed in-place AEAD open overwrites the ciphertext; a slot's
	// space grows to the largest packet retried, on the first attempts
	// only.
	work *workPool
}

func newESNResync() *esnResync { return &esnResync{work: newWorkPool(nil)} }

// openESN is c.open for an inbound ESN SA, with resynchronization: it
// returns the sequence number the packet authenticated under, which a
// resynchronization sets later than seq, the number inferred from the
// window.
func (e *Engine) openESN(sa *assoc, pkt []byte, espOff int, seq uint64, sc *scratch) (uint64, DropReason) {
	c, rs := sa.esp, sa.resync
	if rs.fails.Load() < esnResyncAfter {
		r := c.open(pkt, espOff, seq, true, sc)
		rs.record(r)
		return seq, r
	}
	body := pkt[espOff+espHeaderLen+c.ivLen:]
	w := rs.work.get(uint32(seq))
	defer w.put()
	save := w.scratchBuf(len(body))
	copy(save, body)
	if r := c.open(pkt, espOff, seq, true, sc); r != DropAuth {
		rs.record(r)
		return seq, r
	}
	// Retry with a larger high half (A.3.2), one candidate a packet:
	// epoch + 1 to + esnResyncEpochs, chosen by the packet's own low half
	// so that consecutive packets of the sender cover them all and other
	// packets, forged ones included, cannot choose which one an
	// authentic packet gets. A candidate already inside or left of the
	// window is skipped: the pre-check would have refused it.
	epoch := seq>>32 + seq&0xffffffff%esnResyncEpochs + 1
	cand := epoch<<32 | seq&0xffffffff
	if epoch <= 0xffffffff && sa.replay.check(cand) {
		copy(body, save)
		if c.open(pkt, espOff, cand, true, sc) == DropNone {
			rs.fails.Store(0)
			rs.done.Add(1)
			return cand, DropNone
		}
	}
	rs.fails.Add(1)
	return seq, DropAuth
}

// record counts an ICV failure, or ends a run of them.
func (rs *esnResync) record(r DropReason) {
	switch {
	case r == DropAuth:
		rs.fails.Add(1)
	case r == DropNone && rs.fails.Load() != 0:
		rs.fails.Store(0)
	}
}
