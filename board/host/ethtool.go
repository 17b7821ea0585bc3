//go:build linux

package host

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value (linux/ethtool.h), the argument of
// the legacy offload commands.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq carrying a pointer in its union, as SIOCETHTOOL
// expects. A separate type keeps the pointer visible to the garbage
// collector.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// legacyOffloads are the ethtool commands that switch off GRO, GSO and TSO
// on a link bitw owns (ETHTOOL_SGRO, ETHTOOL_SGSO, ETHTOOL_STSO).
var legacyOffloads = []struct {
	name string
	cmd  uint32
}{
	{"generic-receive-offload", unix.ETHTOOL_SGRO},
	{"generic-segmentation-offload", unix.ETHTOOL_SGSO},
	{"tcp-segmentation-offload", unix.ETHTOOL_STSO},
}

// disableOffloads turns the offloads off and reports which it changed.
// A link that has no such offload (EOPNOTSUPP) is fine.
func disableOffloads(fd int, ifname string) (off []string, err error) {
	var name [unix.IFNAMSIZ]byte
	if len(ifname) >= len(name) {
		return nil, fmt.Errorf("host: interface name %q too long", ifname)
	}
	copy(name[:], ifname)
	for _, o := range legacyOffloads {
		v := ethtoolValue{cmd: o.cmd, data: 0}
		req := ifreqPtr{name: name, data: unsafe.Pointer(&v)}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
		switch errno {
		case 0:
			off = append(off, o.name)
		case unix.EOPNOTSUPP, unix.EINVAL:
		default:
			return off, fmt.Errorf("host: %s: turn off %s: %w", ifname, o.name, errno)
		}
	}
	return off, nil
}
