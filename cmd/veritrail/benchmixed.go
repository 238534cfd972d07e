package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runBenchMixed measures ingest under mixed load: the same ingest run
// (runBench, with the caller's flags) first alone, then while cfg.exports
// clients each stream the whole log as NDJSON export after export and
// cfg.queryClients clients page through filtered lists. It reports both
// ingest rates, their ratio, every error, and the queries' latency during
// the mixed run. The goal it states: the mixed rate at least 90% of the
// solo rate, no request failing.
func runBenchMixed(ctx context.Context, cfg *benchConfig, args []string, stdout, stderr io.Writer) error {
	if cfg.orgs > 1 || cfg.nodes > 1 {
		return errors.New("--exports and --query-clients measure one organization on one node")
	}
	url, tok := cfg.server, cfg.token
	if url == "" {
		srvs, err := startBenchServers(ctx, cfg, stderr)
		for _, srv := range srvs {
			defer srv.stop(stderr)
		}
		if err != nil {
			return err
		}
		url, tok = srvs[0].url, srvs[0].token
		if err := enableAILogs(ctx, url, tok); err != nil {
			return fmt.Errorf("turning AI interaction logs on in the benchmark server: %w", err)
		}
	}
	inner := append(withoutServerFlags(args), "--server", url, "--token", tok, "--exports", "0", "--query-clients", "0")

	fmt.Fprintln(stderr, "ingest alone:")
	var solo bytes.Buffer
	soloErr := runBench(ctx, inner, io.MultiWriter(&solo, stderr), stderr)
	soloRate, soloErrs, ok := ingestFigures(solo.String())
	if !ok {
		return fmt.Errorf("the solo run reported no rate: %v", soloErr)
	}

	mix := &mixedLoad{url: url, tok: tok, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.exports + cfg.queryClients}}}
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range cfg.exports {
		wg.Add(1)
		go func() { defer wg.Done(); mix.exporter(mctx) }()
	}
	for i := range cfg.queryClients {
		wg.Add(1)
		go func() { defer wg.Done(); mix.querier(mctx, uint64(i)) }()
	}
	fmt.Fprintf(stderr, "ingest with %d exports and %d query clients:\n", cfg.exports, cfg.queryClients)
	var mixed bytes.Buffer
	inner = append(inner, "--stored", "0") // the events stored before are there already
	mixedErr := runBench(ctx, inner, io.MultiWriter(&mixed, stderr), stderr)
	stop()
	wg.Wait()
	mixedRate, mixedErrs, ok := ingestFigures(mixed.String())
	if !ok {
		return fmt.Errorf("the mixed run reported no rate: %v", mixedErr)
	}

	mix.mu.Lock()
	defer mix.mu.Unlock()
	ratio := 0.0
	if soloRate > 0 {
		ratio = mixedRate / soloRate
	}
	fmt.Fprintf(stdout, "veritrail bench (mixed): ingest alone, then beside %d exports and %d query clients\n", cfg.exports, cfg.queryClients)
	fmt.Fprintf(stdout, "  solo          %.0f events/s, %d errors\n", soloRate, soloErrs)
	fmt.Fprintf(stdout, "  mixed         %.0f events/s, %d errors\n", mixedRate, mixedErrs)
	fmt.Fprintf(stdout, "  ratio         %.2f (goal ≥ 0.90)\n", ratio)
	fmt.Fprintf(stdout, "  exports       %d complete, %.1f MB streamed, %d errors\n", mix.exportsDone, float64(mix.exportBytes)/1e6, mix.exportErrs)
	fmt.Fprintf(stdout, "  queries       %d, p50 %s  p99 %s  max %s, %d errors\n", len(mix.lats),
		pct(mix.lats, 50), pct(mix.lats, 99), pct(mix.lats, 100), mix.queryErrs)
	if mix.firstErr != "" {
		fmt.Fprintf(stdout, "  first error   %s\n", mix.firstErr)
	}
	if soloErr != nil || mixedErr != nil || mix.exportErrs+mix.queryErrs > 0 {
		return errors.New("some requests failed")
	}
	return nil
}

// withoutServerFlags is args without the flags of the server bench
// starts (--server-args, --db, --data, --keep), which the inner runs
// against that server refuse.
func withoutServerFlags(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			out = append(out, args[i])
			continue
		}
		switch name {
		case "keep":
			continue
		case "server-args", "db", "data":
			if !hasValue {
				i++ // its value
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

var (
	ackedLine  = regexp.MustCompile(`acknowledged\s+\d+ events in \d+ requests: (\d+) events/s`)
	errorsLine = regexp.MustCompile(`(?m)^\s+errors\s+(\d+)$`)
)

// ingestFigures reads the rate and error count from runBench's report.
func ingestFigures(report string) (rate float64, errs int, ok bool) {
	m := ackedLine.FindStringSubmatch(report)
	if m == nil {
		return 0, 0, false
	}
	rate, _ = strconv.ParseFloat(m[1], 64)
	if e := errorsLine.FindStringSubmatch(report); e != nil {
		errs, _ = strconv.Atoi(e[1])
	}
	return rate, errs, true
}

// mixedLoad is the readers beside the ingest: large exports and list
// queries, each counting what it did and what failed.
type mixedLoad struct {
	url, tok string
	client   *http.Client

	mu          sync.Mutex
	lats        []time.Duration
	exportsDone int
	exportBytes int64
	exportErrs  int
	queryErrs   int
	firstErr    string
}

func (m *mixedLoad) fail(export bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if export {
		m.exportErrs++
	} else {
		m.queryErrs++
	}
	if m.firstErr == "" {
		m.firstErr = err.Error()
	}
}

// get answers a GET's status and the body's length, read to the end.
func (m *mixedLoad) get(ctx context.Context, path string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url+path, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+m.tok)
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, n, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return resp.StatusCode, n, err
}

// exporter streams the whole log as NDJSON, again and again.
func (m *mixedLoad) exporter(ctx context.Context) {
	for ctx.Err() == nil {
		_, n, err := m.get(ctx, "/api/v1/events/export?format=ndjson")
		if ctx.Err() != nil {
			// Cut off by the run's end: what streamed counts as progress.
			m.mu.Lock()
			m.exportBytes += n
			m.mu.Unlock()
			return
		}
		if err != nil {
			m.fail(true, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		m.mu.Lock()
		m.exportsDone++
		m.exportBytes += n
		m.mu.Unlock()
	}
}

// mixedQueries are list queries as a console or an investigator makes them.
var mixedQueries = []string{
	"/api/v1/events?limit=50",
	"/api/v1/events?limit=50&type=auth.*",
	"/api/v1/events?limit=50&outcome=failure",
	"/api/v1/events?limit=100&since=-1h",
	"/api/v1/events?limit=50&type=ai.*,agent.*",
	"/api/v1/events?limit=50&order=asc",
}

// querier runs list queries one after the other, timing each.
func (m *mixedLoad) querier(ctx context.Context, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 11))
	for ctx.Err() == nil {
		q := mixedQueries[rnd.IntN(len(mixedQueries))]
		start := time.Now()
		_, _, err := m.get(ctx, q)
		d := time.Since(start)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.fail(false, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		m.mu.Lock()
		m.lats = append(m.lats, d)
		m.mu.Unlock()
	}
}

// mixedFlagsSet reports whether cfg asks for the mixed-load measurement.
func mixedFlagsSet(cfg *benchConfig) bool { return cfg.exports > 0 || cfg.queryClients > 0 }
