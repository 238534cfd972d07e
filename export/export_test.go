package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/export"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtures returns the seed fixtures as stored events, deterministically.
func fixtures(t *testing.T) []*veritrail.StoredEvent {
	t.Helper()
	data, err := os.ReadFile("../testdata/seed-events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	dec := veritrail.NewDecoder(bytes.NewReader(data), veritrail.DefaultLimits, now)
	var out []*veritrail.StoredEvent
	for i := 0; ; i++ {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e.Seq, e.ReceivedAt = int64(i), now.Add(time.Duration(i)*time.Millisecond)
		var salt []byte
		if len(e.Content) > 0 {
			salt = bytes.Repeat([]byte{byte(i)}, veritrail.SaltSize)
			e.ContentDigest = veritrail.ContentDigest(salt, e.Content)
		}
		out = append(out, &veritrail.StoredEvent{Seq: e.Seq, TimeNS: e.Time.UnixNano(), Envelope: veritrail.AppendEnvelope(nil, e), Content: e.Content, Salt: salt})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./export -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

func write(t *testing.T, format string, content bool, evs []*veritrail.StoredEvent) []byte {
	var buf bytes.Buffer
	w, err := export.NewWriter(&buf, format, content)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != int64(len(evs)) {
		t.Fatalf("count %d", w.Count())
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	evs := fixtures(t)
	for _, tc := range []struct {
		format  string
		content bool
		file    string
	}{
		{export.CSV, true, "events-content.csv"},
		{export.CSV, false, "events-metadata.csv"},
		{export.JSON, true, "events-content.json"},
		{export.NDJSON, false, "events-metadata.ndjson"},
	} {
		golden(t, tc.file, write(t, tc.format, tc.content, evs))
	}
}

func TestFormatsParse(t *testing.T) {
	evs := fixtures(t)
	// CSV: a header and one well-formed row per event.
	rows, err := csv.NewReader(bytes.NewReader(write(t, export.CSV, true, evs))).ReadAll()
	if err != nil || len(rows) != len(evs)+1 || len(rows[0]) != len(export.Columns)+1 || rows[0][len(rows[0])-1] != "content" {
		t.Fatalf("csv: %v rows, err %v", len(rows), err)
	}
	for _, r := range rows[1:] {
		if r[len(r)-1] != "" && !json.Valid([]byte(r[len(r)-1])) {
			t.Fatalf("content column is not JSON: %q", r[len(r)-1])
		}
	}
	// Without content the column is not there, and no content byte is.
	meta := write(t, export.CSV, false, evs)
	if bytes.Contains(meta, []byte("Flaky settlement test")) {
		t.Fatal("content in a metadata-only export")
	}
	// JSON: an array of the events; empty exports are valid too.
	var arr []map[string]any
	if err := json.Unmarshal(write(t, export.JSON, true, evs), &arr); err != nil || len(arr) != len(evs) {
		t.Fatalf("json: %v", err)
	}
	if err := json.Unmarshal(write(t, export.JSON, true, nil), &arr); err != nil || len(arr) != 0 {
		t.Fatalf("empty json: %v", err)
	}
	// NDJSON: one envelope per line, exactly as stored.
	lines := bytes.Split(bytes.TrimSpace(write(t, export.NDJSON, false, evs)), []byte("\n"))
	for i, l := range lines {
		if !bytes.Equal(l, evs[i].Envelope) {
			t.Fatalf("ndjson line %d is not the stored envelope", i)
		}
	}
}

// referenceCSV is the CSV row encoding/csv writes from the parsed envelope:
// the fast writer must produce exactly these bytes.
func referenceCSV(t *testing.T, evs []*veritrail.StoredEvent) []byte {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(append(append([]string(nil), export.Columns...), "content"))
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, ev := range evs {
		e, err := veritrail.ParseEnvelope(ev.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		var tg veritrail.Target
		if e.Target != nil {
			tg = *e.Target
		}
		var cx veritrail.Context
		if e.Context != nil {
			cx = *e.Context
		}
		var d veritrail.Decision
		if e.Decision != nil {
			d = *e.Decision
		}
		cw.Write([]string{e.ID, strconv.FormatInt(e.Seq, 10), ts(e.Time), ts(e.ReceivedAt), e.Type, e.Category(),
			e.Actor.Type, e.Actor.ID, e.Actor.Email, e.Actor.Name, e.AgentID, e.TaskID, e.SessionID, e.Connector, e.Tool,
			tg.Type, tg.ID, tg.Name, cx.TeamID, cx.IP, cx.UserAgent, cx.RequestID, e.Outcome,
			opt(e.Status), opt(e.DurationMS), d.Action, d.Policy, d.Reason, e.ContentDigest, string(ev.Content)})
	}
	cw.Flush()
	return buf.Bytes()
}

// FuzzCSV checks the CSV writer against encoding/csv over the parsed
// envelope, for any strings: quotes, commas, line breaks, leading spaces,
// escapes (the fallback path), non-ASCII.
func FuzzCSV(f *testing.F) {
	f.Add("auth.login", "Ada, \"the\" admin", " lead", "line\nbreak", `back\slash`, "ü€\u2028", int64(200))
	f.Add("x", "", "", "", "", "", int64(-1))
	f.Add("ai.prompt", "\t", "\\.", "a\rb", "\x01", "é", int64(0))
	f.Fuzz(func(t *testing.T, typ, name, email, reason, tool, agent string, status int64) {
		e := &veritrail.Event{ID: "ev-1", Seq: 7, Time: time.Unix(1700000000, 123000000).UTC(), ReceivedAt: time.Unix(1700000001, 0).UTC(),
			Type: typ, Actor: veritrail.Actor{Type: "user", ID: name, Email: email, Name: name}, Tool: tool, AgentID: agent,
			Target: &veritrail.Target{Type: "doc", Name: reason}, Context: &veritrail.Context{UserAgent: reason},
			Decision: &veritrail.Decision{Action: "block", Reason: reason}, Status: &status, Outcome: "failure"}
		ev := &veritrail.StoredEvent{Seq: 7, Envelope: veritrail.AppendEnvelope(nil, e), Content: []byte(`{"note":"` + "a,\\\"b\\\"\\n" + `"}`)}
		if _, err := veritrail.ParseEnvelope(ev.Envelope); err != nil {
			t.Skip() // not a storable event (e.g. invalid UTF-8)
		}
		var got bytes.Buffer
		w, _ := export.NewWriter(&got, export.CSV, true)
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if want := referenceCSV(t, []*veritrail.StoredEvent{ev}); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("CSV differs from encoding/csv:\n got %q\nwant %q", got.Bytes(), want)
		}
	})
}
