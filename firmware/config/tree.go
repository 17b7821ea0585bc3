package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// decoder walks the tree that BurntSushi/toml produced, one table at a
// time. Every accessor names the key it reads, so the table knows its
// whole vocabulary: a key nobody asked for is unknown, and the message can
// suggest the nearest known one. Walking the tree explicitly, rather than
// unmarshalling into tagged structs, gives every value a key path (array
// indices included) that the position scanner maps to a line, and lets
// the loader report all errors instead of the first.
type decoder struct {
	file  string
	pos   *positions
	errs  []Diagnostic
	warns []Diagnostic
}

func (d *decoder) diag(p keyPath, format string, args ...any) Diagnostic {
	return Diagnostic{File: d.file, Line: d.pos.lineOf(p), Key: p.String(), Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) errorf(p keyPath, format string, args ...any) {
	d.errs = append(d.errs, d.diag(p, format, args...))
}

func (d *decoder) warnf(p keyPath, format string, args ...any) {
	d.warns = append(d.warns, d.diag(p, format, args...))
}

// table is one TOML table (a [header], an inline table or one table of an
// array) being decoded.
type table struct {
	d     *decoder
	path  keyPath
	m     map[string]any
	known []string
}

func (d *decoder) root(m map[string]any) *table { return &table{d: d, m: m} }

// name is how messages refer to the table: [connections.site-b].
func (t *table) name() string {
	if len(t.path) == 0 {
		return "the top level"
	}
	return "[" + t.path.String() + "]"
}

func (t *table) at(key string) keyPath { return t.path.add(key) }

func (t *table) errorf(key string, format string, args ...any) {
	t.d.errorf(t.at(key), "%s: "+format, append([]any{t.at(key).String()}, args...)...)
}

func (t *table) warnf(key string, format string, args ...any) {
	t.d.warnf(t.at(key), "%s: "+format, append([]any{t.at(key).String()}, args...)...)
}

// get reads key and declares it part of the table's vocabulary.
func (t *table) get(key string) (any, bool) {
	t.known = append(t.known, key)
	v, ok := t.m[key]
	return v, ok
}

func (t *table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

func (t *table) wrongType(key string, v any, want string) {
	if s, ok := v.(string); ok && want == "true or false" {
		t.errorf(key, "want true or false (a TOML boolean), not the string %q", s)
		return
	}
	t.errorf(key, "want %s, not %s", want, typeName(v))
}

func (t *table) str(key string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.wrongType(key, v, "a string")
		return "", false
	}
	return s, true
}

func (t *table) boolean(key string) (bool, bool) {
	v, ok := t.get(key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		t.wrongType(key, v, "true or false")
		return false, false
	}
	return b, true
}

// integer reads an integer within [lo, hi].
func (t *table) integer(key string, lo, hi int64) (int64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.wrongType(key, v, "an integer")
		return 0, false
	}
	if n < lo || n > hi {
		t.errorf(key, "%d is out of range %d..%d", n, lo, hi)
		return 0, false
	}
	return n, true
}

// enum reads a string that must be one of allowed, which lists the words
// in the order the message shows them.
func (t *table) enum(key string, allowed ...string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	return t.enumValue(key, v, allowed)
}

func (t *table) enumValue(key string, v any, allowed []string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		t.wrongType(key, v, "one of "+quoteList(allowed))
		return "", false
	}
	if !slices.Contains(allowed, s) {
		t.errorf(key, "%q is not one of %s", s, quoteList(allowed))
		return "", false
	}
	return s, true
}

// yesNoEnum reads swanctl's yes/no-style words; a TOML boolean is taken as
// "yes" or "no", since strongSwan users write both.
func (t *table) yesNoEnum(key string, allowed ...string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	if b, isBool := v.(bool); isBool {
		if b {
			return "yes", true
		}
		return "no", true
	}
	return t.enumValue(key, v, allowed)
}

func quoteList(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// item is one string of a list, with its own path for messages.
type item struct {
	s    string
	path keyPath
}

// list reads a key that takes several strings: a non-empty TOML array of
// strings, or a single string for a one-element list. A comma inside a string is
// refused, because swanctl.conf separates list items with commas and a
// pasted "a, b" must not become one odd value.
func (t *table) list(key string) ([]item, bool) {
	items, ok := t.rawList(key)
	if !ok {
		return nil, false
	}
	for _, it := range items {
		if strings.Contains(it.s, ",") {
			t.d.errorf(it.path, `%s: %q: one value per array element; write ["a", "b"], not "a, b"`, it.path, it.s)
			return nil, false
		}
	}
	return items, true
}

// rawList is list for values that may hold commas themselves, such as
// distinguished names.
func (t *table) rawList(key string) ([]item, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	var items []item
	switch v := v.(type) {
	case string:
		items = []item{{v, t.at(key)}}
	case []any:
		for i, e := range v {
			p := t.at(key).add(index(i))
			s, ok := e.(string)
			if !ok {
				t.d.errorf(p, "%s: want a string, not %s", p, typeName(e))
				return nil, false
			}
			items = append(items, item{s, p})
		}
	default:
		t.wrongType(key, v, `an array of strings, e.g. ["a", "b"]`)
		return nil, false
	}
	if len(items) == 0 {
		t.errorf(key, "the list is empty; give at least one value, or leave %s out for its default", key)
		return nil, false
	}
	return items, true
}

// sub reads a sub-table.
func (t *table) sub(key string) (*table, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.wrongType(key, v, "a table")
		return nil, false
	}
	return &table{d: t.d, path: t.at(key), m: m}, true
}

// tables reads an array of tables, written either as [[key]] sections or
// as an array of inline tables.
func (t *table) tables(key string) ([]*table, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	var out []*table
	switch v := v.(type) {
	case []map[string]any:
		for i, m := range v {
			out = append(out, &table{d: t.d, path: t.at(key).add(index(i)), m: m})
		}
	case []any:
		for i, e := range v {
			p := t.at(key).add(index(i))
			m, ok := e.(map[string]any)
			if !ok {
				t.d.errorf(p, "%s: want a table, e.g. { local = \"...\" }, not %s", p, typeName(e))
				continue
			}
			out = append(out, &table{d: t.d, path: p, m: m})
		}
	default:
		t.wrongType(key, v, "an array of tables")
		return nil, false
	}
	return out, true
}

// each returns the sub-tables of t, sorted by the line that defines them,
// so that connections and children keep the order of the file.
func (t *table) each() []*table {
	var out []*table
	for _, k := range t.sortedKeys() {
		if sub, ok := t.sub(k); ok {
			out = append(out, sub)
		}
	}
	return out
}

func (t *table) sortedKeys() []string {
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		la, lb := t.d.pos.lineOf(t.at(a)), t.d.pos.lineOf(t.at(b))
		if la != lb {
			return la - lb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// done reports every key of t that no accessor asked for. unsupported
// maps swanctl.conf keys that bitw deliberately lacks to the reason.
func (t *table) done(unsupported map[string]string) {
	for _, k := range t.sortedKeys() {
		if slices.Contains(t.known, k) {
			continue
		}
		if why, ok := unsupported[k]; ok {
			t.errorf(k, "not supported by bitw: %s", why)
			continue
		}
		msg := "unknown key in " + t.name()
		if s := nearest(k, t.known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		t.errorf(k, "%s", msg)
	}
}

// nearest returns the known word closest to w when it is close enough to
// be a typo.
func nearest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(w, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
