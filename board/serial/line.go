// Package serial turns a raw console byte stream into lines, the way a
// serial terminal user types them: CR, LF or CR LF end a line, backspace
// and DEL erase, and input is echoed when the terminal does not echo
// locally. It holds no hardware access, so it is shared by every board.
package serial

import (
	"errors"
	"io"
)

// ErrLineTooLong reports a line longer than the reader's limit. The line
// is discarded up to its end, so the next ReadLine starts afresh.
var ErrLineTooLong = errors.New("serial: line too long; discarded")

// Control characters a terminal sends.
const (
	backspace = 0x08
	del       = 0x7f
	cr        = '\r'
	lf        = '\n'
)

// LineReader reads lines from a console. It is not safe for concurrent
// use.
type LineReader struct {
	in   io.Reader
	echo io.Writer // nil: no echo

	line    []byte
	max     int
	chunk   [64]byte
	pending []byte // read from in, not yet consumed
	afterCR bool   // swallow the LF of a CR LF pair
	tooLong bool
}

// NewLineReader reads lines of at most max octets from in, echoing what it
// consumes to echo unless echo is nil.
func NewLineReader(in io.Reader, echo io.Writer, max int) *LineReader {
	return &LineReader{in: in, echo: echo, max: max, line: make([]byte, 0, max)}
}

// ReadLine returns the next line without its terminator. An error from
// the underlying reader ends the line in progress, which is returned with
// the error.
func (l *LineReader) ReadLine() (string, error) {
	for {
		if len(l.pending) == 0 {
			n, err := l.in.Read(l.chunk[:])
			l.pending = l.chunk[:n]
			if n == 0 && err != nil {
				s := string(l.line)
				l.line = l.line[:0]
				return s, err
			}
		}
		c := l.pending[0]
		l.pending = l.pending[1:]
		if l.afterCR && c == lf {
			l.afterCR = false
			continue
		}
		l.afterCR = c == cr
		switch {
		case c == cr || c == lf:
			l.write("\r\n")
			s, tooLong := string(l.line), l.tooLong
			l.line, l.tooLong = l.line[:0], false
			if tooLong {
				return "", ErrLineTooLong
			}
			return s, nil
		case c == backspace || c == del:
			if len(l.line) > 0 && !l.tooLong {
				l.line = l.line[:len(l.line)-1]
				l.write("\b \b")
			}
		case c < 0x20:
			// Other control characters carry no meaning on a command line.
		case len(l.line) == l.max:
			l.tooLong = true
		default:
			l.line = append(l.line, c)
			if l.echo != nil {
				l.echo.Write([]byte{c})
			}
		}
	}
}

func (l *LineReader) write(s string) {
	if l.echo != nil {
		io.WriteString(l.echo, s)
	}
}
