package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/status"
)

// fakeHandler knows one connection, site-b, with one child, lan. Up of
// "slow" blocks until its context ends; "broken" fails.
type fakeHandler struct {
	mu       sync.Mutex
	calls    []string
	level    slog.Level
	upDone   chan struct{} // closed when a blocked Up returns
	upCtxErr error
}

func (h *fakeHandler) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *fakeHandler) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

func (h *fakeHandler) Snapshot() status.Status {
	return status.Status{Device: "gw-a", IKESAs: []status.IKESA{{
		Conn: "site-b", State: status.IKEEstablished, Initiator: true,
		Local: netip.MustParseAddr("203.0.113.1"), Remote: netip.MustParseAddr("203.0.113.2"),
		Proposal: "aes256gcm16-prfsha384-ecp384",
		ChildSAs: []status.ChildSA{{Name: "lan", State: status.ChildInstalled, Mode: status.ModeTunnel,
			Protocol: status.ProtocolESP, SPIIn: 0xc1a2b3c4, SPIOut: 0x0d0e0f10, Proposal: "aes128gcm16",
			LocalTS: []string{"192.168.1.0/24"}, RemoteTS: []string{"192.168.2.0/24"}}},
	}}}
}

func (h *fakeHandler) known(conn, child string) error {
	if conn == "slow" || conn == "broken" {
		return nil
	}
	if conn != "site-b" {
		return Usagef("no connection %q", conn)
	}
	if child != "" && child != "lan" {
		return Usagef("connection %q has no child %q", conn, child)
	}
	return nil
}

func (h *fakeHandler) Up(ctx context.Context, conn, child string) error {
	h.record("up " + conn + "/" + child)
	if err := h.known(conn, child); err != nil {
		return err
	}
	switch conn {
	case "slow":
		<-ctx.Done()
		h.mu.Lock()
		h.upCtxErr = ctx.Err()
		h.mu.Unlock()
		if h.upDone != nil {
			close(h.upDone)
		}
		return fmt.Errorf("waiting for the Child SA: %w", ctx.Err())
	case "broken":
		return errors.New("peer answered NO_PROPOSAL_CHOSEN")
	}
	return nil
}

func (h *fakeHandler) Down(ctx context.Context, conn string) error {
	h.record("down " + conn)
	return h.known(conn, "")
}

func (h *fakeHandler) Rekey(ctx context.Context, conn, child string) error {
	h.record("rekey " + conn + "/" + child)
	return h.known(conn, child)
}

