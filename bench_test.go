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

// benchEnvelopes returns canonical envelopes of seed-shaped events, with
// every fourth one carrying escaped strings (a quote, a newline) as
// attackers and user agents produce.
func benchEnvelopes(b *testing.B) [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var envs [][]byte
	for i := range 64 {
		dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, "bench-"+string(rune('a'+i%26)), now)), veritrail.DefaultLimits, now)
		e, err := dec.Next()
		if err != nil {
			b.Fatal(err)
		}
		e.Seq, e.ReceivedAt = int64(i), now
		e.Prepare()
		if i%4 == 0 {
			e.Actor.Name = "O\"Brien\n" + e.Actor.Name
		}
		envs = append(envs, veritrail.AppendEnvelope(nil, e))
	}
	return envs
}

// BenchmarkParseEnvelope measures decoding stored envelopes (verification,
// exports, sinks).
func BenchmarkParseEnvelope(b *testing.B) {
	envs := benchEnvelopes(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := veritrail.ParseEnvelope(envs[i%len(envs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkScanEnvelopeIndex measures reading index keys from stored
// envelopes (index rebuilds and verification).
func BenchmarkScanEnvelopeIndex(b *testing.B) {
	envs := benchEnvelopes(b)
	n := 0
	fn := func(veritrail.Field, []byte) { n++ }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		veritrail.ScanEnvelopeIndex(envs[i%len(envs)], fn)
		i++
	}
}

// BenchmarkEventText compares the two ways to the words of an event's
// envelope: scanning the envelope (AppendEnvelopeText, what verification
// and SQLite's indexer have) and reading the event's fields
// (AppendEventText, what PostgreSQL's commit has).
func BenchmarkEventText(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var evs []*veritrail.Event
	var envs [][]byte
	for range 64 {
		dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, "", now)), veritrail.DefaultLimits, now)
		e, err := dec.Next()
		if err != nil {
			b.Fatal(err)
		}
		e.ReceivedAt = now
		e.Prepare()
		evs, envs = append(evs, e), append(envs, veritrail.AppendEnvelope(nil, e))
	}
	var buf []byte
	b.Run("envelope", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = veritrail.AppendEnvelopeText(buf[:0], envs[i%len(envs)])
			i++
		}
	})
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = veritrail.AppendEventText(buf[:0], evs[i%len(evs)])
			i++
		}
	})
}
