//go:build tamago && arm

// Package mmio is the only place where bitw's board code reads and writes
// device registers by address. Each access is one 32-bit load or store in
// assembly, so the compiler can neither merge, drop nor reorder it.
//
// Addresses come from TamaGo's SoC instances (for example
// imx6ul.ENET1.Base) plus register offsets that cite the reference
// manual; nothing here hard-codes a device address.
package mmio

// Read32 loads the 32-bit register at addr.
func Read32(addr uint32) uint32

// Write32 stores val into the 32-bit register at addr.
func Write32(addr uint32, val uint32)

// Barrier is a full-system data synchronisation barrier (DSB SY): every
// earlier memory access, including stores to DMA descriptors, completes
// before any later one, including a doorbell register write (ARM ARM
// ARMv7-A/R, A3.8.3 "Memory barriers").
func Barrier()
