package mgmt

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/bitw-dev/bitw/firmware/status"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sampleStatus() status.Status {
	return status.Status{
		Device: "gw-a", Version: "v1.2.3", UptimeSecs: 3600,
		IKESAs: []status.IKESA{{
			Conn: "site-b", State: status.IKEEstablished, Initiator: true,
			Local: netip.MustParseAddr("203.0.113.1"), Remote: netip.MustParseAddr("203.0.113.2"),
			ChildSAs: []status.ChildSA{{
				Name: "lan", State: status.ChildInstalled, SPIIn: 0xc1a2b3c4, SPIOut: 0x0d0e0f10,
				BytesIn: 1234, BytesOut: 5678, PacketsIn: 10, PacketsOut: 12, ReplayDrops: 2, AuthDrops: 1,
			}, {
				Name: "lan", State: status.ChildRekeyed, SPIIn: 0x00000001, SPIOut: 0xffffffff,
				BytesIn: 99999999, BytesOut: 1, PacketsIn: 77777, PacketsOut: 1,
			}, {
				// Not installed yet: no SPIs, so no per-SA series.
				Name: "dmz", State: status.ChildInstalling,
			}},
		}, {
			Conn: "site-c", State: status.IKEConnecting,
		}},
	}
}

func sampleMetrics() Metrics {
	ipsecNames := []string{"none", "no_sa", "replay", "auth_failed"}
	netNames := []string{"none", "runt", "no_buffer"}
	ikeNames := []string{"none", "unknown_spi", "half_open_per_source"}
	drops := append(DropsFrom(status.SourceIPsec, []uint64{9, 3, 1, 0}, func(i int) string { return ipsecNames[i] }),
		DropsFrom(status.SourceNetstack, []uint64{0, 2, 0}, func(i int) string { return netNames[i] })...)
	return Metrics{
		Drops: append(drops, DropsFrom("ike", []uint64{0, 5, 41}, func(i int) string { return ikeNames[i] })...),
		IPsec: IPsecCounters{EventOverflows: 13},
		IKE: IKECounters{
			Exchanges: []Exchange{
				{"IKE_SA_INIT", "out", 2}, {"IKE_AUTH", "out", 1}, {"CREATE_CHILD_SA", "in", 4}, {"INFORMATIONAL", "in", 17},
			},
			Retransmits: 3, AuthFailures: 1,
			CookiesSent: 120, CookiesVerified: 7,
			UnprotectedReplies:        []NotifyCount{{"INVALID_IKE_SPI", 6}, {"INVALID_MAJOR_VERSION", 0}},
			UnprotectedRepliesLimited: 9,
			IdleChildSAsClosed:        2,
			EventsDropped:             5,
		},
		Pool: Pool{Available: 2000, Size: 2048},
		Interfaces: []Interface{
			{Name: "red", RxPackets: 100, RxBytes: 64000, TxPackets: 90, TxBytes: 60000},
			{Name: "black", RxPackets: 91, RxBytes: 70000, TxPackets: 101, TxBytes: 80000, TxErrors: 1},
		},
	}
}

func TestMetricsGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMetrics(&b, sampleStatus(), sampleMetrics()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "metrics.txt")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("exposition differs from %s:\n%s", path, b.String())
	}
	p := parseExposition(t, b.String())
	for _, tc := range []struct {
		name   string
		labels string
		want   float64
	}{
		{"bitw_sa_bytes_total", `child=lan,conn=site-b,direction=in,spi=c1a2b3c4`, 1234},
		{"bitw_sa_packets_total", `child=lan,conn=site-b,direction=out,spi=ffffffff`, 1},
		{"bitw_sa_drops_total", `child=lan,conn=site-b,reason=replay,spi=c1a2b3c4`, 2},
		{"bitw_ike_sas", `state=ESTABLISHED`, 1},
		{"bitw_ike_sas", `state=REKEYING`, 0},
		{"bitw_child_sas", `state=INSTALLING`, 1},
		{"bitw_child_sas", `state=REKEYED`, 1},
		{"bitw_drops_total", `reason=no_sa,source=ipsec`, 3},
		{"bitw_ipsec_event_overflows_total", ``, 13},
		{"bitw_drops_total", `reason=auth_failed,source=ipsec`, 0},
		{"bitw_drops_total", `reason=runt,source=netstack`, 2},
		{"bitw_ike_exchanges_total", `direction=in,type=INFORMATIONAL`, 17},
		{"bitw_ike_retransmits_total", ``, 3},
		{"bitw_ike_auth_failures_total", ``, 1},
		{"bitw_drops_total", `reason=half_open_per_source,source=ike`, 41},
		{"bitw_ike_cookies_sent_total", ``, 120},
		{"bitw_ike_cookies_verified_total", ``, 7},
		{"bitw_ike_unprotected_replies_total", `notify=INVALID_IKE_SPI`, 6},
		{"bitw_ike_unprotected_replies_total", `notify=INVALID_MAJOR_VERSION`, 0},
		{"bitw_ike_unprotected_replies_limited_total", ``, 9},
		{"bitw_ike_idle_child_sas_closed_total", ``, 2},
		{"bitw_ike_events_dropped_total", ``, 5},
		{"bitw_buffer_pool_available", ``, 2000},
		{"bitw_interface_errors_total", `direction=tx,interface=black`, 1},
		{"bitw_info", `device=gw-a,version=v1.2.3`, 1},
	} {
		if got, ok := p.value(tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if _, ok := p.value("bitw_drops_total", "reason=none,source=ipsec"); ok {
		t.Error(`the "none" drop reason is exported`)
	}
	for _, s := range p.samples {
		if s.labels["child"] == "dmz" {
			t.Errorf("series for an SA without SPIs: %+v", s)
		}
	}
}

// TestMetricsEscaping: label values from the configuration or a peer may
// hold any bytes; the exposition must stay parseable and give them back.
func TestMetricsEscaping(t *testing.T) {
	odd := "a\"b\\c\nd}e,f=g"
	st := status.Status{Device: "gw \"x\"", IKESAs: []status.IKESA{{Conn: odd, State: status.IKEEstablished,
		ChildSAs: []status.ChildSA{{Name: "bad\xffutf8", State: status.ChildInstalled, SPIIn: 1, SPIOut: 2, BytesIn: 5}}}}}
	m := Metrics{Drops: []Drop{{Source: "ipsec", Reason: "x", Count: 1}, {Source: "ipsec", Reason: "x", Count: 2}}}
	var b bytes.Buffer
	if err := WriteMetrics(&b, st, m); err != nil {
		t.Fatal(err)
	}
	p := parseExposition(t, b.String())
	found := false
	for _, s := range p.samples {
		if s.name == "bitw_sa_bytes_total" && s.labels["direction"] == "in" {
			found = true
			if s.labels["conn"] != odd || s.labels["child"] != "bad\uFFFDutf8" || s.value != 5 {
				t.Errorf("labels came back as %q", s.labels)
			}
		}
	}
	if !found {
		t.Error("per-SA series missing")
	}
	// A reason listed twice is one series with the sum.
	if v, ok := p.value("bitw_drops_total", "reason=x,source=ipsec"); !ok || v != 3 {
		t.Errorf("duplicate drop reason: %v %v", v, ok)
	}
}

// exposition as parsed back by the strict parser below.
type parsedExposition struct {
	help, typ map[string]string
	samples   []parsedSample
}

type parsedSample struct {
	name   string
	labels map[string]string
	value  float64
}

// value finds a sample by name and its labels written as sorted
// name=value pairs joined by commas.
func (p parsedExposition) value(name, labels string) (float64, bool) {
	for _, s := range p.samples {
		if s.name == name && labelKey(s.labels) == labels {
			return s.value, true
		}
	}
	return 0, false
}

func labelKey(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// parseExposition checks text against the text format 0.0.4 strictly and
// against the conventions bitw keeps: HELP then TYPE before each family's
// samples, each family in one block, counters named *_total, no duplicate
// series, valid metric and label names, only the three escapes.
func parseExposition(t reporter, text string) parsedExposition {
	t.Helper()
	p := parsedExposition{help: map[string]string{}, typ: map[string]string{}}
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end in a newline")
	}
	seen := map[string]bool{}
	current := ""
	fail := func(n int, line, format string, args ...any) {
		t.Fatalf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
	}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n++
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(line[len("# HELP "):], " ")
			if !ok || !validMetricName(name) || help == "" {
				fail(n, line, "malformed HELP")
			}
			if _, dup := p.help[name]; dup {
				fail(n, line, "second HELP for %s", name)
			}
			if seen[name] {
				fail(n, line, "family %s is split", name)
			}
			if _, err := unescape(help, false); err != nil {
				fail(n, line, "HELP text: %v", err)
			}
			p.help[name] = help
			current = name
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(line[len("# TYPE "):], " ")
			if !ok || name != current {
				fail(n, line, "TYPE must follow the family's HELP")
			}
			if typ != "counter" && typ != "gauge" {
				fail(n, line, "type %q", typ)
			}
			if typ == "counter" != strings.HasSuffix(name, "_total") {
				fail(n, line, "counters, and only counters, end in _total")
			}
			if _, dup := p.typ[name]; dup {
				fail(n, line, "second TYPE")
			}
			p.typ[name] = typ
			seen[name] = true
		case strings.HasPrefix(line, "#") || line == "":
			fail(n, line, "unexpected comment or blank line")
		default:
			s, err := parseSample(line)
			if err != nil {
				fail(n, line, "%v", err)
			}
			if s.name != current || p.typ[current] == "" {
				fail(n, line, "sample outside its family's block (current %q)", current)
			}
			if p.typ[current] == "counter" && s.value < 0 {
				fail(n, line, "negative counter")
			}
			for _, o := range p.samples {
				if o.name == s.name && labelKey(o.labels) == labelKey(s.labels) {
					fail(n, line, "duplicate series")
				}
			}
			p.samples = append(p.samples, s)
		}
	}
	for name := range p.help {
		if p.typ[name] == "" {
			t.Errorf("family %s has no TYPE", name)
		}
	}
	return p
}

