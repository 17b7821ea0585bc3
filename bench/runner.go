package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
)

// runner implements harness.T for one benchmark row: cleanups run when
// the row ends, Fatalf aborts the row (not the program), and temporary
// directories stay under the run's output directory for inspection.
type runner struct {
	name     string
	dir      string
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	tmpSeq   int
	verbose  bool
}

// rowAbort carries a Fatalf message up to the row's recover.
type rowAbort struct{ msg string }

func newRunner(name, dir string, verbose bool) *runner {
	return &runner{name: name, dir: dir, verbose: verbose}
}

func (r *runner) Helper()      {}
func (r *runner) Name() string { return r.name }
func (r *runner) Failed() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.failed }
func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) TempDir() string {
	r.mu.Lock()
	r.tmpSeq++
	n := r.tmpSeq
	r.mu.Unlock()
	d := filepath.Join(r.dir, fmt.Sprintf("tmp%d", n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.Fatalf("temp dir: %v", err)
	}
	return d
}

func (r *runner) Logf(format string, args ...any) {
	if r.verbose {
		fmt.Fprintf(os.Stderr, "  [%s] %s\n", r.name, fmt.Sprintf(format, args...))
	}
}

func (r *runner) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	panic(rowAbort{fmt.Sprintf(format, args...)})
}

// finish runs the cleanups, last registered first, like testing does.
func (r *runner) finish() {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					fmt.Fprintf(os.Stderr, "  [%s] cleanup panicked: %v\n", r.name, p)
				}
			}()
			f()
		}()
	}
}

// protect runs fn, turning a Fatalf into an error; other panics are
// programming errors and keep their stack.
func (r *runner) protect(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if a, ok := p.(rowAbort); ok {
				err = fmt.Errorf("%s", a.msg)
				return
			}
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}
