package splunk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/sinktest"
	"github.com/veritrail/veritrail/sink/splunk"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

func TestHECBody(t *testing.T) {
	var got []byte
	var auth, path, channel string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		auth, path, channel = r.Header.Get("Authorization"), r.URL.Path, r.Header.Get("X-Splunk-Request-Channel")
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	cfg := &sink.Config{Format: sink.FormatNative, URL: srv.URL, Index: "security", Hostname: "veritrail-1"}
	d, err := splunk.New(&sink.Settings{Outbound: loopbackOK, SinkID: "snk_test", Config: cfg, Secret: []byte("11111111-2222-3333-4444-555555555555")})
	if err != nil {
		t.Fatal(err)
	}
	b := sinktest.Batch(t, sink.FormatNative, true)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if path != splunk.Path || auth != "Splunk 11111111-2222-3333-4444-555555555555" || len(channel) != 36 {
		t.Fatalf("path %q auth %q channel %q", path, auth, channel)
	}
	sinktest.Golden(t, "hec-native.json", got)
	// HEC reads concatenated event objects.
	dec := json.NewDecoder(bytes.NewReader(got))
	n := 0
	for dec.More() {
		var ev struct {
			Time       float64         `json:"time"`
			Host       string          `json:"host"`
			Index      string          `json:"index"`
			SourceType string          `json:"sourcetype"`
			Event      json.RawMessage `json:"event"`
			Fields     map[string]any  `json:"fields"`
		}
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Time != float64(b.Records[n].Event.Time.UnixMilli())/1000 || ev.Index != "security" || ev.SourceType != "veritrail:event" ||
			string(ev.Event) != string(b.Records[n].Body) || ev.Fields["organization"] != "acme" {
			t.Fatalf("event %d: %+v", n, ev)
		}
		n++
	}
	if n != len(b.Records) {
		t.Fatalf("%d events in the body, want %d", n, len(b.Records))
	}
	sinktest.Golden(t, "hec-ocsf.json", splunk.AppendBody(nil, sinktest.Batch(t, sink.FormatOCSF, false), &sink.Config{Format: sink.FormatOCSF}))
}

func TestHECRefusedToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"text":"Invalid token","code":4}`)
	}))
	defer srv.Close()
	d, _ := splunk.New(&sink.Settings{Outbound: loopbackOK, Config: &sink.Config{URL: srv.URL + "/services/collector/event"}, Secret: []byte("bad")})
	err := d.Send(context.Background(), sinktest.Batch(t, sink.FormatNative, false))
	if !sink.IsPermanent(err) || !bytes.Contains([]byte(err.Error()), []byte("Invalid token")) {
		t.Fatalf("refused token: %v", err)
	}
}
