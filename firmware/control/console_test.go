package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/bitw-dev/bitw/firmware/status"
)

// syncBuffer is an io.Writer safe for the console and Ready together.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConsole(t *testing.T) {
	h := &fakeHandler{}
	var out syncBuffer
	powered := 0
	c := &Console{
		Verbs: &Verbs{Handler: h, Version: "v1.2.3", PowerOff: func() {
			powered++
			// The reply is printed before the board goes down.
			if !strings.Contains(out.String(), "powering off") {
				t.Error("PowerOff called before the reply was printed")
			}
		}},
		In: strings.NewReader("status --json\r\n\r\n  up   site-b/lan  \n" +
			"frob\nup nope\nup broken\nlog debug\nversion\npoweroff\nstatus x"),
		Out: &out,
	}
	c.Ready()
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(out.String(), "\n", 3)
	if len(lines) != 3 || lines[0] != ReadyLine {
		t.Fatalf("console output %q", out.String())
	}
	var st status.Status
	if err := json.Unmarshal([]byte(lines[1]), &st); err != nil || st.Device != "gw-a" || len(st.IKESAs) != 1 {
		t.Errorf("status --json line %q: %v", lines[1], err)
	}
	rest := lines[2]
	wantRest := "site-b/lan: up\n" +
		"bitw: unknown command \"frob\"\n" +
		"bitw: up nope: no connection \"nope\"\n" +
		"bitw: up broken: peer answered NO_PROPOSAL_CHOSEN\n" +
		"log level debug\n" +
		"bitw v1.2.3\n" +
		"powering off\n" +
		"bitw: status takes no arguments\n"
	if rest != wantRest {
		t.Errorf("console output after status:\n%s\nwant:\n%s", rest, wantRest)
	}
	if powered != 1 {
		t.Errorf("PowerOff called %d times", powered)
	}
}

func TestConsoleEcho(t *testing.T) {
	var out syncBuffer
	c := &Console{
		Verbs: &Verbs{Handler: &fakeHandler{}, Version: "v1"},
		// "versiom", backspace, "n"; a line discarded with ^U; a tab
		// (ignored control character).
		In:   strings.NewReader("versiom\x7fn\rup x\x15\tversion\r"),
		Out:  &out,
		Echo: true,
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "versiom\b \bn\r\nbitw v1\r\nup x\r\nversion\r\nbitw v1\r\n"
	if out.String() != want {
		t.Errorf("echoed output %q, want %q", out.String(), want)
	}
}

func TestConsoleLongLine(t *testing.T) {
	var out syncBuffer
	c := &Console{Verbs: &Verbs{Handler: &fakeHandler{}, Version: "v1"},
		In: strings.NewReader(strings.Repeat("x", 2*MaxConsoleLine) + "\nversion\n"), Out: &out}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bitw: line longer than 512 characters ignored\nbitw v1\n" {
		t.Errorf("output %q", out.String())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("uart gone") }

func TestConsoleStops(t *testing.T) {
	c := &Console{Verbs: &Verbs{Handler: &fakeHandler{}}, In: failingReader{}, Out: io.Discard}
	if err := c.Run(context.Background()); err == nil || err.Error() != "uart gone" {
		t.Errorf("Run with a failing reader: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.In = strings.NewReader("version\n")
	if err := c.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with an ended context: %v", err)
	}
}
