package config

import "fmt"

// Limits on the shape of a configuration file, checked before the file
// reaches the TOML parser. BurntSushi/toml spends time and memory that
// grow with the square of nesting depth and of dotted-key length (8000
// nested inline tables take it 11 s and 7 GB), so a hostile or corrupted
// file must be refused before it is parsed. The limits are far above what
// a configuration needs: its deepest key is
// connections.NAME.children.NAME.local_ts[N], and a large one is a few
// dozen kilobytes.
const (
	// maxConfigSize bounds the configuration file.
	maxConfigSize = 256 << 10
	// maxNesting bounds how deeply arrays and inline tables nest.
	maxNesting = 16
	// maxKeyParts bounds the parts of one dotted key or table header.
	maxKeyParts = 16
)

// checkShape enforces maxNesting and maxKeyParts on src in one pass that
// needs no valid TOML: it skips strings and comments and counts brackets
// and the dots between key parts. It returns the line of the first
// violation and why, or 0.
//
// It may miscount only where src is not valid TOML, at a point that the
// TOML parser rejects before parsing anything that follows, so what the
// parser does see is within the limits.
func checkShape(src string) (line int, why string) {
	line = 1
	depth := 0
	dots := 0 // dots in the current run of key characters: a dotted key has dots+1 parts
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			dots = 0
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			// A quoted key part continues the run; a string value ends
			// it at the next non-key character anyway.
			i, line = skipString(src, i, line)
		case c == '[' || c == '{':
			depth++
			if depth > maxNesting {
				return line, fmt.Sprintf("arrays and inline tables nest more than %d deep; a bitw configuration needs 5 levels at most", maxNesting)
			}
			dots = 0
			i++
		case c == ']' || c == '}':
			depth = max(depth-1, 0)
			dots = 0
			i++
		case c == '.':
			dots++
			if dots >= maxKeyParts {
				return line, fmt.Sprintf("a dotted key with more than %d parts; bitw's deepest is connections.NAME.children.NAME.local_ts", maxKeyParts)
			}
			i++
		case isBareKeyChar(c) || c == ' ' || c == '\t':
			i++
		default:
			// '=', ',', ':' and the rest end a key (and any float or
			// date, whose one dot is not a key separator).
			dots = 0
			i++
		}
	}
	return 0, ""
}

// skipString skips the string that starts at src[i] (basic, literal, or
// either multi-line form) and returns the index after it and the line it
// ends on. A single-line string ends at its newline if it is not closed.
func skipString(src string, i, line int) (int, int) {
	q := src[i]
	if i+2 < len(src) && src[i+1] == q && src[i+2] == q {
		i += 3
		for i < len(src) {
			switch {
			case src[i] == '\\' && q == '"':
				if i+1 < len(src) && src[i+1] == '\n' {
					line++
				}
				i += 2
			case src[i] == q && i+2 < len(src) && src[i+1] == q && src[i+2] == q:
				i += 3
				// Up to two quotes may precede the closing delimiter.
				for k := 0; k < 2 && i < len(src) && src[i] == q; k++ {
					i++
				}
				return i, line
			default:
				if src[i] == '\n' {
					line++
				}
				i++
			}
		}
		return i, line
	}
	for i++; i < len(src); i++ {
		switch src[i] {
		case '\\':
			if q == '"' {
				i++ // the escaped character; a newline after it is caught below
				if i < len(src) && src[i] == '\n' {
					return i, line
				}
			}
		case q:
			return i + 1, line
		case '\n':
			return i, line
		}
	}
	return i, line
}
