package mgmt

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bitw-dev/bitw/firmware/status"
)

// serve runs the server on a loopback listener (the runtime gives it one on
// the gVisor stack) and returns its base URL.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cfg).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestServer(t *testing.T) {
	url := serve(t, Config{Status: status.SourceFunc(sampleStatus), Metrics: MetricsFunc(sampleMetrics)})

	resp, body := do(t, "GET", url+"/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	want, _ := json.Marshal(sampleStatus())
	if body != string(want)+"\n" {
		t.Errorf("GET /status body %s", body)
	}

	resp, body = do(t, "GET", url+"/metrics?x=1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("GET /metrics: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := parseExposition(t, body)
	if v, ok := p.value("bitw_sa_bytes_total", "child=lan,conn=site-b,direction=in,spi=c1a2b3c4"); !ok || v != 1234 {
		t.Errorf("per-SA bytes over HTTP: %v %v", v, ok)
	}

	resp, body = do(t, "HEAD", url+"/metrics")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD /metrics: %s, length %d, body %q", resp.Status, resp.ContentLength, body)
	}
	for _, path := range []string{"/", "/status/", "/metrics/x", "/debug/pprof/"} {
		if resp, _ := do(t, "GET", url+path); resp.StatusCode != 404 {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		resp, _ := do(t, method, url+"/status")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /status: %s, Allow %q", method, resp.Status, resp.Header.Get("Allow"))
		}
	}
}

// TestServerWithoutMetricsSource: the status-derived metrics still appear.
func TestServerWithoutMetricsSource(t *testing.T) {
	url := serve(t, Config{Status: status.SourceFunc(sampleStatus)})
	resp, body := do(t, "GET", url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	p := parseExposition(t, body)
	if v, ok := p.value("bitw_ike_sas", "state=ESTABLISHED"); !ok || v != 1 {
		t.Errorf("bitw_ike_sas: %v %v", v, ok)
	}
	if !strings.Contains(body, "bitw_ike_retransmits_total 0\n") {
		t.Error("zero IKE counters missing")
	}
}

func TestServerTimeouts(t *testing.T) {
	srv := New(Config{}).httpServer()
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server limits: %+v", srv)
	}
}

// TestServeReturnsOnListenerError: a listener that fails is reported.
func TestServeReturnsOnListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := New(Config{}).Serve(context.Background(), ln); err == nil {
		t.Error("Serve on a closed listener returned nil")
	}
}
