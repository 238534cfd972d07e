package http_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
)

// TestRetryWithoutTime: a client that sends an event without time and,
// having lost the answer, sends it again gets the first event's seq back
// as a duplicate, though the server stamped the two sends apart.
func TestRetryWithoutTime(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	body := `{"id":"r1","type":"auth.login","actor":{"type":"user","id":"u1"},"content":{"a":1}}`
	first := e.post(body)
	if first.status != 200 {
		t.Fatalf("first send: %d %s", first.status, first.body)
	}
	time.Sleep(10 * time.Millisecond) // the retry comes later: another stamp
	again := e.post(body)
	if again.status != 200 || !strings.Contains(string(again.body), `"duplicate":true`) {
		t.Fatalf("retry without time: %d %s, want 200 duplicate", again.status, again.body)
	}
	if seq := func(r response) any { return r.json(t)["events"].([]any)[0].(map[string]any)["seq"] }; seq(first) != seq(again) {
		t.Fatalf("retry answered seq %v, first %v", seq(again), seq(first))
	}
	// Sending a time now is sending another event.
	timed := `{"id":"r1","time":"2026-03-01T12:00:00Z","type":"auth.login","actor":{"type":"user","id":"u1"},"content":{"a":1}}`
	if r := e.post(timed); r.status != 409 {
		t.Fatalf("resend with a time: %d %s, want 409", r.status, r.body)
	}
	if n := e.count(); n != 1 {
		t.Fatalf("log holds %d events, want 1", n)
	}
}

// TestLoneSurrogateRefused: a string escape that is half a UTF-16
// surrogate pair is refused with the field named, and nothing is stored.
func TestLoneSurrogateRefused(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	for _, tc := range []struct{ body, field string }{
		{`{"type":"a.b","actor":{"type":"user","id":"\ud800"}}`, "actor.id"},
		{`{"type":"a.b","actor":{"type":"user","id":"u"},"target":{"name":"x\udc00y"}}`, "target.name"},
		{`{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"k":"\ud83d"}}`, "content"},
	} {
		r := e.post(`{"type":"a.b","actor":{"type":"user","id":"ok"}}` + "\n" + tc.body)
		errObj, _ := r.json(t)["error"].(map[string]any)
		if r.status != 400 || errObj["code"] != "invalid_event" || errObj["field"] != tc.field || errObj["index"] != float64(1) ||
			!strings.Contains(fmt.Sprint(errObj["message"]), "surrogate") {
			t.Errorf("%s: %d %s, want 400 invalid_event naming field %s of event 1", tc.body, r.status, r.body, tc.field)
		}
	}
	if n := e.count(); n != 0 {
		t.Fatalf("refused requests stored %d events", n)
	}
}

// TestTruncatedBodyStoresNothing: a request whose body ends before it
// said it would stores none of its events, though the part that arrived
// holds whole, valid events: the connection closes mid-body (the length
// declared by Content-Length, or chunks without the last one), or the
// chunked framing breaks while the connection stays open.
func TestTruncatedBodyStoresNothing(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	var events strings.Builder
	for i := range 50 {
		fmt.Fprintf(&events, `{"id":"t%d","type":"auth.login","actor":{"type":"user","id":"u"}}`+"\n", i)
	}
	sent := events.String()
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tc := range []struct {
		framing string
		body    string // after the headers
		close   bool   // close the connection's write side after body
	}{
		{"Content-Length", fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(sent)+1000, sent), true},
		{"chunked, no last chunk", fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(sent), sent), true},
		{"chunked, broken framing", fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n", len(sent), sent), false},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\n%s", e.owner, tc.body)
		if tc.close {
			c.(*net.TCPConn).CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		status, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.Contains(status, " 200 ") {
			t.Errorf("%s: a truncated body was answered %q", tc.framing, status)
		}
		if !tc.close && !strings.Contains(status, " 400 ") {
			t.Errorf("%s: answered %q, want 400", tc.framing, status)
		}
	}
	if n := e.count(); n != 0 {
		t.Fatalf("truncated requests stored %d events", n)
	}
}

