//go:build tamago && arm

// Package imx6 holds the parts of bitw's board layer shared by every
// NXP i.MX6UL/ULL board under TamaGo (MCIMX6ULL-EVK, QEMU's
// mcimx6ul-evk, USB armory Mk II): interrupt dispatch with WFI idling,
// ENET ports, the UART console, entropy, the clock, DMA memory and the
// emulator hooks. Board packages wire these to their ports.
package imx6

import (
	"fmt"
	"runtime/goos"
	"sync/atomic"

	"github.com/usbarmory/tamago/arm"
	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
)

// GIC interrupt IDs from 1020 up are special; 1023 means none pending
// (ARM IHI 0048B.b, 3.2.5 "Special interrupt numbers").
const gicFirstSpecialID = 1020

// maxPerWake bounds the interrupts handled per wake-up of the service
// goroutine, so a source whose handler fails to quiet it cannot monopolise
// the core; it is taken again on the next wake-up.
const maxPerWake = 64

// Interrupts routes GIC interrupts to handlers, all run by TamaGo's single
// interrupt service goroutine, and makes the scheduler sleep the core
// (WFI) whenever no goroutine can run, until an interrupt or the next
// timer. Handlers must be short and must not block: they quiet their
// source and wake the goroutine that does the work.
type Interrupts struct {
	handlers   map[int]func()
	started    atomic.Bool
	unexpected atomic.Uint64
}

// NewInterrupts returns a dispatcher with no handlers.
func NewInterrupts() *Interrupts {
	return &Interrupts{handlers: make(map[int]func())}
}

// Handle routes interrupt id to fn. All handlers are registered before
// Start.
func (in *Interrupts) Handle(id int, fn func()) {
	if in.started.Load() {
		panic(fmt.Sprintf("imx6: interrupt %d registered after Start", id))
	}
	in.handlers[id] = fn
}

// Start enables the GIC with the ARM generic timer and every registered
// interrupt, installs the WFI idle governor and starts the service
// goroutine. It is called once.
func (in *Interrupts) Start() {
	if in.started.Swap(true) {
		panic("imx6: interrupts started twice")
	}
	imx6ul.GIC.Init(true, false)
	imx6ul.GIC.EnableInterrupt(arm.TIMER_IRQ, true)
	for id := range in.handlers {
		imx6ul.GIC.EnableInterrupt(id, true)
	}
	goos.Idle = idle
	go arm.ServiceInterrupts(in.service)
}

// Unexpected counts interrupts that had no handler (each is disabled at
// the GIC when first seen).
func (in *Interrupts) Unexpected() uint64 { return in.unexpected.Load() }

// service acknowledges and dispatches pending interrupts. Level-triggered
// sources stay pending until their handler clears them at the device.
func (in *Interrupts) service() {
	for range maxPerWake {
		id := imx6ul.GIC.GetInterrupt(true)
		if id >= gicFirstSpecialID {
			return
		}
		if id == arm.TIMER_IRQ {
			// The idle alarm fired: disarm it, or its level stays high.
			imx6ul.ARM.SetAlarm(0)
			continue
		}
		if fn := in.handlers[id]; fn != nil {
			fn()
			continue
		}
		in.unexpected.Add(1)
		imx6ul.GIC.DisableInterrupt(id)
	}
}

// idle is the scheduler's hook when nothing can run: arm the generic
// timer for the next runtime timer (pollUntil, in nanotime, which
// includes ARM.TimerOffset; zero when no timer is pending) and wait for
// an interrupt. SetAlarm clamps far deadlines to 2^31 ticks (34 s under
// QEMU's 62.5 MHz counter), so the core wakes at least that often.
func idle(pollUntil int64) {
	if pollUntil != 0 {
		imx6ul.ARM.SetAlarm(pollUntil - imx6ul.ARM.TimerOffset)
	}
	imx6ul.ARM.WaitInterrupt()
}
