package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/sqlite"
)

// BenchmarkExport streams every event of a 1,000,000-event log through
// GET /api/v1/events/export, per format, with and without content, and
// reports events/s, bytes and the peak Go heap while it runs (the export
// must not grow with the log). VERITRAIL_EXPORT_EVENTS changes the count.
//
//	go test -run XXX -bench Export -benchtime 1x -timeout 30m ./http/
func BenchmarkExport(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VERITRAIL_EXPORT_EVENTS")); err == nil {
		n = v
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	org, _ := store.CreateOrg(ctx, "bench")
	enableAI(&testing.T{}, store, org.ID)
	start := time.Now()
	if err := demo.Load(ctx, store, org.ID, n, "ev-", time.Now().Add(-time.Duration(n)*time.Millisecond-time.Hour), time.Millisecond, 1, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events in %s", n, time.Since(start).Round(time.Millisecond))
	api := vhttp.New(vhttp.Config{Store: store, RateLimit: 0})
	srv := httptest.NewServer(api)
	defer srv.Close()
	e := &env{t: &testing.T{}, store: store, srv: srv, api: api, org: org}
	tokens := map[bool]string{true: e.token(org, veritrail.RoleSecurity, nil, nil), false: e.token(org, veritrail.RoleAuditor, nil, nil)}

	for _, format := range []string{"csv", "ndjson", "json"} {
		for _, content := range []bool{false, true} {
			name := format + "/metadata"
			if content {
				name = format + "/content"
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					runtime.GC()
					var base runtime.MemStats
					runtime.ReadMemStats(&base)
					var peak atomic.Uint64
					stop := make(chan struct{})
					var wg sync.WaitGroup
					wg.Add(1)
					go func() {
						defer wg.Done()
						var ms runtime.MemStats
						for {
							runtime.ReadMemStats(&ms)
							if ms.HeapInuse > peak.Load() {
								peak.Store(ms.HeapInuse)
							}
							select {
							case <-stop:
								return
							case <-time.After(20 * time.Millisecond):
							}
						}
					}()
					req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events/export?order=asc&format="+format, nil)
					req.Header.Set("Authorization", "Bearer "+tokens[content])
					t0 := time.Now()
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					nb, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					el := time.Since(t0)
					close(stop)
					wg.Wait()
					if err != nil || resp.StatusCode != 200 {
						b.Fatalf("export: %d %v", resp.StatusCode, err)
					}
					b.ReportMetric(float64(n)/el.Seconds(), "events/s")
					b.ReportMetric(float64(nb)/float64(n), "bytes/event")
					b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
					b.Logf("%s: %d events, %.1f MiB in %s: %.0f events/s; heap in use %.1f MiB before, peak %.1f MiB",
						name, n, float64(nb)/(1<<20), el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(base.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20))
				}
			})
		}
	}
}
