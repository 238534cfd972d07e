package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEventSender: the load generator's sender sends what net/http's
// client would (method, path, token, type, length, body), keeps one
// connection across requests, opens another when the server closes it,
// and reports a refusal with its status and body.
func TestEventSender(t *testing.T) {
	var conns atomic.Int32
	var closeNext atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/base/api/v1/events":
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		case r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/x-ndjson":
			http.Error(w, "wrong headers", http.StatusBadRequest)
		case r.ContentLength != int64(len(body)):
			http.Error(w, "wrong length", http.StatusBadRequest)
		case string(body) == "refuse":
			http.Error(w, `{"error":{"code":"invalid","message":"no"}}`, http.StatusBadRequest)
		default:
			if closeNext.Swap(false) {
				w.Header().Set("Connection", "close")
			}
			w.Write([]byte(`{"accepted":2,"events":[{"id":"a","seq":1},{"id":"b","recorded":false,"reason":"off"}]}` + "\n"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	s, ok := newEventSender(srv.URL+"/base", "tok", false)
	if !ok {
		t.Fatal("no sender for an http:// URL")
	}
	defer s.close()
	ctx := context.Background()
	for i := range 3 {
		skipped, err := s.send(ctx, []byte(`{"type":"x"}`+"\n"))
		if err != nil || skipped != 1 {
			t.Fatalf("request %d: skipped %d, err %v; want 1, nil", i, skipped, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 requests opened %d connections, want 1", n)
	}
	closeNext.Store(true)
	for range 2 {
		if _, err := s.send(ctx, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("after the server closed the connection: %d connections, want 2", n)
	}
	if _, err := s.send(ctx, []byte("refuse")); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), `"code":"invalid"`) {
		t.Errorf("a refused request: err %v, want the status and the body", err)
	}
	if _, err := s.send(ctx, []byte(`{}`)); err != nil {
		t.Errorf("after a refusal: %v", err)
	}
	// The server drops the idle connection: the next request goes on a
	// new one, without an error.
	srv.CloseClientConnections()
	if _, err := s.send(ctx, []byte(`{}`)); err != nil {
		t.Errorf("after the server closed the idle connection: %v", err)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("after the server closed the idle connection: %d connections, want 3", n)
	}
	if _, ok := newEventSender("https://example.com", "tok", false); ok {
		t.Error("an https:// URL got a raw sender; net/http's client must serve it")
	}
}
