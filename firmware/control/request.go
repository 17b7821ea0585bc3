// Package control is how a running bitw is operated: the verbs of
// design.md's CLI contract (status, up, down, rekey, log, version, and
// poweroff on the firmware console), their parsing and dispatch, and the
// line-delimited JSON protocol that carries them over the host runtime's
// Unix control socket.
//
// One verb layer serves two front ends. The `bitw` CLI parses its
// arguments with ParseCommand, sends the Request over the socket (Do) to
// a Server, which runs it through Verbs.Execute. The firmware's UART
// console has no socket: Console reads lines, parses them with the same
// ParseCommand and calls the same Verbs.Execute in process. Both print a
// Response with Response.Print, so the CLI and the console show the same
// text.
//
// The runtime implements Handler; this package imports neither ike/ nor
// TamaGo.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Verbs.
const (
	VerbStatus   = "status"
	VerbUp       = "up"
	VerbDown     = "down"
	VerbRekey    = "rekey"
	VerbLog      = "log"
	VerbVersion  = "version"
	VerbPowerOff = "poweroff" // console only
	VerbHelp     = "help"     // lists the verbs (the CLI has its own help)
)

// DefaultTimeout is how long up, down and rekey wait when the command
// names no --timeout (design.md: up defaults to 30 s).
const DefaultTimeout = 30 * time.Second

// MaxTimeout bounds what a client may ask for, so a request cannot pin a
// server goroutine for days.
const MaxTimeout = time.Hour

// Request is one command, as it travels over the control socket (one JSON
// object per line).
type Request struct {
	Verb  string `json:"verb"`
	Conn  string `json:"conn,omitempty"`
	Child string `json:"child,omitempty"`
	// JSON asks status for the JSON document instead of text.
	JSON bool `json:"json,omitempty"`
	// Level is the log verb's level: debug, info, warn or error.
	Level string `json:"level,omitempty"`
	// TimeoutMS bounds up, down and rekey; 0 means DefaultTimeout.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Timeout is the request's wait bound.
func (r Request) Timeout() time.Duration {
	if r.TimeoutMS <= 0 {
		return DefaultTimeout
	}
	return time.Duration(r.TimeoutMS) * time.Millisecond
}

// Target prints CONN or CONN/CHILD.
func (r Request) Target() string {
	if r.Child == "" {
		return r.Conn
	}
	return r.Conn + "/" + r.Child
}

// UsageError is a mistake in the command itself: an unknown verb, a
// missing or extra argument, a connection the configuration lacks. The CLI
// exits 2 for it, 1 for every other failure. A Handler returns one (see
// Usagef) when the command names something that does not exist.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// IsUsage reports whether err is or wraps a *UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// Synopsis lists the verbs that talk to a running instance, one line
// each, for help texts.
const Synopsis = `  status [--json]                   list the IKE and Child SAs
  up CONN[/CHILD] [--timeout D]     bring a connection up and wait until its Child SA is installed (default 30s)
  down CONN [--timeout D]           delete the connection's IKE SA and its Child SAs
  rekey CONN[/CHILD] [--timeout D]  rekey the IKE SA, or one Child SA
  log LEVEL                         set the log level: debug, info, warn or error
`

// ParseCommand reads a command as the CLI and the console take it: the verb
// and its arguments, e.g. ["up", "site-b/lan", "--timeout", "10s"]. Flags
// may come before or after the positional argument, as -flag or --flag,
// with "=VALUE" or as the next word; "--" ends the flags. A --timeout is
// a Go duration ("90s", "2m") or a number of seconds. Every error is a
// *UsageError.
func ParseCommand(args []string) (Request, error) {
	if len(args) == 0 {
		return Request{}, Usagef("no command")
	}
	req := Request{Verb: args[0]}
	switch req.Verb {
	case VerbStatus, VerbUp, VerbDown, VerbRekey, VerbLog, VerbVersion, VerbPowerOff, VerbHelp:
	default:
		return Request{}, Usagef("unknown command %q", req.Verb)
	}
	var positional []string
	flags := true
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !flags || len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		if a == "--" {
			flags = false
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "json":
			if req.Verb != VerbStatus {
				return Request{}, Usagef("%s: unknown flag %q", req.Verb, a)
			}
			if hasValue {
				v, err := strconv.ParseBool(value)
				if err != nil {
					return Request{}, Usagef("%s: --json=%q: want true or false", req.Verb, value)
				}
				req.JSON = v
			} else {
				req.JSON = true
			}
		case "timeout":
			if req.Verb != VerbUp && req.Verb != VerbDown && req.Verb != VerbRekey {
				return Request{}, Usagef("%s: unknown flag %q", req.Verb, a)
			}
			if !hasValue {
				if i+1 >= len(args) {
					return Request{}, Usagef("%s: --timeout needs a duration", req.Verb)
				}
				i++
				value = args[i]
			}
			d, err := parseTimeout(value)
			if err != nil {
				return Request{}, Usagef("%s: --timeout %q: %v", req.Verb, value, err)
			}
			req.TimeoutMS = d.Milliseconds()
		default:
			return Request{}, Usagef("%s: unknown flag %q", req.Verb, a)
		}
	}
	switch req.Verb {
	case VerbStatus, VerbVersion, VerbPowerOff, VerbHelp:
		if len(positional) > 0 {
			return Request{}, Usagef("%s takes no arguments", req.Verb)
		}
	case VerbUp, VerbRekey, VerbDown:
		what := "CONN[/CHILD]"
		if req.Verb == VerbDown {
			what = "CONN"
		}
		if len(positional) != 1 {
			return Request{}, Usagef("%s needs one argument: %s", req.Verb, what)
		}
		var slash bool
		req.Conn, req.Child, slash = strings.Cut(positional[0], "/")
		if slash && req.Child == "" {
			return Request{}, Usagef("%s: empty child name in %q", req.Verb, positional[0])
		}
	case VerbLog:
		if len(positional) != 1 {
			return Request{}, Usagef("log needs one argument: the level (debug, info, warn or error)")
		}
		req.Level = positional[0]
	default:
		return Request{}, Usagef("unknown command %q", req.Verb)
	}
	if err := req.Validate(); err != nil {
		return Request{}, err
	}
	return req, nil
}

