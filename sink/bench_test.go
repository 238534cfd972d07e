package sink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/all"
	"github.com/veritrail/veritrail/sink/sinktest"
	"github.com/veritrail/veritrail/sink/webhook"
	"github.com/veritrail/veritrail/sqlite"
)

// Forwarding throughput: how fast a sink drains a backlog of demo events
// (seed-shaped, ~0.8 KB) from a real SQLite store to a real peer: a
// webhook receiver that checks every HMAC, or franz-go's kfake cluster.
//
//	go test ./sink -run XXX -bench Forward -benchtime 3x

const benchEvents = 100_000

func loadStore(b *testing.B) (*sqlite.Store, *veritrail.Org) {
	b.Helper()
	store, err := sqlite.Open(context.Background(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	org, _ := store.CreateOrg(context.Background(), "acme")
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < benchEvents; i += 2000 {
		var buf bytes.Buffer
		for j := i; j < i+2000; j++ {
			buf.Write(demo.Event(nil, rnd, fmt.Sprintf("ev-%07d", j), now.Add(time.Duration(j)*time.Millisecond)))
			buf.WriteByte('\n')
		}
		dec := veritrail.NewDecoder(&buf, veritrail.DefaultLimits, time.Now())
		var batch []*veritrail.Event
		for {
			e, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			// AI events need the switch; keep the others only.
			if veritrail.Category(e.Type) != "ai" {
				batch = append(batch, e)
			}
		}
		if _, err := store.Append(context.Background(), org.ID, batch); err != nil {
			b.Fatal(err)
		}
	}
	return store, org
}

// drain creates a sink from body and times its delivery of the whole log.
func drain(b *testing.B, store *sqlite.Store, org *veritrail.Org, body string) {
	key, _ := seal.New(make([]byte, seal.KeySize))
	eng, _ := sink.New(sink.Options{Outbound: netguard.Guard{AllowLoopback: true}, Store: store, Key: key, Types: all.Types(), PollInterval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	head, _, _ := store.LogHead(context.Background(), org.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		k, err := eng.Create(context.Background(), org.ID, []byte(fmt.Sprintf(body, i)), true)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		store.CreateSink(context.Background(), k)
		eng.Wake()
		for {
			got, _ := store.SinkByID(context.Background(), org.ID, k.ID)
			if got.Delivered >= head-1 {
				break
			}
			if got.Failures > 3 {
				b.Fatalf("delivery failing: %s", got.LastError)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		store.DeleteSink(context.Background(), org.ID, k.ID)
	}
	b.ReportMetric(float64(head)*float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkForwardWebhook(b *testing.B) {
	store, org := loadStore(b)
	var n atomic.Int64
	secret := []byte("bench-secret")
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n.Add(int64(len(body)))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer peer.Close()
	for _, c := range []struct{ name, extra string }{
		{"native-metadata", `"format":"native"`},
		{"native-content", `"format":"native","content":true`},
		{"ocsf-content", `"format":"ocsf","content":true`},
	} {
		b.Run(c.name, func(b *testing.B) {
			drain(b, store, org, `{"name":"hook-%d","type":"webhook","url":"`+peer.URL+`","secret":"bench-secret",`+c.extra+`,"batch":{"max_events":1000,"max_bytes":4194304,"max_wait":"1ms"}}`)
		})
	}
}

func BenchmarkForwardKafka(b *testing.B) {
	store, org := loadStore(b)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "veritrail"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, f := range []string{"native", "ocsf"} {
		b.Run(f+"-content", func(b *testing.B) {
			drain(b, store, org, `{"name":"kafka-%d","type":"kafka","brokers":["`+c.ListenAddrs()[0]+`"],"topic":"veritrail","format":"`+f+`","content":true,"batch":{"max_events":1000,"max_bytes":4194304,"max_wait":"1ms"}}`)
		})
	}
}

// BenchmarkFormatRecord measures the per-event cost of formatting a stored
// event for a sink (the drain loop's hot path), without the store or peer.
func BenchmarkFormatRecord(b *testing.B) {
	evs := sinktest.Events(b)
	for _, c := range []struct {
		format  string
		content bool
	}{{sink.FormatNative, false}, {sink.FormatNative, true}, {sink.FormatOCSF, true}} {
		b.Run(fmt.Sprintf("%s-content=%v", c.format, c.content), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := sink.FormatRecord(c.format, "acme", &evs[i%len(evs)], c.content); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
