package sink_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/all"
)

type nopStore struct{ veritrail.Store }

func (nopStore) LogHead(context.Context, int64) (int64, []byte, error) { return 10, nil, nil }

func testEngine(t testing.TB) *sink.Engine {
	key, _ := seal.New(make([]byte, seal.KeySize))
	e, err := sink.New(sink.Options{Store: nopStore{}, Key: key, Types: all.Types()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestUpdateSecrets(t *testing.T) {
	e := testEngine(t)
	k, err := e.Create(context.Background(), 1, []byte(`{"type":"datadog","secret":"key-one","start":"now"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Delivered != 9 {
		t.Fatalf("start now: %d", k.Delivered)
	}
	// Another setting: the sealed secret stays.
	changed, err := e.Update(k, []byte(`{"service":"audit","tags":["env:prod"]}`), false)
	if err != nil || strings.Join(changed, ",") != "service,tags" {
		t.Fatalf("update: %v %v", changed, err)
	}
	if !strings.Contains(string(k.Config), `"secret_sealed":"v1:`) {
		t.Fatalf("the secret was dropped: %s", k.Config)
	}
	// Rotating the secret is reported, never shown.
	changed, err = e.Update(k, []byte(`{"secret":"key-two"}`), false)
	if err != nil || strings.Join(changed, ",") != "secret" || strings.Contains(string(k.Config), "key-two") {
		t.Fatalf("rotate: %v %v %s", changed, err, k.Config)
	}
	// To a file, and back.
	f := filepath.Join(t.TempDir(), "dd-key")
	os.WriteFile(f, []byte("key-three\n"), 0o600)
	if _, err := e.Update(k, []byte(`{"secret_file":"`+f+`"}`), false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Config), "secret_sealed") || !strings.Contains(string(k.Config), f) {
		t.Fatalf("to a file: %s", k.Config)
	}
	if _, err := e.Update(k, []byte(`{"secret":"key-four"}`), false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Config), "secret_file") {
		t.Fatalf("back to sealed: %s", k.Config)
	}
	// null clears an optional setting; a required one cannot be cleared.
	if _, err := e.Update(k, []byte(`{"tags":null}`), false); err != nil || strings.Contains(string(k.Config), "env:prod") {
		t.Fatalf("clear tags: %v %s", err, k.Config)
	}
	w, _ := e.Create(context.Background(), 1, []byte(`{"type":"webhook","url":"https://x.example","secret":"s"}`), true)
	if _, err := e.Update(w, []byte(`{"url":null}`), true); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Fatalf("clearing the url: %v", err)
	}
	if changed, err := e.Update(w, []byte(`{}`), true); err != nil || len(changed) != 0 {
		t.Fatalf("empty patch: %v %v", changed, err)
	}
}

// FuzzCreate: no request body makes Create panic, and whatever it accepts
// is a sink whose stored form decodes, shows, and keeps the secret sealed.
func FuzzCreate(f *testing.F) {
	for _, s := range []string{
		`{"type":"webhook","url":"https://x.example","secret":"s3cr3t-value"}`,
		`{"type":"splunk_hec","url":"https://s:8088","secret":"s3cr3t-value","index":"i","format":"ocsf","filters":{"types":["auth.*"],"categories":["ai"]}}`,
		`{"type":"syslog","address":"h:514","framing":"newline","format":"cef","facility":4}`,
		`{"type":"kafka","brokers":["k:9092"],"topic":"t","sasl":"scram-sha-256","username":"u","secret":"s3cr3t-value"}`,
		`{"type":"datadog","secret":"s3cr3t-value","batch":{"max_events":10,"max_bytes":2048,"max_wait":"250ms"}}`,
		`{"type":"webhook","url":"https://x.example","secret":"s","batch":{"max_wait":5}}`,
		`{}`, `[]`, `{"type":null}`,
	} {
		f.Add([]byte(s))
	}
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		k, err := e.Create(context.Background(), 1, body, true)
		if err != nil {
			if veritrail.ErrorCode(err) == veritrail.EInternal {
				t.Fatalf("an internal error for a client's body: %v", err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(k.Config, &m); err != nil {
			t.Fatalf("stored config does not decode: %v", err)
		}
		var in map[string]any
		json.Unmarshal(body, &in)
		if s, ok := in["secret"].(string); ok && len(s) >= 4 && strings.Contains(string(k.Config), s) {
			t.Fatalf("the stored config shows the secret %q: %s", s, k.Config)
		}
		if _, err := e.Update(k, []byte(`{"name":"renamed"}`), true); err != nil {
			t.Fatalf("an accepted sink cannot be renamed: %v", err)
		}
	})
}