// Validate checks a request as the server receives it: a known verb with
// exactly the fields it uses, well-formed. Every error is a *UsageError.
func (r Request) Validate() error {
	unexpected := func(field string) error { return Usagef("%s takes no %s", r.Verb, field) }
	if r.TimeoutMS < 0 || time.Duration(r.TimeoutMS)*time.Millisecond > MaxTimeout {
		return Usagef("%s: timeout must be between 1ms and %v", r.Verb, MaxTimeout)
	}
	switch r.Verb {
	case VerbStatus, VerbVersion, VerbPowerOff, VerbHelp:
		if r.Conn != "" || r.Child != "" {
			return unexpected("connection")
		}
	case VerbUp, VerbRekey, VerbDown:
		if err := checkName("connection", r.Conn); err != nil {
			return Usagef("%s: %v", r.Verb, err)
		}
		if r.Verb == VerbDown && r.Child != "" {
			return Usagef("down takes a connection, not a child: %q", r.Target())
		}
		if r.Child != "" {
			if err := checkName("child", r.Child); err != nil {
				return Usagef("%s: %v", r.Verb, err)
			}
		}
	case VerbLog:
		if _, err := ParseLevel(r.Level); err != nil {
			return Usagef("log: %v", err)
		}
	default:
		return Usagef("unknown command %q", r.Verb)
	}
	if r.JSON && r.Verb != VerbStatus {
		return unexpected("--json")
	}
	if r.TimeoutMS != 0 && r.Verb != VerbUp && r.Verb != VerbDown && r.Verb != VerbRekey {
		return unexpected("--timeout")
	}
	if r.Level != "" && r.Verb != VerbLog {
		return unexpected("level")
	}
	return nil
}

// checkName refuses names that no configuration could hold and that would
// garble a log line or a terminal.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s name", what)
	case len(s) > 256:
		return fmt.Errorf("%s name longer than 256 characters", what)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s name is not valid UTF-8", what)
	case strings.Contains(s, "/"):
		return fmt.Errorf("%s name %q contains '/'", what, s)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("%s name %q contains a space or control character", what, s)
	}
	return nil
}

func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return 0, errors.New("want a duration such as 90s or 2m, or seconds")
		}
		d = time.Duration(n) * time.Second
	}
	if d < time.Millisecond || d > MaxTimeout {
		return 0, fmt.Errorf("must be between 1ms and %v", MaxTimeout)
	}
	return d, nil
}

// ParseLevel reads a log level as [device] log_level spells it.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q: want debug, info, warn or error", s)
}
