package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bitw-dev/bitw/firmware/control"
	"github.com/bitw-dev/bitw/ike"
)

// rekeyPoll is how often Rekey looks for the new SA.
const rekeyPoll = 50 * time.Millisecond

var _ control.Handler = (*Runtime)(nil)

// Up implements control.Handler: it initiates conn (or one child of it)
// and waits until the Child SAs are installed.
func (r *Runtime) Up(ctx context.Context, conn, child string) error {
	if err := r.checkTarget(conn, child); err != nil {
		return err
	}
	return r.waitDone(ctx, func(done func(error)) error { return r.ike.Up(conn, child, done) })
}

// Down implements control.Handler: it deletes the connection's IKE SAs
// with the peer and waits until they are gone.
func (r *Runtime) Down(ctx context.Context, conn string) error {
	if err := r.checkTarget(conn, ""); err != nil {
		return err
	}
	return r.waitDone(ctx, func(done func(error)) error { return r.ike.Down(conn, done) })
}

// Rekey implements control.Handler: it rekeys the IKE SA (child "") or
// the Child SA and waits until the successor is installed: a new IKE SA
// ESTABLISHED, or a new Child SA INSTALLED, under SPIs not seen before.
func (r *Runtime) Rekey(ctx context.Context, conn, child string) error {
	if err := r.checkTarget(conn, child); err != nil {
		return err
	}
	sas, err := r.ikeStatusCtx(ctx)
	if err != nil {
		return err
	}
	before := rekeyIDs(sas, conn, child)
	var rekeyErr error
	if err := r.ike.Call(ctx, func() { rekeyErr = r.ike.Rekey(conn, child) }); err != nil {
		return err
	}
	if rekeyErr != nil {
		return rekeyErr
	}
	t := time.NewTicker(rekeyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the rekeyed SA: %w", ctx.Err())
		case <-t.C:
		}
		sas, err := r.ikeStatusCtx(ctx)
		if err != nil {
			return err
		}
		for id := range rekeyIDs(sas, conn, child) {
			if !before[id] {
				return nil
			}
		}
	}
}

// rekeyIDs identifies the usable SAs a rekey replaces: ESTABLISHED IKE
// SAs of conn by initiator SPI, or INSTALLED Child SAs of child by
// inbound SPI.
func rekeyIDs(sas []ike.IKESAStatus, conn, child string) map[uint64]bool {
	ids := map[uint64]bool{}
	for _, sa := range sas {
		if sa.Conn != conn {
			continue
		}
		if child == "" {
			if sa.State == ike.IKEEstablished {
				ids[sa.SPIi] = true
			}
			continue
		}
		for _, c := range sa.Children {
			if c.Name == child && c.State == ike.ChildInstalled {
				ids[uint64(c.SPIIn)] = true
			}
		}
	}
	return ids
}

func (r *Runtime) ikeStatusCtx(ctx context.Context) ([]ike.IKESAStatus, error) {
	var sas []ike.IKESAStatus
	err := r.ike.Call(ctx, func() { sas = r.ike.Status() })
	return sas, err
}

// SetLogLevel implements control.Handler (`bitw log LEVEL`).
func (r *Runtime) SetLogLevel(level slog.Level) error {
	r.level.Set(level)
	r.log.Log(context.Background(), max(level, slog.LevelInfo), "log level changed", "level", level.String())
	return nil
}

// checkTarget refuses, as the command's fault, a connection or child the
// configuration lacks.
func (r *Runtime) checkTarget(conn, child string) error {
	c := r.cfg.Connection(conn)
	if c == nil {
		return control.Usagef("no connection %q in %s", conn, r.cfg.File)
	}
	if child != "" && c.Child(child) == nil {
		return control.Usagef("connection %q has no child %q", conn, child)
	}
	return nil
}

// waitDone runs an IKE command that reports completion through a done
// callback (on the IKE goroutine) and waits for it or for ctx.
func (r *Runtime) waitDone(ctx context.Context, cmd func(done func(error)) error) error {
	result := make(chan error, 1)
	done := func(err error) {
		select {
		case result <- err:
		default:
		}
	}
	var cmdErr error
	if err := r.ike.Call(ctx, func() { cmdErr = cmd(done) }); err != nil {
		return err
	}
	if cmdErr != nil {
		if errors.Is(cmdErr, ike.ErrUnknown) {
			return control.Usagef("%v", cmdErr)
		}
		return cmdErr
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
