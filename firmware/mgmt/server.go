// Package mgmt is bitw's management HTTP server ([management] listen):
// GET /status returns the status JSON of design.md's contract and GET
// /metrics the Prometheus text exposition (format 0.0.4, written by hand:
// no client library).
//
// The server takes a net.Listener rather than an address: the runtime
// listens on the gVisor stack at one of the device's own addresses (normally
// the red one), never on the host's stack. It is read-only: GET and HEAD on
// two paths, everything else refused.
package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/bitw-dev/bitw/firmware/status"
)

// Timeouts of the HTTP server: a client that trickles its request or never
// reads the answer cannot hold a connection (and its gVisor buffers) for
// long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 8 << 10
	shutdownTimeout   = 5 * time.Second
)

// Config is what the server reports from.
type Config struct {
	// Status gives the snapshot behind /status and the per-SA metrics;
	// it is required.
	Status status.Source
	// Metrics gives the other counters; nil reports them as zero.
	Metrics MetricsSource
	// Logger receives the HTTP server's own errors. Nil discards.
	Logger *slog.Logger
}

// Server serves /status and /metrics.
type Server struct {
	cfg Config
}

// New returns a server; Serve starts it.
func New(cfg Config) *Server {
	return &Server{cfg: cfg}
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully
// (waiting a few seconds for requests in flight) and returns nil. It closes
// ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) httpServer() *http.Server {
	errorLog := log.New(io.Discard, "", 0)
	if s.cfg.Logger != nil {
		errorLog = slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug)
	}
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// Handler is the request router, for tests and for embedding.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var contentType string
	switch r.URL.Path {
	case "/status":
		if !allowed(w, r) {
			return
		}
		b, err := json.Marshal(s.cfg.Status.Snapshot())
		if err != nil {
			http.Error(w, "encoding the status failed", http.StatusInternalServerError)
			return
		}
		body, contentType = append(b, '\n'), "application/json"
	case "/metrics":
		if !allowed(w, r) {
			return
		}
		var m Metrics
		if s.cfg.Metrics != nil {
			m = s.cfg.Metrics.Metrics()
		}
		var buf bytes.Buffer
		if err := WriteMetrics(&buf, s.cfg.Status.Snapshot(), m); err != nil {
			http.Error(w, "writing the metrics failed", http.StatusInternalServerError)
			return
		}
		body, contentType = buf.Bytes(), ContentType
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// allowed admits GET and HEAD; the server changes nothing.
func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
