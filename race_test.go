//go:build race

package veritrail

// raceEnabled: the race detector is on (sync.Pool then drops some of
// what is put back, so allocation counts of pooled paths are not exact).
const raceEnabled = true
