//go:build linux

package runtime

import (
	"strings"

	"github.com/bitw-dev/bitw/board/host"
	"github.com/bitw-dev/bitw/firmware/config"
)

// HostPort opens a link of the host runtime: a Linux interface over
// AF_PACKET, or a TAP device for "tap:NAME". board/host brings the link
// up, turns its offloads and the kernel's forwarding off, and reports
// what it found.
func HostPort(link config.Link) (Port, error) {
	name := link.Name
	if link.Kind == config.LinkTAP {
		name = "tap:" + link.Name
	}
	p, err := host.Open(name, host.Options{})
	if err != nil {
		return Port{}, err
	}
	info := p.Info()
	var changes []string
	if len(info.OffloadsOff) > 0 {
		changes = append(changes, "offloads off: "+strings.Join(info.OffloadsOff, ", "))
	}
	return Port{NIC: p, Kind: info.Kind, KernelAddrs: info.KernelAddrs, Changes: changes, Notes: info.Notes}, nil
}
