package status

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sample is a device with an established IKE SA (two Child SAs, one of
// them being replaced by a rekey) and one still connecting over IPv6.
func sample() Status {
	return Status{
		Device:     "gw-a",
		Version:    "v1.2.3",
		UptimeSecs: 3600,
		Drops: map[string]map[string]uint64{
			SourceIPsec:    {"no_sa": 3, "replay": 1, "auth_failed": 0},
			SourceNetstack: {"runt": 2},
		},
		IKESAs: []IKESA{{
			Conn: "site-b", State: IKEEstablished,
			Local: netip.MustParseAddr("203.0.113.1"), Remote: netip.MustParseAddr("203.0.113.2"),
			Initiator: true, Proposal: "aes256gcm16-prfsha384-ecp384",
			SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210,
			LocalPort: 4500, RemotePort: 4500,
			LocalID: "gw-a.example", RemoteID: "gw-b.example",
			NATRemote:       true,
			EstablishedSecs: 120, RekeySecs: 14280, ExpireSecs: 15720,
			ChildSAs: []ChildSA{{
				Name: "lan", State: ChildInstalled, Mode: ModeTunnel, Protocol: ProtocolESP, Encap: true,
				SPIIn: 0xc1a2b3c4, SPIOut: 0x0d0e0f10, Proposal: "aes128gcm16-esn",
				LocalTS: []string{"192.168.1.0/24"}, RemoteTS: []string{"192.168.2.0/24", "10.0.0.1[tcp/80]"},
				BytesIn: 1234, BytesOut: 5678, PacketsIn: 10, PacketsOut: 12,
				ReqID: 1, ReplayDrops: 2, AuthDrops: 1, SeqOut: 12,
				InstalledSecs: 120, RekeySecs: 3200, ExpireSecs: 3480,
			}, {
				Name: "lan", State: ChildRekeyed, Mode: ModeTunnel, Protocol: ProtocolESP, Encap: true,
				SPIIn: 0x00000001, SPIOut: 0xffffffff, Proposal: "aes128gcm16-esn",
				LocalTS: []string{"192.168.1.0/24"}, RemoteTS: []string{"192.168.2.0/24"},
				BytesIn: 99999999, BytesOut: 1, PacketsIn: 77777, PacketsOut: 1,
				ReqID: 1, InstalledSecs: 3700, ExpireSecs: 260,
			}},
		}, {
			Conn: "site-c", State: IKEConnecting,
			Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::3"),
			Initiator: true, SPIi: 0x1111111111111111, LocalPort: 500, RemotePort: 500,
			LocalID: "gw-a.example",
		}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestJSONGolden(t *testing.T) {
	indented, err := json.MarshalIndent(sample(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.json", append(indented, '\n'))
	compact, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, indented); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact, want.Bytes()) {
		t.Errorf("Marshal and MarshalIndent disagree:\n%s\n%s", compact, want.Bytes())
	}
}

// TestJSONContract checks every field design.md promises, by name and
// JSON type, on the encoded form rather than on the Go structs.
func TestJSONContract(t *testing.T) {
	b, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	str, boolean, num, arr := "string", "bool", "number", "array"
	typeOf := func(v any) string {
		switch v.(type) {
		case string:
			return str
		case bool:
			return boolean
		case float64:
			return num
		case []any:
			return arr
		}
		return "other"
	}
	check := func(obj map[string]any, where string, fields map[string]string) {
		for k, want := range fields {
			v, ok := obj[k]
			if !ok {
				t.Errorf("%s: missing %q", where, k)
				continue
			}
			if got := typeOf(v); got != want {
				t.Errorf("%s.%s: JSON %s, want %s", where, k, got, want)
			}
		}
	}
	check(doc, "status", map[string]string{"device": str, "ike_sas": arr})
	hex8 := regexp.MustCompile(`^[0-9a-f]{8}$`)
	children := 0
	for _, s := range doc["ike_sas"].([]any) {
		ike := s.(map[string]any)
		check(ike, "ike_sa", map[string]string{"conn": str, "state": str, "local": str, "remote": str,
			"initiator": boolean, "proposal": str, "child_sas": arr})
		for _, c := range ike["child_sas"].([]any) {
			child := c.(map[string]any)
			children++
			check(child, "child_sa", map[string]string{"name": str, "state": str, "mode": str, "protocol": str,
				"encap": boolean, "spi_in": str, "spi_out": str, "proposal": str, "local_ts": arr, "remote_ts": arr,
				"bytes_in": num, "bytes_out": num, "packets_in": num, "packets_out": num})
			for _, k := range []string{"spi_in", "spi_out"} {
				if s, _ := child[k].(string); !hex8.MatchString(s) {
					t.Errorf("child_sa.%s = %q, want 8 lowercase hex digits", k, child[k])
				}
			}
			for _, ts := range append(child["local_ts"].([]any), child["remote_ts"].([]any)...) {
				if typeOf(ts) != str {
					t.Errorf("selector %v is not a string", ts)
				}
			}
		}
	}
	if children != 2 {
		t.Errorf("saw %d child SAs, want 2", children)
	}
}

// TestContractExample decodes design.md's example and encodes it again:
// every key and value of the example must come back unchanged.
func TestContractExample(t *testing.T) {
	const example = `{"device": "gw-a",
 "ike_sas": [{"conn": "site-b", "state": "ESTABLISHED", "local": "203.0.113.1", "remote": "203.0.113.2",
   "initiator": true, "proposal": "aes256gcm16-prfsha384-ecp384",
   "child_sas": [{"name": "lan", "state": "INSTALLED", "mode": "TUNNEL", "protocol": "ESP", "encap": true,
     "spi_in": "c1a2b3c4", "spi_out": "0d0e0f10", "proposal": "aes128gcm16",
     "local_ts": ["192.168.1.0/24"], "remote_ts": ["192.168.2.0/24"],
     "bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0}]}]}`
	var s Status
	if err := json.Unmarshal([]byte(example), &s); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var compare func(path string, w, g any)
	compare = func(path string, w, g any) {
		switch w := w.(type) {
		case map[string]any:
			gm, ok := g.(map[string]any)
			if !ok {
				t.Errorf("%s: got %T", path, g)
				return
			}
			for k, v := range w {
				compare(path+"."+k, v, gm[k])
			}
		case []any:
			ga, ok := g.([]any)
			if !ok || len(ga) != len(w) {
				t.Errorf("%s: got %v, want %v", path, g, w)
				return
			}
			for i := range w {
				compare(path, w[i], ga[i])
			}
		default:
			if w != g {
				t.Errorf("%s: got %v, want %v", path, g, w)
			}
		}
	}
	compare("status", want, got)
}

func TestEmptyListsAreArrays(t *testing.T) {
	b, err := json.Marshal(Status{Device: "gw-a", IKESAs: []IKESA{{Conn: "x", ChildSAs: []ChildSA{{Name: "y"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"local_ts":[]`, `"remote_ts":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	b, _ = json.Marshal(Status{Device: "gw-a"})
	if !strings.Contains(string(b), `"ike_sas":[]`) || strings.Contains(string(b), "drops") {
		t.Errorf("empty status: %s", b)
	}
	b, _ = json.Marshal(IKESA{Conn: "x"})
	if !strings.Contains(string(b), `"child_sas":[]`) {
		t.Errorf("IKE SA without children: %s", b)
	}
}

// TestTimesOmitted: rekey_secs and expire_secs are left out when no timer
// is scheduled (zero), in the JSON and in the text.
func TestTimesOmitted(t *testing.T) {
	s := Status{Device: "gw-a", IKESAs: []IKESA{{Conn: "x", State: IKEEstablished, EstablishedSecs: 5,
		ChildSAs: []ChildSA{{Name: "y", State: ChildInstalled, InstalledSecs: 5}}}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "rekey_secs") || strings.Contains(string(b), "expire_secs") {
		t.Errorf("unscheduled times written: %s", b)
	}
	var text bytes.Buffer
	if err := WriteText(&text, s); err != nil {
		t.Fatal(err)
	}
	if out := text.String(); strings.Contains(out, "rekeying in") || strings.Contains(out, "expires in") {
		t.Errorf("unscheduled times in the text:\n%s", out)
	}
}

func TestSPIText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"c1a2b3c4", 0xc1a2b3c4, true},
		{"00000000", 0, true},
		{"C1A2B3C4", 0, false},
		{"c1a2b3c", 0, false},
		{"c1a2b3c45", 0, false},
		{"+1a2b3c4", 0, false},
		{"", 0, false},
	} {
		var s SPI
		err := s.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && uint32(s) != tc.want) {
			t.Errorf("SPI %q: %v, %v", tc.in, uint32(s), err)
		}
	}
	var i IKESPI
	if err := i.UnmarshalText([]byte("0123456789abcdef")); err != nil || i != 0x0123456789abcdef {
		t.Errorf("IKE SPI: %x, %v", uint64(i), err)
	}
	if err := i.UnmarshalText([]byte("0123456789abcde")); err == nil {
		t.Error("IKE SPI of 15 digits accepted")
	}
	if SPI(0xab).String() != "000000ab" || IKESPI(1).String() != "0000000000000001" {
		t.Error("SPIs are not zero-padded")
	}
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.txt", b.Bytes())
	b.Reset()
	if err := WriteText(&b, Status{Device: "gw-a"}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "gw-a: no IKE SAs\n" {
		t.Errorf("empty status: %q", b.String())
	}
}

// TestTextEscapesControlCharacters: the peer picks its identity, and the
// text output goes to a terminal.
func TestTextEscapesControlCharacters(t *testing.T) {
	s := Status{Device: "gw-a", IKESAs: []IKESA{{Conn: "c", State: IKEEstablished, RemoteID: "evil\x1b[2J\r\nfake: ESTABLISHED\u0085"}}}
	var b bytes.Buffer
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\r\u0085") || strings.Contains(out, "\nfake") {
		t.Errorf("control characters reached the output: %q", out)
	}
	if !strings.Contains(out, `'evil\x1b[2J\r\nfake: ESTABLISHED\u0085'`) {
		t.Errorf("identity not escaped as expected: %q", out)
	}
}

func TestDropCounts(t *testing.T) {
	names := []string{"none", "a", "b", "c"}
	got := DropCounts([]uint64{5, 0, 7, 1}, func(i int) string { return names[i] })
	if len(got) != 2 || got["b"] != 7 || got["c"] != 1 {
		t.Errorf("DropCounts = %v", got)
	}
}
