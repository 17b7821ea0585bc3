package ipsec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// fuzzSA is one SA of the fuzz receiver. The corpora in testdata/fuzz are
// packets the matching sender built with these keys (testKeys seed 0x20),
// so the fuzzer starts from inputs that decrypt and reaches the code after
// the ICV check.
type fuzzSA struct {
	spi    uint32
	kw     string
	proto  proposal.Protocol
	mode   Mode
	esn    bool
	encap  bool
	outer6 bool
}

var fuzzSAs = []fuzzSA{
	{0x100, "aes128gcm16", protoESPSuite, ModeTunnel, false, false, false},
	{0x101, "aes128-sha256", protoESPSuite, ModeTransport, true, false, false},
	{0x102, "chacha20poly1305", protoESPSuite, ModeTunnel, true, false, true},
	{0x103, "aes256gcm8", protoESPSuite, ModeTunnel, false, false, false},
	{0x104, "aes128ccm12", protoESPSuite, ModeTransport, false, false, true},
	{0x105, "aes128gmac", protoESPSuite, ModeTunnel, true, false, false},
	{0x106, "3des-aesxcbc", protoESPSuite, ModeTunnel, false, false, false},
	{0x200, "aes128gcm16", protoESPSuite, ModeTunnel, false, true, false},
	{0x201, "aes256-sha512", protoESPSuite, ModeTransport, true, true, false},
	{0x202, "aes128ctr-aescmac", protoESPSuite, ModeTunnel, false, true, false},
	{0x300, "sha256", protoAHSuite, ModeTunnel, false, false, false},
	{0x301, "aes128gmac", protoAHSuite, ModeTransport, true, false, true},
	{0x302, "aescmac", protoAHSuite, ModeTransport, false, false, false},
}

func (s fuzzSA) config(t testing.TB, dir Direction) SAConfig {
	suite := suiteOf(t, s.kw, s.proto, s.esn)
	enc, integ := testKeys(suite, 0x20)
	src, dst := gwA4, gwB4
	if s.outer6 {
		src, dst = gwA6, gwB6
	}
	c := SAConfig{Dir: dir, SPI: s.spi, Mode: s.mode, Src: src, Dst: dst, Suite: suite, EncKey: enc, IntegKey: integ,
		Selectors: anyNets, ReplayWindow: 64}
	if s.encap {
		c.Encap = UDPEncap{SrcPort: 4500, DstPort: 4500}
	}
	return c
}

