//go:build tamago && arm

// Package semihost issues ARM semihosting calls, which QEMU started with
// -semihosting serves on behalf of the guest: ending the emulator with an
// exit status, reading the host's wall clock and reading host files.
//
// Semihosting exists only under an emulator or an attached debugger. On a
// board without one the trapping instruction raises a supervisor-call
// exception that TamaGo treats as fatal, so callers must only use this
// package when they know they run emulated (imx6ul.Native is false).
//
// Reference: ARM "Semihosting for AArch32 and AArch64", version 2.0
// (ARM DUI 0 / github.com/ARM-software/abi-aa, semihosting.rst).
package semihost

import (
	"errors"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/usbarmory/tamago/arm"
)

// Operation numbers (semihosting.rst, "Semihosting operations").
const (
	sysOpen         = 0x01
	sysClose        = 0x02
	sysRead         = 0x06
	sysTime         = 0x11
	sysExitExtended = 0x20
)

// adpStoppedApplicationExit is the SYS_EXIT reason for a normal program
// end; with SYS_EXIT_EXTENDED its subcode is the exit status
// (semihosting.rst, "SYS_EXIT (0x18)", Table "Hardware vector reason codes").
const adpStoppedApplicationExit = 0x20026

// openModeBinaryRead is the SYS_OPEN mode "rb" (semihosting.rst,
// "SYS_OPEN (0x01)", Table "Value of mode").
const openModeBinaryRead = 1

// call traps into the semihosting host with operation op and parameter
// block arg, returning the host's R0. Defined in semihost_arm.s.
func call(op uint32, arg unsafe.Pointer) int32

// callValue is call with a plain value in R1 instead of a block pointer.
func callValue(op uint32, arg uint32) int32

// Exit ends the emulator with the given status. It does not return when
// the host honours the call.
func Exit(status int32) {
	block := [2]uint32{adpStoppedApplicationExit, uint32(status)}
	call(sysExitExtended, unsafe.Pointer(&block[0]))
	runtime.KeepAlive(&block)
}

// Time returns the host's wall clock in seconds since the Unix epoch.
func Time() int64 {
	return int64(uint32(callValue(sysTime, 0)))
}

// ErrHost reports a host-side failure of a semihosting file operation.
var ErrHost = errors.New("semihost: host refused the operation")

// File is a host file opened read-only through semihosting.
type File struct {
	handle int32
}

// Open opens a host file for binary reading. The path is interpreted by the
// host, relative to the emulator's working directory.
func Open(path string) (*File, error) {
	name := make([]byte, len(path)+1)
	copy(name, path)
	block := [3]uint32{
		uint32(uintptr(unsafe.Pointer(&name[0]))),
		openModeBinaryRead,
		uint32(len(path)),
	}
	h := call(sysOpen, unsafe.Pointer(&block[0]))
	runtime.KeepAlive(name)
	if h == -1 {
		return nil, ErrHost
	}
	return &File{handle: h}, nil
}

// ReadFull fills p from the file, or reports ErrHost if the host returned
// fewer bytes.
func (f *File) ReadFull(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	block := [3]uint32{
		uint32(f.handle),
		uint32(uintptr(unsafe.Pointer(&p[0]))),
		uint32(len(p)),
	}
	// The host returns the number of bytes it did NOT read.
	left := call(sysRead, unsafe.Pointer(&block[0]))
	runtime.KeepAlive(p)
	if left != 0 {
		return ErrHost
	}
	return nil
}

// Close releases the host file handle.
func (f *File) Close() error {
	block := [1]uint32{uint32(f.handle)}
	if call(sysClose, unsafe.Pointer(&block[0])) != 0 {
		return ErrHost
	}
	return nil
}

// Available reports whether a semihosting host answers. It issues a
// harmless SYS_TIME with TamaGo's exception handler briefly replaced, so
// that without a host (QEMU started without -semihosting, or a board with
// no debugger) the supervisor-call exception is caught and ignored rather
// than stopping the program. It swaps a global handler: call it from
// package initialisation, before other goroutines run.
func Available() bool {
	var trapped atomic.Bool
	prev := arm.SystemExceptionHandler
	arm.SystemExceptionHandler = func(vector int) {
		if vector == arm.SUPERVISOR {
			trapped.Store(true)
			return
		}
		prev(vector)
	}
	callValue(sysTime, 0)
	arm.SystemExceptionHandler = prev
	return !trapped.Load()
}
