package hw

import (
	"errors"
	"fmt"
)

// ErrAbsent reports an engine that the SoC should have but that cannot
// be used here, for example under an emulator that models no DCP.
var ErrAbsent = errors.New("engine not present")

// Absent returns a stand-in for the engine name that is not present, and
// why. Select self-tests it like a real one: SelfTest fails at once with
// an error wrapping ErrAbsent, without touching hardware, and the console
// line says why the soft engine took over. Its operations fail the same
// way.
func Absent(name, why string) Engine {
	return absent{name: name, err: fmt.Errorf("%w: %s", ErrAbsent, why)}
}

type absent struct {
	name string
	err  error
}

func (a absent) Name() string                      { return a.name }
func (a absent) Caps() Caps                        { return ESPMinimum }
func (a absent) NewAESCBC([]byte) (CBC, error)     { return nil, a.err }
func (a absent) NewHMACSHA256([]byte) (MAC, error) { return nil, a.err }
func (a absent) Random([]byte) error               { return a.err }
