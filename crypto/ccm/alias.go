package ccm

import "unsafe"

// inexactOverlap reports whether x and y share memory without starting at
// the same address. crypto/cipher's AEADs allow output to overlap input
// only exactly (in place) or not at all; a shifted overlap would have the
// keystream XOR read octets it already wrote.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	xStart, xEnd := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&x[len(x)-1]))
	yStart, yEnd := uintptr(unsafe.Pointer(&y[0])), uintptr(unsafe.Pointer(&y[len(y)-1]))
	return xStart <= yEnd && yStart <= xEnd
}
