package control

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// FuzzParseCommand feeds console lines (what a UART delivers) to the
// parser: it must never panic, every error must be a usage error, and a
// parsed command must validate and survive the socket encoding unchanged.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"status --json", "up site-b/lan --timeout 10s", "down site-b", "rekey a/b",
		"log debug", "version", "poweroff", "up -- -x", "up a/b/c", "status --json=0", "up x --timeout=9223372036854775807s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		req, err := ParseCommand(strings.Fields(line))
		if err != nil {
			if !IsUsage(err) {
				t.Fatalf("%q: %v is not a usage error", line, err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("%q parsed to %+v, which fails Validate: %v", line, req, err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRequest(b)
		if err != nil || back != req {
			t.Fatalf("%q: %s decoded to %+v, %v", line, b, back, err)
		}
	})
}

// quickHandler answers at once, so fuzzing never waits on a timeout.
type quickHandler struct{ fakeHandler }

func (h *quickHandler) Up(ctx context.Context, conn, child string) error {
	if conn == "slow" {
		return ctx.Err()
	}
	return h.fakeHandler.Up(ctx, conn, child)
}

// FuzzDecodeRequest feeds request lines as the socket server reads them
// through decoding, validation, execution and printing.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"verb":"status","json":true}`, `{"verb":"up","conn":"site-b","child":"lan","timeout_ms":30000}`,
		`{"verb":"log","level":"warn"}`, `{"verb":"down","conn":"x","child":"y"}`, `{"verb":"status","x":1}`, `{}`, `[]`,
		`{"verb":"up","conn":"site-b","timeout_ms":1e3}`, `{"verb":"rekey","conn":"\u0000"}`} {
		f.Add([]byte(s))
	}
	v := &Verbs{Handler: &quickHandler{}, Version: "v0"}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := decodeRequest(line)
		if err != nil {
			if !IsUsage(err) {
				t.Fatalf("%q: %v is not a usage error", line, err)
			}
			return
		}
		resp := v.Execute(context.Background(), req)
		if req.Validate() != nil && (resp.OK || !resp.Usage) {
			t.Fatalf("%q: invalid request executed: %+v", line, resp)
		}
		if code := resp.Print(io.Discard, io.Discard, req); (code == ExitOK) != resp.OK {
			t.Fatalf("%q: exit %d for %+v", line, code, resp)
		}
	})
}
