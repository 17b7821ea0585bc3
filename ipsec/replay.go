package ipsec

import "sync/atomic"

// Anti-replay window sizes. RFC 4303 §3.4.3 asks for at least 32 and
// recommends 64; the default suits multi-core senders that reorder.
const (
	DefaultReplayWindow = 1024
	MinReplayWindow     = 64
	MaxReplayWindow     = 1 << 16
)

// replayWindow is an RFC 6479 anti-replay bitmap over 64-bit sequence
// numbers. The bitmap is a ring of 64-bit blocks, one block more than the
// window needs, so that sliding the window only clears whole blocks and
// never shifts bits.
//
// update runs under the SA's mutex. infer and check read without it, for
// the pre-check before the ICV: top and the blocks are atomics, so such a
// reader sees each word whole, though perhaps not the newest ones. A
// stale pre-check can only let a packet through to the locked update,
// which decides, or, when the window slid past the packet meanwhile,
// reject it a moment early.
type replayWindow struct {
	top    atomic.Uint64 // highest sequence number accepted so far; 0 = none
	size   uint64        // the window W
	mask   uint64        // blocks-1; the block count is a power of two
	bitmap []atomic.Uint64
}

func newReplayWindow(size int) *replayWindow {
	blocks := uint64(1)
	for blocks < uint64(size+63)/64+1 {
		blocks <<= 1
	}
	return &replayWindow{size: uint64(size), mask: blocks - 1, bitmap: make([]atomic.Uint64, blocks)}
}

// infer reconstructs the 64-bit sequence number of a packet that carries
// only the low 32 bits, following RFC 4303 Appendix A.2.1. It returns false
// for a number that would lie below zero, which only a forged or ancient
// packet can carry.
func (w *replayWindow) infer(low uint32) (uint64, bool) {
	top := w.top.Load()
	th, tl := uint32(top>>32), uint32(top)
	win := uint32(w.size)
	bottom := tl - win + 1 // Tl - W + 1, modulo 2^32
	if tl >= win-1 {
		// Case A: the window lies within one subspace.
		if low >= bottom {
			return uint64(th)<<32 | uint64(low), true
		}
		if th == ^uint32(0) {
			return 0, false
		}
		return uint64(th+1)<<32 | uint64(low), true
	}
	// Case B: the window spans two subspaces.
	if low >= bottom {
		if th == 0 {
			return 0, false
		}
		return uint64(th-1)<<32 | uint64(low), true
	}
	return uint64(th)<<32 | uint64(low), true
}

// check reports whether seq is new and inside or right of the window,
// without recording it: the pre-check before the ICV is verified
// (RFC 4303 §3.4.3).
func (w *replayWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq >= w.size {
		return false
	}
	return w.bitmap[(seq>>6)&w.mask].Load()&(1<<(seq&63)) == 0
}

// update checks seq again and records it, sliding the window when seq is
// the new highest number. It runs only after the ICV verified.
// Engine.accept has its common case inline.
func (w *replayWindow) update(seq uint64) bool {
	top := w.top.Load()
	if seq > top && seq>>6 == top>>6 {
		// In-order traffic: a new highest number in top's block, whose
		// bits above top are all clear.
		blk := &w.bitmap[(seq>>6)&w.mask]
		blk.Store(blk.Load() | 1<<(seq&63))
		w.top.Store(seq)
		return true
	}
	return w.updateSlide(seq, top)
}

// updateSlide is update for a number at or below top, or in another
// block, which a window move clears first.
func (w *replayWindow) updateSlide(seq, top uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > top {
		cur, next := top>>6, seq>>6
		diff := next - cur
		if diff > w.mask+1 {
			diff = w.mask + 1
		}
		for i := uint64(1); i <= diff; i++ {
			w.bitmap[(cur+i)&w.mask].Store(0)
		}
	} else if top-seq >= w.size {
		return false
	}
	blk := &w.bitmap[(seq>>6)&w.mask]
	bit := uint64(1) << (seq & 63)
	old := blk.Load()
	if old&bit != 0 {
		return false
	}
	blk.Store(old | bit)
	if seq > top {
		w.top.Store(seq)
	}
	return true
}
