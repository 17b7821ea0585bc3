package responder

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"

	"github.com/bitw-dev/bitw/ipsec"
)

// Frames built with scapy 2.5 (an independent implementation): host
// 02:00:00:00:00:01 / 192.0.2.1 talks to the board 02:00:00:00:00:02 /
// 192.0.2.2. The ARP request carries Ethernet padding to 60 octets; the
// echo request has TTL 17, ID 0x1234, DF, ICMP id 0x77 seq 3.
const (
	arpRequestHx = "ffffffffffff02000000000108060001080006040001020000000001c0000201000000000000c0000202000000000000000000000000000000000000"
	arpReplyHex  = "02000000000102000000000208060001080006040002020000000002c0000202020000000001c0000201"
	echoRequest  = "02000000000202000000000108004500002a123440001101d39bc0000201c0000202080081db0077000362697477206272696e672d757021"
	echoReplyHx  = "02000000000102000000000208004500002a123440004001a49bc0000202c0000201000089db0077000362697477206272696e672d757021"
)

var (
	boardMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	boardIP  = netip.MustParseAddr("192.0.2.2")
)

func frame(t testing.TB, h string, pad int) *ipsec.Buffer {
	t.Helper()
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
	copy(b.Extend(len(raw)), raw)
	clear(b.Extend(pad))
	return b
}

func TestARPRequestGetsReply(t *testing.T) {
	r := New(boardMAC, boardIP)
	b := frame(t, arpRequestHx, 0)
	if !r.Reply(b) {
		t.Fatal("no reply to an ARP request for our address")
	}
	if got := hex.EncodeToString(b.Bytes()); got != arpReplyHex {
		t.Fatalf("reply\n got %s\nwant %s", got, arpReplyHex)
	}
	if r.ARPReplies != 1 {
		t.Fatalf("counters %+v", r.Counters)
	}
}

func TestEchoRequestGetsReplyDespitePadding(t *testing.T) {
	r := New(boardMAC, boardIP)
	// Ethernet padding behind the IP packet must not reach the reply.
	b := frame(t, echoRequest, 4)
	if !r.Reply(b) {
		t.Fatal("no reply to an echo request")
	}
	if got := hex.EncodeToString(b.Bytes()); got != echoReplyHx {
		t.Fatalf("reply\n got %s\nwant %s", got, echoReplyHx)
	}
}

func TestOthersAreIgnoredOrMalformed(t *testing.T) {
	r := New(boardMAC, netip.MustParseAddr("192.0.2.9"))
	for _, h := range []string{arpRequestHx, echoRequest} {
		b := frame(t, h, 0)
		before := append([]byte(nil), b.Bytes()...)
		if r.Reply(b) || !bytes.Equal(b.Bytes(), before) {
			t.Fatal("answered or modified a frame for another address")
		}
	}
	bad := frame(t, echoRequest, 0)
	bad.Bytes()[14+10] ^= 0xff // IPv4 header checksum
	if r.Reply(bad) {
		t.Fatal("answered a corrupt header")
	}
	if r.Ignored != 2 || r.Malformed != 1 {
		t.Fatalf("counters %+v", r.Counters)
	}
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the one's complement sum of these octets is
	// ddf2, so the checksum is its complement.
	if got := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0); got != ^uint16(0xddf2) {
		t.Fatalf("checksum %#04x", got)
	}
}

// FuzzReply checks that no frame panics the responder and that every
// reply it produces carries valid checksums and our addresses.
func FuzzReply(f *testing.F) {
	for _, h := range []string{arpRequestHx, echoRequest, echoReplyHx} {
		raw, _ := hex.DecodeString(h)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > ipsec.DefaultBufferSize-ipsec.DefaultHeadroom {
			return
		}
		r := New(boardMAC, boardIP)
		b := ipsec.NewBuffer(ipsec.DefaultBufferSize)
		copy(b.Extend(len(in)), in)
		if !r.Reply(b) {
			return
		}
		out := b.Bytes()
		if !bytes.Equal(out[6:12], boardMAC) {
			t.Fatal("reply not from our address")
		}
		if out[12] == 0x08 && out[13] == 0x00 {
			ihl := int(out[14]&0x0f) * 4
			if checksum(out[14:14+ihl], 0) != 0 || checksum(out[14+ihl:], 0) != 0 {
				t.Fatal("reply with a bad checksum")
			}
		}
	})
}
