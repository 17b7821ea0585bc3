package ipsec

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
	"golang.org/x/crypto/chacha20poly1305"
)

// The two benchmarks below run in opposite orders, so that the pair the
// throughput target compares, aes128gcm16/1400, runs back to back: on a
// shared machine whose speed drifts, that keeps the ratio meaningful.

// BenchmarkESPRoundTrip encapsulates one inner IPv4 packet of the given
// size on one engine and decapsulates it on another: SPD lookup, SA
// accounting, ESP in tunnel mode, SAD lookup, anti-replay and the inner
// selector check. SetBytes is the inner packet size.
func BenchmarkESPRoundTrip(b *testing.B) {
	for _, kw := range []string{"aes128ctr-sha256", "aes128-sha256", "chacha20poly1305", "aes256gcm16", "aes128gcm16"} {
		for _, n := range []int{64, 512, 1400} {
			b.Run(fmt.Sprintf("%s/%d", kw, n), func(b *testing.B) {
				tp := newPair(b, pairConfig{suite: suiteOf(b, kw, proposal.ProtoESP, false), mode: ModeTunnel})
				pkt := udpPacket(tp.src, tp.dst, 1111, 2222, make([]byte, n-ipv4MinLen-udpLen))
				buf := bufferWith(pkt)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if r := tp.a.Outbound(buf, 1500); r.Verdict != VerdictForward {
						b.Fatalf("outbound %+v", r)
					}
					if r := tp.b.Inbound(buf); r.Verdict != VerdictForward {
						b.Fatalf("inbound %+v", r)
					}
				}
			})
		}
	}
}

// BenchmarkRawAEAD is the ceiling for BenchmarkESPRoundTrip: Go's AEAD
// alone sealing and then opening the same payload in place.
func BenchmarkRawAEAD(b *testing.B) {
	for _, kw := range []string{"aes128gcm16", "aes256gcm16", "chacha20poly1305"} {
		for _, n := range []int{1400, 512, 64} {
			b.Run(fmt.Sprintf("%s/%d", kw, n), func(b *testing.B) {
				var aead cipher.AEAD
				var err error
				switch kw {
				case "aes128gcm16", "aes256gcm16":
					key := make([]byte, 16)
					if kw == "aes256gcm16" {
						key = make([]byte, 32)
					}
					var blk cipher.Block
					if blk, err = aes.NewCipher(key); err == nil {
						aead, err = cipher.NewGCM(blk)
					}
				default:
					aead, err = chacha20poly1305.New(make([]byte, 32))
				}
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, n+aead.Overhead())
				nonce := make([]byte, aead.NonceSize())
				ad := make([]byte, 8)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					ct := aead.Seal(buf[:0], nonce, buf[:n], ad)
					if _, err := aead.Open(ct[:0], nonce, ct, ad); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReplayWindow measures one in-window check-and-update as the
// inbound path does it: infer and pre-check without the lock, then lock,
// update, unlock, with the sequence numbers arriving slightly out of order.
func BenchmarkReplayWindow(b *testing.B) {
	for _, esn := range []bool{false, true} {
		b.Run(fmt.Sprintf("esn=%v", esn), func(b *testing.B) {
			sa := &assoc{esn: esn, replay: newReplayWindow(DefaultReplayWindow)}
			seq := uint64(1)
			for b.Loop() {
				seq++
				s := seq ^ 1 // pairs arrive swapped
				v := s
				ok := true
				if sa.esn {
					v, ok = sa.replay.infer(uint32(s))
				}
				ok = ok && sa.replay.check(v)
				sa.mu.Lock()
				ok = ok && sa.replay.update(v)
				sa.mu.Unlock()
				if !ok {
					b.Fatalf("seq %d rejected", s)
				}
			}
		})
	}
}

// nullAEAD stands in for the cipher in BenchmarkESPOverhead: it leaves the
// data as it is and "appends" an ICV of whatever the buffer holds.
type nullAEAD struct{}

func (nullAEAD) NonceSize() int                           { return 12 }
func (nullAEAD) Overhead() int                            { return 16 }
func (nullAEAD) Seal(dst, _, p, _ []byte) []byte          { return dst[:len(p)+16] }
func (nullAEAD) Open(dst, _, c, _ []byte) ([]byte, error) { return dst[:len(c)-16], nil }

// BenchmarkESPOverhead is BenchmarkESPRoundTrip/aes128gcm16/1400 with
// the AEAD replaced by one that does nothing: what the data plane itself
// costs per round trip, for work on the non-crypto path.
func BenchmarkESPOverhead(b *testing.B) {
	tp := newPair(b, pairConfig{suite: gcm128(), mode: ModeTunnel})
	for _, e := range []*Engine{tp.a, tp.b} {
		for _, sa := range e.sas {
			sa.esp.aead = nullAEAD{}
		}
	}
	buf := bufferWith(udpPacket(tp.src, tp.dst, 1111, 2222, make([]byte, 1400-ipv4MinLen-udpLen)))
	b.ReportAllocs()
	for b.Loop() {
		if r := tp.a.Outbound(buf, 1500); r.Verdict != VerdictForward {
			b.Fatalf("outbound %+v", r)
		}
		if r := tp.b.Inbound(buf); r.Verdict != VerdictForward {
			b.Fatalf("inbound %+v", r)
		}
	}
}
