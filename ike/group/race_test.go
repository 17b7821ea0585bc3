//go:build race

package group

// raceEnabled lets the slowest vector loops sample under the race
// detector, which slows big-number and P-384/P-521 arithmetic about a
// hundredfold; without -race every vector runs.
const raceEnabled = true
