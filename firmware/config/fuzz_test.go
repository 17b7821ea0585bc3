package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds the loader arbitrary files. Whatever the input, it must
// not panic, and it must either return a configuration or errors that each
// name the file and a line that exists. The seed corpus in
// testdata/fuzz/FuzzLoad holds the example configurations; credential
// files come from the test PKI, held in memory.
func FuzzLoad(f *testing.F) {
	readFile := memFiles(f)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add([]byte(build(nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data, Options{ReadFile: readFile, Now: func() time.Time { return now }})
		lines := bytes.Count(data, []byte("\n")) + 1
		check := func(ds []Diagnostic) {
			for _, d := range ds {
				if d.File != "fuzz.toml" || d.Line < 1 || d.Line > lines || d.Msg == "" {
					t.Fatalf("bad finding %+v in a %d-line file", d, lines)
				}
			}
		}
		if err != nil {
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			check(list)
			return
		}
		if cfg == nil || cfg.Device.Name == "" || len(cfg.Red.Addresses) == 0 || len(cfg.Black.Addresses) == 0 {
			t.Fatalf("accepted an incomplete configuration: %+v", cfg)
		}
		check(cfg.Warnings)
	})
}

// memFiles writes the test PKI and serves it from memory by base name.
func memFiles(tb testing.TB) func(string) ([]byte, error) {
	dir := tb.TempDir()
	testCreds(tb, dir)
	files := make(map[string][]byte)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		files[e.Name()] = data
	}
	return func(name string) ([]byte, error) {
		if data, ok := files[filepath.Base(name)]; ok {
			return data, nil
		}
		return nil, os.ErrNotExist
	}
}

// TestFuzzSeedsLoad keeps the valid seeds valid, so that fuzzing starts
// from configurations that reach every check.
func TestFuzzSeedsLoad(t *testing.T) {
	readFile := memFiles(t)
	for _, name := range []string{"site-a", "site-b", "pubkey"} {
		raw, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzLoad", name))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\n[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if !ok || err != nil {
			t.Fatalf("%s: not a corpus file: %v", name, err)
		}
		if _, err := Parse(name+".toml", []byte(data), Options{ReadFile: readFile}); err != nil {
			t.Errorf("seed %s: %v", name, err)
		}
	}
}
