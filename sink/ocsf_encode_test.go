package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// TestOCSFEncoderMatchesJSON holds the hand-written OCSF encoder to the
// bytes encoding/json writes for the same record (the struct tags are the
// schema), over the seed fixtures and thousands of generated events, and a
// few strings that need escaping. The one difference allowed: U+2028 and
// U+2029, which encoding/json escapes and canonjson.AppendString writes as they
// are (RFC 8785), both valid JSON.
func TestOCSFEncoderMatchesJSON(t *testing.T) {
	var evs []*veritrail.Event
	fixtures, err := os.ReadFile(filepath.Join("..", "testdata", "seed-events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	buf := bytes.NewBuffer(fixtures)
	for i := range 5000 {
		buf.Write(demo.Event(nil, rnd, fmt.Sprintf("ev-%d", i), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Second)))
		buf.WriteByte('\n')
	}
	dec := veritrail.NewDecoder(buf, veritrail.DefaultLimits, time.Now())
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	odd := &veritrail.Event{ID: "odd", Type: "admin.setting_changed", Time: time.Unix(1, 0).UTC(),
		Actor:    veritrail.Actor{Type: "user", ID: "u\"1\\", Name: "tab\there <b>&</b> \x01 ünï"},
		Decision: &veritrail.Decision{Action: veritrail.DecisionBlocked, Reason: "line\nbreak \u2028 \u2029"},
		Target:   &veritrail.Target{ID: "t", Name: "\u00e9"}, Context: &veritrail.Context{IP: "192.0.2.1", RequestID: "r"}}
	evs = append(evs, odd)
	if len(evs) < 5000 {
		t.Fatalf("only %d events to compare", len(evs))
	}
	for i, e := range evs {
		r := newOCSFRecord("acme", e)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		got := r.appendJSON([]byte("prefix"))
		w := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
		w = bytes.ReplaceAll(bytes.ReplaceAll(w, []byte(`\u2028`), []byte("\u2028")), []byte(`\u2029`), []byte("\u2029"))
		if !bytes.Equal(got[6:], w) || string(got[:6]) != "prefix" {
			t.Fatalf("event %d (%s):\nhand: %s\njson: %s", i, e.Type, got, want.Bytes())
		}
	}
}

// BenchmarkAppendOCSF: one OCSF record of a seed-shaped tool call with
// content (go test ./sink -run XXX -bench AppendOCSF -benchmem).
func BenchmarkAppendOCSF(b *testing.B) {
	e := &veritrail.Event{ID: "evt_01", Seq: 42, Type: "agent.tool_call", Time: time.Unix(1700000000, 0).UTC(), ReceivedAt: time.Unix(1700000001, 0).UTC(),
		Actor: veritrail.Actor{Type: "agent", ID: "agt_1", Email: "dana@acme.example", Name: "Dana"}, AgentID: "agt_1", SessionID: "s1",
		Connector: "github", Tool: "create_issue", Outcome: veritrail.OutcomeSuccess, Context: &veritrail.Context{IP: "192.0.2.1", UserAgent: "claude", RequestID: "r1"},
		Decision: &veritrail.Decision{Action: veritrail.DecisionAllowed, Policy: "eng", Reason: "ok"}, ContentDigest: "abc",
		Content: []byte(`{"arguments":{"title":"Fix the login bug","body":"Steps to reproduce: open the page, click sign in"},"response":{"content":[{"type":"text","text":"created #42"}]}}`)}
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		dst = AppendOCSF(dst[:0], "acme", e)
	}
}
