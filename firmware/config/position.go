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
//
// The paths form a tree: each node is one path element under its parent,
// so recording a key costs one step from its table, whatever the depth,
// and the scanner's time and memory grow with the size of the document
// alone.
type positions struct {
	nodes []posNode
	edges map[posEdge]int32
}

// root is the node of the empty path, the document itself.
const root = int32(0)

type posNode struct {
	line     int
	explicit bool // defined by a header or a key, not implied by a longer one
	// arrayTables counts the [[name]] headers of this path, so that
	// name[N] addresses the N-th table of the array.
	arrayTables int
}

type posEdge struct {
	parent int32
	elem   string
}

func newPositions() *positions {
	return &positions{nodes: []posNode{{line: 1}}, edges: make(map[posEdge]int32)}
}

// child returns the node of elem under parent, if recorded.
func (p *positions) child(parent int32, elem string) (int32, bool) {
	n, ok := p.edges[posEdge{parent, elem}]
	return n, ok
}

// lineOf returns the line of path, or of its longest recorded ancestor, or
// 1 when nothing of it appears in the document (a missing section).
func (p *positions) lineOf(path keyPath) int {
	line, n := 1, root
	for _, e := range path {
		next, ok := p.child(n, e)
		if !ok {
			break
		}
		n, line = next, p.nodes[next].line
	}
	return line
}

// scanPositions scans src, which BurntSushi/toml has already accepted. It
// stays total on any input (the fuzz target feeds it garbage): every loop
// consumes input, and indexing is bounds-checked.
func scanPositions(src string) *positions {
	s := &scanner{src: src, line: 1, pos: newPositions()}
	s.document()
	return s.pos
}

type scanner struct {
	src  string
	i    int
	line int
	pos  *positions
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

// record steps from parent to elem, creating the node at line. An
// explicit definition replaces an implied one's line.
func (s *scanner) record(parent int32, elem string, line int, explicit bool) int32 {
	p := s.pos
	n, seen := p.child(parent, elem)
	if !seen {
		n = int32(len(p.nodes))
		p.nodes = append(p.nodes, posNode{line: line, explicit: explicit})
		p.edges[posEdge{parent, elem}] = n
		return n
	}
	if explicit && !p.nodes[n].explicit {
		p.nodes[n].line, p.nodes[n].explicit = line, true
	}
	return n
}

// recordKey records a dotted key under table: the implied tables, then
// the key itself.
func (s *scanner) recordKey(table int32, name []string, line int) int32 {
	n := table
	for i, e := range name {
		n = s.record(n, e, line, i == len(name)-1)
	}
	return n
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
	table := root
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
			table = s.header(s.key(), line, true)
			s.skipSpace()
			if s.peek(0) == ']' && s.peek(1) == ']' {
				s.i += 2
			}
		case c == '[':
			s.i++
			table = s.header(s.key(), line, false)
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

// header records a table header and returns its table: an element that
// names an array of tables means its last table, and a [[header]] appends
// a new one.
func (s *scanner) header(name []string, line int, arrayTable bool) int32 {
	n := root
	for i, e := range name {
		last := i == len(name)-1
		n = s.record(n, e, line, last && !arrayTable)
		switch k := s.pos.nodes[n].arrayTables; {
		case last && arrayTable:
			s.pos.nodes[n].arrayTables++
			n = s.record(n, index(k), line, true)
		case k > 0:
			n = s.record(n, index(k-1), line, false)
		}
	}
	return n
}

// keyValue reads "key = value" in table and records both.
func (s *scanner) keyValue(table int32) {
	line := s.line
	name := s.key()
	if len(name) == 0 {
		return
	}
	n := s.recordKey(table, name, line)
	s.skipSpace()
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skipSpace()
	s.value(n)
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

func (s *scanner) value(n int32) {
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
		s.array(n)
	case s.peek(0) == '{':
		s.inlineTable(n)
	default:
		// Numbers, booleans and dates (which may hold one space).
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}

func (s *scanner) array(n int32) {
	s.i++ // [
	for k := 0; ; k++ {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.src[s.i] == ']' {
			s.i++
			return
		}
		start := s.i
		s.value(s.record(n, index(k), s.line, true))
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
func (s *scanner) inlineTable(n int32) {
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
		s.keyValue(n)
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
