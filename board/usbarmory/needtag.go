//go:build usbarmory && !linkramsize

package usbarmory

// Without linkramsize TamaGo gives the runtime all of DDR, and the DMA
// region this package carves out of its top would overlap the heap.
// This declaration stops such a build with the reason in the message.
var _ int = "board/usbarmory: build with -tags usbarmory,linkramsize"