func (h *fakeHandler) SetLogLevel(l slog.Level) error {
	h.mu.Lock()
	h.level = l
	h.mu.Unlock()
	h.record("log " + l.String())
	return nil
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Request
	}{
		{[]string{"status"}, Request{Verb: "status"}},
		{[]string{"status", "--json"}, Request{Verb: "status", JSON: true}},
		{[]string{"status", "-json"}, Request{Verb: "status", JSON: true}},
		{[]string{"status", "--json=false"}, Request{Verb: "status"}},
		{[]string{"up", "site-b"}, Request{Verb: "up", Conn: "site-b"}},
		{[]string{"up", "site-b/lan"}, Request{Verb: "up", Conn: "site-b", Child: "lan"}},
		{[]string{"up", "site-b/lan", "--timeout", "10s"}, Request{Verb: "up", Conn: "site-b", Child: "lan", TimeoutMS: 10000}},
		{[]string{"up", "--timeout=2m", "site-b"}, Request{Verb: "up", Conn: "site-b", TimeoutMS: 120000}},
		{[]string{"up", "-timeout", "45", "site-b"}, Request{Verb: "up", Conn: "site-b", TimeoutMS: 45000}},
		{[]string{"up", "--", "-odd"}, Request{Verb: "up", Conn: "-odd"}},
		{[]string{"down", "site-b"}, Request{Verb: "down", Conn: "site-b"}},
		{[]string{"down", "site-b", "--timeout", "5s"}, Request{Verb: "down", Conn: "site-b", TimeoutMS: 5000}},
		{[]string{"rekey", "site-b/lan"}, Request{Verb: "rekey", Conn: "site-b", Child: "lan"}},
		{[]string{"log", "debug"}, Request{Verb: "log", Level: "debug"}},
		{[]string{"version"}, Request{Verb: "version"}},
		{[]string{"poweroff"}, Request{Verb: "poweroff"}},
	} {
		got, err := ParseCommand(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"status", "x"}, "status takes no arguments"},
		{[]string{"status", "--timeout", "1s"}, "unknown flag"},
		{[]string{"status", "--json=maybe"}, "want true or false"},
		{[]string{"up"}, "up needs one argument: CONN[/CHILD]"},
		{[]string{"up", "a", "b"}, "up needs one argument"},
		{[]string{"up", "site-b/"}, "empty child name"},
		{[]string{"up", "/lan"}, "empty connection name"},
		{[]string{"up", "a/b/c"}, "contains '/'"},
		{[]string{"up", "a\x1bb"}, "control character"},
		{[]string{"up", "site-b", "--timeout"}, "--timeout needs a duration"},
		{[]string{"up", "site-b", "--timeout", "soon"}, "want a duration"},
		{[]string{"up", "site-b", "--timeout", "0s"}, "between 1ms"},
		{[]string{"up", "site-b", "--timeout", "2h"}, "between 1ms"},
		{[]string{"up", "site-b", "--json"}, `unknown flag "--json"`},
		{[]string{"down"}, "down needs one argument: CONN"},
		{[]string{"down", "site-b/lan"}, "down takes a connection, not a child"},
		{[]string{"log"}, "log needs one argument"},
		{[]string{"log", "loud"}, `unknown level "loud"`},
		{[]string{"log", "info", "--json"}, "unknown flag"},
		{[]string{"version", "x"}, "version takes no arguments"},
		{[]string{"up", "site-b", "--verbose"}, `unknown flag "--verbose"`},
	} {
		_, err := ParseCommand(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !IsUsage(err) {
			t.Errorf("ParseCommand(%q) = %v; want a usage error containing %q", tc.args, err, tc.msg)
		}
	}
}

// TestValidate covers requests a client could send that ParseCommand never
// builds.
func TestValidate(t *testing.T) {
	for _, r := range []Request{
		{},
		{Verb: "status", Conn: "x"},
		{Verb: "status", Level: "debug"},
		{Verb: "version", TimeoutMS: 5},
		{Verb: "log", Level: "debug", JSON: true},
		{Verb: "up", Conn: "site-b", JSON: true},
		{Verb: "up", Conn: "site-b", TimeoutMS: -1},
		{Verb: "up", Conn: "site-b", TimeoutMS: int64(2 * time.Hour / time.Millisecond)},
		{Verb: "up", Conn: "", Child: "lan"},
		{Verb: "up", Conn: strings.Repeat("x", 300)},
		{Verb: "rekey", Conn: "site-b", Child: "a b"},
		{Verb: "down", Conn: "site-b", Child: "lan"},
		{Verb: "log"},
	} {
		if err := r.Validate(); err == nil || !IsUsage(err) {
			t.Errorf("Validate(%+v) = %v; want a usage error", r, err)
		}
	}
}

