//go:build linux

package host

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ethtool ioctl interface (linux/ethtool.h). Offloads are switched
// with ETHTOOL_SFEATURES, by name from the ETH_SS_FEATURES string set,
// because the legacy commands (ETHTOOL_SGRO/SGSO/STSO) miss features newer
// than them; the legacy commands remain the fallback.
const (
	ethSSFeatures = 4  // ETH_SS_FEATURES
	ethGStringLen = 32 // ETH_GSTRING_LEN
)

// ifreqPtr is struct ifreq carrying a pointer in its union, as SIOCETHTOOL
// expects. A separate type keeps the pointer visible to the garbage
// collector.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtool(fd int, name [unix.IFNAMSIZ]byte, data unsafe.Pointer) error {
	req := ifreqPtr{name: name, data: data}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return errno
	}
	return nil
}

// offloadToDisable reports the features a link bitw owns must not have:
// receive coalescing (GRO, LRO) always, since Read hands netstack wire
// frames, and segmentation offloads unless the port sends trains.
// Segmentation offloads act only on what is sent on the link, and
// bitw is the only sender there.
func offloadToDisable(feature string, trains bool) bool {
	switch feature {
	case "rx-gro", "rx-gro-hw", "rx-gro-list", "rx-udp-gro-forwarding", "rx-lro":
		return true
	case "tx-generic-segmentation":
		return !trains
	}
	return !trains && strings.HasPrefix(feature, "tx-") && strings.HasSuffix(feature, "-segmentation")
}

// disableOffloads turns the offloads off and reports the features it
// asked to turn off. trains keeps the segmentation offloads.
func disableOffloads(fd int, ifname string, trains bool) ([]string, error) {
	var name [unix.IFNAMSIZ]byte
	if len(ifname) >= len(name) {
		return nil, fmt.Errorf("host: interface name %q too long", ifname)
	}
	copy(name[:], ifname)
	off, err := disableFeatures(fd, name, trains)
	if err == nil {
		return off, nil
	}
	return disableLegacy(fd, name, ifname, trains)
}

// disableFeatures reads the feature names and clears every offload
// feature in one ETHTOOL_SFEATURES request.
func disableFeatures(fd int, name [unix.IFNAMSIZ]byte, trains bool) ([]string, error) {
	// struct ethtool_sset_info { u32 cmd, reserved; u64 sset_mask; u32 data[1]; }
	var info [3]uint64
	binary.NativeEndian.PutUint32(u8s(info[:])[0:], unix.ETHTOOL_GSSET_INFO)
	binary.NativeEndian.PutUint64(u8s(info[:])[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, name, unsafe.Pointer(&info[0])); err != nil {
		return nil, err
	}
	count := int(binary.NativeEndian.Uint32(u8s(info[:])[16:]))
	if count <= 0 || count > 1024 {
		return nil, fmt.Errorf("host: %d features", count)
	}
	// struct ethtool_gstrings { u32 cmd, string_set, len; u8 data[]; }
	strs := make([]uint64, (12+count*ethGStringLen+7)/8)
	sb := u8s(strs)
	binary.NativeEndian.PutUint32(sb[0:], unix.ETHTOOL_GSTRINGS)
	binary.NativeEndian.PutUint32(sb[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(sb[8:], uint32(count))
	if err := ethtool(fd, name, unsafe.Pointer(&strs[0])); err != nil {
		return nil, err
	}
	// struct ethtool_sfeatures { u32 cmd, size; { u32 valid, requested; } features[size]; }
	blocks := (count + 31) / 32
	set := make([]uint64, 1+blocks)
	fb := u8s(set)
	binary.NativeEndian.PutUint32(fb[0:], unix.ETHTOOL_SFEATURES)
	binary.NativeEndian.PutUint32(fb[4:], uint32(blocks))
	var off []string
	for i := range count {
		raw := sb[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		feature := string(raw[:max(bytes.IndexByte(raw, 0), 0)])
		if !offloadToDisable(feature, trains) {
			continue
		}
		valid := fb[8+8*(i/32):]
		binary.NativeEndian.PutUint32(valid, binary.NativeEndian.Uint32(valid)|1<<(i%32))
		off = append(off, feature)
	}
	if len(off) == 0 {
		return nil, nil
	}
	// A positive result flags features that could not change (fixed on
	// or off); the others are applied.
	if err := ethtool(fd, name, unsafe.Pointer(&set[0])); err != nil {
		return nil, err
	}
	return off, nil
}

func u8s(v []uint64) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v)) }

// disableLegacy uses ETHTOOL_SGRO, ETHTOOL_SGSO and ETHTOOL_STSO with a
// struct ethtool_value { u32 cmd, data; }.
func disableLegacy(fd int, name [unix.IFNAMSIZ]byte, ifname string, trains bool) (off []string, err error) {
	for _, o := range []struct {
		name string
		cmd  uint32
		tx   bool
	}{
		{"generic-receive-offload", unix.ETHTOOL_SGRO, false},
		{"generic-segmentation-offload", unix.ETHTOOL_SGSO, true},
		{"tcp-segmentation-offload", unix.ETHTOOL_STSO, true},
	} {
		if o.tx && trains {
			continue
		}
		v := [2]uint32{o.cmd, 0}
		switch err := ethtool(fd, name, unsafe.Pointer(&v[0])); err {
		case nil:
			off = append(off, o.name)
		case unix.EOPNOTSUPP, unix.EINVAL:
		default:
			return off, fmt.Errorf("host: %s: turn off %s: %w", ifname, o.name, err)
		}
	}
	return off, nil
}
