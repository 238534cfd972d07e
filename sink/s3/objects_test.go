package s3_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/s3"
	"github.com/veritrail/veritrail/sink/sinktest"
)

func lakeConfig() *sink.Config {
	return &sink.Config{Format: sink.FormatOCSF, Content: true, Layout: sink.LayoutSecurityLake, Region: "eu-west-1",
		AccountID: "123456789012", Sources: map[string]string{"6003": "veritrail-api/1.0"}}
}

// readParquet reads an object's rows as JSON-like values, and its
// top-level column names.
func readParquet(t *testing.T, b []byte) (rows []map[string]any, fields []string) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range f.Schema().Fields() {
		fields = append(fields, fl.Name())
	}
	r := parquet.NewReader(f)
	defer r.Close()
	for {
		row := map[string]any{}
		if err := r.Read(&row); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows, fields
}

// jsonValue is v as encoding/json would decode it (numbers as
// json.Number), with empty values dropped as the OCSF encoder omits them.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(strings_(v))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	dec.Decode(&out)
	return prune(out)
}

// strings_ turns the []byte the reader gives for map values into strings.
func strings_(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = strings_(e)
		}
	case map[any]any:
		m := map[string]any{}
		for k, e := range x {
			m[fmt.Sprint(strings_(k))] = strings_(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = strings_(x[i])
		}
	}
	return v
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = prune(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
	case []any:
		for i := range x {
			x[i] = prune(x[i])
		}
	}
	return v
}

// everyClass is the seed fixtures and one event of each OCSF class the
// sink produces (with a decision, a duration, a status and a request, so
// that every optional member occurs), formatted as an OCSF sink would.
func everyClass(t *testing.T, format ...string) *sink.Batch {
	f := sink.FormatOCSF
	if len(format) > 0 {
		f = format[0]
	}
	b := sinktest.Batch(t, f, true)
	at := time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)
	dur, st := int64(12), int64(403)
	for i, typ := range []string{"user.created", "auth.login", "audit.token_created", "role.granted", "team.member_added", "agent.tool_call"} {
		seq := int64(len(b.Records))
		e := &veritrail.Event{ID: fmt.Sprintf("evt-%d", i), Seq: seq, Time: at, ReceivedAt: at.Add(time.Second), Type: typ,
			Actor: veritrail.Actor{Type: "user", ID: "u1", Email: "dana@acme.example", Name: "Dana"}, AgentID: "agt", TaskID: "task-1",
			SessionID: "s-1", Connector: "github", Tool: "list_issues", Outcome: "failure", Status: &st, DurationMS: &dur,
			Target:   &veritrail.Target{Type: "repo", ID: "r1", Name: "veritrail"},
			Context:  &veritrail.Context{TeamID: "t1", IP: "192.0.2.1", UserAgent: "curl/8", RequestID: "req-1"},
			Decision: &veritrail.Decision{Action: "blocked", Policy: "no-export", Reason: "contractors"},
			Content:  []byte(`{"arguments":{"n":3074457346235995512},"note":"<&>"}`), ContentSalt: make([]byte, veritrail.SaltSize)}
		e.ContentDigest = veritrail.ContentDigest(e.ContentSalt, e.Content)
		r, err := sink.FormatRecord(f, b.Org, &veritrail.StoredEvent{Seq: seq, TimeNS: at.UnixNano(),
			Envelope: veritrail.AppendEnvelope(nil, e), Content: e.Content, Salt: e.ContentSalt}, true)
		if err != nil {
			t.Fatal(err)
		}
		b.Records = append(b.Records, r)
	}
	return b
}

