package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/webhook"
)

// hookPeer is a webhook receiver that verifies every body's HMAC, can go
// down (its listener closed: connections refused) and come back on the
// same address, and answers each request after an optional delay.
type hookPeer struct {
	t      *testing.T
	addr   string
	secret string
	mu     sync.Mutex
	seqs   []int64
	bad    int
	delay  time.Duration
	srv    *http.Server
	// signatureOnly: check the HMAC but do not decode the batch (the
	// ingest-cost measurement, where the receiver shares the machine's
	// cores with the server it measures).
	signatureOnly bool
}

func newHookPeer(t *testing.T, secret string) *hookPeer {
	p := &hookPeer{t: t, addr: freeAddr(t), secret: secret}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *hookPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender died mid-body (the test kills the server while it
		// delivers): nothing arrived to check or count.
		return
	}
	p.mu.Lock()
	delay, signatureOnly := p.delay, p.signatureOnly
	p.mu.Unlock()
	time.Sleep(delay)
	if !webhook.Verify([]byte(p.secret), b, r.Header.Get(webhook.SignatureHeader)) {
		p.mu.Lock()
		p.bad++
		p.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if signatureOnly {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var body struct {
		Events []struct {
			Seq int64 `json:"seq"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	for _, e := range body.Events {
		p.seqs = append(p.seqs, e.Seq)
	}
	p.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (p *hookPeer) up() {
	var l net.Listener
	var err error
	for range 100 { // the port may linger a moment after down
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(l)
}

func (p *hookPeer) down() {
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// received returns the seqs in order of first arrival, and how many
// arrived more than once.
func (p *hookPeer) received() (first []int64, dups int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[int64]bool{}
	for _, s := range p.seqs {
		if seen[s] {
			dups++
			continue
		}
		seen[s] = true
		first = append(first, s)
	}
	return first, dups
}

func showSink(t *testing.T, s *server, tok, id string) sink.View {
	t.Helper()
	out, _ := cli(t, "sink", "show", id, "--server", s.url, "--token", tok)
	var v sink.View
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("sink show: %v: %s", err, out)
	}
	return v
}

func waitSink(t *testing.T, s *server, tok, id, what string, cond func(sink.View) bool) sink.View {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v := showSink(t, s, tok, id)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v\n%s", what, v, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAll asserts the peer got every seq up to last, first arrivals in
// seq order.
func checkAll(t *testing.T, p *hookPeer, last int64) int {
	t.Helper()
	got, dups := p.received()
	if int64(len(got)) != last+1 {
		t.Fatalf("the receiver has %d distinct events, want %d", len(got), last+1)
	}
	for i, s := range got {
		if s != int64(i) {
			t.Fatalf("arrival %d is seq %d: order broken or an event lost", i, s)
		}
	}
	return dups
}

// A webhook destination goes down for a while and comes back; the server
// is killed (SIGKILL) in the middle of delivering and started again:
// nothing is lost, order holds, the lag is shown and returns to zero.
func TestForwardingOutageAndRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_forwarding-test-token-0123456789"
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"}
	flags := []string{"--sink-poll-interval", "20ms", "--sink-min-backoff", "20ms", "--sink-max-backoff", "300ms"}
	srv := startServer(t, data, env, flags...)
	const secret = "whsec-forwarding-test-7f3a"
	peer := newHookPeer(t, secret)
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)

	out, _ := cli(t, "sink", "create", "--server", srv.url, "--token", tok, "--secret-file", secretFile, "--json",
		fmt.Sprintf(`{"name":"siem","type":"webhook","url":"http://%s/hook","content":true,"batch":{"max_events":100,"max_wait":"50ms"}}`, peer.addr))
	var created sink.View
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" || !created.SecretSet || strings.Contains(out, secret) {
		t.Fatalf("sink create: %v %s", err, out)
	}
	id := created.ID

	postDemo(t, srv, tok, 500)
	v := waitSink(t, srv, tok, id, "delivery", func(v sink.View) bool { return v.LagEvents == 0 && v.Delivered != nil })
	checkAll(t, peer, *v.Delivered)

	// The destination goes down while events keep arriving.
	peer.down()
	postDemoIDs(t, srv, tok, 300, "outage-")
	v = waitSink(t, srv, tok, id, "the outage to show", func(v sink.View) bool {
		return v.State == "retrying" && v.LagEvents >= 300 && v.LagSeconds > 0 && v.LastError != ""
	})
	if code, m := srv.do("GET", "/metrics", "", ""); code != 200 || !strings.Contains(string(m), `veritrail_sink_lag_events{org="default",sink="`+id+`"}`) {
		t.Fatalf("metrics: %d", code)
	}
	list, _ := cli(t, "sink", "list", "--server", srv.url, "--token", tok)
	if !strings.Contains(list, id) || !strings.Contains(list, "retrying") {
		t.Fatalf("sink list during the outage:\n%s", list)
	}
	postDemoIDs(t, srv, tok, 100, "still-")
	peer.up()
	v = waitSink(t, srv, tok, id, "catching up", func(v sink.View) bool { return v.LagEvents == 0 && v.State == "active" })
	if v.LagSeconds != 0 {
		t.Fatalf("lag seconds after catching up: %v", v.LagSeconds)
	}
	checkAll(t, peer, *v.Delivered)

	// Killed in the middle of delivering: a slow receiver, many batches.
	peer.mu.Lock()
	peer.delay = 30 * time.Millisecond
	peer.mu.Unlock()
	before, _ := peer.received()
	postDemoIDs(t, srv, tok, 2000, "bulk-")
	// Kill once the bulk is well under way and its cursor has been saved
	// at least once: the store's cursor then says what may come again.
	var saved int64
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ := peer.received()
		if len(got) > len(before)+200 {
			if code, b := srv.do("GET", "/api/v1/sinks/"+id, tok, ""); code == 200 {
				var k sink.View
				if json.Unmarshal(b, &k) == nil && k.Delivered != nil && *k.Delivered >= int64(len(before)+100) {
					saved = *k.Delivered
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("delivery of the bulk did not start, or its cursor was never saved")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.cmd.Process.Kill()
	<-srv.exited
	mid, _ := peer.received()
	if len(mid) >= len(before)+2000 {
		t.Fatal("everything was delivered before the kill; the test proves nothing")
	}
	peer.mu.Lock()
	peer.delay = 0
	peer.mu.Unlock()

	srv = startServer(t, data, env, flags...)
	v = waitSink(t, srv, tok, id, "catching up after the restart", func(v sink.View) bool { return v.LagEvents == 0 })
	dups := checkAll(t, peer, *v.Delivered)
	// At least once: what comes twice is what followed the cursor saved in
	// the store (which may only have moved on from what we read before the
	// kill): the acknowledged batches whose cursor was not saved yet, at
	// most MaxUnsavedBatches of them, and the batch in flight (which the
	// slow receiver may record after the kill).
	if most := int64(len(mid)-1) - saved + 100; int64(dups) > most {
		t.Fatalf("%d duplicates: more than the %d events after the cursor saved before the kill (%d) and one batch", dups, most, saved)
	}
	if most := (sink.MaxUnsavedBatches + 1) * 100; dups > most {
		t.Fatalf("%d duplicates: more than the %d of the batch in flight and the unsaved ones", dups, most)
	}
	peer.mu.Lock()
	bad := peer.bad
	peer.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d bodies failed the HMAC check", bad)
	}
	t.Logf("restart: %d events delivered before the kill, %d redelivered after it", len(mid)-len(before), dups)

	cli(t, "sink", "delete", id, "--server", srv.url, "--token", tok)
	if code, _ := srv.do("GET", "/api/v1/sinks/"+id, tok, ""); code != 404 {
		t.Fatalf("deleted sink: %d", code)
	}
	srv.stop()
}
