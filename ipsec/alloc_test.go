package ipsec

import (
	"fmt"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// TestNoAllocations: Outbound and Inbound allocate nothing per packet for
// the main transforms, in both modes, with and without UDP and ESN.
func TestNoAllocations(t *testing.T) {
	cases := []struct {
		kw    string
		proto proposal.Protocol
	}{
		{"aes128gcm16", protoESPSuite}, {"aes256gcm16", protoESPSuite}, {"chacha20poly1305", protoESPSuite},
		{"aes128ccm16", protoESPSuite}, {"aes128gcm8", protoESPSuite}, {"aes128gmac", protoESPSuite},
		{"aes128-sha256", protoESPSuite}, {"aes256-sha512", protoESPSuite}, {"aes128-aesxcbc", protoESPSuite},
		{"aes128ctr-sha256", protoESPSuite}, {"aes256ctr-sha1", protoESPSuite},
		{"sha256", protoAHSuite}, {"aes128gmac", protoAHSuite},
	}
	for _, c := range cases {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, esn := range []bool{false, true} {
				encap := c.proto == protoESPSuite
				name := fmt.Sprintf("%s-%s/%s/esn=%v", c.proto, c.kw, mode, esn)
				t.Run(name, func(t *testing.T) {
					tp := newPair(t, pairConfig{suite: suiteOf(t, c.kw, c.proto, esn), mode: mode, encap: encap, window: 4096})
					b := bufferWith(tp.packet(1000))
					var fail string
					n := testing.AllocsPerRun(200, func() {
						if r := tp.a.Outbound(b, 1500); r.Verdict != VerdictForward {
							fail = fmt.Sprint("outbound ", r)
						}
						if r := tp.b.Inbound(b); r.Verdict != VerdictForward {
							fail = fmt.Sprint("inbound ", r)
						}
					})
					if fail != "" {
						t.Fatal(fail)
					}
					if n != 0 {
						t.Fatalf("%v allocations per round trip", n)
					}
				})
			}
		}
	}
}

// TestConcurrentTraffic runs senders and receivers on several goroutines
// while the control plane rekeys, updates and deletes SAs and policies.
// Run with -race: it checks the lock-free readers and the SA state.
func TestConcurrentTraffic(t *testing.T) {
	tp := newPair(t, pairConfig{suite: gcm128(), mode: ModeTunnel, window: 4096})
	const workers, perWorker = 4, 400
	var wg sync.WaitGroup
	var mu sync.Mutex
	verdicts := map[string]int{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				b := bufferWith(tp.packet(64 + i%300))
				or := tp.a.Outbound(b, 1500)
				key := "out:" + or.Reason.String()
				if or.Verdict == VerdictForward {
					ir := tp.b.Inbound(b)
					key = "in:" + ir.Verdict.String() + ":" + ir.Reason.String()
				}
				mu.Lock()
				verdicts[key]++
				mu.Unlock()
			}
		}()
	}
	// The control plane: make-before-break rekeys, a policy update and
	// snapshots, all while traffic flows.
	wg.Add(1)
	go func() {
		defer wg.Done()
		old := [2]SAConfig{tp.in, tp.out}
		for r := 1; r <= 20; r++ {
			in, out := old[0], old[1]
			in.SPI, out.SPI = 0x1000+uint32(r), 0x1000+uint32(r)
			if err := tp.b.AddSA(in); err != nil {
				t.Error(err)
				return
			}
			if err := tp.a.AddSA(out); err != nil {
				t.Error(err)
				return
			}
			_ = tp.a.SAs()
			_ = tp.b.Policies()
			tp.a.Tick(0)
			// The old inbound SA stays a little for stragglers.
			if r > 2 {
				prev := old[0]
				prev.SPI = 0x1000 + uint32(r-2)
				tp.b.DeleteSA(prev.Key())
			}
			if err := tp.a.DeleteSA(old[1].Key()); err != nil {
				t.Error(err)
				return
			}
			old = [2]SAConfig{in, out}
		}
	}()
	wg.Wait()
	total := 0
	for k, v := range verdicts {
		total += v
		if k != "in:forward:none" && k != "in:drop:unknown_spi" {
			t.Errorf("%d packets: %s", v, k)
		}
	}
	if total != workers*perWorker || verdicts["in:forward:none"] < total/2 {
		t.Fatalf("verdicts %v", verdicts)
	}
}
