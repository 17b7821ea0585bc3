package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServer serves h on a socket in a fresh directory below a temporary
// one, so Listen has to create it.
func startServer(t *testing.T, h Handler, maxConns int) (path string, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "run", "gw-a.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Verbs: &Verbs{Handler: h, Version: "v1.2.3"}, MaxConns: maxConns}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return path, stop
}

func TestSocketRoundTrip(t *testing.T) {
	h := &fakeHandler{}
	path, stop := startServer(t, h, 0)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket: %v, %v", fi.Mode(), err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o750 {
		t.Fatalf("directory: %v, %v", di.Mode(), err)
	}
	ctx := context.Background()
	resp, err := Do(ctx, path, Request{Verb: "status", JSON: true})
	if err != nil || !resp.OK || resp.Status == nil || resp.Status.Device != "gw-a" ||
		resp.Status.IKESAs[0].ChildSAs[0].SPIIn != 0xc1a2b3c4 {
		t.Fatalf("status: %+v, %v", resp, err)
	}
	// The status survives the trip exactly.
	want, _ := json.Marshal(h.Snapshot())
	got, _ := json.Marshal(resp.Status)
	if string(got) != string(want) {
		t.Errorf("status changed in transit:\n got %s\nwant %s", got, want)
	}
	resp, err = Do(ctx, path, Request{Verb: "up", Conn: "site-b", Child: "lan"})
	if err != nil || !resp.OK || resp.Message != "site-b/lan: up" {
		t.Errorf("up: %+v, %v", resp, err)
	}
	resp, err = Do(ctx, path, Request{Verb: "up", Conn: "nope"})
	if err != nil || resp.OK || !resp.Usage || !strings.Contains(resp.Error, `no connection "nope"`) {
		t.Errorf("up of an unknown connection: %+v, %v", resp, err)
	}
	resp, err = Do(ctx, path, Request{Verb: "version"})
	if err != nil || resp.Version != "v1.2.3" {
		t.Errorf("version: %+v, %v", resp, err)
	}
	resp, err = Do(ctx, path, Request{Verb: "poweroff"})
	if err != nil || resp.OK || !resp.Usage {
		t.Errorf("poweroff over the socket: %+v, %v", resp, err)
	}
	if _, err := Do(ctx, path, Request{Verb: "bogus"}); err == nil || !IsUsage(err) {
		t.Errorf("Do sent an invalid request: %v", err)
	}
	stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}
	if _, err := Do(ctx, path, Request{Verb: "status"}); err == nil || !strings.Contains(err.Error(), "no such socket") {
		t.Errorf("Do without a server: %v", err)
	}
}

func TestListenRefusesLiveInstance(t *testing.T) {
	path, _ := startServer(t, &fakeHandler{}, 0)
	if _, err := Listen(path); !errors.Is(err, ErrInstanceRunning) {
		t.Fatalf("second Listen: %v", err)
	}
	// The first instance is untouched.
	if resp, err := Do(context.Background(), path, Request{Verb: "version"}); err != nil || !resp.OK {
		t.Errorf("first instance after the refused start: %+v, %v", resp, err)
	}
}

func TestListenRemovesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw-a.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // a process that died leaves its socket behind
	old.Close()
	if _, err := Do(context.Background(), path, Request{Verb: "status"}); err == nil || !strings.Contains(err.Error(), "stale socket") {
		t.Errorf("Do on a stale socket: %v", err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw-a.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("Listen damaged the file")
	}
	if _, err := Listen(""); err == nil {
		t.Error("Listen with no path")
	}
}

// rawExchange writes raw octets to the server and reads its one reply.
func rawExchange(t *testing.T, path, send string) Response {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(send)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reply to %q: %v", send, err)
	}
	var resp Response
	if err := json.Unmarshal([]byte(line), &resp); err != nil {
		t.Fatalf("reply %q: %v", line, err)
	}
	return resp
}

