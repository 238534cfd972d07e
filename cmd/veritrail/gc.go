package main

import (
	"runtime/debug"

	"github.com/veritrail/veritrail/postgres"
)

// The garbage collector of a node on PostgreSQL. Go's default (GOGC=100)
// collects each time the heap doubles; while ingesting, a PostgreSQL
// node's live heap is small (some 40 MB: bodies being decoded, the
// batches being committed), so it collected several times a second and
// marking took about 8% of its CPU, which on a machine shared with the
// database is CPU the commits lack. The node collects at 200% instead,
// under a soft memory limit of twice its stats cache plus 64 MiB: while
// the cache is small the heap may triple (about 110 MB of RSS instead of
// 85 while ingesting), and once it is full the limit holds the heap
// where the default would (twice the live heap). SQLite nodes keep the
// default: their CPU is SQLite's, and their RSS is what the 10M-event
// figure (≤ 300 MB) is measured on. GOGC or GOMEMLIMIT in the
// environment leave the runtime's settings alone.

// nodeGCPercent is the collector's target of a node on PostgreSQL.
const nodeGCPercent = 200

// gcSettings returns the collector's settings for a node: set is false
// when the runtime's own stand (a SQLite node, or GOGC or GOMEMLIMIT in
// the environment, read by getenv).
func gcSettings(getenv func(string) string, db string, statsCacheBytes int) (percent int, limit int64, set bool) {
	if db == "" || getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0, 0, false
	}
	if statsCacheBytes <= 0 {
		statsCacheBytes = postgres.DefaultStatsCacheBytes
	}
	return nodeGCPercent, 2*int64(statsCacheBytes) + 64<<20, true
}

// tuneGC applies gcSettings.
func tuneGC(getenv func(string) string, db string, statsCacheBytes int) {
	if percent, limit, ok := gcSettings(getenv, db, statsCacheBytes); ok {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}
