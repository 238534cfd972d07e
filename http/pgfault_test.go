package http_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// faultProxy forwards TCP to PostgreSQL and can cut the network off
// silently (no reset, no close: packets go nowhere), which is what a
// partition looks like to the client: only timeouts notice.
type faultProxy struct {
	l    net.Listener
	to   string
	down atomic.Bool
}

func newFaultProxy(t *testing.T, port int) *faultProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l, to: fmt.Sprintf("127.0.0.1:%d", port)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *faultProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *faultProxy) serve(c net.Conn) {
	defer c.Close()
	for p.down.Load() { // a partition: the connection gets nowhere
		time.Sleep(10 * time.Millisecond)
	}
	u, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			for p.down.Load() { // held, as by a cut cable
				time.Sleep(10 * time.Millisecond)
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
}

// TestPostgresFaults: PostgreSQL restarted, killed and cut off while
// clients ingest. Every request is answered within a bound (the commit
// timeout, twice, and the store timeout, plus slack for a loaded machine):
// 200, or 503 with Retry-After, never a hang and never another status.
// The server recovers by itself; every acknowledged event is stored once,
// seqs have no gap, and the log verifies against checkpoints signed
// before and after the faults.
func TestPostgresFaults(t *testing.T) {
	if onPostgres {
		t.Skip("runs once, on its own cluster")
	}
	if testing.Short() {
		t.Skip("-short: the fault test stops and starts PostgreSQL")
	}
	ctx := context.Background()
	c := pgtest.Own(t)
	proxy := newFaultProxy(t, c.Port)
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", proxy.port())
	const timeout = 2 * time.Second
	bound := 2*timeout + timeout + 15*time.Second // the promise, plus slack for a loaded machine
	store, err := postgres.Open(ctx, url, postgres.Options{CommitTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example"})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store, StoreTimeout: timeout})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		api.Shutdown(ctx)
		store.Close()
	})
	e := &env{t: t, store: store, srv: srv, api: api}
	if e.org, err = store.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)

	var (
		mu      sync.Mutex
		acked   = map[string]int64{} // id -> seq answered
		refused atomic.Int64         // 503s
		slowest atomic.Int64         // ns
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Minute}
	send := func(w, i int) bool {
		id := fmt.Sprintf("w%d-%d", w, i)
		body := fmt.Sprintf(`{"id":%q,"time":"2026-06-01T00:00:00Z","type":"auth.login","actor":{"type":"user","id":"u%d"},"content":{"n":%d}}`, id, w, i)
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.owner)
		start := time.Now()
		resp, err := client.Do(req)
		took := time.Since(start)
		for {
			old := slowest.Load()
			if int64(took) <= old || slowest.CompareAndSwap(old, int64(took)) {
				break
			}
		}
		if err != nil {
			t.Errorf("%s: %v", id, err)
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if took > bound {
			t.Errorf("%s answered %d after %v, over the bound %v", id, resp.StatusCode, took, bound)
		}
		switch resp.StatusCode {
		case 200:
			var seq int64
			if _, after, ok := strings.Cut(string(b), `"seq":`); ok {
				seq, _ = strconv.ParseInt(strings.TrimRight(strings.SplitN(after, ",", 2)[0], "}]\n"), 10, 64)
			}
			mu.Lock()
			acked[id] = seq
			mu.Unlock()
			return true
		case 503:
			refused.Add(1)
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After: %s", id, b)
			}
			return false
		default:
			t.Errorf("%s: %d %s, want 200 or 503", id, resp.StatusCode, b)
			return false
		}
	}
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // on a failure too: no client outlives the test
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; {
				select {
				case <-stop:
					// The last event is retried until it is stored, as a
					// client does with an event it must not lose.
					for !send(w, i) && !t.Failed() {
						time.Sleep(200 * time.Millisecond)
					}
					return
				default:
				}
				if send(w, i) {
					i++
				} else {
					time.Sleep(200 * time.Millisecond) // Retry-After, shortened
				}
			}
		}()
	}
	// progress waits until n more events are acknowledged: the server
	// recovered by itself.
	progress := func(what string, n int) {
		mu.Lock()
		want := len(acked) + n
		mu.Unlock()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: ingest did not resume (%d of %d acknowledged)", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	sign := func(what string) {
		for deadline := time.Now().Add(time.Minute); ; {
			_, err := cpr.Sign(ctx, e.org)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint %s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	progress("start", 20)
	sign("before the faults")

	c.Stop(t, "fast")
	time.Sleep(time.Second)
	c.Start(t)
	progress("after a restart", 20)
	sign("after a restart")

	c.Kill(t)
	time.Sleep(time.Second)
	c.Start(t)
	progress("after a kill", 20)

	before := refused.Load()
	proxy.down.Store(true)
	time.Sleep(3 * timeout)
	proxy.down.Store(false)
	if refused.Load() == before {
		t.Errorf("no request was refused while the database was cut off")
	}
	progress("after a partition", 20)
	halt()
	sign("after the faults")
	t.Logf("%d events acknowledged, %d requests answered 503, slowest answer %v", len(acked), refused.Load(), time.Duration(slowest.Load()))

	// Every acknowledged event is stored, under the seq it was answered
	// with, and nothing else is: the log's size is their number, and their
	// seqs are 0 to size-1, each once (no gap).
	size, _, err := store.LogHead(ctx, e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(acked)) {
		t.Errorf("the log holds %d events, %d were acknowledged", size, len(acked))
	}
	seen := map[int64]string{}
	for id, seq := range acked {
		ev, err := store.EventByID(ctx, e.org.ID, id, false)
		if err != nil {
			t.Fatalf("acknowledged event %s: %v", id, err)
		}
		if _, dup := seen[seq]; ev.Seq != seq || seq < 0 || seq >= size || dup {
			t.Fatalf("event %s: stored at seq %d, answered %d (seq %d also answered to %q)", id, ev.Seq, seq, seq, seen[seq])
		}
		seen[seq] = id
	}
	vkey, _ := cpr.VerifierKey(e.org)
	src, err := postgres.OpenVerifySource(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep := &verify.Report{}
	if _, err := verify.Check(ctx, src, verify.Options{Keys: []string{vkey}}, rep); err != nil || !rep.OK() {
		t.Fatalf("verify after the faults: %v %v", err, rep.Failures)
	}
}
