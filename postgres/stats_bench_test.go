package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/storetest"
)

// BenchmarkStats measures the stats endpoint's store call (storetest's
// BenchStats) over VERITRAIL_BENCH_EVENTS events (200,000 by default):
// the whole log reads event_counts, a filtered query one grouped
// statement. The events are stored once, in a cluster kept in the
// benchmark cache (BenchFixture), so that a second run at 10M events
// measures at once. Run as root, the cache defaults to
// /var/tmp/veritrail-bench, which the postgres user can reach.
func BenchmarkStats(b *testing.B) {
	ctx := context.Background()
	root := ""
	if os.Geteuid() == 0 && os.Getenv("VERITRAIL_BENCH_CACHE") == "" {
		root = filepath.Join("/var/tmp", "veritrail-bench")
	}
	dir := storetest.BenchFixture(b, root, "postgres", []string{".", "..", "../demo", "../internal/commitq", "../tlog", "../storetest"}, func(dir string) error {
		c := pgtest.At(b, dir)
		s, err := postgres.Open(ctx, c.URL("postgres"), postgres.Options{})
		if err != nil {
			return err
		}
		if err := storetest.LoadBenchStats(ctx, s); err != nil {
			s.Close()
			return err
		}
		s.Close()
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
			return err
		}
		c.Stop(b, "fast")
		return nil
	})
	c := pgtest.At(b, dir)
	s, err := postgres.Open(ctx, c.URL("postgres"), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchStats(b, s)
}
