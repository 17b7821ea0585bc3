package runtime

import (
	"net"

	"github.com/bitw-dev/bitw/firmware/control"
	"github.com/bitw-dev/bitw/firmware/keylog"
)

// HostControl is Options.Control for a runtime with a file system: the
// Unix control socket of control.Listen.
func HostControl(path string) (net.Listener, error) {
	ln, err := control.Listen(path)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// HostKeyLog is Options.KeyLog for a runtime with a file system: the
// Wireshark key tables of firmware/keylog, written into dir.
func HostKeyLog(dir string) (*keylog.Writer, error) { return keylog.New(dir, 0) }
