package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultDir is where control sockets live by default
// (/run/bitw/<name>.sock), and where the CLI looks for one when given
// neither -c nor -s.
const DefaultDir = "/run/bitw"

// Wire limits and timeouts of the socket protocol.
const (
	// MaxRequestSize bounds one request line.
	MaxRequestSize = 4 << 10
	// MaxResponseSize bounds one response line (a status with many SAs).
	MaxResponseSize = 16 << 20
	// DefaultMaxConns is how many connections a Server serves at once.
	DefaultMaxConns = 16

	requestReadTimeout = 10 * time.Second
	responseTimeout    = 10 * time.Second
	dialTimeout        = 5 * time.Second
	// replyGrace is how much longer than the request's own timeout the
	// client waits, so the server's "not done after" reply arrives.
	replyGrace = 10 * time.Second
)

// ErrInstanceRunning means another process answers on the control socket.
var ErrInstanceRunning = errors.New("another bitw instance answers on the control socket")

// Listen opens the control socket at path: it creates the directory
// (0750) if missing, removes a stale socket left by a process that died,
// refuses to start when a live process answers on it or when path is
// something other than a socket, and leaves the socket 0600. Closing the
// listener removes the socket file.
func Listen(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("control: no socket path")
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("control: %v", err)
		}
		// MkdirAll's mode passes through the umask; the socket's
		// directory gets exactly 0750.
		if err := os.Chmod(dir, 0o750); err != nil {
			return nil, fmt.Errorf("control: %v", err)
		}
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("control: %s exists and is not a socket; refusing to replace it", path)
	case err == nil:
		conn, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("control: %s: %w", path, ErrInstanceRunning)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("control: %s: cannot tell whether another instance uses it: %v", path, derr)
		}
		// Nobody listens: a previous instance died without removing it.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: removing stale socket: %v", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("control: %v", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %v", err)
	}
	return ln, nil
}

// Server answers requests on a control socket: one request line and one
// response line per connection.
type Server struct {
	Verbs *Verbs
	// MaxConns bounds the connections served at once; beyond it a client
	// is told the server is busy. Zero means DefaultMaxConns.
	MaxConns int
	// Logger receives accept errors and malformed requests. Nil discards.
	Logger *slog.Logger
}

// Serve accepts connections on ln until ctx ends (then it closes ln, waits
// for the requests in flight, whose contexts it cancels, and returns nil)
// or ln fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait and retry rather
			// than spin or give up the socket.
			s.logf(slog.LevelWarn, "control: accept failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case slots <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				s.serveConn(ctx, conn)
			}()
		default:
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			writeResponse(conn, Response{Error: "the control server is busy; try again"})
			conn.Close()
		}
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	req, err := readRequest(conn)
	if err != nil {
		s.logf(slog.LevelDebug, "control: bad request", "err", err)
		conn.SetWriteDeadline(time.Now().Add(responseTimeout))
		writeResponse(conn, ErrorResponse(err))
		return
	}
	// The client keeps its end open until it has the answer; EOF (or any
	// further data) while a request runs means it went away, and an up
	// that nobody waits for stops waiting.
	conn.SetReadDeadline(time.Time{})
	reqCtx, cancelReq := context.WithCancel(ctx)
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		var b [1]byte
		conn.Read(b[:])
		cancelReq()
	}()
	resp := s.Verbs.Execute(reqCtx, req)
	conn.SetWriteDeadline(time.Now().Add(responseTimeout))
	if err := writeResponse(conn, resp); err != nil {
		s.logf(slog.LevelDebug, "control: writing the response", "err", err)
	}
	conn.Close()
	<-watcher
	cancelReq()
}

// readRequest reads and decodes one request line. Errors are usage errors:
// the client sent something this server does not understand.
func readRequest(conn net.Conn) (Request, error) {
	conn.SetReadDeadline(time.Now().Add(requestReadTimeout))
	r := bufio.NewReaderSize(conn, MaxRequestSize)
	line, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return Request{}, Usagef("request longer than %d octets", MaxRequestSize)
	case err != nil:
		return Request{}, Usagef("reading the request: %v", err)
	case r.Buffered() > 0:
		return Request{}, Usagef("one request per connection")
	}
	return decodeRequest(line)
}

// decodeRequest parses one request line strictly: one JSON object with
// known fields only, so a newer client's unknown option is refused rather
// than ignored.
func decodeRequest(line []byte) (Request, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return Request{}, Usagef("malformed request: %v", err)
	}
	if dec.More() {
		return Request{}, Usagef("malformed request: data after the JSON object")
	}
	return req, nil
}

func writeResponse(w io.Writer, resp Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(Response{Error: "encoding the response: " + err.Error()})
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *Server) logf(level slog.Level, msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Log(context.Background(), level, msg, args...)
	}
}

// Do sends req to the instance listening on the socket at path and returns
// its response. A non-nil error means no response arrived (no instance,
// permission, a broken connection); failures of the operation itself come
// back in the Response. Do waits for up to the request's timeout plus a
// grace period, and gives up early when ctx ends.
func Do(ctx context.Context, path string, req Request) (Response, error) {
	if err := req.Validate(); err != nil {
		return Response{}, err
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, dialError(path, err)
	}
	defer conn.Close()
	wait := responseTimeout + replyGrace
	switch req.Verb {
	case VerbUp, VerbDown, VerbRekey:
		wait = req.Timeout() + replyGrace
	}
	conn.SetDeadline(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A server that refuses the connection (busy) answers without reading
	// the request, so a failed write may still be followed by a reply.
	werr := writeRequest(conn, req)
	r := bufio.NewReaderSize(conn, 64<<10)
	line, err := readLine(r, MaxResponseSize)
	if err != nil {
		if werr != nil {
			err = werr
		}
		return Response{}, commError(ctx, path, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("malformed response from %s: %v", path, err)
	}
	return resp, nil
}

func writeRequest(w io.Writer, req Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readLine reads up to and without '\n', refusing lines beyond limit.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit+1 {
			return nil, fmt.Errorf("response longer than %d octets", limit)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, errors.New("connection closed before a response")
		default:
			return nil, err
		}
	}
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no bitw instance at %s: no such socket", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no bitw instance answers on %s (a stale socket)", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot reach bitw at %s: permission denied (the socket is 0600: run as the user bitw runs as)", path)
	}
	return fmt.Errorf("cannot reach bitw at %s: %v", path, err)
}

func commError(ctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %v", path, ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no response from %s in time", path)
	}
	return fmt.Errorf("talking to %s: %v", path, err)
}
