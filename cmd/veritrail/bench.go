package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/veritrail/veritrail/tlog"
)

// runBench drives ingest over loopback HTTP from its own process, as real
// senders do, and reports acknowledged (durable) events per second and the
// acknowledgement latency.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	if err := cfg.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if mixedFlagsSet(&cfg) {
		return runBenchMixed(ctx, &cfg, args, stdout, stderr)
	}
	urls, toks := []string{cfg.server}, []string{cfg.token}
	var rss []*rssSampler // one per started server
	if cfg.server == "" {
		srvs, err := startBenchServers(ctx, &cfg, stderr)
		for _, srv := range srvs {
			defer srv.stop(stderr)
		}
		if err != nil {
			return err
		}
		urls, toks = nil, []string{srvs[0].token}
		for _, srv := range srvs {
			urls = append(urls, srv.url)
			rss = append(rss, &rssSampler{pid: srv.cmd.Process.Pid})
		}
		more, err := benchOrgs(ctx, &cfg, srvs[0].dir, cfg.orgs-1)
		if err != nil {
			return fmt.Errorf("creating the benchmark's organizations: %w", err)
		}
		toks = append(toks, more...)
		for _, tok := range toks {
			if err := enableAILogs(ctx, urls[0], tok); err != nil {
				return fmt.Errorf("turning AI interaction logs on in the benchmark server: %w", err)
			}
		}
	}
	url, tok := urls[0], toks[0]
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
	if cfg.stored > 0 {
		missing := cfg.stored
		if cfg.data != "" {
			have, err := benchHeld(ctx, urls[0], toks[0])
			if err != nil {
				return fmt.Errorf("counting the events %s holds: %w", cfg.data, err)
			}
			missing = max(0, cfg.stored-have)
			fmt.Fprintf(stderr, "%s has a signed checkpoint of %d events: storing %d more\n", cfg.data, have, missing)
		}
		if err := benchStore(ctx, client, urls, toks, pool, missing, cfg.conc, stderr); err != nil {
			return fmt.Errorf("storing %d events before the load: %w", cfg.stored, err)
		}
	}
	var sinks []benchSink
	if cfg.sinks != "" {
		stopReceiver, err := startBenchReceiver(&cfg)
		if err != nil {
			return err
		}
		defer stopReceiver()
		if sinks, err = createBenchSinks(ctx, urls[0], toks, &cfg); err != nil {
			return err
		}
	}
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
			sender, raw := newEventSender(urls[w%len(urls)], toks[w%len(toks)], cfg.gzip)
			if raw {
				defer sender.close()
			}
			idPrefix := []byte(`"id":"b` + runID + "-" + strconv.Itoa(w) + "-")
			for n := 0; ctx.Err() == nil; n++ {
				body.Reset()
				now := time.Now().UTC()
				var tb [80]byte
				for i := 0; i < cfg.batch; i++ {
					frag := pool[rnd.IntN(len(pool))]
					body.WriteByte('{')
					if cfg.ids == "client" {
						// "id":"b<run>-<sender>-<request>-<event>",
						b := append(tb[:0], idPrefix...)
						b = strconv.AppendInt(b, int64(n), 10)
						b = append(b, '-')
						b = strconv.AppendInt(b, int64(i), 10)
						body.Write(append(b, `",`...))
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
				var skipped int
				var err error
				if raw {
					skipped, err = sender.send(ctx, payload)
				} else {
					skipped, err = sendBatch(ctx, client, urls[w%len(urls)], toks[w%len(toks)], payload, cfg.gzip)
				}
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

	// The server's CPU over the whole run, warm-up and the sinks'
	// catch-up included: a sink that falls behind does part of its work
	// after the measured window.
	wholeCPU := make([]*cpuSpan, len(rss))
	for i, r := range rss {
		wholeCPU[i] = &cpuSpan{clock: procCPU(r.pid)}
		wholeCPU[i].begin()
	}
	wholeStart := time.Now()
	// Warm up, then measure, printing a progress line every second.
	select {
	case <-time.After(cfg.warmup):
	case <-ctx.Done():
	}
	measureAcked0 = acked.Load()
	measuring.Store(true)
	mstart := time.Now()
	genCPU := &cpuSpan{clock: selfCPU}
	srvCPU := make([]*cpuSpan, len(rss))
	for i, r := range rss {
		srvCPU[i] = &cpuSpan{clock: procCPU(r.pid)}
		srvCPU[i].begin()
	}
	genCPU.begin()
	for _, r := range rss {
		go r.run(ctx, 250*time.Millisecond)
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	if probe != nil {
		go probe.run(probeCtx, runID, 100*time.Millisecond)
	}
	tick := time.NewTicker(time.Second)
	last, lastT := measureAcked0, mstart
	lastLats := 0 // lats up to here are in an earlier progress line
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
			// The last second's latencies, copied under the lock and
			// sorted outside it: sorting every latency so far while
			// holding it stalled all senders for tens of milliseconds a
			// second at one event per request.
			mu.Lock()
			recent := slices.Clone(lats[lastLats:])
			lastLats = len(lats)
			mu.Unlock()
			slices.Sort(recent)
			p50, p99 := pctSorted(recent, 50), pctSorted(recent, 99)
			fmt.Fprintf(stderr, "\r[%3.0fs] %8.0f events/s now, %8.0f avg  last second p50 %-8s p99 %-8s errors %d   ",
				now.Sub(mstart).Seconds(), float64(a-last)/now.Sub(lastT).Seconds(),
				float64(a-measureAcked0)/now.Sub(mstart).Seconds(), p50, p99, errs.Load())
			last, lastT = a, now
		}
	}
	tick.Stop()
	elapsed := time.Since(mstart)
	total := acked.Load() - measureAcked0
	genCPU.end()
	for _, c := range srvCPU {
		c.end()
	}
	measuring.Store(false)
	cancel()
	wg.Wait()
	fmt.Fprintln(stderr)

	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(stdout, "veritrail bench: %d senders × %d events/request, ids=%s, gzip=%v, rate=%s, %s measured after %s warm-up\n",
		cfg.conc, cfg.batch, cfg.ids, cfg.gzip, rateString(cfg.rate), elapsed.Round(time.Millisecond), cfg.warmup)
	if cfg.server == "" {
		store := "SQLite"
		if cfg.db != "" {
			store = "PostgreSQL"
		}
		fmt.Fprintf(stdout, "  setup         %s, %d node(s), %d organization(s), %d events stored before, sinks: %s\n",
			store, cfg.nodes, cfg.orgs, cfg.stored, cmp.Or(cfg.sinks, "none"))
	}
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
	for i, u := range urls {
		if m, err := commitStats(u); err == nil {
			fmt.Fprintf(stdout, "  group commit  (node %d) %s\n", i+1, m)
		}
	}
	for i, c := range srvCPU {
		fmt.Fprintf(stdout, "  CPU           (node %d) %s while measured\n", i+1, c.perEvent(total, elapsed))
	}
	fmt.Fprintf(stdout, "  CPU           (load generator) %s while measured\n", genCPU.perEvent(total, elapsed))
	for i, r := range rss {
		if peak := r.peak.Load(); peak > 0 {
			fmt.Fprintf(stdout, "  server RSS    (node %d) at most %.0f MB while measured (sampled every 250 ms)\n", i+1, float64(peak)/(1<<20))
		}
	}
	if len(sinks) > 0 {
		reportSinks(context.Background(), url, sinks, stdout, stderr)
	}
	// The full-text index trails the commit too: its work is counted,
	// with or without sinks, up to where it holds everything.
	for deadline := time.Now().Add(2 * time.Minute); len(wholeCPU) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m, err := scrapeMetrics(url); err != nil || m["veritrail_fulltext_lag_events"] == 0 {
			break
		}
	}
	for i, c := range wholeCPU {
		c.end()
		what := "warm-up, load and the full-text index's catch-up"
		if len(sinks) > 0 {
			what = "warm-up, load and the sinks' and full-text index's catch-up"
		}
		fmt.Fprintf(stdout, "  CPU           (node %d) %s over the whole run (%s)\n", i+1, strings.SplitN(c.perEvent(acked.Load(), time.Since(wholeStart)), " (", 2)[0], what)
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
		return benchQueries(context.Background(), client, url, tok, pool, cfg.queries, cfg.queryLimit, mstart.Add(elapsed), stdout, stderr)
	}
	return nil
}

