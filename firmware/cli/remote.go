package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitw-dev/bitw/firmware/control"
)

// remote runs a verb against a running instance: args is the verb and its
// arguments, among which -c FILE or -s SOCKET choose the instance.
func remote(args []string, env Env) int {
	verb := args[0]
	var cfgFile, socket string
	var haveC, haveS bool
	rest := []string{verb}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "c", "s":
			if !hasValue {
				if i+1 >= len(args) {
					fmt.Fprintf(env.Stderr, "bitw: %s: -%s needs an argument\n", verb, name)
					return ExitUsage
				}
				i++
				value = args[i]
			}
			if name == "c" {
				cfgFile, haveC = value, true
			} else {
				socket, haveS = value, true
			}
		case "h", "help":
			fmt.Fprint(env.Stdout, usage)
			return ExitOK
		default:
			rest = append(rest, a)
		}
	}
	req, err := control.ParseCommand(rest)
	if err != nil {
		fmt.Fprintf(env.Stderr, "bitw: %v\n(bitw help lists the commands)\n", err)
		return ExitUsage
	}
	path, code := socketPath(cfgFile, haveC, socket, haveS, env)
	if code != ExitOK {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	return send(ctx, path, req, env)
}

func send(ctx context.Context, path string, req control.Request, env Env) int {
	resp, err := control.Do(ctx, path, req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "bitw: %v\n", err)
		if control.IsUsage(err) {
			return ExitUsage
		}
		return ExitFailed
	}
	return resp.Print(env.Stdout, env.Stderr, req)
}

// socketPath picks the control socket: from the configuration (-c), as
// named (-s), or the only one in the run directory.
func socketPath(cfgFile string, haveC bool, socket string, haveS bool, env Env) (string, int) {
	switch {
	case haveC && haveS:
		fmt.Fprintln(env.Stderr, "bitw: -c and -s both name the instance; give one")
		return "", ExitUsage
	case haveS:
		if socket == "" {
			fmt.Fprintln(env.Stderr, "bitw: -s needs a socket path")
			return "", ExitUsage
		}
		return socket, ExitOK
	case haveC:
		if cfgFile == "" {
			fmt.Fprintln(env.Stderr, "bitw: -c needs a configuration file")
			return "", ExitUsage
		}
		// The full loader, as `bitw run` uses on the same file: a file
		// that would not start an instance names no socket either.
		cfg, ok := loadConfig(cfgFile, env)
		if !ok {
			return "", ExitUsage
		}
		return cfg.Device.Control, ExitOK
	}
	dir := env.RunDir
	if dir == "" {
		dir = control.DefaultDir
	}
	sockets, err := findSockets(dir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "bitw: looking for a control socket: %v\n", err)
		return "", ExitUsage
	}
	switch len(sockets) {
	case 0:
		fmt.Fprintf(env.Stderr, "bitw: no control socket in %s (is bitw running?); name one with -s SOCKET or -c FILE\n", dir)
		return "", ExitUsage
	case 1:
		return sockets[0], ExitOK
	}
	names := make([]string, len(sockets))
	for i, s := range sockets {
		names[i] = filepath.Base(s)
	}
	fmt.Fprintf(env.Stderr, "bitw: several control sockets in %s (%s); choose one with -s SOCKET or -c FILE\n", dir, strings.Join(names, ", "))
	return "", ExitUsage
}

// findSockets lists the Unix sockets in dir, sorted; a missing dir has none.
func findSockets(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sockets []string
	for _, e := range entries {
		if e.Type()&fs.ModeSocket != 0 {
			sockets = append(sockets, filepath.Join(dir, e.Name()))
		}
	}
	return sockets, nil
}
