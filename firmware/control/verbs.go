package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/bitw-dev/bitw/firmware/status"
)

// Handler is what the runtime implements for the verbs. Its methods are
// called from the control server's and the console's goroutines, possibly
// at the same time.
//
// Up, Down and Rekey block until the operation is done or ctx ends (ctx
// carries the command's timeout, and ends early when the client goes
// away); they return ctx.Err() (or an error wrapping it) when it ended
// first. An error that is the command's fault, such as a connection or
// child the configuration lacks, should be a *UsageError (Usagef) so the
// CLI exits 2; every other error means the operation failed (exit 1).
type Handler interface {
	status.Source
	// Up initiates the connection and returns once the Child SA child is
	// installed, or, with child "", once the IKE SA and the Child SAs it
	// starts with are. A child that is already up is success.
	Up(ctx context.Context, conn, child string) error
	// Down deletes the connection's IKE SA and its Child SAs with the
	// peer (INFORMATIONAL with DELETE) and returns once they are gone.
	// A connection that is not up is success.
	Down(ctx context.Context, conn string) error
	// Rekey rekeys the Child SA child, or with child "" the IKE SA, and
	// returns once the new SA is installed.
	Rekey(ctx context.Context, conn, child string) error
	// SetLogLevel changes the level of the running logger.
	SetLogLevel(level slog.Level) error
}

// Verbs executes requests against a Handler. The Unix socket server and
// the console share one.
type Verbs struct {
	Handler Handler
	// Version is what the version verb reports.
	Version string
	// PowerOff, when set, offers the poweroff verb (the firmware console
	// does; the control socket never does). The console calls it after it
	// has printed the reply.
	PowerOff func()
	// Logger records each operation that changes state, with its outcome.
	// Nil discards.
	Logger *slog.Logger
}

// Response is the answer to one Request, as it travels over the control
// socket (one JSON object per line).
type Response struct {
	OK bool `json:"ok"`
	// Message confirms an operation in one line ("site-b/lan: up").
	Message string `json:"message,omitempty"`
	// Status answers the status verb.
	Status *status.Status `json:"status,omitempty"`
	// Version answers the version verb.
	Version string `json:"version,omitempty"`
	// Error says what went wrong when !OK; Usage says it was the
	// command's fault (exit 2) rather than the operation's (exit 1).
	Error string `json:"error,omitempty"`
	Usage bool   `json:"usage,omitempty"`
}

// Exit codes of design.md's CLI contract.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// ErrorResponse wraps err, marking *UsageError values as usage errors.
func ErrorResponse(err error) Response {
	return Response{Error: err.Error(), Usage: IsUsage(err)}
}

// Execute runs one request. It never panics on a bad request: whatever
// arrived over the socket is validated first.
func (v *Verbs) Execute(ctx context.Context, req Request) Response {
	if err := req.Validate(); err != nil {
		return ErrorResponse(err)
	}
	switch req.Verb {
	case VerbStatus:
		st := v.Handler.Snapshot()
		return Response{OK: true, Status: &st}
	case VerbVersion:
		return Response{OK: true, Version: v.Version}
	case VerbHelp:
		help := Synopsis + "  version                           print the version\n"
		if v.PowerOff != nil {
			help += "  poweroff                          power the board off\n"
		}
		return Response{OK: true, Message: strings.TrimSuffix(help, "\n")}
	case VerbPowerOff:
		if v.PowerOff == nil {
			return ErrorResponse(Usagef("poweroff is only available on the firmware console"))
		}
		v.log(slog.LevelWarn, req, nil)
		return Response{OK: true, Message: "powering off"}
	case VerbLog:
		level, _ := ParseLevel(req.Level) // Validate checked it
		err := v.Handler.SetLogLevel(level)
		v.log(slog.LevelInfo, req, err)
		if err != nil {
			return failure(req, err)
		}
		return Response{OK: true, Message: "log level " + req.Level}
	}

	ctx, cancel := context.WithTimeout(ctx, req.Timeout())
	defer cancel()
	var err error
	var done string
	switch req.Verb {
	case VerbUp:
		err, done = v.Handler.Up(ctx, req.Conn, req.Child), "up"
	case VerbDown:
		err, done = v.Handler.Down(ctx, req.Conn), "down"
	case VerbRekey:
		err, done = v.Handler.Rekey(ctx, req.Conn, req.Child), "rekeyed"
	}
	v.log(slog.LevelInfo, req, err)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return Response{Error: fmt.Sprintf("%s %s: not done after %v", req.Verb, req.Target(), req.Timeout())}
		case errors.Is(err, context.Canceled):
			return Response{Error: fmt.Sprintf("%s %s: canceled", req.Verb, req.Target())}
		}
		return failure(req, err)
	}
	return Response{OK: true, Message: req.Target() + ": " + done}
}

func failure(req Request, err error) Response {
	r := ErrorResponse(err)
	target := req.Target()
	if target != "" {
		target = " " + target
	}
	r.Error = fmt.Sprintf("%s%s: %s", req.Verb, target, r.Error)
	return r
}

func (v *Verbs) log(level slog.Level, req Request, err error) {
	if v.Logger == nil {
		return
	}
	attrs := []any{"verb", req.Verb}
	if req.Conn != "" {
		attrs = append(attrs, "target", req.Target())
	}
	if req.Level != "" {
		attrs = append(attrs, "level", req.Level)
	}
	if err != nil {
		v.Logger.Warn("control command failed", append(attrs, "err", err)...)
		return
	}
	v.Logger.Log(context.Background(), level, "control command", attrs...)
}

// Print writes the response as the CLI and the console show it: results to
// out, errors to errOut prefixed "bitw: ", and returns the exit code.
// req is the request that produced it (status prints JSON for req.JSON).
func (r Response) Print(out, errOut io.Writer, req Request) int {
	if !r.OK {
		msg := r.Error
		if msg == "" {
			msg = "the operation failed"
		}
		fmt.Fprintf(errOut, "bitw: %s\n", msg)
		if r.Usage {
			return ExitUsage
		}
		return ExitFailed
	}
	var err error
	switch {
	case r.Status != nil && req.JSON:
		var b []byte
		if b, err = json.Marshal(r.Status); err == nil {
			_, err = out.Write(append(b, '\n'))
		}
	case r.Status != nil:
		err = status.WriteText(out, *r.Status)
	case req.Verb == VerbVersion:
		_, err = fmt.Fprintf(out, "bitw %s\n", r.Version)
	case r.Message != "":
		_, err = fmt.Fprintln(out, r.Message)
	}
	if err != nil {
		fmt.Fprintf(errOut, "bitw: writing the result: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}
