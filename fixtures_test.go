package veritrail_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/storetest"
)

// TestFixtures decodes every example event (one per kind of source) without
// loss.
func TestFixtures(t *testing.T) {
	data, err := os.ReadFile("testdata/seed-events.ndjson")
	if err != nil {
		t.Fatalf("testdata/seed-events.ndjson (the example events): %v", err)
	}
	dec := veritrail.NewDecoder(bytes.NewReader(data), veritrail.DefaultLimits, time.Now())
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	for i := 0; ; i++ {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			if i != len(lines) {
				t.Fatalf("%d events from %d lines", i, len(lines))
			}
			return
		}
		if err != nil {
			t.Fatalf("fixture %d: %v", i, err)
		}
		out := veritrail.AppendEventJSON(nil, veritrail.AppendEnvelope(nil, e), e.Content, nil)
		if err := storetest.SameEvent(lines[i], out); err != nil {
			t.Errorf("fixture %d (%s): %v", i, e.ID, err)
		}
	}
}
