package main

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
)

// TestIndexBucketShiftReachesNewStore: --index-bucket-shift sets the
// bucket size of a store created with it, and an existing store keeps the
// size it was created with whatever the setting says later.
func TestIndexBucketShiftReachesNewStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stored := func() string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.MainFile)+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v string
		if err := db.QueryRow(`SELECT value FROM meta WHERE key = 'bucket_shift'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", dir, "--index-bucket-shift", "12"}, "12"},
		{[]string{"--data", dir}, "12"}, // reopened with the default: kept
	} {
		var cfg serveConfig
		if _, err := cfg.settings().Parse(c.args); err != nil {
			t.Fatal(err)
		}
		s, err := cfg.store.open(ctx, slog.Default(), false, veritrail.NopObserver{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got := stored(); got != c.want {
			t.Fatalf("%v: the store's bucket shift is %s, want %s", c.args, got, c.want)
		}
	}
}
