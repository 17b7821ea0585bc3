//go:build linux

package host

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/bitw-dev/bitw/ipsec"
	"github.com/bitw-dev/bitw/netstack"
	"golang.org/x/sys/unix"
)

// tapNIC is a port over a TAP device. Without IFF_VNET_HDR or
// TUNSETOFFLOAD the kernel hands over finished, MTU-sized frames, so no
// checksum completion or splitting is needed here. One read(2) or write(2)
// moves one frame.
type tapNIC struct {
	info   Info
	mac    netstack.MAC
	file   *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	rxMu    sync.Mutex
	rxBufs  []*ipsec.Buffer
	rxN     int
	rxErr   error
	readFn  func(uintptr) bool
	txMu    sync.Mutex
	txFrame []byte
	txErrno syscall.Errno
	writeFn func(uintptr) bool

	rxFrames, rxTruncated, txFrames, txErrors atomic.Uint64
}

// ifreqFlags is struct ifreq with the short flags member, for TUNSETIFF.
type ifreqFlags struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

func openTap(link, name string, opts Options) (_ Port, err error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("host: %s: bad TAP name", link)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("host: %s: open /dev/net/tun: %w", link, err)
	}
	var req ifreqFlags
	copy(req.name[:], name)
	req.flags = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("host: %s: TUNSETIFF: %w", link, errno)
	}
	t := &tapNIC{info: Info{Link: link, Kind: "tap"}}
	t.file = os.NewFile(uintptr(fd), link)
	defer func() {
		if err != nil {
			t.file.Close()
		}
	}()
	if err := prepareLink(name, opts, &t.info); err != nil {
		return nil, err
	}
	t.mac = opts.MAC
	if t.mac.IsZero() {
		t.mac = tapMAC(name)
	}
	if t.rc, err = t.file.SyscallConn(); err != nil {
		return nil, fmt.Errorf("host: %s: %w", link, err)
	}
	t.readFn, t.writeFn = t.readReady, t.writeReady
	return t, nil
}

func (t *tapNIC) MAC() netstack.MAC { return t.mac }
func (t *tapNIC) MTU() int          { return t.info.MTU }
func (t *tapNIC) Info() Info        { return t.info }

func (t *tapNIC) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	return t.file.Close()
}

// Read implements netstack.NIC: it blocks for one frame, then takes what
// else is ready without blocking.
func (t *tapNIC) Read(bufs []*ipsec.Buffer) (int, error) {
	t.rxMu.Lock()
	defer t.rxMu.Unlock()
	if t.closed.Load() {
		return 0, errClosed
	}
	t.rxBufs, t.rxN, t.rxErr = bufs, 0, nil
	err := t.rc.Read(t.readFn)
	t.rxBufs = nil
	switch {
	case err != nil && (isClosed(err) || t.closed.Load()):
		return 0, errClosed
	case err != nil:
		return 0, err
	case t.rxN == 0 && t.rxErr != nil:
		return 0, t.rxErr
	}
	return t.rxN, nil
}

func (t *tapNIC) readReady(fd uintptr) bool {
	for t.rxN < len(t.rxBufs) {
		b := t.rxBufs[t.rxN]
		space := b.Space()
		r, _, errno := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&space[0])), uintptr(len(space)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return t.rxN > 0
		case errno != 0:
			t.rxErr = errno
			return true
		case int(r) == len(space):
			// A frame that fills the whole buffer may have been cut.
			t.rxTruncated.Add(1)
			continue
		}
		setPacket(b, int(r))
		t.rxN++
		t.rxFrames.Add(1)
	}
	return true
}

// Write implements netstack.NIC, one write(2) per frame.
func (t *tapNIC) Write(bufs []*ipsec.Buffer) (int, error) {
	if t.closed.Load() {
		return 0, errClosed
	}
	t.txMu.Lock()
	defer t.txMu.Unlock()
	for i, b := range bufs {
		t.txFrame, t.txErrno = b.Bytes(), 0
		err := t.rc.Write(t.writeFn)
		t.txFrame = nil
		if err != nil {
			t.txErrors.Add(uint64(len(bufs) - i))
			if isClosed(err) {
				return i, errClosed
			}
			return i, err
		}
		if t.txErrno != 0 {
			t.txErrors.Add(1)
			continue
		}
		t.txFrames.Add(1)
	}
	return len(bufs), nil
}

func (t *tapNIC) writeReady(fd uintptr) bool {
	if len(t.txFrame) == 0 {
		return true
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&t.txFrame[0])), uintptr(len(t.txFrame)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return false
		}
		// Anything else (EIO: the TAP's link is down) drops the frame.
		t.txErrno = errno
		return true
	}
}

func (t *tapNIC) Stats() Stats {
	return Stats{RxFrames: t.rxFrames.Load(), RxTruncated: t.rxTruncated.Load(), TxFrames: t.txFrames.Load(), TxErrors: t.txErrors.Load()}
}
