package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// loadFile writes src as bitw.toml in a fresh directory and loads it
// through Load, the path `bitw check` and `bitw run` take.
func loadFile(t *testing.T, src string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bitw.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	return err
}

// firstError returns Load's first finding, failing the test if there is
// none.
func firstError(t *testing.T, err error) Diagnostic {
	t.Helper()
	var list Errors
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("want errors, got %v", err)
	}
	return list[0]
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// TestShapeLimits feeds Load files nested far beyond any configuration:
// each must be refused with FILE:LINE before the TOML parser sees it (it
// would take minutes and gigabytes on the 20000-level inline tables).
func TestShapeLimits(t *testing.T) {
	const deep = 20000
	head := build(nil) // a valid configuration; the bad line follows it
	line := strings.Count(head, "\n") + 1
	for name, c := range map[string]struct {
		src  string
		want string
	}{
		"arrays":          {"x = " + nested("[", "]", deep), "nest more than 16 deep"},
		"inline tables":   {"x = " + strings.Repeat("{a=", deep) + "1" + strings.Repeat("}", deep), "nest more than 16 deep"},
		"mixed":           {"x = " + nested("[{a=", "}]", deep/2), "nest more than 16 deep"},
		"unclosed":        {"x = " + strings.Repeat("[", deep), "nest more than 16 deep"},
		"dotted key":      {strings.Repeat("a.", deep) + "a = 1", "more than 16 parts"},
		"quoted parts":    {strings.Repeat(`"a".`, deep) + "a = 1", "more than 16 parts"},
		"table header":    {"[" + strings.Repeat("a.", deep) + "a]", "more than 16 parts"},
		"array of tables": {"[[" + strings.Repeat("a . ", deep) + "a]]", "more than 16 parts"},
		"17 levels":       {"x = " + nested("[", "]", maxNesting+1), "nest more than 16 deep"},
		"17 parts":        {strings.Repeat("a.", maxKeyParts) + "a = 1", "more than 16 parts"},
	} {
		t.Run(name, func(t *testing.T) {
			d := firstError(t, loadFile(t, head+c.src+"\n"))
			if d.Line != line || !strings.Contains(d.Msg, c.want) || !strings.HasSuffix(d.File, "bitw.toml") {
				t.Errorf("got %v, want line %d: ...%s", d, line, c.want)
			}
		})
	}
}

