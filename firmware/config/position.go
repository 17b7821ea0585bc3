package config

import (
	"strconv"
	"strings"
)

// keyPath names a value in the document: table and key names, and array
// indices written as "[N]" elements (see index). It is the address that
// both the decoder and the position scanner use.
type keyPath []string

// indexMark starts a path element that is an array index. TOML keys are
// UTF-8 strings that may contain any character, so the mark is a byte that
// a key can only hold through an escape, which at worst misplaces a line.
const indexMark = "\x00"

func index(i int) string { return indexMark + strconv.Itoa(i) }

func (p keyPath) add(elems ...string) keyPath {
	q := make(keyPath, len(p), len(p)+len(elems))
	copy(q, p)
	return append(q, elems...)
}

func (p keyPath) id() string { return strings.Join(p, "\x1f") }

// String prints the path as a reader would write it: dotted keys, quoted
// where needed, and indices in brackets: connections."site b".local_ts[1].
func (p keyPath) String() string {
	var b strings.Builder
	for i, e := range p {
		if strings.HasPrefix(e, indexMark) {
			b.WriteString("[" + e[len(indexMark):] + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(e) {
			b.WriteString(e)
		} else {
			b.WriteString(strconv.Quote(e))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyChar(s[i]) {
			return false
		}
	}
	return true
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// positions records, for every table, key and array element of a TOML
// document, the line where it is defined. BurntSushi/toml reports positions
// for syntax errors only, so the loader rescans the (already valid)
// document to point its own errors at a line.
type positions struct {
	line     map[string]int
	explicit map[string]bool // defined by a header or a key, not implied by a longer one
}

// lineOf returns the line of path, or of its longest recorded ancestor, or
// 1 when nothing of it appears in the document (a missing section).
func (p *positions) lineOf(path keyPath) int {
	for n := len(path); n > 0; n-- {
		if l, ok := p.line[path[:n].id()]; ok {
			return l
		}
	}
	return 1
}

// scanPositions scans src, which BurntSushi/toml has already accepted. It
// stays total on any input (the fuzz target feeds it garbage through the
// loader's error paths): every loop consumes input, and indexing is
// bounds-checked.
func scanPositions(src string) *positions {
	s := &scanner{
		src:  src,
		line: 1,
		pos: &positions{
			line:     make(map[string]int),
			explicit: make(map[string]bool),
		},
		arrayTables: make(map[string]int),
	}
	s.document()
	return s.pos
}

type scanner struct {
	src  string
	i    int
	line int
	pos  *positions
	// arrayTables counts the [[name]] headers seen per resolved path, so
	// that name[N] addresses the N-th table of the array.
	arrayTables map[string]int
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *scanner) advance() {
	if s.i < len(s.src) {
		if s.src[s.i] == '\n' {
			s.line++
		}
		s.i++
	}
}

func (s *scanner) record(path keyPath, line int, explicit bool) {
	id := path.id()
	_, seen := s.pos.line[id]
	if !seen || explicit && !s.pos.explicit[id] {
		s.pos.line[id] = line
		s.pos.explicit[id] = explicit
	}
}

// recordAll records every prefix of path: the implied tables, then path.
func (s *scanner) recordAll(path keyPath, line int) {
	for n := 1; n < len(path); n++ {
		s.record(path[:n], line, false)
	}
	if len(path) > 0 {
		s.record(path, line, true)
	}
}

// skipSpace skips blanks on the current line.
func (s *scanner) skipSpace() {
	for !s.eof() && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

// skipBlank skips blanks, newlines and comments.
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.src[s.i] {
		case ' ', '\t', '\r', '\n':
			s.advance()
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) skipComment() {
	for !s.eof() && s.src[s.i] != '\n' {
		s.i++
	}
}

func (s *scanner) document() {
	var table keyPath
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		start := s.i
		line := s.line
		switch c := s.src[s.i]; {
		case c == '[' && s.peek(1) == '[':
			s.i += 2
			name := s.key()
			table = s.resolve(name, true)
			s.recordAll(table, line)
			s.skipSpace()
			if s.peek(0) == ']' && s.peek(1) == ']' {
				s.i += 2
			}
		case c == '[':
			s.i++
			name := s.key()
			table = s.resolve(name, false)
			s.recordAll(table, line)
			s.skipSpace()
			if s.peek(0) == ']' {
				s.i++
			}
		default:
			s.keyValue(table)
		}
		if s.i == start {
			s.advance() // not TOML we understand: move on
		}
	}
}

// resolve turns a header's key into a path: an element that names an array
// of tables means its last table, and a [[header]] appends a new index.
func (s *scanner) resolve(name []string, arrayTable bool) keyPath {
	var p keyPath
	for i, e := range name {
		p = p.add(e)
		last := i == len(name)-1
		if last && arrayTable {
			n := s.arrayTables[p.id()]
			s.arrayTables[p.id()] = n + 1
			p = p.add(index(n))
		} else if n, ok := s.arrayTables[p.id()]; ok && n > 0 {
			p = p.add(index(n - 1))
		}
	}
	return p
}

// keyValue reads "key = value" in table and records both.
func (s *scanner) keyValue(table keyPath) {
	line := s.line
	name := s.key()
	if len(name) == 0 {
		return
	}
	path := table.add(name...)
	s.recordAll(path, line)
	s.skipSpace()
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skipSpace()
	s.value(path)
}

// key reads a possibly dotted key made of bare and quoted parts.
func (s *scanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		if s.eof() {
			return parts
		}
		switch c := s.src[s.i]; {
		case c == '"':
			parts = append(parts, s.basicString())
		case c == '\'':
			parts = append(parts, s.literalString())
		case isBareKeyChar(c):
			start := s.i
			for !s.eof() && isBareKeyChar(s.src[s.i]) {
				s.i++
			}
			parts = append(parts, s.src[start:s.i])
		default:
			return parts
		}
		s.skipSpace()
		if s.peek(0) != '.' {
			return parts
		}
		s.i++
	}
}

func (s *scanner) value(path keyPath) {
	switch {
	case strings.HasPrefix(s.src[s.i:], `"""`):
		s.multiline(`"""`, true)
	case strings.HasPrefix(s.src[s.i:], `'''`):
		s.multiline(`'''`, false)
	case s.peek(0) == '"':
		s.basicString()
	case s.peek(0) == '\'':
		s.literalString()
	case s.peek(0) == '[':
		s.array(path)
	case s.peek(0) == '{':
		s.inlineTable(path)
	default:
		// Numbers, booleans and dates (which may hold one space).
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}

func (s *scanner) array(path keyPath) {
	s.i++ // [
	for n := 0; ; n++ {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.src[s.i] == ']' {
			s.i++
			return
		}
		start := s.i
		elem := path.add(index(n))
		s.record(elem, s.line, true)
		s.value(elem)
		s.skipBlank()
		if s.peek(0) == ',' {
			s.i++
		} else if s.i == start {
			s.advance()
		}
	}
}

// inlineTable reads { k = v, ... }. TOML 1.1, which BurntSushi/toml
// accepts, allows newlines and comments inside.
func (s *scanner) inlineTable(path keyPath) {
	s.i++ // {
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.src[s.i] == '}' {
			s.i++
			return
		}
		start := s.i
		s.keyValue(path)
		s.skipBlank()
		if s.peek(0) == ',' {
			s.i++
		} else if s.i == start {
			s.advance()
		}
	}
}

// basicString reads "..." and returns its decoded text.
func (s *scanner) basicString() string {
	start := s.i
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			raw := s.src[start:min(s.i, len(s.src))]
			if v, err := strconv.Unquote(raw); err == nil {
				return v
			}
			return strings.Trim(raw, `"`)
		case '\n':
			return s.src[start+1 : s.i]
		}
		s.i++
	}
	return s.src[min(start+1, len(s.src)):]
}

func (s *scanner) literalString() string {
	start := s.i + 1
	s.i++
	for !s.eof() && s.src[s.i] != '\'' && s.src[s.i] != '\n' {
		s.i++
	}
	v := s.src[min(start, len(s.src)):min(s.i, len(s.src))]
	if s.peek(0) == '\'' {
		s.i++
	}
	return v
}

// multiline skips a triple-quoted string (basic or literal); up to two
// quote characters may precede the closing delimiter.
func (s *scanner) multiline(delim string, escapes bool) {
	s.i += len(delim)
	for !s.eof() {
		if escapes && s.src[s.i] == '\\' {
			s.advance()
			s.advance()
			continue
		}
		if strings.HasPrefix(s.src[s.i:], delim) {
			s.i += len(delim)
			for k := 0; k < 2 && s.peek(0) == delim[0]; k++ {
				s.i++
			}
			return
		}
		s.advance()
	}
}
