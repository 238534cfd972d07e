package http_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/sqlite"
)

// BenchmarkIngestOneEvent posts one seed-shaped event per request, from
// 64 senders per core, straight into the server's handler (no sockets):
// the one-event path from the token to the durable answer, for its CPU
// and allocations per request. `veritrail bench --batch 1` measures the
// same path over loopback HTTP.
//
//	go test -run XXX -bench IngestOneEvent -benchmem ./http/
func BenchmarkIngestOneEvent(b *testing.B) {
	ctx := context.Background()
	m := metrics.New()
	store, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Observer: m})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	org, _ := store.CreateOrg(ctx, "bench")
	enableAI(&testing.T{}, store, org.ID)
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m})
	defer api.Shutdown(ctx)
	e := &env{t: &testing.T{}, store: store, api: api, org: org}
	tok := "Bearer " + e.token(org, veritrail.RoleIngest, nil, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = demo.Event(nil, rnd, "", time.Now().Add(-time.Minute))
	}
	var n, failed atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := httptest.NewRequest(http.MethodPost, "/api/v1/events", bytes.NewReader(bodies[i%int64(len(bodies))]))
			req.Header.Set("Authorization", tok)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			if w.Code != http.StatusOK && failed.Add(1) == 1 {
				b.Error(fmt.Sprintf("%d %s", w.Code, w.Body))
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
}
