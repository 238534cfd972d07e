package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// runBench drives ingest over loopback HTTP from its own process, as real
// senders do, and reports acknowledged (durable) events per second and the
// acknowledgement latency.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	if err := cfg.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	url, tok := cfg.server, cfg.token
	if url == "" {
		srv, err := startBenchServer(ctx, cfg.keep, strings.Fields(cfg.serverArgs), stderr)
		if err != nil {
			return err
		}
		defer srv.stop(stderr)
		url, tok = srv.url, srv.token
		if err := enableAILogs(ctx, url, tok); err != nil {
			return fmt.Errorf("turning AI interaction logs on in the benchmark server: %w", err)
		}
	}
	if cfg.rules > 0 {
		if err := installRules(ctx, url, tok, benchRules(cfg.rules)); err != nil {
			return err
		}
	}
	var probe *alertProbe
	if cfg.alertProbe {
		var err error
		if probe, err = startAlertProbe(ctx, url, tok); err != nil {
			return err
		}
	}

	pool := eventPool(4096)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.conc * 2, DisableCompression: true}}
	var (
		acked, errs   atomic.Int64 // acked: events stored (recorded), durably
		notRecorded   atomic.Int64 // acknowledged with recorded:false
		measuring     atomic.Bool
		mu            sync.Mutex
		lats          []time.Duration
		firstErr      atomic.Value
		measureAcked0 int64
	)
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.batch*cfg.conc) / float64(cfg.rate))
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			var body, zbuf bytes.Buffer
			var zw *gzip.Writer
			next := start.Add(time.Duration(w) * interval / time.Duration(cfg.conc))
			for n := 0; ctx.Err() == nil; n++ {
				body.Reset()
				now := time.Now().UTC()
				var tb [40]byte
				for i := 0; i < cfg.batch; i++ {
					frag := pool[rnd.IntN(len(pool))]
					body.WriteByte('{')
					if cfg.ids == "client" {
						fmt.Fprintf(&body, `"id":"b%s-%d-%d-%d",`, runID, w, n, i)
					}
					body.WriteString(`"time":"`)
					body.Write(eventTime(now, rnd).AppendFormat(tb[:0], time.RFC3339Nano))
					body.WriteString(`",`)
					body.Write(frag[1:])
					body.WriteByte('\n')
				}
				payload := body.Bytes()
				if cfg.gzip {
					zbuf.Reset()
					if zw == nil {
						zw = gzip.NewWriter(&zbuf)
					} else {
						zw.Reset(&zbuf)
					}
					zw.Write(payload)
					zw.Close()
					payload = zbuf.Bytes()
				}
				sent := time.Now()
				if interval > 0 {
					// Open loop: latency counts from the scheduled time, so a
					// slow server cannot hide its queueing.
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					sent = next
					next = next.Add(interval)
				}
				skipped, err := sendBatch(ctx, client, url, tok, payload, cfg.gzip)
				lat := time.Since(sent)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(100 * time.Millisecond)
					continue
				}
				acked.Add(int64(cfg.batch - skipped))
				if measuring.Load() {
					notRecorded.Add(int64(skipped))
					mu.Lock()
					lats = append(lats, lat)
					mu.Unlock()
				}
			}
		}()
	}

	// Warm up, then measure, printing a progress line every second.
	select {
	case <-time.After(cfg.warmup):
	case <-ctx.Done():
	}
	measureAcked0 = acked.Load()
	measuring.Store(true)
	mstart := time.Now()
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	if probe != nil {
		go probe.run(probeCtx, runID, 100*time.Millisecond)
	}
	tick := time.NewTicker(time.Second)
	last, lastT := measureAcked0, mstart
	done := time.After(cfg.duration)
	if cfg.events > 0 {
		done = nil
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-done:
			break loop
		case now := <-tick.C:
			a := acked.Load()
			if cfg.events > 0 && a >= cfg.events {
				break loop
			}
			mu.Lock()
			p50, p99 := pct(lats, 50), pct(lats, 99)
			mu.Unlock()
			fmt.Fprintf(stderr, "\r[%3.0fs] %8.0f events/s now, %8.0f avg  p50 %-8s p99 %-8s errors %d   ",
				now.Sub(mstart).Seconds(), float64(a-last)/now.Sub(lastT).Seconds(),
				float64(a-measureAcked0)/now.Sub(mstart).Seconds(), p50, p99, errs.Load())
			last, lastT = a, now
		}
	}
	tick.Stop()
	elapsed := time.Since(mstart)
	total := acked.Load() - measureAcked0
	measuring.Store(false)
	cancel()
	wg.Wait()
	fmt.Fprintln(stderr)

	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(stdout, "veritrail bench: %d senders × %d events/request, ids=%s, gzip=%v, rate=%s, %s measured after %s warm-up\n",
		cfg.conc, cfg.batch, cfg.ids, cfg.gzip, rateString(cfg.rate), elapsed.Round(time.Millisecond), cfg.warmup)
	// Only stored events count: the server acknowledges some with
	// recorded:false (AI interactions while the organization's AI
	// interaction logs are off), and those are not ingest.
	fmt.Fprintf(stdout, "  acknowledged  %d events in %d requests: %.0f events/s\n", total, len(lats), float64(total)/elapsed.Seconds())
	if n := notRecorded.Load(); n > 0 {
		fmt.Fprintf(stdout, "  not recorded  %d more events answered recorded:false (AI interactions the organization's settings keep out: its AI interaction logs are off, or the interaction happened before they were turned on), not counted above\n", n)
	}
	fmt.Fprintf(stdout, "  latency       p50 %s  p90 %s  p99 %s  p99.9 %s  max %s (per request, until the commit is durable)\n",
		pct(lats, 50), pct(lats, 90), pct(lats, 99), pct(lats, 99.9), pct(lats, 100))
	fmt.Fprintf(stdout, "  errors        %d\n", errs.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(stdout, "  first error   %s\n", e)
	}
	if m, err := commitStats(url); err == nil {
		fmt.Fprintf(stdout, "  group commit  %s\n", m)
	}
	if cfg.rules > 0 {
		fmt.Fprintf(stdout, "  rules         %d active (mixed kinds)\n", cfg.rules)
	}
	if probe != nil {
		stopProbe()
		probe.report(stdout, 10*time.Second)
	}
	if errs.Load() > 0 {
		return errors.New("some requests failed")
	}
	if cfg.queries > 0 {
		return benchQueries(context.Background(), client, url, tok, pool, cfg.queries, cfg.queryLimit, stdout, stderr)
	}
	return nil
}

