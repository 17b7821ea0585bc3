package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var (
	signalOnce sync.Once
	signalMu   sync.Mutex
	current    *runner
)

// stopOnSignal makes SIGINT and SIGTERM tear down the running row (its
// processes and namespaces) before the program exits; nil clears it.
func stopOnSignal(r *runner) {
	signalMu.Lock()
	current = r
	signalMu.Unlock()
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "bench: %v: cleaning up\n", sig)
			signalMu.Lock()
			r := current
			signalMu.Unlock()
			if r != nil {
				r.finish()
			}
			os.Exit(130)
		}()
	})
}
