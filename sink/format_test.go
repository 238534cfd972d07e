package sink_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/sinktest"
)

func lines(b *sink.Batch) []byte {
	var out []byte
	for _, r := range b.Records {
		out = append(out, r.Body...)
		out = append(out, '\n')
	}
	return out
}

func TestNativeRecords(t *testing.T) {
	evs := sinktest.Events(t)
	b := sinktest.Batch(t, sink.FormatNative, true)
	sinktest.Golden(t, "native-content.ndjson", lines(b))
	meta := sinktest.Batch(t, sink.FormatNative, false)
	sinktest.Golden(t, "native-metadata.ndjson", lines(meta))
	for i, r := range meta.Records {
		// Without content a native record is the envelope itself: the
		// bytes the Merkle tree commits to, so a SIEM can verify it.
		if !bytes.Equal(r.Body, evs[i].Envelope) {
			t.Fatalf("record %d is not the stored envelope", i)
		}
		if r.Seq != int64(i) || r.ID == "" {
			t.Fatalf("record %d: seq %d id %q", i, r.Seq, r.ID)
		}
		if bytes.Contains(r.Body, []byte(`"content"`)) {
			t.Fatalf("metadata-only record %d carries content", i)
		}
	}
	for i, r := range b.Records {
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if len(evs[i].Content) > 0 && m["content"] == nil {
			t.Fatalf("record %d lost its content", i)
		}
	}
}

// ocsfRecord holds the fields every OCSF record must have.
type ocsfRecord struct {
	ClassUID    int    `json:"class_uid"`
	CategoryUID int    `json:"category_uid"`
	ActivityID  int    `json:"activity_id"`
	TypeUID     int    `json:"type_uid"`
	SeverityID  int    `json:"severity_id"`
	StatusID    int    `json:"status_id"`
	Time        int64  `json:"time"`
	ActionID    int    `json:"action_id"`
	Disposition string `json:"disposition"`
	Metadata    struct {
		Version   string   `json:"version"`
		UID       string   `json:"uid"`
		Sequence  *int64   `json:"sequence"`
		TenantUID string   `json:"tenant_uid"`
		EventCode string   `json:"event_code"`
		Profiles  []string `json:"profiles"`
		Product   struct {
			Name string `json:"name"`
		} `json:"product"`
	} `json:"metadata"`
	Actor    map[string]any `json:"actor"`
	Unmapped map[string]any `json:"unmapped"`
}

func TestOCSFRecords(t *testing.T) {
	b := sinktest.Batch(t, sink.FormatOCSF, true)
	sinktest.Golden(t, "ocsf-content.ndjson", lines(b))
	sinktest.Golden(t, "ocsf-metadata.ndjson", lines(sinktest.Batch(t, sink.FormatOCSF, false)))
	classes := map[string]int{}
	for i, r := range b.Records {
		var o ocsfRecord
		if err := json.Unmarshal(r.Body, &o); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		e := r.Event
		if o.TypeUID != o.ClassUID*100+o.ActivityID || o.CategoryUID != o.ClassUID/1000 {
			t.Errorf("%s: class %d category %d activity %d type %d", e.Type, o.ClassUID, o.CategoryUID, o.ActivityID, o.TypeUID)
		}
		if o.Metadata.Version != sink.OCSFVersion || o.Metadata.UID != e.ID || o.Metadata.Sequence == nil ||
			*o.Metadata.Sequence != e.Seq || o.Metadata.TenantUID != "acme" || o.Metadata.EventCode != e.Type || o.Metadata.Product.Name != "Veritrail" {
			t.Errorf("%s: metadata %+v", e.Type, o.Metadata)
		}
		if o.Time != e.Time.UnixMilli() || o.Actor["user"] == nil || o.SeverityID < 1 {
			t.Errorf("%s: time %d actor %v severity %d", e.Type, o.Time, o.Actor, o.SeverityID)
		}
		if (e.Outcome == veritrail.OutcomeSuccess) != (o.StatusID == 1) {
			t.Errorf("%s: outcome %s status_id %d", e.Type, e.Outcome, o.StatusID)
		}
		// The security_control profile on every governance decision.
		if e.Decision != nil {
			want := map[string]int{"allowed": 1, "blocked": 2, "redacted": 4}[e.Decision.Action]
			if o.ActionID != want || len(o.Metadata.Profiles) != 1 || o.Metadata.Profiles[0] != "security_control" {
				t.Errorf("%s: decision %s → action_id %d profiles %v", e.Type, e.Decision.Action, o.ActionID, o.Metadata.Profiles)
			}
		} else if o.ActionID != 0 || len(o.Metadata.Profiles) != 0 {
			t.Errorf("%s: no decision, yet action_id %d", e.Type, o.ActionID)
		}
		if len(e.Content) > 0 && o.Unmapped["content"] == nil {
			t.Errorf("%s: content missing from unmapped", e.Type)
		}
		classes[e.Type] = o.ClassUID
	}
	// The classes the issue names.
	for typ, class := range map[string]int{
		"authentication.sign_in_succeeded": 3002, "authentication.sign_in_failed": 3002,
		"agent.action": 6003,
	} {
		if classes[typ] != class {
			t.Errorf("%s: class %d, want %d", typ, classes[typ], class)
		}
	}
}

