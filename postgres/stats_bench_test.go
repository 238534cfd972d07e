package postgres_test

import (
	"context"
	"testing"

	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/storetest"
)

// BenchmarkStats measures the stats endpoint's store call (storetest's
// BenchStats) over VERITRAIL_BENCH_EVENTS events (200,000 by default):
// the whole log reads event_counts, a filtered query one grouped statement.
func BenchmarkStats(b *testing.B) {
	s, err := postgres.Open(context.Background(), pgtest.New(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchStats(b, s)
}
