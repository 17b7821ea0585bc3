//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/bitw-dev/bitw/firmware/cli"
	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/runtime"
)

// envPprof, when set to an address such as 127.0.0.1:6060, serves Go's
// profiler (net/http/pprof) there on the host's own network stack, for
// finding where the time goes in a running gateway. Debugging only: the
// profiler shows memory, which holds keys.
const envPprof = "BITW_PPROF"

func init() {
	run = func(env cli.Env) cli.Env {
		env.Run = runHost
		return env
	}
}

// runHost is `bitw run` in the host runtime: AF_PACKET and TAP ports.
func runHost(ctx context.Context, cfg *config.Config, env cli.Env) error {
	if addr := os.Getenv(envPprof); addr != "" {
		stop, err := servePprof(addr)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", envPprof, addr, err)
		}
		defer stop()
		fmt.Fprintf(env.Stderr, "bitw: warning: %s: profiler on http://%s/debug/pprof/ (debugging only: it exposes memory)\n", envPprof, addr)
	}
	return runtime.Run(ctx, cfg, runtime.Options{Stderr: env.Stderr, Version: cli.Version(env), OpenPort: runtime.HostPort,
		Control: runtime.HostControl, KeyLog: runtime.HostKeyLog})
}

func servePprof(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "bitw: %s: %v\n", envPprof, err)
		}
	}()
	return func() { srv.Close() }, nil
}
