// Package sinktest helps test sinks: the seed fixtures as stored events
// with fixed seqs, salts and times (so formatted records are stable for
// golden files), batches of them, and golden-file comparison.
package sinktest

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

// Update rewrites golden files instead of comparing: go test ./sink/... -update
var Update = flag.Bool("update", false, "rewrite the golden files")

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Received is the fixed received_at of the fixture events.
var Received = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Events returns the seed fixtures (testdata/seed-events.ndjson) as
// stored events with seqs from 0, a fixed salt and receipt time.
func Events(t testing.TB) []veritrail.StoredEvent {
	t.Helper()
	f, err := os.Open(filepath.Join(Root(), "testdata", "seed-events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := veritrail.NewDecoder(f, veritrail.DefaultLimits, Received)
	var out []veritrail.StoredEvent
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = int64(len(out))
		e.ReceivedAt = Received.Add(time.Duration(e.Seq) * time.Millisecond)
		if len(e.Content) > 0 {
			e.ContentSalt = bytes.Repeat([]byte{byte(e.Seq + 1)}, veritrail.SaltSize)
			e.ContentDigest = veritrail.ContentDigest(e.ContentSalt, e.Content)
		}
		out = append(out, veritrail.StoredEvent{Seq: e.Seq, TimeNS: e.Time.UnixNano(),
			Envelope: veritrail.AppendEnvelope(nil, e), Content: e.Content, Salt: e.ContentSalt})
	}
	return out
}

// Batch formats events as a sink of format would, for organization acme.
func Batch(t testing.TB, format string, withContent bool) *sink.Batch {
	t.Helper()
	b := &sink.Batch{Org: "acme", SinkID: "snk_test"}
	for _, ev := range Events(t) {
		r, err := sink.FormatRecord(format, b.Org, &ev, withContent)
		if err != nil {
			t.Fatal(err)
		}
		b.Records = append(b.Records, r)
	}
	return b
}

// Golden compares got with testdata/name, or writes it with -update.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it after review)\n got: %s\nwant: %s", name, got, want)
	}
}
