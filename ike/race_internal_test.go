//go:build race

package ike

const raceEnabled = true