func TestOCSFClasses(t *testing.T) {
	for _, c := range []struct {
		typ, tool       string
		class, activity int
	}{
		{"auth.login", "", 3002, 1},
		{"auth.logout", "", 3002, 2},
		{"authentication.sign_in_failed", "", 3002, 1},
		{"auth.mfa_challenge", "", 3002, 99},
		{"user.created", "", 3001, 1},
		{"user.password_reset", "", 3001, 4},
		{"audit.user_disabled", "", 3001, 5},
		{"user.mfa_enabled", "", 3001, 10},
		{"team.created", "", 3006, 6},
		{"team.member_added", "", 3006, 3},
		{"user.role_changed", "", 3005, 1},
		{"audit.token_created", "", 3004, 1},
		{"audit.sink_deleted", "", 3004, 4},
		{"agent.tool_call", "create_issue", 6003, 1},
		{"agent.tool_call", "search", 6003, 2},
		{"agent.tool_call", "frobnicate", 6003, 99},
		{"ai.interaction", "", 6003, 2},
		{"board.board_opened", "", 6003, 2},
		{"audit.export", "", 3004, 2},
	} {
		e := &veritrail.Event{ID: "x", Type: c.typ, Tool: c.tool, Actor: veritrail.Actor{Type: "user", ID: "u"}}
		var o ocsfRecord
		json.Unmarshal(sink.AppendOCSF(nil, "acme", e), &o)
		if o.ClassUID != c.class || o.ActivityID != c.activity {
			t.Errorf("%s (%s): class %d activity %d, want %d %d", c.typ, c.tool, o.ClassUID, o.ActivityID, c.class, c.activity)
		}
	}
}

func TestCEFRecords(t *testing.T) {
	b := sinktest.Batch(t, sink.FormatCEF, false)
	sinktest.Golden(t, "cef.txt", lines(b))
	for _, r := range b.Records {
		line := string(r.Body)
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("a CEF line holds a line break: %q", line)
		}
		h := splitCEFHeader(line)
		if len(h) != 8 || h[0] != "CEF:0" || h[1] != "Veritrail" || h[4] != r.Event.Type {
			t.Fatalf("header %q", h)
		}
		ext := parseCEFExtension(h[7])
		if ext["externalId"] != r.ID || ext["cn1Label"] != "seq" || ext["cn1"] != strconv.FormatInt(r.Seq, 10) || ext["cs1"] != "acme" ||
			ext["rt"] != strconv.FormatInt(r.Event.Time.UnixMilli(), 10) {
			t.Errorf("extension of %s: %v", r.ID, ext)
		}
	}
}