// benchQueries times first pages of list queries, one filter at a time,
// with values drawn from the events that were loaded.
// stopped is when the load stopped: the report says how long after it the
// full-text index held everything.
func benchQueries(ctx context.Context, client *http.Client, url, tok string, pool [][]byte, n, limit int, stopped time.Time, stdout, stderr io.Writer) error {
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
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(stderr)
	fmt.Fprintf(stdout, "  full text     caught up %.1f s after the load stopped (to within 0.1 s)\n", time.Since(stopped).Seconds())
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
	return pctSorted(s, p)
}

// pctSorted is pct of latencies already sorted.
func pctSorted(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
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

// startBenchServers starts cfg.nodes servers, each on a temporary data
// directory, all on cfg.db when given (with one master key file, as nodes
// of one database need), with one bootstrap owner token. It returns those
// it started, also on error, for the caller to stop.
func startBenchServers(ctx context.Context, cfg *benchConfig, stderr io.Writer) ([]*benchServer, error) {
	tok := veritrail.NewTokenSecret()
	// The load generator is one token: no per-token rate limit.
	extra := append([]string{"--log-level", "warn", "--rate-limit", "0"}, strings.Fields(cfg.serverArgs)...)
	var env []string
	if cfg.db != "" {
		extra = append(extra, "--db", cfg.db)
		key := make([]byte, 32)
		crand.Read(key)
		f, err := os.CreateTemp("", "veritrail-bench-key-")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name()) // read by the nodes at start
		fmt.Fprintf(f, "%x\n", key)
		f.Close()
		env = append(env, "VERITRAIL_MASTER_KEY_FILE="+f.Name())
	}
	var srvs []*benchServer
	for range cfg.nodes {
		srv, err := startBenchServer(ctx, cfg.keep, cfg.data, tok, env, extra, stderr)
		if err != nil {
			return srvs, err
		}
		srvs = append(srvs, srv)
	}
	return srvs, nil
}

