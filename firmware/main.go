//go:build !tamago

// Command bitw is the bump-in-the-wire IPsec encryptor: the composition
// root and the command line (design.md). The verbs live in firmware/cli,
// the composition in firmware/runtime.
package main

import (
	"os"

	"github.com/bitw-dev/bitw/firmware/cli"
)

// version is the release, stamped at link time:
//
//	go build -ldflags "-X main.version=v1.2.3" -o bitw ./firmware
//
// Left empty, `bitw version` reports the module's build information.
var version string

// run is `bitw run`'s runtime for this platform (run_linux.go); nil
// where none is built in, and `bitw run` says so.
var run func(env cli.Env) cli.Env

func main() {
	env := cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Version: version}
	if run != nil {
		env = run(env)
	}
	os.Exit(cli.Main(os.Args[1:], env))
}
