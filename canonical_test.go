package veritrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCanonicalJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{}`},
		{` { "b" : 1 , "a" : [ 1 , 2 , { } ] } `, `{"a":[1,2,{}],"b":1}`},
		{`{"id":3074457346235995512,"x":1.50,"y":-0.0,"z":1e+10}`, `{"id":3074457346235995512,"x":1.50,"y":-0.0,"z":1e+10}`},
		{`{"s":"\u00e9\/\"\\\n\u0001\u2028"}`, "{\"s\":\"é/\\\"\\\\\\n\\u0001\u2028\"}"},
		{`{"emoji":"\ud83d\ude00"}`, `{"emoji":"😀"}`},
		{`{"t":true,"f":false,"n":null}`, `{"f":false,"n":null,"t":true}`},
		// RFC 8785 orders keys by UTF-16 code units: U+10000 (a surrogate
		// pair, 0xD800…) sorts before U+E000.
		{"{\"\ue000\":1,\"\U00010000\":2,\"a\":3}", "{\"a\":3,\"\U00010000\":2,\"\ue000\":1}"},
		{`{"a":{"d":1,"c":2}}`, `{"a":{"c":2,"d":1}}`},
	} {
		got, err := AppendCanonicalJSON(nil, []byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		`{"a":1,"a":2}`,    // duplicate key
		`{"s":"\ud800"}`,   // lone surrogate
		`{"s":"\udc00x"}`,  // lone low surrogate
		`{"a":01}`,         // leading zero
		`{"a":1.}`,         // bad fraction
		`{"a":tru}`,        // bad literal
		`{"a":1}x`,         // trailing data
		`{"a" 1}`,          // missing colon
		`{"a":"\x"}`,       // bad escape
		"{\"a\":\"\xff\"}", // invalid UTF-8
		"{\"a\":\"\t\"}",   // raw control character
		`{"a":[1,2}`,       // unbalanced
		strings.Repeat(`{"a":`, MaxJSONDepth+2) + "1" + strings.Repeat("}", MaxJSONDepth+2),
	} {
		if out, err := AppendCanonicalJSON(nil, []byte(bad)); err == nil {
			t.Errorf("%q: accepted as %s", bad, out)
		}
	}
}

// FuzzCanonicalJSON checks that canonical output is valid JSON, means the
// same as the input, and is a fixed point.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,{"c":null}],"a":"x"}`, `{"n":-1.5e3}`, `{"u":"\u00e9\ud83d\ude00"}`, `[1,"a",true]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := AppendCanonicalJSON(nil, in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q for %q", out, in)
		}
		// Numbers are compared as written (1e700 is valid JSON, if not a
		// float64).
		decode := func(b []byte) (any, error) {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var v any
			return v, dec.Decode(&v)
		}
		a, err := decode(in)
		if err != nil {
			t.Fatalf("accepted invalid input %q", in)
		}
		b, err := decode(out)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
		again, err := AppendCanonicalJSON(nil, out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", out, again, err)
		}
	})
}

func TestEnvelopeRoundTrip(t *testing.T) {
	st, d := int64(-32601), int64(0)
	e := &Event{
		ID: "x", Seq: 7, Type: "agent.tool_call",
		Actor:   Actor{Type: "agent", ID: "a\"b", Name: "Ünïcode \n name"},
		Target:  &Target{ID: "t"},
		Context: &Context{IP: "2001:db8::1"},
		Status:  &st, DurationMS: &d,
		Decision:      &Decision{Action: "blocked", Reason: "<script>"},
		ContentDigest: strings.Repeat("ab", 32),
	}
	b := AppendEnvelope(nil, e)
	back, err := CheckEnvelope(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(AppendEnvelope(nil, back)) != string(b) {
		t.Fatalf("round trip changed the bytes")
	}
	if !strings.Contains(string(b), `"reason":"<script>"`) {
		t.Fatalf("HTML characters must not be escaped: %s", b)
	}
	// A non-canonical spelling of the same event is refused.
	if _, err := CheckEnvelope([]byte(strings.Replace(string(b), `{"id":"x",`, `{ "id":"x",`, 1))); err == nil {
		t.Fatal("non-canonical envelope accepted")
	}
	// An empty target or context is omitted, not written as {}.
	e2 := &Event{ID: "y", Type: "a.b", Actor: Actor{Type: "user", ID: "u"}, Target: &Target{}, Context: &Context{}}
	if s := string(AppendEnvelope(nil, e2)); strings.Contains(s, "target") || strings.Contains(s, "context") {
		t.Fatalf("empty members written: %s", s)
	}
}

func TestAppendEventJSON(t *testing.T) {
	env := []byte(`{"id":"x","seq":0}`)
	got := AppendEventJSON(nil, env, []byte(`{"a":1}`), []byte{1, 2, 3})
	want := `{"id":"x","seq":0,"content":{"a":1},"content_salt":"AQID"}`
	if string(got) != want {
		t.Fatalf("got %s", got)
	}
	if string(AppendEventJSON(nil, env, nil, nil)) != string(env) {
		t.Fatal("without content the envelope must be unchanged")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	q := &Query{Order: OrderAsc, Text: "x"}
	c := &Cursor{Order: OrderAsc, TimeNS: -5, Seq: 1 << 40, Fingerprint: q.Fingerprint()}
	back, err := DecodeCursor(c.Encode(), q)
	if err != nil || *back != *c {
		t.Fatalf("%+v %v", back, err)
	}
}

func TestParseFilterValue(t *testing.T) {
	r, err := ParseFilterValue(FieldIP, "10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	in := (&Event{Context: &Context{IP: "10.1.255.255"}})
	out := (&Event{Context: &Context{IP: "10.2.0.0"}})
	kin, _ := in.IndexKey(FieldIP)
	kout, _ := out.IndexKey(FieldIP)
	if !r.Contains(kin) || r.Contains(kout) {
		t.Fatal("CIDR range is wrong")
	}
	r, _ = ParseFilterValue(FieldStatus, "4xx")
	for st, want := range map[int64]bool{399: false, 400: true, 499: true, 500: false, -32601: false} {
		if r.Contains(StatusKey(st)) != want {
			t.Errorf("4xx contains %d: %v", st, !want)
		}
	}
	r, _ = ParseFilterValue(FieldType, "auth.*")
	for typ, want := range map[string]bool{"auth.login": true, "auth.x.y": true, "authz.login": false, "auth": false} {
		if r.Contains(typ) != want {
			t.Errorf("auth.* contains %s: %v", typ, !want)
		}
	}
	for _, bad := range []struct {
		f Field
		v string
	}{{FieldType, "Bad Type"}, {FieldOutcome, "maybe"}, {FieldStatus, "abc"}, {FieldIP, "10.0.0.0/99"}, {FieldDecision, "x"}, {FieldActorID, ""}} {
		if _, err := ParseFilterValue(bad.f, bad.v); ErrorCode(err) != EInvalid {
			t.Errorf("%s=%q: %v", bad.f, bad.v, err)
		}
	}
}

// parseEnvelopeJSON is the reflection-based reference for parseEnvelopeFast.
func parseEnvelopeJSON(b []byte) (*Event, error) {
	var j envelopeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.Seq == nil {
		return nil, errors.New("no seq")
	}
	return &Event{ID: j.ID, Seq: *j.Seq, Time: j.Time.UTC(), ReceivedAt: j.ReceivedAt.UTC(), Type: j.Type, Actor: j.Actor,
		AgentID: j.AgentID, TaskID: j.TaskID, SessionID: j.SessionID, Connector: j.Connector, Tool: j.Tool, Target: j.Target,
		Context: j.Context, Outcome: j.Outcome, Status: j.Status, DurationMS: j.DurationMS, Decision: j.Decision,
		ContentDigest: j.ContentDigest}, nil
}

// FuzzParseEnvelope checks that the fast envelope parser agrees with
// encoding/json on everything it accepts.
func FuzzParseEnvelope(f *testing.F) {
	st := int64(-7)
	f.Add(AppendEnvelope(nil, &Event{ID: "a\"b", Seq: 3, Type: "a.b", Actor: Actor{Type: "user", ID: "é\u2028"}, Status: &st,
		Target: &Target{ID: "t"}, Context: &Context{IP: "::1"}, Decision: &Decision{Action: "blocked"}, ContentDigest: "ab"}))
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00.5Z","type":"a.b","actor":{"type":"user","name":"\ud83d\ude00\n"}}`))
	// A lone surrogate before another escape: encoding/json reads U+FFFD
	// and then "A"; a parser that pairs them blindly loses the "A".
	f.Add([]byte(`{"id":"x","seq":1,"type":"a.b","actor":{"type":"user","name":"\ud800\u0041"}}`))
	// A repeated member: encoding/json decodes into the object it made.
	f.Add([]byte(`{"id":"x","seq":1,"type":"a.b","actor":{"type":"user"},"target":{"id":"t"},"target":{"name":"n"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseEnvelopeFast(b)
		if !ok {
			return
		}
		ref, err := parseEnvelopeJSON(b)
		if err != nil {
			t.Fatalf("fast parser accepted what encoding/json refuses (%v): %q", err, b)
		}
		if string(AppendEnvelope(nil, fast)) != string(AppendEnvelope(nil, ref)) {
			t.Fatalf("parsers disagree on %q", b)
		}
	})
}

// FuzzScanEnvelopeIndex checks that the allocation-free index scanner
// agrees with ParseEnvelope and IndexKeys whenever it answers.
func FuzzScanEnvelopeIndex(f *testing.F) {
	st := int64(-32601)
	f.Add(AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC), Type: "a.b",
		Actor: Actor{Type: "user", ID: "u", Email: "Mixed@Case.COM", Name: "n"}, Status: &st, AgentID: "ag", TaskID: "t",
		SessionID: "s", Connector: "c", Tool: "to", Outcome: "failure",
		Target: &Target{ID: "t", Type: "board", Name: "x"}, Context: &Context{IP: "10.0.0.1", TeamID: "tm", UserAgent: "ua", RequestID: "r"},
		Decision: &Decision{Action: "blocked", Policy: "p", Reason: "why"}, ContentDigest: "ab"}))
	f.Add(AppendEnvelope(nil, &Event{ID: "b", Time: time.Unix(0, 0).UTC(), Type: "x.y", Actor: Actor{Type: "agent", Email: "ü@x"}, Context: &Context{IP: "not an ip"}}))
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-02-30T00:00:00Z","received_at":"x","type":"a.b","actor":{"type":"user","id":"u"}}`))
	// Top-level members nested under an empty key are not the envelope's.
	f.Add([]byte(`{"":{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"a.b"}}`))
	f.Fuzz(func(t *testing.T, env []byte) {
		got := map[string]bool{}
		id, ts, ok := ScanEnvelopeIndex(env, func(fl Field, k []byte) { got[fmt.Sprint(fl)+"="+string(k)] = true })
		if !ok {
			return
		}
		e, err := parseEnvelopeJSON(env)
		if err != nil {
			t.Fatalf("scanner accepted what encoding/json refuses (%v): %q", err, env)
		}
		if string(id) != e.ID || ts != e.Time.UnixNano() {
			t.Fatalf("id/time differ: %q %d vs %q %d for %q", id, ts, e.ID, e.Time.UnixNano(), env)
		}
		want := map[string]bool{}
		for _, ie := range e.IndexKeys() {
			want[fmt.Sprint(ie.Field)+"="+ie.Key] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entries differ for %q:\n got %v\nwant %v", env, got, want)
		}
	})
}

// TestScanEnvelopeIndexAllocs holds the index scanner to its allocations:
// none when every key is a slice of the envelope, one buffer otherwise
// (and the string netip parses an address from).
func TestScanEnvelopeIndexAllocs(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
	st := int64(404)
	plain := AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: at, Type: "a.b", Actor: Actor{Type: "user", ID: "u", Email: "lower@case.example"},
		AgentID: "ag", Target: &Target{ID: "t", Type: "board"}, Decision: &Decision{Action: "blocked", Reason: "why"}})
	keyed := AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: at, Type: "a.b", Actor: Actor{Type: "user", Email: "Mixed@Case.example"},
		Status: &st, Context: &Context{IP: "10.0.0.1"}})
	for _, tc := range []struct {
		env  []byte
		max  float64
		keys int
	}{{plain, 0, 8}, {keyed, 2, 5}} {
		n := 0
		allocs := testing.AllocsPerRun(100, func() {
			n = 0
			if _, _, ok := ScanEnvelopeIndex(tc.env, func(Field, []byte) { n++ }); !ok {
				t.Fatalf("refused %s", tc.env)
			}
		})
		if allocs > tc.max || n != tc.keys {
			t.Errorf("%s: %v allocations (at most %v), %d keys (want %d)", tc.env, allocs, tc.max, n, tc.keys)
		}
	}
}
