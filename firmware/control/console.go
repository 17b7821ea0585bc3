package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ReadyLine is what the firmware console prints once the IKE sockets are
// up (design.md); boot tests wait for it.
const ReadyLine = "bitw: ready"

// MaxConsoleLine bounds one console command line.
const MaxConsoleLine = 512

// Console runs the verbs on a line-oriented terminal such as the firmware's
// UART: one command per line, words separated by spaces, the reply printed
// before the next line is read. It needs no socket and no goroutine of its
// own: Run is the read loop.
type Console struct {
	Verbs *Verbs
	In    io.Reader
	Out   io.Writer
	// Echo writes typed characters back and handles backspace, for a
	// terminal in raw mode (a UART behind qemu -nographic or a serial
	// cable). Leave it off when the input is already echoed.
	Echo bool

	mu sync.Mutex // serialises writes to Out: Ready may come from another goroutine
}

// Ready prints ReadyLine. The runtime calls it once its IKE sockets are up.
func (c *Console) Ready() {
	c.write(ReadyLine + "\n")
}

// Run reads commands until In ends (returning nil at EOF) or fails, or ctx
// ends; ctx is checked between lines, since a blocked Read cannot be
// interrupted. Each command runs with ctx, so ending ctx also cuts short an
// up that is waiting.
func (c *Console) Run(ctx context.Context) error {
	r := bufio.NewReader(c.In)
	var line []byte
	overflow := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(line) > 0 && !overflow {
					c.runLine(ctx, string(line))
				}
				return nil
			}
			return err
		}
		switch b {
		case '\r', '\n':
			if c.Echo {
				c.write("\r\n")
			}
			switch {
			case overflow:
				c.write(fmt.Sprintf("bitw: line longer than %d characters ignored\n", MaxConsoleLine))
			case len(line) > 0:
				c.runLine(ctx, string(line))
			}
			line, overflow = line[:0], false
		case 0x08, 0x7f: // backspace, delete
			if len(line) > 0 {
				line = line[:len(line)-1]
				if c.Echo {
					c.write("\b \b")
				}
			}
		case 0x15: // ^U: discard the line
			line, overflow = line[:0], false
			if c.Echo {
				c.write("\r\n")
			}
		default:
			if b < 0x20 {
				continue // other control characters mean nothing here
			}
			if len(line) >= MaxConsoleLine {
				overflow = true
				continue
			}
			line = append(line, b)
			if c.Echo {
				c.write(string(b))
			}
		}
	}
}

// runLine parses and executes one command line and prints the reply.
func (c *Console) runLine(ctx context.Context, line string) {
	args := strings.Fields(line)
	if len(args) == 0 {
		return
	}
	var out strings.Builder
	req, err := ParseCommand(args)
	if err != nil {
		ErrorResponse(err).Print(&out, &out, req)
		c.write(out.String())
		return
	}
	resp := c.Verbs.Execute(ctx, req)
	resp.Print(&out, &out, req)
	c.write(out.String())
	if req.Verb == VerbPowerOff && resp.OK && c.Verbs.PowerOff != nil {
		c.Verbs.PowerOff()
	}
}

func (c *Console) write(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Echo {
		// A raw terminal needs CR LF to return to the first column.
		s = strings.ReplaceAll(s, "\n", "\r\n")
		s = strings.ReplaceAll(s, "\r\r\n", "\r\n")
	}
	io.WriteString(c.Out, s)
}
