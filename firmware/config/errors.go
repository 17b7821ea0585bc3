package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Diagnostic is one finding about a configuration file, printed as
// FILE:LINE: MESSAGE (the format compilers use, so editors can jump to
// it). Line is 1-based; findings about the whole file (unreadable, a
// missing section) name line 1.
type Diagnostic struct {
	File string
	Line int
	Key  string // the key path the finding is about, e.g. connections.site-b.dpd_delay; may be empty
	Msg  string
}

func (d Diagnostic) Error() string { return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Msg) }

// Errors is every error found in a configuration file, in file order.
// Load reports them all, rather than stopping at the first as swanctl
// does, so one run of `bitw check` shows everything to fix.
type Errors []Diagnostic

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, d := range e {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// sortDiagnostics orders findings by line and drops exact repeats, keeping
// the order of findings on the same line.
func sortDiagnostics(ds []Diagnostic) []Diagnostic {
	seen := make(map[Diagnostic]bool, len(ds))
	out := ds[:0]
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Diagnostic) int { return cmp.Compare(a.Line, b.Line) })
	return out
}
