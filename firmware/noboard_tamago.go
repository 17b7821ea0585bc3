//go:build tamago && !mx6ullevk && !usbarmory

package main

// A firmware image is built for one board. This declaration stops a
// build without a board tag, with the reason in the message.
var _ int = "firmware: build with -tags mx6ullevk,linkramsize or usbarmory,linkramsize (make firmware BOARD=...)"
