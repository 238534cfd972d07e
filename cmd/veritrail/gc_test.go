package main

import (
	"testing"

	"github.com/veritrail/veritrail/postgres"
)

func TestGCSettings(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	const db = "postgres://localhost/vt"
	for _, c := range []struct {
		name    string
		vars    map[string]string
		db      string
		cache   int
		percent int
		limit   int64
		set     bool
	}{
		{"sqlite keeps the default", nil, "", 0, 0, 0, false},
		{"postgres, default cache", nil, db, 0, 200, 2*postgres.DefaultStatsCacheBytes + 64<<20, true},
		{"postgres, given cache", nil, db, 32 << 20, 200, 128 << 20, true},
		{"GOGC wins", map[string]string{"GOGC": "100"}, db, 0, 0, 0, false},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "1GiB"}, db, 0, 0, 0, false},
	} {
		percent, limit, set := gcSettings(env(c.vars), c.db, c.cache)
		if percent != c.percent || limit != c.limit || set != c.set {
			t.Errorf("%s: got %d, %d, %v; want %d, %d, %v", c.name, percent, limit, set, c.percent, c.limit, c.set)
		}
	}
}
