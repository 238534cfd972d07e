package veritrail_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// BenchmarkDecode measures the handler side of ingest: decoding, validating,
// normalizing and preparing seed-shaped NDJSON events.
func BenchmarkDecode(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var body bytes.Buffer
	const n = 1000
	now := time.Now()
	for i := range n {
		body.Write(demo.Event(nil, rnd, "bench-"+string(rune('a'+i%26)), now))
		body.WriteByte('\n')
	}
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		dec := veritrail.NewDecoder(bytes.NewReader(body.Bytes()), veritrail.DefaultLimits, now)
		for {
			e, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			e.Prepare()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// BenchmarkEnvelope measures building the canonical envelope and its leaf hash.
func BenchmarkEnvelope(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, "x", time.Now())), veritrail.DefaultLimits, time.Now())
	e, err := dec.Next()
	if err != nil {
		b.Fatal(err)
	}
	e.Prepare()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = veritrail.AppendEnvelope(buf[:0], e)
		_ = veritrail.LeafHash(buf)
	}
}