func parseSample(line string) (parsedSample, error) {
	s := parsedSample{labels: map[string]string{}}
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	s.name = line[:i]
	if !validMetricName(s.name) {
		return s, fmt.Errorf("metric name %q", s.name)
	}
	if i < len(line) && line[i] == '{' {
		i++
		for {
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			j := i
			for j < len(line) && line[j] != '=' {
				j++
			}
			name := line[i:j]
			if !validLabelName(name) {
				return s, fmt.Errorf("label name %q", name)
			}
			if j+1 >= len(line) || line[j+1] != '"' {
				return s, fmt.Errorf("label %s: value not quoted", name)
			}
			k := j + 2
			for k < len(line) && line[k] != '"' {
				if line[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(line) {
				return s, fmt.Errorf("label %s: unterminated value", name)
			}
			value, err := unescape(line[j+2:k], true)
			if err != nil {
				return s, fmt.Errorf("label %s: %v", name, err)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			s.labels[name] = value
			i = k + 1
			if i < len(line) && line[i] == ',' {
				i++
				continue
			}
			if i >= len(line) || line[i] != '}' {
				return s, fmt.Errorf("after label %s: want , or }", name)
			}
		}
	}
	if i >= len(line) || line[i] != ' ' {
		return s, fmt.Errorf("want one space before the value")
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		return s, fmt.Errorf("value: %v", err)
	}
	s.value = v
	return s, nil
}

// unescape undoes the format's escapes: \\ and \n everywhere, \" in label
// values only.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return "", fmt.Errorf("trailing backslash")
			}
			i++
			switch s[i] {
			case '\\':
				b.WriteByte('\\')
			case 'n':
				b.WriteByte('\n')
			case '"':
				if !label {
					return "", fmt.Errorf(`\" outside a label value`)
				}
				b.WriteByte('"')
			default:
				return "", fmt.Errorf("unknown escape \\%c", s[i])
			}
		case c == '\n', label && c == '"':
			return "", fmt.Errorf("unescaped %q", c)
		default:
			b.WriteByte(c)
		}
	}
	if !utf8Valid(b.String()) {
		return "", fmt.Errorf("not UTF-8")
	}
	return b.String(), nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func validMetricName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func validLabelName(s string) bool {
	if strings.HasPrefix(s, "__") {
		return false
	}
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// TestParserRejects shows the checker above can fail.
func TestParserRejects(t *testing.T) {
	for _, text := range []string{
		"bitw_x_total 1\n", // no HELP/TYPE
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total{a=\"1\"} 1\nbitw_x_total{a=\"1\"} 2\n",
		"# HELP bitw_x x\n# TYPE bitw_x counter\nbitw_x 1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total{a=\"\\t\"} 1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total{a=\"b} 1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total{a=\"b\",a=\"c\"} 1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total  1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_y_total 1\n",
		"# HELP bitw_x_total x\n# TYPE bitw_x_total counter\nbitw_x_total 1",
	} {
		ft := &fakeT{}
		func() {
			defer func() {
				if r := recover(); r != nil && r != ft {
					panic(r)
				}
			}()
			parseExposition(ft, text)
		}()
		if !ft.failed {
			t.Errorf("accepted %q", text)
		}
	}
}

// reporter is the part of testing.T the parser uses, so that a test can
// watch it fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// fakeT records failures; Fatalf unwinds with a panic of itself.
type fakeT struct{ failed bool }

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	panic(f)
}