// TestSlowAndHugeRequestsCut: a client that trickles its headers or its
// body (slow-loris) is cut off by the server's timeouts, and headers over
// the limit are refused with 431; nothing is stored.
func TestSlowAndHugeRequestsCut(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	api := vhttp.New(vhttp.Config{Store: e.store, HeaderTimeout: time.Second, BodyTimeout: time.Second, MaxHeaderBytes: 8 << 10})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve(l)
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	const bound = 15 * time.Second // the timeouts, plus slack for a loaded machine
	event := `{"type":"auth.login","actor":{"type":"user","id":"u"}}` + "\n"
	// trickle sends head at once, then tail a byte every 100 ms until the
	// server answers or hangs up, and returns the status line ("" when it
	// hung up without one) and how long the server took.
	trickle := func(head, tail string) (string, time.Duration) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		answered := make(chan string, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(2 * bound))
			line, _ := bufio.NewReader(c).ReadString('\n')
			answered <- line
		}()
		c.Write([]byte(head))
		for i := 0; ; i++ {
			select {
			case line := <-answered:
				return strings.TrimSpace(line), time.Since(start)
			case <-time.After(100 * time.Millisecond):
			}
			if i < len(tail) {
				c.Write([]byte{tail[i]})
			}
		}
	}
	auth := "Authorization: Bearer " + e.owner + "\r\n"
	headers := "Host: x\r\n" + auth + "Content-Type: application/x-ndjson\r\n" + strings.Repeat("X-Pad: 0123456789\r\n", 20)
	if status, took := trickle("POST /api/v1/events HTTP/1.1\r\n", headers); took > bound || strings.Contains(status, " 200 ") {
		t.Errorf("headers a byte at a time: %q after %v, want cut within %v", status, took, bound)
	}
	body := strings.Repeat(event, 20)
	head := fmt.Sprintf("POST /api/v1/events HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n", auth, len(body))
	if status, took := trickle(head, body); took > bound || !strings.Contains(status, " 408 ") {
		t.Errorf("a body a byte at a time: %q after %v, want 408 within %v", status, took, bound)
	}
	huge := fmt.Sprintf("POST /api/v1/events HTTP/1.1\r\nHost: x\r\n%sX-Huge: %s\r\nContent-Length: %d\r\n\r\n%s", auth, strings.Repeat("a", 16<<10), len(event), event)
	if status, _ := trickle(huge, ""); !strings.Contains(status, " 431 ") {
		t.Errorf("16 KiB of headers over an 8 KiB limit: %q, want 431", status)
	}
	if n := e.count(); n != 0 {
		t.Fatalf("cut requests stored %d events", n)
	}
}

// TestAddressRateLimit: a client address gets AddressRateLimit requests
// a minute whatever it sends (no token, a wrong one, a valid one), then
// 429 with Retry-After; health checks are not counted, and another
// address has its own bucket.
func TestAddressRateLimit(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	api := vhttp.New(vhttp.Config{Store: e.store, AddressRateLimit: 3, Now: func() time.Time { return at }})
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	call := func(addr, path, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = addr + ":40000"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w
	}
	for i, token := range []string{"", "vt_wrong", e.owner} {
		if w := call("192.0.2.1", "/api/v1/me", token); w.Code == 429 {
			t.Fatalf("request %d refused under the limit: %s", i, w.Body)
		}
		call("192.0.2.1", "/healthz", "")
	}
	w := call("192.0.2.1", "/api/v1/me", e.owner)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "address") {
		t.Fatalf("fourth request of the minute: %d %v %s, want 429 with Retry-After", w.Code, w.Header(), w.Body)
	}
	if w := call("192.0.2.1", "/healthz", ""); w.Code != 200 {
		t.Fatalf("health check over the limit: %d", w.Code)
	}
	if w := call("198.51.100.7", "/api/v1/me", e.owner); w.Code != 200 {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
}