// startBenchServer starts a server on data (kept), or on a temporary
// directory (kept if keep) when data is "".
func startBenchServer(ctx context.Context, keep bool, data, tok string, env, extra []string, stderr io.Writer) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir := data
	if data != "" {
		keep = true
		err = os.MkdirAll(data, 0o700)
	} else {
		dir, err = os.MkdirTemp("", "veritrail-bench-")
	}
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"serve", "--addr", addr, "--data", dir}, extra...)
	cmd := exec.Command(exe, args...)
	// Its own owner token, whatever token (file) the environment names.
	// The alert probe's webhook is on this machine.
	cmd.Env = append(append(os.Environ(), "VERITRAIL_BOOTSTRAP_TOKEN="+tok, "VERITRAIL_BOOTSTRAP_TOKEN_FILE=", "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		if !keep {
			os.RemoveAll(dir)
		}
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

// benchOrgs creates n more organizations, each with an owner token, in
// the store of the started servers (opened beside them, as the admin
// commands do), and returns their tokens.
func benchOrgs(ctx context.Context, cfg *benchConfig, dataDir string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	sf := &storeConfig{data: dataDir, db: cfg.db}
	store, err := sf.open(ctx, slog.New(slog.DiscardHandler), false, nil)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var toks []string
	for i := range n {
		org, err := store.CreateOrg(ctx, fmt.Sprintf("bench-%s-%d", run, i+2))
		if err != nil {
			return nil, err
		}
		secret := veritrail.NewOrgTokenSecret(org.ID)
		lookup, hash := veritrail.HashToken(secret)
		if err := store.CreateToken(ctx, &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: org.ID, Name: "bench",
			Role: veritrail.RoleOwner, Lookup: lookup, Hash: hash, CreatedAt: time.Now().UTC()}); err != nil {
			return nil, err
		}
		toks = append(toks, secret)
	}
	return toks, nil
}

// benchHeld returns how many events the token's organization holds at
// least: the size of its newest signed checkpoint (signed every second
// while events come in; events after it are stored again, which only
// makes the store larger than asked).
func benchHeld(ctx context.Context, url, tok string) (int64, error) {
	for start := time.Now(); ; {
		b, err := benchAPI(ctx, http.MethodGet, url+"/api/v1/log/checkpoint", tok, "")
		if err == nil {
			cp, err := tlog.ParseUnverified(b) // counted, not trusted
			if err != nil {
				return 0, err
			}
			return int64(cp.Size), nil
		}
		if time.Since(start) > 10*time.Second {
			return 0, err
		}
		time.Sleep(200 * time.Millisecond) // not signed yet
	}
}

// rssSampler keeps the peak resident set of a process, read from
// /proc/PID/status (Linux; elsewhere it stays 0 and nothing is printed).
type rssSampler struct {
	pid  int
	peak atomic.Int64 // bytes
}

