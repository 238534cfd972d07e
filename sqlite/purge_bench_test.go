package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/sqlite"
)

// BenchmarkPurge expires a million events (all past the default two years
// of metadata) while ingest goes on at 2,000 events/s, and reports how long
// the purge took, the longest an append waited meanwhile, and the peak heap.
// VERITRAIL_PURGE_EVENTS changes the count.
func BenchmarkPurge(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VERITRAIL_PURGE_EVENTS")); err == nil {
		n = v
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		org, _ := s.CreateOrg(ctx, "bench")
		old := time.Now().AddDate(0, 0, -800)
		loadStart := time.Now()
		if err := demo.Load(ctx, s, org.ID, n, "old-", old, time.Millisecond, 1, nil); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", n, time.Since(loadStart).Round(time.Millisecond))
		s.SyncFullText(ctx)
		runtime.GC()

		// Ingest at 2,000 events/s during the purge, timing every append.
		stop := make(chan struct{})
		var lats []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				evs := make([]*veritrail.Event, 20)
				for j := range evs {
					evs[j] = &veritrail.Event{ID: fmt.Sprintf("new-%d-%d", k, j), Time: time.Now().UTC(), Type: "auth.login",
						Actor: veritrail.Actor{Type: "user", ID: "u"}}
				}
				start := time.Now()
				if _, err := s.Append(ctx, org.ID, evs); err != nil {
					b.Error(err)
					return
				}
				lats = append(lats, time.Since(start))
			}
		}()
		var peak uint64
		memDone := make(chan struct{})
		go func() {
			defer close(memDone)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		_, res, err := veritrail.RunRetention(ctx, s, org.ID, time.Now(), veritrail.SystemActor("bench"))
		took := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		<-memDone
		if err != nil {
			b.Fatal(err)
		}
		if res.Envelopes != int64(n) {
			b.Fatalf("purged %d of %d", res.Envelopes, n)
		}
		slices.Sort(lats)
		p99 := lats[len(lats)*99/100]
		b.Logf("purged %d events in %s (%.0f events/s); %d appends meanwhile: p50 %s, p99 %s, max %s; peak heap %.1f MiB",
			n, took.Round(time.Millisecond), float64(n)/took.Seconds(), len(lats), lats[len(lats)/2], p99, lats[len(lats)-1], float64(peak)/(1<<20))
		b.ReportMetric(float64(n)/took.Seconds(), "purged-events/s")
		b.ReportMetric(float64(lats[len(lats)-1].Milliseconds()), "max-append-ms")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		s.Close()
	}
}
