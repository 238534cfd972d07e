package sqlite_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// TestStatsReaders: filtered stats share full buckets with a second
// reader when the read pool has one free and never wait for one. More
// concurrent stats than the pool has connections all finish with the
// answer one alone gives, and a cancelled context ends a call with its
// error.
func TestStatsReaders(t *testing.T) {
	ctx := context.Background()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s, org := demoStore(t, t.TempDir(), 6, 3000, "r", end.Add(-3000*time.Minute), time.Minute)
	failure, err := veritrail.ParseFilterValue(veritrail.FieldOutcome, "failure")
	if err != nil {
		t.Fatal(err)
	}
	sq := &veritrail.StatsQuery{
		Query: veritrail.Query{Filters: []veritrail.Filter{{Field: veritrail.FieldOutcome, Ranges: []veritrail.KeyRange{failure}}}},
		Top:   []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldTool},
	}
	want, err := s.Stats(ctx, org.ID, sq)
	if err != nil {
		t.Fatal(err)
	}
	if want.Total == 0 {
		t.Fatal("no failures in the sample events")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 { // three times the read pool
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Stats(ctx, org.ID, sq)
			if err == nil && !reflect.DeepEqual(got, want) {
				err = errors.New("stats differ from those of one call alone")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Stats(cancelled, org.ID, sq); !errors.Is(err, context.Canceled) {
		t.Fatalf("stats with a cancelled context: %v", err)
	}
}
