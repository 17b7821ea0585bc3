//go:build tamago && arm

package imx6

import (
	"errors"
	"math/rand/v2"
	"runtime/goos"
	"sync"
	"time"
	_ "unsafe" // go:linkname

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"

	"github.com/bitw-dev/bitw/board/tamago/semihost"
)

// tamagoRandom is the function behind crypto/rand on TamaGo
// (runtime/goos.GetRandomData calls it). TamaGo's imx6ul package sets it
// at runtime start: to the RNGB on an i.MX6ULL, to a CAAM-seeded AES-CTR
// DRBG on an i.MX6UL, and, on an emulated SoC, to an AES-CTR DRBG seeded
// with time.Now().UnixNano() taken before the timer is initialised, which
// is the constant 1: crypto/rand then yields the same bytes on every QEMU
// boot (measured: e1a427a907af0441eeae8f5ae39b2dab first, twice). The
// emulator setup below replaces it. Linked by name because TamaGo keeps
// it in an internal package; pinned by go.mod at tamago v1.26.0.
//
//go:linkname tamagoRandom github.com/usbarmory/tamago/internal/rng.GetRandomDataFn
var tamagoRandom func([]byte)

// ErrNoEntropy reports an emulated SoC whose emulator offers no
// semihosting, hence no entropy source and no way to report an exit
// status.
var ErrNoEntropy = errors.New("imx6: emulated SoC without semihosting (start QEMU with -semihosting): no entropy source")

// Platform describes what Setup found.
type Platform struct {
	// Emulated is true under QEMU (TamaGo reads no silicon revision).
	Emulated bool
	// Semihosting is true when an emulator answers semihosting calls.
	Semihosting bool
	// Entropy names the source behind crypto/rand.
	Entropy string
	// ClockSynced is true when the wall clock was set from a real time
	// source at boot (Clock.Synced also follows later Clock.Set calls).
	ClockSynced bool
	// ClockFloor, when ClockSynced is false, is the build time the wall
	// clock started from; zero when the image carries none, and the
	// clock then starts at the Unix epoch.
	ClockFloor time.Time
	// Err is non-nil when the platform is unusable (ErrNoEntropy).
	Err error
}

var (
	platform     Platform
	platformOnce sync.Once
)

// Setup inspects the SoC once and, when emulated, connects the emulator:
// crypto/rand is reseeded from the host's /dev/urandom, the wall clock is
// set from the host, and goos.Exit ends QEMU with the program's exit
// status. A board package calls it from its init function, before
// anything else draws randomness.
func Setup() Platform {
	platformOnce.Do(setup)
	return platform
}

func setup() {
	p := &platform
	p.Emulated = !imx6ul.Native
	if !p.Emulated {
		switch imx6ul.Family {
		case imx6ul.IMX6ULL:
			p.Entropy = "RNGB true random number generator (i.MX6ULL)"
		default:
			p.Entropy = "CAAM TRNG seeding an AES-CTR DRBG (i.MX6UL)"
		}
		// No time source is read on silicon: start from the build time,
		// as systemd does with its own build date, so that certificates
		// issued before the build are valid rather than all "not yet
		// valid" in 1970. Expiry is then judged against build time plus
		// uptime, which can only be early.
		if floor, ok := parseBuildEpoch(buildEpoch); ok {
			imx6ul.ARM.SetTime(floor.UnixNano())
			p.ClockFloor = floor
		}
		return
	}
	// On an emulated SoC semihosting is the only way out: without it,
	// fail closed rather than hand out TamaGo's constant-seeded bytes.
	p.Semihosting = semihost.Available()
	if !p.Semihosting {
		p.Err = ErrNoEntropy
		tamagoRandom = func([]byte) { panic(ErrNoEntropy.Error()) }
		return
	}
	if err := useHostEntropy(); err != nil {
		p.Err = err
		tamagoRandom = func([]byte) { panic(err.Error()) }
	} else {
		p.Entropy = "host /dev/urandom over semihosting, expanded with ChaCha8 (QEMU)"
	}
	imx6ul.ARM.SetTime(semihost.Time() * int64(time.Second))
	p.ClockSynced = true
	clockSynced.Store(true)
	halt := goos.Exit
	goos.Exit = func(status int32) {
		semihost.Exit(status)
		// The host did not end the emulator: halt as TamaGo would.
		if halt != nil {
			halt(status)
		}
	}
}

// hostEntropy expands a 256-bit seed read from the emulator host's
// /dev/urandom with ChaCha8, a cryptographically strong generator that
// erases its key as it goes (math/rand/v2).
type hostEntropy struct {
	mu  sync.Mutex
	gen *rand.ChaCha8
}

func (h *hostEntropy) read(b []byte) {
	h.mu.Lock()
	h.gen.Read(b)
	h.mu.Unlock()
}

func useHostEntropy() error {
	f, err := semihost.Open("/dev/urandom")
	if err != nil {
		return errors.New("imx6: cannot open the host's /dev/urandom over semihosting")
	}
	defer f.Close()
	var seed [32]byte
	if err := f.ReadFull(seed[:]); err != nil {
		return errors.New("imx6: short read from the host's /dev/urandom over semihosting")
	}
	tamagoRandom = (&hostEntropy{gen: rand.NewChaCha8(seed)}).read
	clear(seed[:])
	return nil
}
