package datadog_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/datadog"
	"github.com/veritrail/veritrail/sink/sinktest"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

func TestIntakeBody(t *testing.T) {
	var got []byte
	var hdr http.Header
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		if r.URL.Path != "/api/v2/logs" || r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "not gzip", http.StatusBadRequest)
			return
		}
		got, _ = io.ReadAll(zr)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	// The test server's certificate, as a private CA in ca_file.
	caFile := t.TempDir() + "/ca.pem"
	writeCA(t, srv, caFile)
	cfg := &sink.Config{Format: sink.FormatOCSF, URL: srv.URL + "/api/v2/logs", Service: "veritrail", Tags: []string{"env:prod"}, CAFile: caFile}
	d, err := datadog.New(&sink.Settings{Outbound: loopbackOK, Config: cfg, Secret: []byte("dd-api-key")})
	if err != nil {
		t.Fatal(err)
	}
	b := sinktest.Batch(t, sink.FormatOCSF, false)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("DD-API-KEY") != "dd-api-key" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", hdr)
	}
	sinktest.Golden(t, "intake-ocsf.json", got)
	var logs []struct {
		Source    string `json:"ddsource"`
		Tags      string `json:"ddtags"`
		Service   string `json:"service"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(got, &logs); err != nil || len(logs) != len(b.Records) {
		t.Fatalf("%d logs: %v", len(logs), err)
	}
	for i, l := range logs {
		if l.Source != "veritrail" || l.Message != string(b.Records[i].Body) || !strings.Contains(l.Tags, "organization:acme") ||
			!strings.Contains(l.Tags, "env:prod") || l.Timestamp != b.Records[i].Event.Time.UnixMilli() {
			t.Fatalf("log %d: %+v", i, l)
		}
	}
	if datadog.IntakeURL("datadoghq.eu") != "https://http-intake.logs.datadoghq.eu/api/v2/logs" {
		t.Fatal(datadog.IntakeURL("datadoghq.eu"))
	}
	sinktest.Golden(t, "intake-native.json", datadog.AppendBody(nil, sinktest.Batch(t, sink.FormatNative, true), &sink.Config{Format: "native", Service: "veritrail"}))

	// Without the CA: a certificate error, which retrying will not fix.
	cfg2 := *cfg
	cfg2.CAFile = ""
	d2, _ := datadog.New(&sink.Settings{Outbound: loopbackOK, Config: &cfg2, Secret: []byte("k")})
	if err := d2.Send(context.Background(), b); err == nil || !sink.IsPermanent(err) {
		t.Fatalf("unknown CA: %v", err)
	}
}