// TestShapeWithinLimits checks that the limits leave valid TOML alone:
// brackets and dots in strings and comments count for nothing, and
// nesting up to the limit reaches the loader, which reports what it
// thinks of the key.
func TestShapeWithinLimits(t *testing.T) {
	const deep = 20000
	for name, src := range map[string]string{
		"16 levels":          "x = " + nested("[", "]", maxNesting),
		"16 parts":           strings.Repeat("a.", maxKeyParts-1) + "x = 1",
		"basic string":       `x = "` + strings.Repeat("[{a.", deep) + `"`,
		"escaped quote":      `x = "\"` + strings.Repeat("[", deep) + `"`,
		"literal string":     `x = '` + strings.Repeat("[{a.", deep) + `'`,
		"multi-line basic":   "x = \"\"\"\n" + strings.Repeat("[{a.\n", deep) + "\"\"\"",
		"multi-line literal": "x = '''\n" + strings.Repeat("[{a.\n", deep) + "''''",
		"comment":            "# " + strings.Repeat("[{a.", deep) + "\nx = 1",
		"floats":             "x = [" + strings.Repeat("1.5, ", deep) + "2.5]",
		"dates":              "x = [" + strings.Repeat("07:32:00.999, ", 100) + "1979-05-27T07:32:00.5Z]",
		"many tables":        strings.Repeat("[[x.y]]\nz = 1\n", 1000),
	} {
		t.Run(name, func(t *testing.T) {
			err := loadFile(t, build(map[string]string{"extra": src}))
			d := firstError(t, err)
			if strings.Contains(err.Error(), "nest more than") || strings.Contains(err.Error(), "more than 16 parts") || !strings.Contains(d.Msg, "unknown key") {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	big := build(nil) + "# " + strings.Repeat("x", maxConfigSize) + "\n"
	d := firstError(t, loadFile(t, big))
	if d.Line != 1 || !strings.Contains(d.Msg, "larger than 256 KiB") {
		t.Errorf("Load: %v", d)
	}
	if _, err := Parse("big.toml", []byte(big), Options{}); err == nil || !strings.Contains(err.Error(), "big.toml:1: the file is larger than 256 KiB") {
		t.Errorf("Parse: %v", err)
	}
	// A credential file: a certificate padded beyond 64 KiB.
	dir := t.TempDir()
	testCreds(t, dir)
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), append(pem, strings.Repeat("#", maxCredentialSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	src := build(map[string]string{
		"conn":   "remote_addrs = [\"203.0.113.2\"]\nlocal = { auth = \"psk\", id = \"gw-a.example\" }\nremote = { auth = \"pubkey\", cacerts = [\"ca.pem\"] } #<-",
		"secret": "id = \"gw-a.example\"\nsecret = \"0123456789abcdef0123\"",
	})
	_, err = loadIn(t, dir, src)
	d = firstError(t, err)
	if d.Line != marked(src) || !strings.Contains(d.Msg, "larger than 64 KiB") {
		t.Errorf("certificate: %v", d)
	}
}

// TestScanPositionsDeep checks the position scanner on nesting far beyond
// the limits (it is total on any input): the lines come out right, and
// its memory grows with the input, not with the square of the depth.
func TestScanPositionsDeep(t *testing.T) {
	const deep = 20000
	for name, c := range map[string]struct {
		src  string
		path keyPath // the deepest element
		line int     // its line
	}{
		// a[0] starts on line 2, a[0][0] on line 3...
		"arrays": {"a = " + strings.Repeat("[\n", deep) + strings.Repeat("]", deep), deepPath(p("a"), deep-1, index(0)), deep},
		// a.b on line 2, a.b.b on line 3...
		"inline tables": {"a = " + strings.Repeat("{\nb=", deep) + "1" + strings.Repeat("}", deep), deepPath(p("a"), deep, "b"), deep + 1},
		"dotted key":    {"# comment\n" + strings.Repeat("a.", deep) + "a = 1", deepPath(nil, deep+1, "a"), 2},
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			pos := scanPositions(c.src)
			runtime.ReadMemStats(&after)
			if got := pos.lineOf(c.path); got != c.line {
				t.Errorf("deepest element at line %d, want %d", got, c.line)
			}
			if got := pos.lineOf(append(c.path[:len(c.path)-1:len(c.path)-1], "nonexistent")); got != c.line-1 && name != "dotted key" {
				t.Errorf("a missing key under the deepest table: line %d, want its table's %d", got, c.line-1)
			}
			// About 130 bytes per input byte here; the quadratic scanner
			// needed 40 KB per byte at 8000 levels.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1024*uint64(len(c.src)) {
				t.Errorf("scanning %d bytes allocated %d bytes", len(c.src), n)
			}
		})
	}
}

// deepPath is prefix followed by n copies of elem.
func deepPath(prefix keyPath, n int, elem string) keyPath {
	out := append(keyPath{}, prefix...)
	for range n {
		out = append(out, elem)
	}
	return out
}

// BenchmarkLoadDeep measures how fast Load refuses deep nesting, and the
// position scanner on the same input without the limits.
func BenchmarkLoadDeep(b *testing.B) {
	for _, n := range []int{1000, 8000, 20000} {
		src := "a = " + strings.Repeat("{b=", n) + "1" + strings.Repeat("}", n) + "\n"
		b.Run(fmt.Sprintf("parse/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Parse("deep.toml", []byte(src), Options{}); err == nil {
					b.Fatal("accepted")
				}
			}
		})
		b.Run(fmt.Sprintf("scan/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				scanPositions(src)
			}
		})
	}
}