// fuzzReceiver builds a fresh engine holding every fuzz SA, so that each
// input meets the same state.
func fuzzReceiver(t testing.TB) *Engine {
	e := New(Config{Policy: allowed, Rand: newTestRand(7)})
	for _, s := range fuzzSAs {
		if err := e.AddSA(s.config(t, DirIn)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// fuzzSeeds returns real packets for the receiver: for each SA a few
// packets from its sender, IPv4 and IPv6 inside, plus a dummy.
func fuzzSeeds(t testing.TB, proto proposal.Protocol, encap bool) [][]byte {
	var seeds [][]byte
	for _, s := range fuzzSAs {
		if s.proto != proto || s.encap != encap {
			continue
		}
		e := New(Config{Policy: allowed, Rand: newTestRand(byte(s.spi))})
		out := s.config(t, DirOut)
		if err := e.AddSA(out); err != nil {
			t.Fatal(err)
		}
		if _, err := e.AddPolicy(Policy{Selectors: anyNets, Action: ActionProtect}); err != nil {
			t.Fatal(err)
		}
		var pkts [][]byte
		if s.mode == ModeTunnel {
			pkts = [][]byte{udpPacket(hostA4, hostB4, 53, 1053, []byte("fuzz seed v4")),
				udpPacket(hostA6, hostB6, 53, 1053, []byte("fuzz seed v6"))}
		} else {
			pkts = [][]byte{udpPacket(out.Src, out.Dst, 53, 1053, []byte("fuzz seed transport"))}
		}
		for _, p := range pkts {
			b := bufferWith(p)
			if r := e.Outbound(b, 1500); r.Verdict != VerdictForward {
				t.Fatalf("seed %s: %+v", s.kw, r)
			}
			seeds = append(seeds, append([]byte(nil), b.Bytes()...))
		}
		if proto == protoESPSuite {
			b := NewBuffer(DefaultBufferSize)
			if r := e.Dummy(b, out.Key(), 16, 1500); r.Verdict != VerdictForward {
				t.Fatal(r)
			}
			seeds = append(seeds, append([]byte(nil), b.Bytes()...))
		}
	}
	if encap {
		seeds = append(seeds, udpPacket(gwA4, gwB4, 4500, 4500, []byte{0xff}),
			udpPacket(gwA4, gwB4, 4500, 4500, []byte{0, 0, 0, 0, 0x12, 0x34}))
	}
	return seeds
}

// fuzzInbound feeds one input to a fresh receiver and checks the result's
// invariants: a drop names a counted reason, a forwarded packet is a
// whole IP packet, a local one is untouched but for trailing octets.
func fuzzInbound(t *testing.T, pkt []byte) {
	e := fuzzReceiver(t)
	b := NewBuffer(len(pkt) + DefaultHeadroom + DefaultTailroom)
	copy(b.Extend(len(pkt)), pkt)
	r := e.Inbound(b)
	var drops uint64
	for _, d := range e.Drops() {
		drops += d
	}
	switch r.Verdict {
	case VerdictDrop:
		if r.Reason == DropNone || drops != 1 || e.Drops()[r.Reason] != 1 {
			t.Fatalf("drop %+v with counters %s", r, nonzero(e.Drops()))
		}
	case VerdictForward:
		var h ipHeader
		if r.Reason != DropNone || drops != 0 || !parseIP(b.Bytes(), &h, true) || h.total != b.Len() {
			t.Fatalf("forwarded %+v: %x", r, b.Bytes())
		}
	case VerdictLocal:
		// Unchanged, except that octets past the IP length are cut.
		if b.Len() > len(pkt) || !bytes.Equal(b.Bytes(), pkt[:b.Len()]) || drops != 0 {
			t.Fatalf("local verdict changed the packet")
		}
	default:
		t.Fatalf("verdict %v", r.Verdict)
	}
}

func FuzzInboundESP(f *testing.F) {
	f.Fuzz(fuzzInbound)
}

func FuzzInboundAH(f *testing.F) {
	f.Fuzz(fuzzInbound)
}

func FuzzInboundUDP(f *testing.F) {
	f.Fuzz(fuzzInbound)
}

// TestFuzzCorpora checks that the committed seed corpora still decrypt
// with the fuzz keys, so the fuzzers keep starting deep. With
// BITW_WRITE_FUZZ_CORPUS=1 it rewrites them first.
func TestFuzzCorpora(t *testing.T) {
	for _, c := range []struct {
		name  string
		proto proposal.Protocol
		encap bool
	}{{"FuzzInboundESP", protoESPSuite, false}, {"FuzzInboundAH", protoAHSuite, false}, {"FuzzInboundUDP", protoESPSuite, true}} {
		dir := filepath.Join("testdata", "fuzz", c.name)
		if os.Getenv("BITW_WRITE_FUZZ_CORPUS") == "1" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range fuzzSeeds(t, c.proto, c.encap) {
				body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := filepath.Glob(filepath.Join(dir, "seed-*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no seed corpus (%v)", c.name, err)
		}
		verdicts := map[string]int{}
		for _, fn := range files {
			pkt := readCorpusFile(t, fn)
			r := fuzzReceiver(t).Inbound(bufferWith(pkt))
			verdicts[r.Verdict.String()+"/"+r.Reason.String()]++
		}
		for v := range verdicts {
			switch v {
			case "forward/none", "drop/dummy", "drop/nat_keepalive", "local/none":
			default:
				t.Errorf("%s: a seed ends in %s", c.name, v)
			}
		}
		if verdicts["forward/none"] < len(files)/2 {
			t.Errorf("%s: %v", c.name, verdicts)
		}
	}
}

// readCorpusFile parses a one-value []byte corpus file.
func readCorpusFile(t *testing.T, fn string) []byte {
	b, err := os.ReadFile(fn)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a corpus file", fn)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return []byte(s)
}