// benchQueries times first pages of list queries, one filter at a time,
// with values drawn from the events that were loaded.
func benchQueries(ctx context.Context, client *http.Client, url, tok string, pool [][]byte, n, limit int, stdout, stderr io.Writer) error {
	// Full text trails the commit: wait until it holds everything.
	for start := time.Now(); ; {
		m, err := scrapeMetrics(url)
		if err != nil {
			return err
		}
		lag, ok := m["veritrail_fulltext_lag_events"]
		if !ok {
			return errors.New("the server's /metrics has no veritrail_fulltext_lag_events")
		}
		if lag == 0 {
			break
		}
		fmt.Fprintf(stderr, "\rwaiting for the full-text index: %.0f events to go (%s)   ", lag, time.Since(start).Round(time.Second))
		time.Sleep(time.Second)
	}
	fmt.Fprintln(stderr)
	var sample []*veritrail.Event
	for _, b := range pool[:512] {
		dec := veritrail.NewDecoder(bytes.NewReader(b), veritrail.DefaultLimits, time.Now())
		if e, err := dec.Next(); err == nil {
			sample = append(sample, e)
		}
	}
	type qcase struct{ name, query string }
	cases := []qcase{{"(none)", ""}, {"since (last hour)", "since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, f := range veritrail.Fields {
		for tries := 0; tries < 200; tries++ {
			e := sample[rnd.IntN(len(sample))]
			v := displayValue(e, f)
			if v == "" {
				continue
			}
			cases = append(cases, qcase{f.String(), f.String() + "=" + neturl.QueryEscape(v)})
			break
		}
	}
	cases = append(cases, qcase{"type prefix", "type=" + veritrail.Category(sample[0].Type) + ".*"},
		qcase{"q (content word)", "q=export"}, qcase{"q + type", "q=github&type=agent.tool_call"},
		qcase{"actor + outcome", "outcome=failure&actor_id=" + neturl.QueryEscape(sample[1].Actor.ID)})
	fmt.Fprintf(stdout, "first-page latency, limit=%d, %d runs each (over HTTP, JSON included):\n", limit, n)
	for _, c := range cases {
		var lats []time.Duration
		results := 0
		for i := 0; i < n; i++ {
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events?limit="+strconv.Itoa(limit)+"&"+c.query, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("query %s: %s %s", c.query, resp.Status, body)
			}
			lats = append(lats, time.Since(start))
			results = bytes.Count(body, []byte(`"seq":`))
		}
		fmt.Fprintf(stdout, "  %-20s p50 %-9s p99 %-9s (%d results) %s\n", c.name, pct(lats, 50), pct(lats, 99), results, c.query)
	}
	return nil
}

