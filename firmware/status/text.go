package status

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteText renders s for `bitw status` without --json. The layout
// follows `swanctl --list-sas`, so strongSwan users read it at a glance:
//
//	gw-a: 1 IKE SA, up 3600s
//	site-b: ESTABLISHED, 0123456789abcdef_i* fedcba9876543210_r
//	  local  'gw-a.example' @ 203.0.113.1[4500]
//	  remote 'gw-b.example' @ 203.0.113.2[4500] [NAT]
//	  aes256gcm16-prfsha384-ecp384
//	  established 120s ago, rekeying in 14280s, expires in 15720s
//	  lan: INSTALLED, reqid 1, TUNNEL-in-UDP, ESP:aes128gcm16-esn
//	    installed 120s ago, rekeying in 3200s, expires in 3480s
//	    in  c1a2b3c4,    1234 bytes,      10 packets
//	    out 0d0e0f10,    5678 bytes,      12 packets
//	    local  192.168.1.0/24
//	    remote 192.168.2.0/24
//	drops: ipsec no_sa 3, replay 1; netstack runt 2
//
// The '*' marks our side of the IKE SA, as swanctl does.
func WriteText(w io.Writer, s Status) error {
	bw := bufio.NewWriter(w)
	header := fmt.Sprintf("%s: %s", orDash(s.Device), count(len(s.IKESAs), "IKE SA", "IKE SAs"))
	if s.Version != "" {
		header += ", bitw " + clean(s.Version)
	}
	if s.UptimeSecs > 0 {
		header += fmt.Sprintf(", up %ds", s.UptimeSecs)
	}
	fmt.Fprintln(bw, header)
	for _, ike := range s.IKESAs {
		writeIKE(bw, ike)
	}
	if d := dropsLine(s.Drops); d != "" {
		fmt.Fprintln(bw, d)
	}
	return bw.Flush()
}

func writeIKE(w io.Writer, ike IKESA) {
	markI, markR := "", "*"
	if ike.Initiator {
		markI, markR = "*", ""
	}
	fmt.Fprintf(w, "%s: %s, %s_i%s %s_r%s\n", orDash(ike.Conn), orDash(ike.State), ike.SPIi, markI, ike.SPIr, markR)
	fmt.Fprintf(w, "  local  %s\n", endpoint(ike.LocalID, ike.Local, ike.LocalPort, ike.NATLocal))
	fmt.Fprintf(w, "  remote %s\n", endpoint(ike.RemoteID, ike.Remote, ike.RemotePort, ike.NATRemote))
	if ike.Proposal != "" {
		fmt.Fprintf(w, "  %s\n", clean(ike.Proposal))
	}
	if ike.State != IKEConnecting {
		line := fmt.Sprintf("  established %ds ago", ike.EstablishedSecs)
		if ike.RekeySecs > 0 {
			line += fmt.Sprintf(", rekeying in %ds", ike.RekeySecs)
		}
		if ike.ExpireSecs > 0 {
			line += fmt.Sprintf(", expires in %ds", ike.ExpireSecs)
		}
		fmt.Fprintln(w, line)
	}
	for _, c := range ike.ChildSAs {
		writeChild(w, c)
	}
}

func writeChild(w io.Writer, c ChildSA) {
	mode := orDash(c.Mode)
	if c.Encap {
		mode += "-in-UDP"
	}
	proto := orDash(c.Protocol)
	if c.Proposal != "" {
		proto += ":" + clean(c.Proposal)
	}
	fmt.Fprintf(w, "  %s: %s, reqid %d, %s, %s\n", orDash(c.Name), orDash(c.State), c.ReqID, mode, proto)
	line := fmt.Sprintf("    installed %ds ago", c.InstalledSecs)
	if c.RekeySecs > 0 {
		line += fmt.Sprintf(", rekeying in %ds", c.RekeySecs)
	}
	if c.ExpireSecs > 0 {
		line += fmt.Sprintf(", expires in %ds", c.ExpireSecs)
	}
	fmt.Fprintln(w, line)
	in := fmt.Sprintf("    in  %s, %7d bytes, %7d packets", c.SPIIn, c.BytesIn, c.PacketsIn)
	if c.ReplayDrops|c.AuthDrops|c.OtherDrops != 0 {
		in += fmt.Sprintf(", dropped %d replay, %d auth, %d other", c.ReplayDrops, c.AuthDrops, c.OtherDrops)
	}
	fmt.Fprintln(w, in)
	fmt.Fprintf(w, "    out %s, %7d bytes, %7d packets\n", c.SPIOut, c.BytesOut, c.PacketsOut)
	fmt.Fprintf(w, "    local  %s\n", tsList(c.LocalTS))
	fmt.Fprintf(w, "    remote %s\n", tsList(c.RemoteTS))
}

// endpoint prints 'id' @ addr[port] as swanctl does, with [NAT] when NAT
// detection found that side translated.
func endpoint(id string, a netip.Addr, port uint16, nat bool) string {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "'%s' @ ", clean(id))
	}
	if a.IsValid() {
		b.WriteString(a.String())
	} else {
		b.WriteString("%any")
	}
	if port != 0 {
		fmt.Fprintf(&b, "[%d]", port)
	}
	if nat {
		b.WriteString(" [NAT]")
	}
	return b.String()
}

func tsList(ts []string) string {
	if len(ts) == 0 {
		return "-"
	}
	return clean(strings.Join(ts, " "))
}

// dropsLine prints the non-zero drop counters, sources and reasons sorted.
func dropsLine(drops map[string]map[string]uint64) string {
	var parts []string
	for _, src := range sortedKeys(drops) {
		var items []string
		for _, reason := range sortedKeys(drops[src]) {
			if n := drops[src][reason]; n != 0 {
				items = append(items, fmt.Sprintf("%s %d", clean(reason), n))
			}
		}
		if len(items) > 0 {
			parts = append(parts, clean(src)+" "+strings.Join(items, ", "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "drops: " + strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func count(n int, one, many string) string {
	switch n {
	case 0:
		return "no " + many
	case 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// clean escapes control characters: a peer chooses its identity, and a
// terminal must not interpret what it put there.
func clean(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError || r == '\u2028' || r == '\u2029'
}