func TestExecute(t *testing.T) {
	h := &fakeHandler{}
	v := &Verbs{Handler: h, Version: "v1.2.3"}
	ctx := context.Background()
	for _, tc := range []struct {
		req  Request
		code int
		out  string
		err  string
	}{
		{Request{Verb: "status"}, ExitOK, "gw-a: 1 IKE SA\nsite-b: ESTABLISHED", ""},
		{Request{Verb: "status", JSON: true}, ExitOK, `{"device":"gw-a","ike_sas":[{"conn":"site-b"`, ""},
		{Request{Verb: "version"}, ExitOK, "bitw v1.2.3\n", ""},
		{Request{Verb: "up", Conn: "site-b", Child: "lan"}, ExitOK, "site-b/lan: up\n", ""},
		{Request{Verb: "up", Conn: "site-b"}, ExitOK, "site-b: up\n", ""},
		{Request{Verb: "up", Conn: "site-x"}, ExitUsage, "", `bitw: up site-x: no connection "site-x"` + "\n"},
		{Request{Verb: "up", Conn: "site-b", Child: "wan"}, ExitUsage, "", `has no child "wan"`},
		{Request{Verb: "up", Conn: "broken"}, ExitFailed, "", "bitw: up broken: peer answered NO_PROPOSAL_CHOSEN\n"},
		{Request{Verb: "up", Conn: "slow", TimeoutMS: 20}, ExitFailed, "", "bitw: up slow: not done after 20ms\n"},
		{Request{Verb: "down", Conn: "site-b"}, ExitOK, "site-b: down\n", ""},
		{Request{Verb: "rekey", Conn: "site-b", Child: "lan"}, ExitOK, "site-b/lan: rekeyed\n", ""},
		{Request{Verb: "log", Level: "warn"}, ExitOK, "log level warn\n", ""},
		{Request{Verb: "poweroff"}, ExitUsage, "", "only available on the firmware console"},
		{Request{Verb: "frob"}, ExitUsage, "", `bitw: unknown command "frob"`},
		{Request{Verb: "help"}, ExitOK, "  status [--json]", ""},
	} {
		var out, errb bytes.Buffer
		code := v.Execute(ctx, tc.req).Print(&out, &errb, tc.req)
		if code != tc.code || !strings.HasPrefix(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) ||
			(tc.err == "") != (errb.Len() == 0) {
			t.Errorf("%+v: exit %d, stdout %q, stderr %q", tc.req, code, out.String(), errb.String())
		}
	}
	var out bytes.Buffer
	v.PowerOff = func() {}
	v.Execute(ctx, Request{Verb: "help"}).Print(&out, &out, Request{Verb: "help"})
	if !strings.HasSuffix(out.String(), "power the board off\n") || !strings.Contains(out.String(), "  log LEVEL") {
		t.Errorf("console help:\n%s", out.String())
	}
	if h.level != slog.LevelWarn {
		t.Errorf("log level %v", h.level)
	}
	want := []string{"up site-b/lan", "up site-b/", "up site-x/", "up site-b/wan", "up broken/", "up slow/", "down site-b", "rekey site-b/lan", "log WARN"}
	if got := h.Calls(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("handler calls %q, want %q", got, want)
	}
	if !errors.Is(h.upCtxErr, context.DeadlineExceeded) {
		t.Errorf("slow up saw %v, want the deadline", h.upCtxErr)
	}
}

func TestExecuteLogs(t *testing.T) {
	var logs bytes.Buffer
	v := &Verbs{Handler: &fakeHandler{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	v.Execute(context.Background(), Request{Verb: "up", Conn: "site-b", Child: "lan"})
	v.Execute(context.Background(), Request{Verb: "up", Conn: "broken"})
	v.Execute(context.Background(), Request{Verb: "status"})
	out := logs.String()
	if !strings.Contains(out, "msg=\"control command\" verb=up target=site-b/lan") ||
		!strings.Contains(out, "level=WARN msg=\"control command failed\" verb=up target=broken err=\"peer answered") ||
		strings.Contains(out, "verb=status") {
		t.Errorf("logs:\n%s", out)
	}
}

func TestPrintWithoutMessage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := (Response{}).Print(&out, &errb, Request{Verb: "up"}); code != ExitFailed || errb.String() != "bitw: the operation failed\n" {
		t.Errorf("empty failure: %d %q", code, errb.String())
	}
}
