package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// p builds a key path; "[N]" elements are array indices.
func p(elems ...string) keyPath {
	var out keyPath
	for _, e := range elems {
		if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			out = append(out, indexMark+e[1:len(e)-1])
		} else {
			out = append(out, e)
		}
	}
	return out
}

func TestScanPositions(t *testing.T) {
	src := `# comment [not.a.table] "quote
[device]                         # 2
name = "gw # not a comment"      # 3
"quoted.key" = 1                 # 4
'literal key' = 2                # 5
dotted . sub = 3                 # 6
text = """                       # 7
a ] } [ " ' = x
b"""                             # 9
lit = '''
[fake]
'''                              # 12
arr = [                          # 13
  "one",                         # 14
  # comment ]
  "two", { k = 1 },              # 16
]
[[policy.bypass]]                # 18
local = "a"                      # 19
[[policy.bypass]]                # 20
local = "b"                      # 21
[policy.bypass.sub]              # 22
x = 1                            # 23
[connections."site b"]           # 24
local = { auth = "psk",          # 25
  id = "x" }                     # 26
when = 1979-05-27 07:32:00Z      # 27
[connections."site b".children.lan]   # 28
[connections.implied.children.c] # 29
[connections.implied]            # 30
`
	var tree map[string]any
	if _, err := toml.Decode(src, &tree); err != nil {
		t.Fatalf("test input is not valid TOML: %v", err)
	}
	pos := scanPositions(src)
	for _, tc := range []struct {
		path keyPath
		line int
	}{
		{p("device"), 2},
		{p("device", "name"), 3},
		{p("device", "quoted.key"), 4},
		{p("device", "literal key"), 5},
		{p("device", "dotted"), 6},
		{p("device", "dotted", "sub"), 6},
		{p("device", "text"), 7},
		{p("device", "lit"), 10},
		{p("device", "arr"), 13},
		{p("device", "arr", "[0]"), 14},
		{p("device", "arr", "[1]"), 16},
		{p("device", "arr", "[2]"), 16},
		{p("device", "arr", "[2]", "k"), 16},
		{p("policy", "bypass", "[0]"), 18},
		{p("policy", "bypass", "[0]", "local"), 19},
		{p("policy", "bypass", "[1]"), 20},
		{p("policy", "bypass", "[1]", "local"), 21},
		{p("policy", "bypass", "[1]", "sub", "x"), 23},
		{p("connections", "site b"), 24},
		{p("connections", "site b", "local", "auth"), 25},
		{p("connections", "site b", "local", "id"), 26},
		{p("connections", "site b", "when"), 27},
		{p("connections", "site b", "children", "lan"), 28},
		{p("connections", "implied"), 30}, // an explicit header beats an implied table
		{p("connections", "implied", "children"), 29},
		{p("connections", "site b", "nonexistent"), 24}, // nearest ancestor
		{p("fake"), 1},                                  // inside a string: never a table
		{p("nowhere"), 1},
	} {
		if got := pos.lineOf(tc.path); got != tc.line {
			t.Errorf("lineOf(%s) = %d, want %d", tc.path, got, tc.line)
		}
	}
}

func TestKeyPathString(t *testing.T) {
	if got, want := p("connections", "site b", "local_ts", "[1]").String(), `connections."site b".local_ts[1]`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

// FuzzPositions feeds the scanner arbitrary text: it must stay total and
// report only lines that exist.
func FuzzPositions(f *testing.F) {
	for _, s := range []string{"[a]\nb = 1\n", "a = \"\"\"\n\\", "[[a]]\n[[a.b]]\nc = [{d=1},\n{e=2}]", "x = '''", "{", "a.\"b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		pos := scanPositions(src)
		lines := strings.Count(src, "\n") + 1
		for e, n := range pos.edges {
			if l := pos.nodes[n].line; l < 1 || l > lines {
				t.Fatalf("key %q at line %d of %d", e.elem, l, lines)
			}
		}
	})
}
