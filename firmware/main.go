// Command bitw is the bump-in-the-wire IPsec encryptor: the composition
// root and the command line (design.md). The verbs live in firmware/cli.
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

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Version: version}))
}