// splitCEFHeader splits at unescaped pipes, into 7 header fields and the
// extension.
func splitCEFHeader(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if len(out) == 7 {
			return append(out, s[i:])
		}
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == '|':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// parseCEFExtension reads key=value pairs: a value runs to the space
// before the next unescaped key=.
func parseCEFExtension(s string) map[string]string {
	out := map[string]string{}
	key := regexp.MustCompile(`(?:^| )([A-Za-z0-9]+)=`)
	idx := key.FindAllStringSubmatchIndex(s, -1)
	var real [][]int
	for _, m := range idx {
		// '=' escaped as \= is not a key separator.
		if m[3] < len(s) && m[3] > 0 && s[m[3]-1] == '\\' {
			continue
		}
		real = append(real, m)
	}
	for i, m := range real {
		end := len(s)
		if i+1 < len(real) {
			end = real[i+1][0]
		}
		v := s[m[1]:end]
		v = strings.NewReplacer(`\=`, `=`, `\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(v)
		out[s[m[2]:m[3]]] = v
	}
	return out
}

// FuzzCEF: whatever an event holds, its CEF line is one line, its header
// has exactly 7 unescaped pipes before the extension, and the extension's
// values come back as written.
func FuzzCEF(f *testing.F) {
	f.Add("auth.login", "dana@example.com", "a|b\\c=d\ne", "policy=x")
	f.Add("agent.tool_call", "", "", "")
	f.Fuzz(func(t *testing.T, typ, email, reason, policy string) {
		if !veritrail.ValidType(typ) {
			typ = "auth.login"
		}
		e := &veritrail.Event{ID: "evt", Seq: 7, Type: typ, Actor: veritrail.Actor{Type: "user", Email: email},
			Decision: &veritrail.Decision{Action: "blocked", Policy: policy, Reason: reason}}
		line := string(sink.AppendCEF(nil, "acme", e))
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("line break in %q", line)
		}
		h := splitCEFHeader(line)
		if len(h) != 8 || h[4] != typ {
			t.Fatalf("header %q of %q", h, line)
		}
		ext := parseCEFExtension(h[7])
		if strings.ContainsAny(reason, "\x00") || strings.Contains(reason, " ") || strings.Contains(policy, " ") {
			return // values with spaces followed by key= are ambiguous to any CEF reader
		}
		if reason != "" && ext["reason"] != reason {
			t.Fatalf("reason %q came back as %q from %q", reason, ext["reason"], line)
		}
	})
}

// TestNativeFieldsAgreeWithParse: native records skip the full envelope
// parse; what destinations read from Record.Event (time, type, outcome,
// decision for severities and tags) must equal the full parse's.
func TestNativeFieldsAgreeWithParse(t *testing.T) {
	evs := sinktest.Events(t)
	for i := range evs {
		r, err := sink.FormatRecord(sink.FormatNative, "acme", &evs[i], false)
		if err != nil {
			t.Fatal(err)
		}
		full, err := veritrail.ParseEnvelope(evs[i].Envelope)
		if err != nil {
			t.Fatal(err)
		}
		got, want := r.Event, full
		action := func(e *veritrail.Event) string {
			if e.Decision == nil {
				return ""
			}
			return e.Decision.Action
		}
		if got.ID != want.ID || got.Seq != want.Seq || !got.Time.Equal(want.Time) || got.Type != want.Type ||
			got.Outcome != want.Outcome || action(got) != action(want) || r.ID != want.ID || r.Seq != want.Seq {
			t.Fatalf("event %d: native fields %+v, full parse %+v", i, got, want)
		}
	}
	// Escaped strings are read unescaped; bytes that are not an envelope
	// are refused.
	e := &veritrail.Event{ID: "ev-1", Seq: 7, Time: time.Unix(1700000000, 5).UTC(), ReceivedAt: time.Unix(1700000001, 0).UTC(),
		Type: "admin.setting_changed", Actor: veritrail.Actor{Type: "user", ID: "u\"1"}, Outcome: veritrail.OutcomeFailure,
		Decision: &veritrail.Decision{Action: "a\nb"}}
	env := veritrail.AppendEnvelope(nil, e)
	r, err := sink.FormatRecord(sink.FormatNative, "acme", &veritrail.StoredEvent{Seq: 7, Envelope: env}, false)
	if err != nil || r.Event.Decision.Action != "a\nb" || r.Event.Outcome != veritrail.OutcomeFailure || r.Seq != 7 || string(r.Body) != string(env) {
		t.Fatalf("escaped: %+v %v", r.Event, err)
	}
	if _, err := sink.FormatRecord(sink.FormatNative, "acme", &veritrail.StoredEvent{Seq: 7, Envelope: env[:len(env)-1]}, false); err == nil {
		t.Fatal("a cut envelope formatted")
	}
}