// displayValue is the query-parameter value that selects e by field f.
func displayValue(e *veritrail.Event, f veritrail.Field) string {
	switch f {
	case veritrail.FieldStatus: // index keys of these are binary
		if e.Status != nil {
			return strconv.FormatInt(*e.Status, 10)
		}
		return ""
	case veritrail.FieldIP:
		if e.Context != nil {
			return e.Context.IP
		}
		return ""
	}
	v, _ := e.IndexKey(f)
	return v
}

// scrapeMetrics reads the values of the unlabelled series of the server's
// /metrics.
func scrapeMetrics(url string) (map[string]float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			vals[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return vals, sc.Err()
}

func rateString(r int) string {
	if r == 0 {
		return "max"
	}
	return strconv.Itoa(r) + "/s"
}

// eventPool pre-renders seed-shaped events without id and time, so that
// building request bodies costs the sender almost nothing. Each fragment
// starts with '{' followed by the event's other members.
func eventPool(n int) [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, n)
	marker := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	timeMember := []byte(`"time":"` + marker.Format(time.RFC3339Nano) + `",`)
	for i := range pool {
		ev := demo.Event(nil, rnd, "", marker)
		pool[i] = bytes.Replace(ev, timeMember, nil, 1)
	}
	return pool
}

// eventTime is when a bench event happened: a few seconds before it is
// sent, as from a sender that buffers briefly; 1% arrive up to an hour late.
func eventTime(now time.Time, rnd *rand.Rand) time.Time {
	if rnd.IntN(100) == 0 {
		return now.Add(-time.Duration(rnd.Int64N(int64(time.Hour))))
	}
	return now.Add(-time.Duration(rnd.ExpFloat64() * float64(2*time.Second)))
}

// sendBatch posts one request and returns how many of its events the
// server acknowledged without storing them (recorded:false).
func sendBatch(ctx context.Context, client *http.Client, url, tok string, body []byte, gz bool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+tok)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return bytes.Count(b, []byte(`"recorded":false`)), nil
}

// enableAILogs turns the organization's AI interaction logs on (the
// generator sends AI interactions, which are not stored while it is off).
func enableAILogs(ctx context.Context, url, tok string) error {
	do := func(method string, body io.Reader) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, url+"/api/v1/settings", body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s /api/v1/settings: %s: %s", method, resp.Status, bytes.TrimSpace(b))
		}
		return b, nil
	}
	b, err := do(http.MethodGet, nil)
	if err != nil {
		return err
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	st["ai_interaction_logs_enabled"] = true
	delete(st, "ai_interaction_logs_enabled_at")
	body, _ := json.Marshal(st)
	_, err = do(http.MethodPut, bytes.NewReader(body))
	return err
}

func pct(lats []time.Duration, p float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(10 * time.Microsecond)
}

// commitStats summarizes the server's group commits from /metrics.
func commitStats(url string) (string, error) {
	vals, err := scrapeMetrics(url)
	if err != nil {
		return "", err
	}
	n := vals["veritrail_commit_batch_events_count"]
	if n == 0 {
		return "", errors.New("no commits")
	}
	return fmt.Sprintf("%.0f commits, %.0f events and %.1f requests per commit on average, %.2f ms per commit; full-text index %.0f events behind at the end",
		n, vals["veritrail_commit_batch_events_sum"]/n, vals["veritrail_commit_batch_requests_sum"]/n,
		1000*vals["veritrail_commit_duration_seconds_sum"]/n, vals["veritrail_fulltext_lag_events"]), nil
}

// benchServer is a server started by bench in its own process.
type benchServer struct {
	cmd   *exec.Cmd
	dir   string
	keep  bool
	url   string
	token string
}

func startBenchServer(ctx context.Context, keep bool, extra []string, stderr io.Writer) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "veritrail-bench-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	tok := veritrail.NewTokenSecret()
	// The load generator is one token: no per-token rate limit.
	args := append([]string{"serve", "--addr", addr, "--data", dir, "--log-level", "warn", "--rate-limit", "0"}, extra...)
	cmd := exec.Command(exe, args...)
	// Its own owner token, whatever token (file) the environment names.
	// The alert probe's webhook is on this machine.
	cmd.Env = append(os.Environ(), "VERITRAIL_BOOTSTRAP_TOKEN="+tok, "VERITRAIL_BOOTSTRAP_TOKEN_FILE=", "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true")
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &benchServer{cmd: cmd, dir: dir, keep: keep, url: "http://" + addr, token: tok}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop(stderr)
			return nil, fmt.Errorf("the server started for the benchmark did not answer /healthz at %s", s.url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "started a server at %s on %s (pid %d)\n", s.url, dir, cmd.Process.Pid)
	return s, nil
}

func (s *benchServer) stop(stderr io.Writer) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	if s.keep {
		fmt.Fprintf(stderr, "kept the benchmark data in %s\n", s.dir)
		return
	}
	os.RemoveAll(s.dir)
}
