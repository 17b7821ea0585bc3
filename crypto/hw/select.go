package hw

import (
	"fmt"
	"time"
)

// DefaultSelfTestTimeout bounds one engine's self-test at boot. The whole
// test is a few dozen engine calls, microseconds each on working
// hardware; an engine that takes this long is stuck.
const DefaultSelfTestTimeout = 2 * time.Second

// Select self-tests the preferred engines in order and returns the first
// that passes; if none does, the fallback (normally Soft()), after its own
// self-test. log receives one line per engine tried, for the console:
//
//	crypto: DCP self-test failed: RFC 3602 case 1: encrypt in place: wrong output; using soft engine
//	crypto: using DCP engine (aes128-cbc hmac-sha256), self-test passed
//
// It fails only when the fallback fails its self-test too, and then the
// firmware has no trustworthy crypto and must not start.
func Select(preferred []Engine, fallback Engine, log func(string)) (Engine, error) {
	return SelectWithin(preferred, fallback, log, DefaultSelfTestTimeout)
}

// SelectWithin is Select with a bound of timeout on each self-test. An
// engine that does not finish in time counts as failed. Its self-test is
// left running, since a driver waiting on hardware cannot be interrupted,
// and the engine is never used.
func SelectWithin(preferred []Engine, fallback Engine, log func(string), timeout time.Duration) (Engine, error) {
	for i, e := range preferred {
		err := selfTestWithin(e, timeout)
		if err == nil {
			log(fmt.Sprintf("crypto: using %s engine (%s), self-test passed", e.Name(), e.Caps()))
			return e, nil
		}
		next := fallback.Name()
		if i+1 < len(preferred) {
			next = preferred[i+1].Name()
		}
		log(fmt.Sprintf("crypto: %s self-test failed: %v; using %s engine", e.Name(), err, next))
	}
	if err := selfTestWithin(fallback, timeout); err != nil {
		log(fmt.Sprintf("crypto: %s self-test failed: %v; no crypto engine left", fallback.Name(), err))
		return nil, fmt.Errorf("crypto/hw: %s engine failed its self-test: %w", fallback.Name(), err)
	}
	if len(preferred) == 0 {
		log(fmt.Sprintf("crypto: using %s engine (%s), self-test passed; no hardware engine on this board", fallback.Name(), fallback.Caps()))
	}
	return fallback, nil
}

func selfTestWithin(e Engine, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		// A driver that panics fails its self-test instead of the boot.
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panicked: %v", r)
			}
		}()
		done <- SelfTest(e)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("timed out after %v", timeout)
	}
}
