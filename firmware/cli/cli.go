// Package cli is the `bitw` command line (design.md, Contracts: CLI): the
// verb dispatcher and the verbs that need no running instance. Verbs that
// talk to a running instance over its control socket are added with the
// control package.
//
// Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
// error. Errors go to stderr.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/bitw-dev/bitw/firmware/config"
)

// Exit codes (design.md).
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Env is what a verb may touch: its output streams and the version the
// binary was stamped with.
type Env struct {
	Stdout, Stderr io.Writer
	// Version is the release stamped in at link time (-ldflags -X); empty
	// falls back to the module's build information.
	Version string
	// ReadBuildInfo is debug.ReadBuildInfo; tests replace it.
	ReadBuildInfo func() (*debug.BuildInfo, bool)
}

const usage = `usage: bitw COMMAND [ARGS]

commands:
  check -c FILE   validate a configuration file; print FILE:LINE: why for each error
  version         print the version
  help            print this help
`

// Main runs the command line args (without the program name) and returns
// the exit code.
func Main(args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	switch args[0] {
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
	fs := flag.NewFlagSet("bitw check", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprintln(env.Stderr, "usage: bitw check -c FILE") }
	file := fs.String("c", "", "the configuration `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	cfg, err := config.Load(*file)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			for _, d := range list {
				fmt.Fprintln(env.Stderr, d.Error())
			}
		} else {
			fmt.Fprintf(env.Stderr, "%s:1: %v\n", *file, err)
		}
		return ExitUsage
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "%s:%d: warning: %s\n", w.File, w.Line, w.Msg)
	}
	children := 0
	for _, c := range cfg.Connections {
		children += len(c.Children)
	}
	fmt.Fprintf(env.Stdout, "%s: ok: device %s, %s, %s\n", *file, cfg.Device.Name,
		plural(len(cfg.Connections), "connection"), plural(children, "child"))
	return ExitOK
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