func (r *rssSampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.pid))
		if err != nil {
			return
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if kb<<10 > r.peak.Load() {
					r.peak.Store(kb << 10)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// benchStore stores n events before the load (1,000 a request, senders
// spread over the servers and organizations as the load's are), so that
// the load meets a store of that size.
func benchStore(ctx context.Context, client *http.Client, urls, toks []string, pool [][]byte, n int64, conc int, stderr io.Writer) error {
	var claimed, stored atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 11))
			var body bytes.Buffer
			var tb [40]byte
			for r := 0; ctx.Err() == nil && firstErr.Load() == nil; r++ {
				size := min(1000, n-(claimed.Add(1000)-1000))
				if size <= 0 {
					return
				}
				body.Reset()
				now := time.Now().UTC()
				for i := range size {
					fmt.Fprintf(&body, `{"id":"s%s-%d-%d-%d","time":"`, run, w, r, i)
					body.Write(eventTime(now, rnd).AppendFormat(tb[:0], time.RFC3339Nano))
					body.WriteString(`",`)
					body.Write(pool[rnd.IntN(len(pool))][1:])
					body.WriteByte('\n')
				}
				skipped, err := sendBatch(ctx, client, urls[w%len(urls)], toks[w%len(toks)], body.Bytes(), false)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if s := stored.Add(size - int64(skipped)); w == 0 {
					fmt.Fprintf(stderr, "\rstoring events before the load: %d of %d (%.0f/s)   ", s, n, float64(s)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	fmt.Fprintln(stderr)
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// benchSink is a sink created for the load.
type benchSink struct{ kind, id, token string }

// startBenchReceiver starts the webhook receiver of --sinks webhook (it
// answers every delivery 200 at once and keeps nothing) and records its
// address in cfg.
func startBenchReceiver(cfg *benchConfig) (stop func(), err error) {
	if !slices.Contains(strings.Split(cfg.sinks, ","), "webhook") {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})}
	go srv.Serve(l)
	cfg.receiver = "http://" + l.Addr().String() + "/hook"
	return func() { srv.Close() }, nil
}

// createBenchSinks creates the sinks of --sinks in every organization.
func createBenchSinks(ctx context.Context, url string, toks []string, cfg *benchConfig) ([]benchSink, error) {
	const batch = `"content":true,"batch":{"max_events":1000,"max_bytes":4194304,"max_wait":"200ms"}`
	var out []benchSink
	for _, tok := range toks {
		for _, k := range strings.Split(cfg.sinks, ",") {
			var body string
			switch {
			case k == "webhook":
				body = fmt.Sprintf(`{"type":"webhook","name":"bench-webhook","url":%q,"secret":"bench-secret",%s}`, cfg.receiver, batch)
			case strings.HasPrefix(k, "kafka:"):
				body = fmt.Sprintf(`{"type":"kafka","name":"bench-kafka","brokers":[%q],"topic":"veritrail","format":"ocsf",%s}`, strings.TrimPrefix(k, "kafka:"), batch)
			default:
				continue
			}
			b, err := benchAPI(ctx, http.MethodPost, url+"/api/v1/sinks", tok, body)
			if err != nil {
				return nil, fmt.Errorf("creating the %s sink: %w", k, err)
			}
			var v struct{ ID string }
			if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
				return nil, fmt.Errorf("creating the %s sink: %s", k, b)
			}
			out = append(out, benchSink{kind: strings.SplitN(k, ":", 2)[0], id: v.ID, token: tok})
		}
	}
	return out, nil
}

// reportSinks prints each sink's lag when the load stopped and how long
// it took to deliver the rest.
func reportSinks(ctx context.Context, url string, sinks []benchSink, stdout, stderr io.Writer) {
	stopped := time.Now()
	for _, k := range sinks {
		view := func() (lag int64, secs float64, state string, err error) {
			b, err := benchAPI(ctx, http.MethodGet, url+"/api/v1/sinks/"+k.id, k.token, "")
			if err != nil {
				return 0, 0, "", err
			}
			var v struct {
				LagEvents  int64   `json:"lag_events"`
				LagSeconds float64 `json:"lag_seconds"`
				State      string  `json:"state"`
				LastError  string  `json:"last_error"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return 0, 0, "", err
			}
			if v.LastError != "" {
				v.State += " (" + v.LastError + ")"
			}
			return v.LagEvents, v.LagSeconds, v.State, nil
		}
		lag, secs, state, err := view()
		if err != nil {
			fmt.Fprintf(stdout, "  sink %-8s %v\n", k.kind, err)
			continue
		}
		line := fmt.Sprintf("  sink %-8s %s; %d events (%.1f s) behind when the load stopped", k.kind, state, lag, secs)
		for deadline := time.Now().Add(5 * time.Minute); lag > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(100 * time.Millisecond)
			if lag, _, _, err = view(); err != nil {
				break
			}
		}
		if lag == 0 {
			line += fmt.Sprintf(", all delivered %.1f s after", time.Since(stopped).Seconds())
		} else {
			line += fmt.Sprintf(", still %d behind after 5 minutes", lag)
		}
		fmt.Fprintln(stdout, line)
	}
}

// benchAPI makes one API request and returns the body of a 2xx answer.
func benchAPI(ctx context.Context, method, url, tok, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
