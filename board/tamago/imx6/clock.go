//go:build tamago && arm

package imx6

import (
	"sync/atomic"
	"time"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
)

// Clock is the board's time: TamaGo derives time.Now from the ARM generic
// timer (nanotime plus an offset). Under QEMU, Setup sets it from the
// host at boot; on hardware nothing does (the boards' SNVS real-time
// counter is not used), so it starts at the Unix epoch until Set.
type Clock struct{}

// Now is time.Now.
func (Clock) Now() time.Time { return time.Now() }

// Synced reports whether the wall clock came from a real time source.
func (Clock) Synced() bool { return clockSynced.Load() }

// Set moves the wall clock to t. TamaGo's monotonic clock is the same
// counter, so Set moves it too: call it before anything sleeps or arms
// timers, or those fire early (or late, when moving backwards).
func (Clock) Set(t time.Time) {
	imx6ul.ARM.SetTime(t.UnixNano())
	clockSynced.Store(true)
}

// clockSynced is Clock.Synced: set by Setup under an emulator, or by Set.
var clockSynced atomic.Bool

// Uptime is the time since the ARM generic timer started counting: under
// QEMU since the machine was reset, on silicon since TamaGo's early
// initialisation enabled the system counter (boot ROM time excluded).
func Uptime() time.Duration {
	return time.Duration(float64(imx6ul.ARM.Counter()) * imx6ul.ARM.TimerMultiplier)
}
