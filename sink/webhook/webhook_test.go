package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/sinktest"
	"github.com/veritrail/veritrail/sink/webhook"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

// receiver is an HTTP endpoint that checks every body's HMAC, as a real
// receiver must, and keeps the verified bodies.
type receiver struct {
	secret []byte
	mu     sync.Mutex
	bodies [][]byte
	bad    int
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !webhook.Verify(rv.secret, body, r.Header.Get(webhook.SignatureHeader)) {
		rv.mu.Lock()
		rv.bad++
		rv.mu.Unlock()
		http.Error(w, "signature mismatch", http.StatusUnauthorized)
		return
	}
	rv.mu.Lock()
	rv.bodies = append(rv.bodies, body)
	rv.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func TestSignedBatches(t *testing.T) {
	rv := &receiver{secret: []byte("whsec-test")}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	b := sinktest.Batch(t, sink.FormatNative, true)
	cfg := &sink.Config{Format: sink.FormatNative, URL: srv.URL + "/hook"}
	d, err := webhook.New(&sink.Settings{Outbound: loopbackOK, Config: cfg, Secret: []byte("whsec-test")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(rv.bodies) != 1 {
		t.Fatalf("%d bodies verified", len(rv.bodies))
	}
	var got struct {
		Organization string            `json:"organization"`
		Sink         string            `json:"sink"`
		FirstSeq     int64             `json:"first_seq"`
		LastSeq      int64             `json:"last_seq"`
		SentAt       time.Time         `json:"sent_at"`
		Events       []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(rv.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Organization != "acme" || got.Sink != "snk_test" || got.FirstSeq != 0 || got.LastSeq != int64(len(b.Records)-1) ||
		len(got.Events) != len(b.Records) || got.SentAt.IsZero() {
		t.Fatalf("body: %+v", got)
	}
	for i, ev := range got.Events {
		if string(ev) != string(b.Records[i].Body) {
			t.Fatalf("event %d changed on the way", i)
		}
	}
	sinktest.Golden(t, "body.json", webhook.AppendBody(nil, b, time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)))

	// Signed with another secret: the receiver refuses, and that is not
	// worth retrying as is.
	d2, _ := webhook.New(&sink.Settings{Outbound: loopbackOK, Config: cfg, Secret: []byte("wrong")})
	err = d2.Send(context.Background(), b)
	if err == nil || !sink.IsPermanent(err) || rv.bad != 1 {
		t.Fatalf("wrong secret: %v (permanent %v), refused %d", err, sink.IsPermanent(err), rv.bad)
	}
}

func TestStatusClassification(t *testing.T) {
	for _, c := range []struct {
		status   int
		ok, perm bool
	}{{200, true, false}, {202, true, false}, {204, true, false}, {400, false, true}, {401, false, true}, {403, false, true},
		{404, false, true}, {408, false, false}, {413, false, true}, {429, false, false}, {500, false, false}, {503, false, false}, {301, false, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.status == 301 {
				w.Header().Set("Location", "http://elsewhere.invalid/")
			}
			w.WriteHeader(c.status)
			io.WriteString(w, "token=abc details")
		}))
		d, _ := webhook.New(&sink.Settings{Outbound: loopbackOK, Config: &sink.Config{URL: srv.URL}, Secret: []byte("s")})
		err := d.Send(context.Background(), sinktest.Batch(t, sink.FormatNative, false))
		srv.Close()
		if (err == nil) != c.ok || sink.IsPermanent(err) != c.perm {
			t.Errorf("HTTP %d: %v (permanent %v)", c.status, err, sink.IsPermanent(err))
		}
	}
	// Nobody listening: retried.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	d, _ := webhook.New(&sink.Settings{Outbound: loopbackOK, Config: &sink.Config{URL: url + "/x?token=secret"}, Secret: []byte("s")})
	err := d.Send(context.Background(), sinktest.Batch(t, sink.FormatNative, false))
	if err == nil || sink.IsPermanent(err) {
		t.Fatalf("refused connection: %v", err)
	}
	if s := err.Error(); strings.Contains(s, "token=secret") {
		t.Fatalf("the error shows the URL's query: %s", s)
	}
}
