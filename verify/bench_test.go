package verify_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/verify"
)

// BenchmarkVerifySQLite checks a SQLite data directory of seed-shaped
// events as `veritrail verify --data` does, with the index check and
// without, and reports stored bytes per second (MB/s, the envelope and
// content bytes hashed). VERITRAIL_VERIFY_EVENTS sets the count (default
// 100,000); VERITRAIL_VERIFY_DIR keeps the store there and reuses it, so
// that A/B runs compare the same bytes without loading again.
func BenchmarkVerifySQLite(b *testing.B) {
	ctx := context.Background()
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("VERITRAIL_VERIFY_EVENTS")); err == nil {
		n = v
	}
	dir := os.Getenv("VERITRAIL_VERIFY_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.MainFile)); err != nil {
		s, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		org, err := s.CreateOrg(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := demo.Load(ctx, s, org.ID, n, "v-", time.Now().Add(-time.Duration(n)*time.Millisecond), time.Millisecond, 1, nil); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", n, time.Since(start).Round(time.Millisecond))
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	s, err := sqlite.Open(ctx, dir, sqlite.Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, index := range []bool{true, false} {
		b.Run("index="+strconv.FormatBool(index), func(b *testing.B) {
			var stored int64
			for b.Loop() {
				rep := &verify.Report{}
				sums, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: index}, rep)
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK() || len(sums) != 1 || sums[0].NotChecked != "" || sums[0].IndexChecked != index {
					b.Fatalf("%v %+v", rep.Failures, sums[0])
				}
				stored = sums[0].Bytes
			}
			b.SetBytes(stored)
		})
	}
}