func TestSecurityLakeParquetIsTheOCSFRecord(t *testing.T) {
	b := everyClass(t)
	c := lakeConfig()
	objs, err := s3.Objects(c, b)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	classes := map[int]bool{}
	for _, o := range objs {
		m := o.Manifest
		classes[m.OCSFClassUID] = true
		if !strings.HasPrefix(o.Key, "ext/"+c.LakeSource(m.OCSFClassUID)+"/region=eu-west-1/accountId=123456789012/eventDay=") ||
			!strings.HasSuffix(o.Key, ".parquet") || m.Encoding != "parquet" {
			t.Fatalf("key %s manifest %+v", o.Key, m)
		}
		rows, fields := readParquet(t, o.Body)
		if len(rows) != m.Count {
			t.Fatalf("%s: %d rows, manifest says %d", o.Key, len(rows), m.Count)
		}
		want := s3.Schema(m.OCSFClassUID)
		var wantFields []string
		for _, f := range want.Fields() {
			wantFields = append(wantFields, f.Name())
		}
		if !slices.Equal(fields, wantFields) {
			t.Fatalf("class %d: columns %v, want %v", m.OCSFClassUID, fields, wantFields)
		}
		for _, row := range rows {
			// the record this row came from, by its sequence
			seq := jsonValue(t, row["metadata"].(map[string]any)["sequence"]).(json.Number).String()
			var body []byte
			for _, r := range b.Records {
				if strconv.FormatInt(r.Seq, 10) == seq {
					body = r.Body
				}
			}
			if body == nil {
				t.Fatalf("row of sequence %v matches no record", seq)
			}
			var rec map[string]any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			dec.Decode(&rec)
			// unmapped is map<string,string>: a value that is not a string
			// is its JSON text, as the record has it.
			var raw struct{ Unmapped map[string]json.RawMessage }
			json.Unmarshal(body, &raw)
			um := rec["unmapped"].(map[string]any)
			for k, v := range um {
				if _, ok := v.(string); !ok {
					um[k] = string(raw.Unmapped[k])
				}
			}
			got, _ := json.Marshal(jsonValue(t, row))
			exp, _ := json.Marshal(jsonValue(t, rec))
			if !bytes.Equal(got, exp) {
				t.Fatalf("class %d row differs from the OCSF record\n got %s\nwant %s", m.OCSFClassUID, got, exp)
			}
			seen++
		}
	}
	if seen != len(b.Records) {
		t.Fatalf("%d rows for %d records", seen, len(b.Records))
	}
	var cl []int
	for c := range classes {
		cl = append(cl, c)
	}
	sort.Ints(cl)
	if !slices.Equal(cl, sink.OCSFClasses) {
		t.Fatalf("classes written %v, want every class %v", cl, sink.OCSFClasses)
	}
}

func TestHiveNDJSON(t *testing.T) {
	b := sinktest.Batch(t, sink.FormatNative, true)
	objs, err := s3.Objects(&sink.Config{Format: sink.FormatNative, Layout: sink.LayoutHive, Prefix: "audit/"}, b)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, "audit/org=acme/date=") || !strings.HasSuffix(o.Key, ".ndjson.gz") {
			t.Fatalf("key %s", o.Key)
		}
		zr, err := gzip.NewReader(bytes.NewReader(o.Body))
		if err != nil {
			t.Fatal(err)
		}
		all, _ := io.ReadAll(zr)
		lines = append(lines, strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")...)
	}
	if len(lines) != len(b.Records) {
		t.Fatalf("%d lines for %d records", len(lines), len(b.Records))
	}
}

// TestResentBatchSameObjects: the same records make the same object names
// and bytes (a batch sent again overwrites its objects with themselves),
// and a batch that grew keeps the names of the objects it had.
func TestResentBatchSameObjects(t *testing.T) {
	for _, c := range []*sink.Config{lakeConfig(), {Format: sink.FormatNative, Content: true, Layout: sink.LayoutHive}} {
		b := everyClass(t, c.Format)
		first, err := s3.Objects(c, &sink.Batch{Org: b.Org, Records: b.Records[:len(b.Records)-3]})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := s3.Objects(c, &sink.Batch{Org: b.Org, Records: b.Records[:len(b.Records)-3]})
		grown, _ := s3.Objects(c, b)
		for i := range first {
			if first[i].Key != again[i].Key || !bytes.Equal(first[i].Body, again[i].Body) || first[i].Manifest != again[i].Manifest {
				t.Fatalf("%s: the same records made another object", first[i].Key)
			}
			found := false
			for _, g := range grown {
				found = found || g.Key == first[i].Key && g.Manifest.Count >= first[i].Manifest.Count
			}
			if !found {
				t.Fatalf("%s: the grown batch has no object of that name", first[i].Key)
			}
		}
	}
}
