//go:build tamago && arm

package imx6

import (
	"sync/atomic"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
	"github.com/usbarmory/tamago/soc/nxp/uart"

	"github.com/bitw-dev/bitw/board/serial"
	"github.com/bitw-dev/bitw/board/tamago/mmio"
)

// UART interrupt IDs: shared peripheral interrupts 26 and 27 (IMX6ULLRM
// Rev 1, 3.2 "Cortex A7 interrupts", Table 3-1), offset by the 32
// private interrupts.
const (
	UART1IRQ = imx6ul.BASE_IRQ + 26
	UART2IRQ = imx6ul.BASE_IRQ + 27
)

// consoleQueue holds received characters until a reader takes them: a
// typed line, and a pasted one, fit.
const consoleQueue = 512

// MaxLine is the longest console line the line reader accepts.
const MaxLine = 256

// Console is a UART as the device console: reception is interrupt
// driven (the core sleeps while nobody types), transmission is polled.
// Standard output and panics reach the same UART through TamaGo's
// printk.
type Console struct {
	uart    *uart.UART
	in      chan byte
	overrun atomic.Uint64
	lines   *serial.LineReader
}

// OpenConsole takes input from u, already initialised by TamaGo's board
// package as the console, through interrupt irq. Echo makes ReadLine echo
// what is typed, for terminals that do not echo locally (QEMU's stdio).
func OpenConsole(u *uart.UART, irq int, irqs *Interrupts, echo bool) *Console {
	c := &Console{uart: u, in: make(chan byte, consoleQueue)}
	if echo {
		c.lines = serial.NewLineReader(c, c, MaxLine)
	} else {
		c.lines = serial.NewLineReader(c, nil, MaxLine)
	}
	irqs.Handle(irq, c.service)
	// Receiver ready interrupt: raised while the RX FIFO holds at least
	// UFCR[RXTL] (1) characters (IMX6ULLRM 55.15.3 UART Control
	// Register 1, RRDYEN).
	ucr1 := u.Base + uart.UARTx_UCR1
	mmio.Write32(ucr1, mmio.Read32(ucr1)|1<<uart.UCR1_RRDYEN)
	return c
}

// service drains the RX FIFO, which quiets the level-triggered interrupt.
// Characters the queue cannot hold are counted and dropped.
func (c *Console) service() {
	for range 64 {
		ch, ok := c.uart.Rx()
		if !ok {
			return
		}
		select {
		case c.in <- ch:
		default:
			c.overrun.Add(1)
		}
	}
}

// Read blocks until at least one character has arrived and returns those
// available.
func (c *Console) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = <-c.in
	n := 1
	for n < len(p) {
		select {
		case ch := <-c.in:
			p[n] = ch
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Write sends p to the UART, waiting for FIFO space.
func (c *Console) Write(p []byte) (int, error) {
	for _, ch := range p {
		c.uart.Tx(ch)
	}
	return len(p), nil
}

// ReadLine returns the next typed line (see serial.LineReader). One
// goroutine reads lines.
func (c *Console) ReadLine() (string, error) { return c.lines.ReadLine() }

// Overruns counts characters dropped because nobody read them in time.
func (c *Console) Overruns() uint64 { return c.overrun.Load() }
