package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/all"
)

type nopStore struct{ veritrail.Store }

func (nopStore) LogHead(context.Context, int64) (int64, []byte, error) { return 10, nil, nil }

func testEngine(t testing.TB) *sink.Engine {
	key, _ := seal.New(make([]byte, seal.KeySize))
	// Loopback allowed: these tests are about settings; TestSinkDestinationsGuarded
	// (http) is about refusing destinations.
	e, err := sink.New(sink.Options{Store: nopStore{}, Key: key, Types: all.Types(), Outbound: netguard.Guard{AllowLoopback: true}})
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
	changed, err := e.Update(context.Background(), k, []byte(`{"service":"audit","tags":["env:prod"]}`), false)
	if err != nil || strings.Join(changed, ",") != "service,tags" {
		t.Fatalf("update: %v %v", changed, err)
	}
	if !strings.Contains(string(k.Config), `"secret_sealed":"v1:`) {
		t.Fatalf("the secret was dropped: %s", k.Config)
	}
	// Rotating the secret is reported, never shown.
	changed, err = e.Update(context.Background(), k, []byte(`{"secret":"key-two"}`), false)
	if err != nil || strings.Join(changed, ",") != "secret" || strings.Contains(string(k.Config), "key-two") {
		t.Fatalf("rotate: %v %v %s", changed, err, k.Config)
	}
	// To a file, and back.
	f := filepath.Join(t.TempDir(), "dd-key")
	os.WriteFile(f, []byte("key-three\n"), 0o600)
	if _, err := e.Update(context.Background(), k, []byte(`{"secret_file":"`+f+`"}`), false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Config), "secret_sealed") || !strings.Contains(string(k.Config), f) {
		t.Fatalf("to a file: %s", k.Config)
	}
	if _, err := e.Update(context.Background(), k, []byte(`{"secret":"key-four"}`), false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Config), "secret_file") {
		t.Fatalf("back to sealed: %s", k.Config)
	}
	// null clears an optional setting; a required one cannot be cleared.
	if _, err := e.Update(context.Background(), k, []byte(`{"tags":null}`), false); err != nil || strings.Contains(string(k.Config), "env:prod") {
		t.Fatalf("clear tags: %v %s", err, k.Config)
	}
	w, _ := e.Create(context.Background(), 1, []byte(`{"type":"webhook","url":"https://x.example","secret":"s"}`), true)
	if _, err := e.Update(context.Background(), w, []byte(`{"url":null}`), true); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Fatalf("clearing the url: %v", err)
	}
	if changed, err := e.Update(context.Background(), w, []byte(`{}`), true); err != nil || len(changed) != 0 {
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
		`{"type":"s3","bucket":"audit-lake","access_key_id":"AK","secret":"s3cr3t-value","endpoint":"http://127.0.0.1:8333","prefix":"a/"}`,
		`{"type":"s3","bucket":"lake","access_key_id":"AK","secret":"s3cr3t-value","format":"ocsf","layout":"security_lake","account_id":"123456789012","sources":{"3002":"vt"}}`,
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
		if _, err := e.Update(context.Background(), k, []byte(`{"name":"renamed"}`), true); err != nil {
			t.Fatalf("an accepted sink cannot be renamed: %v", err)
		}
	})
}

// TestS3Settings: an s3 sink's settings are checked, defaults filled in,
// and a refusal names the field.
func TestS3Settings(t *testing.T) {
	e := testEngine(t)
	const base = `"type":"s3","bucket":"audit-lake","access_key_id":"AKIAEXAMPLE","secret":"s3cr3t-value"`
	for _, tc := range []struct {
		body, field string
	}{
		{`{` + base + `}`, ""},
		{`{` + base + `,"endpoint":"http://127.0.0.1:8333","region":"eu-west-1","prefix":"veritrail/audit/"}`, ""},
		{`{` + base + `,"format":"ocsf","layout":"security_lake","account_id":"123456789012","sources":{"3002":"vt-auth","6003":"vt-api/1.0"}}`, ""},
		{`{` + base + `,"batch":{"max_events":100000,"max_bytes":67108864,"max_wait":"1h"}}`, ""},
		{`{"type":"s3","bucket":"audit-lake","access_key_id":"AKIAEXAMPLE"}`, "secret"},
		{`{"type":"s3","bucket":"audit-lake","secret":"s"}`, "access_key_id"},
		{`{` + strings.Replace(base, "audit-lake", "Audit_Lake", 1) + `}`, "bucket"},
		{`{` + base + `,"endpoint":"http://127.0.0.1:8333/audit-lake"}`, "endpoint"},
		{`{` + base + `,"endpoint":"http://user:pw@127.0.0.1:8333"}`, "endpoint"},
		{`{` + base + `,"region":"EU WEST"}`, "region"},
		{`{` + base + `,"layout":"flat"}`, "layout"},
		{`{` + base + `,"prefix":"/abs"}`, "prefix"},
		{`{` + base + `,"account_id":"123456789012"}`, "account_id"},
		{`{` + base + `,"layout":"security_lake","account_id":"123456789012"}`, "format"},
		{`{` + base + `,"format":"ocsf","layout":"security_lake"}`, "account_id"},
		{`{` + base + `,"format":"ocsf","layout":"security_lake","account_id":"123456789012","sources":{"4001":"x"}}`, "sources.4001"},
		{`{` + base + `,"format":"ocsf","layout":"security_lake","account_id":"123456789012","sources":{"3002":"no spaces"}}`, "sources.3002"},
		{`{` + base + `,"batch":{"max_events":100001}}`, "batch.max_events"},
		{`{` + base + `,"batch":{"max_wait":"2h"}}`, "batch.max_wait"},
		{`{` + base + `,"topic":"t"}`, "topic"},
		{`{"type":"webhook","url":"https://x.example","secret":"s","bucket":"b"}`, "bucket"},
	} {
		k, err := e.Create(context.Background(), 1, []byte(tc.body), true)
		var ve *veritrail.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.field != "" && (err == nil || !errors.As(err, &ve) || ve.Field != tc.field):
			t.Errorf("%s: %v, want a refusal of field %s", tc.body, err, tc.field)
		case err == nil && strings.Contains(string(k.Config), "s3cr3t-value"):
			t.Errorf("%s: the secret access key is stored in the clear", tc.body)
		}
	}
	k, _ := e.Create(context.Background(), 1, []byte(`{`+base+`}`), true)
	var c sink.Config
	json.Unmarshal(k.Config, &c)
	if c.Region != "us-east-1" || c.Layout != sink.LayoutHive || c.Batch.MaxEvents != 10000 || c.Batch.MaxWait != sink.Duration(time.Minute) {
		t.Fatalf("defaults: %+v", c)
	}
	if got := (&sink.Config{Sources: map[string]string{"3002": "vt-auth"}}).LakeSource(6003); got != "veritrail-6003" {
		t.Fatalf("default source %q", got)
	}
}
