//go:build tamago

package main

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/bitw-dev/bitw/firmware/baremetal"
)

// version is the release, stamped at link time by scripts/firmware.sh
// (-ldflags "-X main.version=...").
var version string

// site is the configuration and the files it names, staged by
// scripts/firmware.sh in build/site-BOARD/ and mapped here with -overlay:
// the directory exists only in that build. A plain build without the
// overlay stops with "pattern site: no matching files found".
//
//go:embed site
var site embed.FS

// main is the firmware: the board, then the appliance on it, until the
// console's poweroff or a fatal error, whose status ends QEMU (semihosting)
// or halts the board.
func main() {
	b, err := openBoard()
	if err != nil {
		fmt.Printf("bitw: board: %v\n", err)
		poweroff(baremetal.ExitFailed)
	}
	sub, err := fs.Sub(site, "site")
	if err != nil {
		fmt.Printf("bitw: %v\n", err)
		poweroff(baremetal.ExitConfig)
	}
	poweroff(baremetal.Run(b, sub, baremetal.Options{Version: version, Out: b.console(), Echo: true}))
}
