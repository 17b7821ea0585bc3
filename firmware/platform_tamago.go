//go:build tamago && (mx6ullevk || usbarmory)

package main

import (
	"fmt"
	"time"

	"github.com/bitw-dev/bitw/board/tamago/imx6"
)

// platformFacts are the console lines about what the board found at boot.
func platformFacts(p imx6.Platform, mainAt time.Duration) []string {
	facts := []string{fmt.Sprintf("main %v after the system counter started", mainAt.Round(time.Millisecond)), "entropy: " + p.Entropy}
	switch {
	case p.ClockSynced:
		facts = append(facts, "clock: set from the host at boot")
	case !p.ClockFloor.IsZero():
		facts = append(facts, "clock: no time source; started at the build time "+p.ClockFloor.Format(time.RFC3339)+
			" (certificates issued after the build are not yet valid; expiry is judged against build time plus uptime)")
	default:
		facts = append(facts, "clock: not set (starts at the Unix epoch; certificate validity cannot be checked against real time)")
	}
	if p.Emulated {
		facts = append(facts, fmt.Sprintf("emulated SoC, semihosting %v: power-off and fatal errors end the emulator with their status", p.Semihosting))
	}
	return facts
}
