package serial

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, l *LineReader) (lines []string, errs []error) {
	t.Helper()
	for i := 0; i < 100; i++ {
		s, err := l.ReadLine()
		if err == io.EOF {
			if s != "" {
				lines = append(lines, s)
			}
			return
		}
		lines = append(lines, s)
		errs = append(errs, err)
	}
	t.Fatal("no EOF after 100 lines")
	return
}

func TestLineTerminatorsAndEditing(t *testing.T) {
	in := "status\rup site-b\r\nlog debug\nabc\x08\x08xy\x7fz\r\r\n\x01tab\tless\npartial"
	// One byte per Read, as a UART delivers it.
	l := NewLineReader(iotest.OneByteReader(strings.NewReader(in)), nil, 64)
	lines, errs := readAll(t, l)
	want := []string{"status", "up site-b", "log debug", "axz", "", "tabless", "partial"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", lines, want)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
	}
}

func TestEcho(t *testing.T) {
	var echo bytes.Buffer
	l := NewLineReader(strings.NewReader("ab\x08c\r\n"), &echo, 64)
	if s, err := l.ReadLine(); s != "ac" || err != nil {
		t.Fatalf("ReadLine = %q, %v", s, err)
	}
	if echo.String() != "ab\b \bc\r\n" {
		t.Fatalf("echo %q", echo.String())
	}
}

func TestTooLongLineIsDiscardedAndReported(t *testing.T) {
	l := NewLineReader(strings.NewReader("0123456789\nok\n"), nil, 4)
	if _, err := l.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("first line: %v, want ErrLineTooLong", err)
	}
	if s, err := l.ReadLine(); s != "ok" || err != nil {
		t.Fatalf("after an over-long line: %q, %v", s, err)
	}
}

// FuzzLineReader checks that no input panics, that every returned line is
// within the limit and free of control characters.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("poweroff 3\r\n"), uint8(16))
	f.Add([]byte("\x08\x08\x7f\r\r\n\n"), uint8(1))
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaa\nb"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, max uint8) {
		l := NewLineReader(bytes.NewReader(in), io.Discard, int(max))
		for i := 0; i <= len(in); i++ {
			s, err := l.ReadLine()
			if len(s) > int(max) {
				t.Fatalf("line of %d octets over the %d limit", len(s), max)
			}
			if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				t.Fatalf("control character in line %q", s)
			}
			if err == io.EOF {
				return
			}
		}
		t.Fatal("reader did not reach EOF")
	})
}
