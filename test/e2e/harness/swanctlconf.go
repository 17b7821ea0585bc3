package harness

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SwanctlConfig is a swanctl.conf, written from Go values. Field names
// follow swanctl.conf's keys; zero values are left out so that
// strongSwan's defaults apply, except mobike, which is off unless asked
// for (design.md: link-local addresses make MOBIKE chatter).
type SwanctlConfig struct {
	Connections []SwanConn
	Secrets     []SwanSecret
	// Files are credentials to install under the swanctl directory, keyed
	// by their path relative to it: "x509/gw.pem", "x509ca/ca.pem",
	// "private/gw.key". --load-all loads them.
	Files map[string][]byte
}

// SwanConn is a connections.<name> section.
type SwanConn struct {
	Name          string
	Version       int // 0 means 2
	LocalAddrs    []string
	RemoteAddrs   []string
	LocalPort     int
	RemotePort    int
	Proposals     []string
	Mobike        bool
	Encap         bool
	Fragmentation string // yes | accept | force | no
	DPDDelay      time.Duration
	DPDTimeout    time.Duration
	RekeyTime     time.Duration
	ReauthTime    time.Duration
	OverTime      time.Duration
	Unique        string // no | never | keep | replace
	KeyingTries   int
	Local         SwanAuth
	Remote        SwanAuth
	Children      []SwanChild
	// Extra holds further key = value lines for this section, verbatim.
	Extra map[string]string
}

// SwanAuth is a local or remote section.
type SwanAuth struct {
	Auth    string // psk | pubkey | ...
	ID      string
	Certs   []string // file names under x509/
	CACerts []string // file names under x509ca/ (remote: trust anchors to require)
	Extra   map[string]string
}

// SwanChild is a children.<name> section.
type SwanChild struct {
	Name         string
	LocalTS      []string
	RemoteTS     []string
	ESPProposals []string
	AHProposals  []string
	Mode         string // tunnel | transport
	StartAction  string // none | trap | start
	DPDAction    string
	CloseAction  string
	RekeyTime    time.Duration
	LifeTime     time.Duration
	RandTime     time.Duration
	RekeyBytes   uint64
	RekeyPackets uint64
	ReplayWindow *int
	Extra        map[string]string
}

// SwanSecret is a secrets.<type>-<n> section: Type "ike" with IDs and
// Secret for a PSK, or "private" with File (under private/) and an
// optional Secret passphrase.
type SwanSecret struct {
	Type   string
	IDs    []string
	Secret string
	File   string
}

// Render returns the swanctl.conf text.
func (c SwanctlConfig) Render() string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, conn := range c.Connections {
		conn.render(&b)
	}
	b.WriteString("}\n\nsecrets {\n")
	for i, s := range c.Secrets {
		fmt.Fprintf(&b, "\t%s-%d {\n", s.Type, i+1)
		for j, id := range s.IDs {
			fmt.Fprintf(&b, "\t\tid-%d = %s\n", j+1, swanQuote(id))
		}
		if s.File != "" {
			fmt.Fprintf(&b, "\t\tfile = %s\n", swanQuote(s.File))
		}
		if s.Secret != "" {
			fmt.Fprintf(&b, "\t\tsecret = %s\n", swanQuote(s.Secret))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (conn SwanConn) render(b *strings.Builder) {
	w := &kvWriter{b: b, indent: "\t\t"}
	fmt.Fprintf(b, "\t%s {\n", conn.Name)
	version := conn.Version
	if version == 0 {
		version = 2
	}
	w.kv("version", strconv.Itoa(version))
	w.list("local_addrs", conn.LocalAddrs)
	w.list("remote_addrs", conn.RemoteAddrs)
	w.int("local_port", conn.LocalPort)
	w.int("remote_port", conn.RemotePort)
	w.list("proposals", conn.Proposals)
	w.kv("mobike", yesNo(conn.Mobike))
	if conn.Encap {
		w.kv("encap", "yes")
	}
	w.str("fragmentation", conn.Fragmentation)
	w.dur("dpd_delay", conn.DPDDelay)
	w.dur("dpd_timeout", conn.DPDTimeout)
	w.dur("rekey_time", conn.RekeyTime)
	w.dur("reauth_time", conn.ReauthTime)
	w.dur("over_time", conn.OverTime)
	w.str("unique", conn.Unique)
	w.int("keyingtries", conn.KeyingTries)
	w.extra(conn.Extra)
	for _, side := range []struct {
		name string
		a    SwanAuth
	}{{"local", conn.Local}, {"remote", conn.Remote}} {
		fmt.Fprintf(b, "\t\t%s {\n", side.name)
		sw := &kvWriter{b: b, indent: "\t\t\t"}
		sw.str("auth", side.a.Auth)
		if side.a.ID != "" {
			sw.kv("id", swanQuote(side.a.ID))
		}
		sw.list("certs", side.a.Certs)
		sw.list("cacerts", side.a.CACerts)
		sw.extra(side.a.Extra)
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t\tchildren {\n")
	for _, ch := range conn.Children {
		fmt.Fprintf(b, "\t\t\t%s {\n", ch.Name)
		cw := &kvWriter{b: b, indent: "\t\t\t\t"}
		cw.list("local_ts", ch.LocalTS)
		cw.list("remote_ts", ch.RemoteTS)
		cw.list("esp_proposals", ch.ESPProposals)
		cw.list("ah_proposals", ch.AHProposals)
		cw.str("mode", ch.Mode)
		cw.str("start_action", ch.StartAction)
		cw.str("dpd_action", ch.DPDAction)
		cw.str("close_action", ch.CloseAction)
		cw.dur("rekey_time", ch.RekeyTime)
		cw.dur("life_time", ch.LifeTime)
		cw.dur("rand_time", ch.RandTime)
		if ch.RekeyBytes > 0 {
			cw.kv("rekey_bytes", strconv.FormatUint(ch.RekeyBytes, 10))
		}
		if ch.RekeyPackets > 0 {
			cw.kv("rekey_packets", strconv.FormatUint(ch.RekeyPackets, 10))
		}
		if ch.ReplayWindow != nil {
			cw.kv("replay_window", strconv.Itoa(*ch.ReplayWindow))
		}
		cw.extra(ch.Extra)
		b.WriteString("\t\t\t}\n")
	}
	b.WriteString("\t\t}\n\t}\n")
}

type kvWriter struct {
	b      *strings.Builder
	indent string
}

func (w *kvWriter) kv(k, v string) { fmt.Fprintf(w.b, "%s%s = %s\n", w.indent, k, v) }

func (w *kvWriter) str(k, v string) {
	if v != "" {
		w.kv(k, swanQuote(v))
	}
}

func (w *kvWriter) int(k string, v int) {
	if v != 0 {
		w.kv(k, strconv.Itoa(v))
	}
}

// dur writes whole seconds, the unit swanctl.conf assumes ("0" turns a
// timer off, so zero here means "not set").
func (w *kvWriter) dur(k string, d time.Duration) {
	if d > 0 {
		w.kv(k, strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)+"s")
	}
}

func (w *kvWriter) list(k string, v []string) {
	if len(v) == 0 {
		return
	}
	// One value, split by swanctl at the commas.
	w.kv(k, swanQuote(strings.Join(v, ",")))
}

func (w *kvWriter) extra(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.kv(k, m[k])
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// swanQuote quotes a value unless it is made only of characters that
// strongswan.conf's parser takes unquoted.
func swanQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%,", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
