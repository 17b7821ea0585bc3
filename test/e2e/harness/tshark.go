package harness

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Decoded is what tshark made of one frame, decrypted where it had keys.
type Decoded struct {
	Frame     int
	Protocols string // tshark's frame.protocols, e.g. "eth:ethertype:ip:udp:udpencap:esp:ip:icmp"
	Outer     IPPacketSummary
	// ESPSPI is the SPI of an ESP packet (0 for others).
	ESPSPI uint32
	// Decrypted: an ESP packet whose inner IP packet tshark recovered.
	Decrypted bool
	Inner     IPPacketSummary // valid when Decrypted
	// IKEExchange is the IKEv2 exchange type (34 IKE_SA_INIT, 35
	// IKE_AUTH, 36 CREATE_CHILD_SA, 37 INFORMATIONAL); 0 for non-IKE.
	IKEExchange int
	// IKEPayloads lists the payload types tshark saw, including those
	// inside a decrypted SK payload.
	IKEPayloads []int
	// IKEDecrypted: tshark decrypted the message's SK payload (which may
	// hold no payloads, as in an empty INFORMATIONAL response).
	IKEDecrypted bool
}

// IPPacketSummary names an IP packet's endpoints and protocol.
type IPPacketSummary struct {
	Src, Dst netip.Addr
	Proto    int
}

func (s IPPacketSummary) String() string {
	return fmt.Sprintf("%s -> %s proto %d", s.Src, s.Dst, s.Proto)
}

// tsharkFields are read with -T fields, every occurrence, in this order.
var tsharkFields = []string{
	"frame.number", "frame.protocols",
	"ip.src", "ip.dst", "ip.proto",
	"ipv6.src", "ipv6.dst", "ipv6.nxt",
	"esp.spi", "isakmp.exchangetype", "isakmp.typepayload",
	// Present only once tshark has decrypted an SK payload.
	"isakmp.enc.pad_length",
}

// TsharkArgs returns the tshark options that load the tables: ESP
// decryption switched on and one "-o uat:TABLE:RECORD" per record. This
// is the recipe that works with Debian 12's tshark 4.0.
func (u UAT) TsharkArgs() []string {
	args := []string{"-o", "esp.enable_encryption_decode:TRUE"}
	for _, r := range u.ESPSA {
		args = append(args, "-o", "uat:esp_sa:"+r)
	}
	for _, r := range u.IKEv2 {
		args = append(args, "-o", "uat:ikev2_decryption_table:"+r)
	}
	return args
}

// Decode runs tshark over a pcap file with the tables in u and returns one
// Decoded per frame. It runs in the caller's namespace; reading a file
// needs none. displayFilter ("" for all) selects frames, e.g. "esp".
func Decode(pcapPath string, u UAT, displayFilter string) ([]Decoded, error) {
	args := []string{"-n", "-r", pcapPath}
	args = append(args, u.TsharkArgs()...)
	if displayFilter != "" {
		args = append(args, "-Y", displayFilter)
	}
	args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := runCmdStdout(ctx, "tshark", args...)
	if err != nil {
		return nil, fmt.Errorf("tshark -r %s: %v", pcapPath, err)
	}
	var res []Decoded
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		d, err := parseTsharkLine(line)
		if err != nil {
			return res, fmt.Errorf("tshark output %q: %v", line, err)
		}
		res = append(res, d)
	}
	return res, nil
}

func parseTsharkLine(line string) (Decoded, error) {
	f := strings.Split(line, "\t")
	if len(f) != len(tsharkFields) {
		return Decoded{}, fmt.Errorf("%d fields, want %d", len(f), len(tsharkFields))
	}
	list := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	var d Decoded
	var err error
	if d.Frame, err = strconv.Atoi(f[0]); err != nil {
		return d, err
	}
	d.Protocols = f[1]
	v4src, v4dst, v4proto := list(f[2]), list(f[3]), list(f[4])
	v6src, v6dst, v6nxt := list(f[5]), list(f[6]), list(f[7])
	// Walk the protocol stack, taking the n-th ip/ipv6 values in order, so
	// that outer and inner headers of any family line up.
	var layers []IPPacketSummary
	afterESP := -1
	n4, n6 := 0, 0
	for _, p := range strings.Split(d.Protocols, ":") {
		switch p {
		case "ip":
			if n4 < len(v4src) && n4 < len(v4dst) && n4 < len(v4proto) {
				proto, _ := strconv.Atoi(v4proto[n4])
				layers = append(layers, IPPacketSummary{parseAddr(v4src[n4]), parseAddr(v4dst[n4]), proto})
			}
			n4++
		case "ipv6":
			if n6 < len(v6src) && n6 < len(v6dst) && n6 < len(v6nxt) {
				nxt, _ := strconv.Atoi(v6nxt[n6])
				layers = append(layers, IPPacketSummary{parseAddr(v6src[n6]), parseAddr(v6dst[n6]), nxt})
			}
			n6++
		case "esp":
			if afterESP < 0 {
				afterESP = len(layers)
			}
		}
	}
	if len(layers) > 0 {
		d.Outer = layers[0]
	}
	if afterESP >= 0 {
		if spis := list(f[8]); len(spis) > 0 {
			v, err := strconv.ParseUint(strings.TrimPrefix(spis[0], "0x"), 16, 32)
			if err != nil {
				return d, fmt.Errorf("esp.spi %q: %v", spis[0], err)
			}
			d.ESPSPI = uint32(v)
		}
		if afterESP < len(layers) {
			d.Decrypted = true
			d.Inner = layers[afterESP]
		}
	}
	if ex := list(f[9]); len(ex) > 0 {
		d.IKEExchange, _ = strconv.Atoi(ex[0])
	}
	for _, p := range list(f[10]) {
		if v, err := strconv.Atoi(p); err == nil {
			d.IKEPayloads = append(d.IKEPayloads, v)
		}
	}
	d.IKEDecrypted = f[11] != ""
	return d, nil
}

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// IKE payload types (RFC 7296 section 3.2) the tests look for.
const (
	IKEPayloadIDi   = 35
	IKEPayloadIDr   = 36
	IKEPayloadSK    = 46
	IKEExchangeSA   = 34 // IKE_SA_INIT
	IKEExchangeAuth = 35 // IKE_AUTH
)

// HasPayload reports whether tshark saw payload type p in the message.
func (d Decoded) HasPayload(p int) bool {
	for _, x := range d.IKEPayloads {
		if x == p {
			return true
		}
	}
	return false
}

func runCmdStdout(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	cmd := execCommand(ctx, path, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return out, nil
}
