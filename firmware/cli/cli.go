// Package cli is the `bitw` command line (design.md, Contracts: CLI): the
// verb dispatcher, the verbs that need no running instance (check,
// version), `run`, which hands a loaded configuration to the runtime
// through Env.Run, and the verbs that talk to a running instance over its
// control socket (status, up, down, rekey, log; see firmware/control).
//
// Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
// error. Errors go to stderr.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/bitw-dev/bitw/firmware/config"
	"github.com/bitw-dev/bitw/firmware/control"
)

// Exit codes (design.md).
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Env is what a verb may touch: its output streams, the version the
// binary was stamped with, and the runtime.
type Env struct {
	Stdout, Stderr io.Writer
	// Version is the release stamped in at link time (-ldflags -X); empty
	// falls back to the module's build information.
	Version string
	// ReadBuildInfo is debug.ReadBuildInfo; tests replace it.
	ReadBuildInfo func() (*debug.BuildInfo, bool)
	// Run is the runtime that `bitw run -c FILE` starts with the loaded,
	// valid configuration; the composition root (firmware/main.go) sets
	// it. It runs in the foreground, logging to env.Stderr, until ctx ends
	// (SIGTERM or SIGINT), then deletes its SAs with the peers and
	// returns nil for exit status 0; an error is exit status 1. Nil means
	// the binary was built without the runtime, and `bitw run` says so.
	Run func(ctx context.Context, cfg *config.Config, env Env) error
	// RunDir is where the control verbs look for the only socket when
	// given neither -c nor -s; empty means control.DefaultDir (/run/bitw).
	RunDir string
}

const usage = `usage: bitw COMMAND [ARGS]

commands:
  run -c FILE                       run in the foreground, logging to stderr
  check -c FILE                     validate a configuration file; print FILE:LINE: why for each error
` + control.Synopsis + `  version                           print the version
  help                              print this help

status, up, down, rekey and log talk to a running instance over its control
socket: -c FILE takes the socket from that configuration ([device] control),
-s SOCKET names it, and with neither the only socket in /run/bitw/ is used.

exit status: 0 success, 1 the operation failed, 2 usage or configuration error
`

// Main runs the command line args (without the program name) and returns
// the exit code.
func Main(args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		return runVerb(args[1:], env)
	case control.VerbStatus, control.VerbUp, control.VerbDown, control.VerbRekey, control.VerbLog:
		return remote(args, env)
	case "check":
		return check(args[1:], env)
	case "version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(env.Stderr, "bitw: version takes no arguments\n%s", usage)
			return ExitUsage
		}
		fmt.Fprintf(env.Stdout, "bitw %s\n", Version(env))
		return ExitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "bitw: unknown command %q\n%s", args[0], usage)
	return ExitUsage
}

// check is `bitw check -c FILE`.
func check(args []string, env Env) int {
	file, cfg, code := configFromFlags("check", args, env)
	if cfg == nil {
		return code
	}
	children := 0
	for _, c := range cfg.Connections {
		children += len(c.Children)
	}
	fmt.Fprintf(env.Stdout, "%s: ok: device %s, %s, %s\n", file, cfg.Device.Name,
		plural(len(cfg.Connections), "connection"), plural(children, "child"))
	return ExitOK
}

// configFromFlags parses `bitw VERB -c FILE`, then loads and validates
// FILE, printing its errors and warnings. A nil config comes with the
// exit code to return: ExitOK for -h, ExitUsage otherwise.
func configFromFlags(verb string, args []string, env Env) (string, *config.Config, int) {
	fs := flag.NewFlagSet("bitw "+verb, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprintf(env.Stderr, "usage: bitw %s -c FILE\n", verb) }
	file := fs.String("c", "", "the configuration `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil, ExitOK
		}
		return "", nil, ExitUsage
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return "", nil, ExitUsage
	}
	cfg, ok := loadConfig(*file, env)
	if !ok {
		return "", nil, ExitUsage
	}
	printWarnings(cfg, env)
	return *file, cfg, ExitOK
}

// loadConfig loads and validates file, printing each error as
// FILE:LINE: why on stderr.
func loadConfig(file string, env Env) (*config.Config, bool) {
	cfg, err := config.Load(file)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			for _, d := range list {
				fmt.Fprintln(env.Stderr, d.Error())
			}
		} else {
			fmt.Fprintf(env.Stderr, "%s:1: %v\n", file, err)
		}
		return nil, false
	}
	return cfg, true
}

func printWarnings(cfg *config.Config, env Env) {
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "%s:%d: warning: %s\n", w.File, w.Line, w.Msg)
	}
}

// runVerb is `bitw run -c FILE`.
func runVerb(args []string, env Env) int {
	_, cfg, code := configFromFlags("run", args, env)
	if cfg == nil {
		return code
	}
	if env.Run == nil {
		fmt.Fprintln(env.Stderr, "bitw: run: the runtime is not built into this binary")
		return ExitFailed
	}
	ctx, stop := signalContext()
	defer stop()
	if err := env.Run(ctx, cfg, env); err != nil {
		fmt.Fprintf(env.Stderr, "bitw: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}

// signalContext ends on SIGTERM or SIGINT: `bitw run` then shuts down
// cleanly, and a waiting `bitw up` gives up (and the server with it).
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if word == "child" {
		return fmt.Sprintf("%d children", n)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Version returns the version to print: the link-time stamp if any, else
// the module version, else "devel" with the VCS revision the go command
// recorded.
func Version(env Env) string {
	if env.Version != "" {
		return env.Version
	}
	read := env.ReadBuildInfo
	if read == nil {
		read = debug.ReadBuildInfo
	}
	info, ok := read()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	v := "devel"
	if rev != "" {
		v += "+" + rev[:min(len(rev), 12)]
		if modified == "true" {
			v += "-dirty"
		}
	}
	return strings.TrimSpace(v)
}