func TestSocketMalformedRequests(t *testing.T) {
	path, _ := startServer(t, &fakeHandler{}, 0)
	for _, tc := range []struct{ send, msg string }{
		{"hello\n", "malformed request"},
		{`{"verb":"status","colour":"red"}` + "\n", `unknown field "colour"`},
		{`{"verb":"status"} {"verb":"status"}` + "\n", "data after the JSON object"},
		{`{"verb":"status"}` + "\n" + `{"verb":"status"}` + "\n", "one request per connection"},
		{`{"verb":"up","conn":"a/b"}` + "\n", "contains '/'"},
		{`{"verb":"up","conn":"site-b","timeout_ms":-5}` + "\n", "timeout must be"},
		{`{"verb":7}` + "\n", "malformed request"},
		{strings.Repeat("x", MaxRequestSize+10) + "\n", "request longer than"},
	} {
		resp := rawExchange(t, path, tc.send)
		if resp.OK || !resp.Usage || !strings.Contains(resp.Error, tc.msg) {
			t.Errorf("%.40q: %+v; want a usage error containing %q", tc.send, resp, tc.msg)
		}
	}
}

// TestClientHangupCancelsUp: a user who interrupts `bitw up` stops the
// server from waiting on their behalf.
func TestClientHangupCancelsUp(t *testing.T) {
	h := &fakeHandler{upDone: make(chan struct{})}
	path, _ := startServer(t, h, 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Do(ctx, path, Request{Verb: "up", Conn: "slow", TimeoutMS: 60_000})
		errc <- err
	}()
	waitFor(t, func() bool { return len(h.Calls()) == 1 })
	cancel()
	if err := <-errc; err == nil || !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Do after cancel: %v", err)
	}
	select {
	case <-h.upDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler kept waiting after the client left")
	}
	if !errors.Is(h.upCtxErr, context.Canceled) {
		t.Errorf("handler saw %v, want cancellation", h.upCtxErr)
	}
}

func TestServerShutdownCancelsRequests(t *testing.T) {
	h := &fakeHandler{upDone: make(chan struct{})}
	path, stop := startServer(t, h, 0)
	respc := make(chan Response, 1)
	go func() {
		resp, _ := Do(context.Background(), path, Request{Verb: "up", Conn: "slow", TimeoutMS: 60_000})
		respc <- resp
	}()
	waitFor(t, func() bool { return len(h.Calls()) == 1 })
	stop() // returns only once the request in flight has finished
	resp := <-respc
	if resp.OK || !strings.Contains(resp.Error, "up slow: canceled") {
		t.Errorf("request cut by shutdown: %+v", resp)
	}
}

func TestServerBusy(t *testing.T) {
	h := &fakeHandler{upDone: make(chan struct{})}
	path, _ := startServer(t, h, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Do(ctx, path, Request{Verb: "up", Conn: "slow", TimeoutMS: 60_000})
	waitFor(t, func() bool { return len(h.Calls()) == 1 })
	resp, err := Do(context.Background(), path, Request{Verb: "status"})
	if err != nil || resp.OK || !strings.Contains(resp.Error, "busy") {
		t.Errorf("second connection beyond MaxConns: %+v, %v", resp, err)
	}
	cancel()
	<-h.upDone
	waitFor(t, func() bool {
		resp, err := Do(context.Background(), path, Request{Verb: "status"})
		return err == nil && resp.OK
	})
}

func TestDoTimesOutWithoutReply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		// Accept and never answer.
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	defer func() {
		if c := <-accepted; c != nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Do(ctx, path, Request{Verb: "status"}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Do against a mute server: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

// TestHalfClose: a client that half-closes after its request still gets
// status; an up is taken as abandoned (the documented behaviour).
func TestHalfClose(t *testing.T) {
	path, _ := startServer(t, &fakeHandler{}, 0)
	for _, tc := range []struct {
		req  string
		ok   bool
		want string
	}{
		{`{"verb":"status"}`, true, ""},
		{`{"verb":"up","conn":"slow"}`, false, "up slow: canceled"},
	} {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(tc.req + "\n")); err != nil {
			t.Fatal(err)
		}
		if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		var resp Response
		if err != nil || json.Unmarshal([]byte(line), &resp) != nil || resp.OK != tc.ok || resp.Error != tc.want {
			t.Errorf("%s after half-close: %q, %v", tc.req, line, err)
		}
	}
}
