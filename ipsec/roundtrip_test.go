package ipsec

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bitw-dev/bitw/ipsec/proposal"
)

// espKeywords are every ESP transform bitw supports, in strongSwan's
// keyword syntax: AEADs alone, other ciphers with every integrity
// algorithm.
func espKeywords() []string {
	var kws []string
	for _, bits := range []string{"128", "192", "256"} {
		for _, icv := range []string{"8", "12", "16"} {
			kws = append(kws, "aes"+bits+"gcm"+icv, "aes"+bits+"ccm"+icv)
		}
		kws = append(kws, "aes"+bits+"gmac")
	}
	kws = append(kws, "chacha20poly1305")
	ciphers := []string{"aes128", "aes192", "aes256", "aes128ctr", "aes192ctr", "aes256ctr", "3des", "null"}
	for _, c := range ciphers {
		for _, a := range []string{"sha1", "sha256", "sha384", "sha512", "aesxcbc", "aescmac"} {
			kws = append(kws, c+"-"+a)
		}
	}
	return kws
}

func ahKeywords() []string {
	return []string{"sha1", "sha256", "sha384", "sha512", "aesxcbc", "aescmac", "aes128gmac", "aes192gmac", "aes256gmac"}
}

// suiteOf parses one keyword proposal into the suite IKE would negotiate.
func suiteOf(t testing.TB, kw string, proto proposal.Protocol, esn bool) proposal.Suite {
	t.Helper()
	ps, err := proposal.Parse(kw, proto)
	if err != nil {
		t.Fatalf("parse %q: %v", kw, err)
	}
	p := ps[0]
	s := proposal.Suite{Protocol: proto, ESN: esn}
	if len(p.Encr) > 0 {
		s.Encr = p.Encr[0]
	}
	if len(p.Integ) > 0 {
		s.Integ = p.Integ[0]
	}
	return s
}

type matrixCase struct {
	name string
	pc   pairConfig
}

func matrix(t testing.TB, kws []string, proto proposal.Protocol) []matrixCase {
	var cases []matrixCase
	for _, kw := range kws {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, inner6 := range []bool{false, true} {
				for _, outer6 := range []bool{false, true} {
					if mode == ModeTransport && inner6 != outer6 {
						continue // transport mode keeps the packet's own header
					}
					for _, encap := range []bool{false, true} {
						if encap && proto == proposal.ProtoAH {
							continue // RFC 3948 encapsulates ESP only
						}
						for _, esn := range []bool{false, true} {
							name := fmt.Sprintf("%s-%s/%s/in%d/out%d/udp=%v/esn=%v", proto, kw, mode, ipv(inner6), ipv(outer6), encap, esn)
							cases = append(cases, matrixCase{name, pairConfig{
								suite: suiteOf(t, kw, proto, esn), mode: mode, inner6: inner6, outer6: outer6, encap: encap}})
						}
					}
				}
			}
		}
	}
	return cases
}

func ipv(v6 bool) int {
	if v6 {
		return 6
	}
	return 4
}

func TestRoundTripMatrix(t *testing.T) {
	cases := append(matrix(t, espKeywords(), proposal.ProtoESP), matrix(t, ahKeywords(), proposal.ProtoAH)...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := newPair(t, c.pc)
			for i, n := range []int{0, 1, 2, 3, 17, 100, 1000} {
				pkt := tp.packet(n)
				or, ir, b := tp.send(t, pkt)
				if or.Verdict != VerdictForward {
					t.Fatalf("packet %d: outbound %+v drops %v", i, or, tp.a.Drops())
				}
				if ir.Verdict != VerdictForward {
					t.Fatalf("packet %d (%d octets): inbound %+v drops %v", i, n, ir, nonzero(tp.b.Drops()))
				}
				if !bytes.Equal(b.Bytes(), pkt) {
					t.Fatalf("packet %d changed:\n got %x\nwant %x", i, b.Bytes(), pkt)
				}
			}
			// A copy of a packet sent once is a replay; a packet with one
			// bit flipped in its last octet (ciphertext, ICV or, for AH,
			// payload) fails authentication.
			b := bufferWith(tp.packet(50))
			if or := tp.a.Outbound(b, 1500); or.Verdict != VerdictForward {
				t.Fatalf("outbound: %+v", or)
			}
			wire := append([]byte(nil), b.Bytes()...)
			if ir := tp.b.Inbound(b); ir.Verdict != VerdictForward {
				t.Fatalf("inbound: %+v", ir)
			}
			if ir := tp.b.Inbound(bufferWith(wire)); ir.Reason != DropReplay {
				t.Fatalf("replayed packet: %+v", ir)
			}
			b = bufferWith(tp.packet(50))
			tp.a.Outbound(b, 1500)
			b.Bytes()[b.Len()-1] ^= 1
			if ir := tp.b.Inbound(b); ir.Reason != DropAuth {
				t.Fatalf("tampered packet: %+v", ir)
			}
			outs, ins := tp.a.SAs(), tp.b.SAs()
			if outs[0].Stats.Packets != 9 || ins[0].Stats.Packets != 8 || ins[0].Stats.ReplayDrops != 1 || ins[0].Stats.AuthDrops != 1 {
				t.Fatalf("counters out %+v in %+v", outs[0].Stats, ins[0].Stats)
			}
		})
	}
}

// nonzero renders the non-zero drop counters.
func nonzero(d [NumDropReasons]uint64) string {
	s := ""
	for i, v := range d {
		if v != 0 {
			s += fmt.Sprintf("%s=%d ", DropReason(i), v)
		}
	}
	return s
}
