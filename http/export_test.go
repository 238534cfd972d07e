package http_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/export"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// postMany stores n events of three categories, each with content.
func (e *env) postMany(n int) {
	e.t.Helper()
	var b strings.Builder
	cats := []string{"auth", "admin", "ai"}
	for i := range n {
		fmt.Fprintf(&b, `{"id":"many-%04d","type":"%s.thing_%d","time":"2026-02-%02dT10:%02d:00Z","actor":{"type":"user","id":"u%d","email":"u%d@acme.example"},"outcome":"success","content":{"details":{"n":%d,"note":"secret words %d, \"quoted\""}}}`+"\n",
			i, cats[i%3], i%7, 1+i%27, i%60, i%5, i%5, i, i)
	}
	if r := e.post(b.String(), "Content-Type", "application/x-ndjson"); r.status != 200 {
		e.t.Fatalf("post: %d %s", r.status, r.body)
	}
}

// listIDs pages through the list endpoint: the ids a filter matches, in order.
func (e *env) listIDs(token, filters string) []string {
	e.t.Helper()
	var ids []string
	path := "/api/v1/events?limit=1000&" + filters
	for {
		r := e.do("GET", path, token, nil)
		if r.status != 200 {
			e.t.Fatalf("list %s: %d %s", filters, r.status, r.body)
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Next string `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		for _, d := range page.Data {
			ids = append(ids, d.ID)
		}
		if page.Next == "" || len(page.Data) == 0 {
			return ids
		}
		path = "/api/v1/events?limit=1000&" + filters + "&cursor=" + page.Next
	}
}

func TestExportStream(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestSeeds()
	e.postMany(300)
	security := e.token(e.org, veritrail.RoleSecurity, nil, nil)
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	exportsOnly := e.token(e.org, veritrail.RoleAdmin, []string{veritrail.ScopeExports}, nil)

	const filters = "type=auth.*&type=ai.*&order=asc"
	want := e.listIDs(security, filters)
	if len(want) < 200 {
		t.Fatalf("only %d events match", len(want))
	}

	// CSV: the documented columns, content for a reader who may see it.
	r := e.do("GET", "/api/v1/events/export?format=csv&"+filters, security, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if cd := r.header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="veritrail-acme-events-\d{8}-\d{6}\.csv"$`).MatchString(cd) {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], append(slices.Clone(export.Columns), "content")) {
		t.Errorf("CSV header %v", rows[0])
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, row[0])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("CSV export has %d events, the list %d (or another order)", len(got), len(want))
	}
	last := rows[slices.IndexFunc(rows, func(r []string) bool { return strings.HasPrefix(r[0], "many-") })]
	var content map[string]any
	if err := json.Unmarshal([]byte(last[len(last)-1]), &content); err != nil || content["details"] == nil {
		t.Errorf("content column %q: %v", last[len(last)-1], err)
	}

	// An auditor's export has no content anywhere.
	r = e.do("GET", "/api/v1/events/export?format=csv&"+filters, auditor, nil)
	rows, _ = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if r.status != 200 || slices.Contains(rows[0], "content") || len(rows)-1 != len(want) || strings.Contains(string(r.body), "secret words") {
		t.Errorf("auditor csv: %d, header %v, %d rows", r.status, rows[0], len(rows)-1)
	}
	for _, format := range []string{"json", "ndjson"} {
		r = e.do("GET", "/api/v1/events/export?format="+format+"&"+filters, auditor, nil)
		if strings.Contains(string(r.body), `"content"`) || strings.Contains(string(r.body), "secret words") {
			t.Errorf("auditor %s export shows content", format)
		}
	}

	// JSON is one array; NDJSON one event per line; both in list order.
	r = e.do("GET", "/api/v1/events/export?format=json&"+filters, security, nil)
	var arr []map[string]any
	if err := json.Unmarshal(r.body, &arr); err != nil || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %v %s", err, r.header.Get("Content-Type"))
	}
	got = got[:0]
	for _, ev := range arr {
		got = append(got, ev["id"].(string))
	}
	if !slices.Equal(got, want) || arr[0]["content"] == nil {
		t.Errorf("json export: %d events", len(got))
	}
	r = e.do("GET", "/api/v1/events/export?format=ndjson&"+filters, exportsOnly, nil)
	if r.status != 200 {
		t.Fatalf("ndjson with the exports scope: %d %s", r.status, r.body)
	}
	got = got[:0]
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("ndjson line: %v", err)
		}
		got = append(got, ev["id"].(string))
	}
	if !slices.Equal(got, want) {
		t.Errorf("ndjson export: %d events", len(got))
	}

	// A polling-order export ends at the log's size when it began.
	r = e.do("GET", "/api/v1/events/export?format=ndjson&order=seq", security, nil)
	if n := bytes.Count(r.body, []byte("\n")); r.status != 200 || n < 312 {
		t.Errorf("seq export: %d, %d events", r.status, n)
	}

	// Bad requests name the parameter; tokens without the scope are refused.
	for _, c := range []struct {
		path, token string
		status      int
		want        string
	}{
		{"format=xml", security, 400, "parameter format"},
		{"format=bundle", security, 400, "POST /api/v1/exports"},
		{"limit=10", security, 400, "parameter limit"},
		{"cursor=abc", security, 400, "parameter cursor"},
		{"since=yesterday", security, 400, "since"},
		{"format=csv", ingest, 403, "exports"},
		{"format=csv", "", 401, ""},
	} {
		r := e.do("GET", "/api/v1/events/export?"+c.path, c.token, nil)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) || !strings.Contains(string(r.body), `"error"`) {
			t.Errorf("%s: %d %s, want %d naming %q", c.path, r.status, r.body, c.status, c.want)
		}
	}

	// Every export is recorded: who, the filters, the format, the count.
	r = e.do("GET", "/api/v1/events?type=audit.export_finished&limit=100", e.owner, nil)
	var recs struct {
		Data []struct {
			Actor   map[string]any `json:"actor"`
			Content struct {
				Details map[string]any `json:"details"`
			} `json:"content"`
		} `json:"data"`
	}
	json.Unmarshal(r.body, &recs)
	if len(recs.Data) < 5 {
		t.Errorf("%d audit.export_finished records, want one per export", len(recs.Data))
	}
	r = e.do("GET", "/api/v1/events?type=audit.export&limit=100", e.owner, nil)
	if !strings.Contains(string(r.body), `"format":"csv"`) || !strings.Contains(string(r.body), `"type":["auth.*","ai.*"]`) {
		t.Errorf("audit.export records lack the format or the filters: %s", r.body)
	}
}

// exportEnv is a server with export jobs running, a clock, a signing key
// and (optionally) e-mail.
type exportEnv struct {
	*env
	clock  *clock
	vkey   string
	dir    string
	jobs   *export.Jobs
	cancel context.CancelFunc
	done   chan struct{}
}

func newExportEnv(t *testing.T, m *mail.Config) *exportEnv {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	mt := metrics.New()
	store := openStore(t, dir, storeOptions{Observer: mt, Now: c.now})
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	jobs := export.NewJobs(export.JobsConfig{Store: store, Checkpointer: cpr, Now: c.now, Dir: filepath.Join(dir, "exports"), TTL: 24 * time.Hour, Mail: m,
		Links: export.Links{Key: []byte("0123456789abcdef0123456789abcdef"), PublicURL: "https://audit.acme.example/"}})
	api := vhttp.New(vhttp.Config{Store: store, Metrics: mt, Checkpointer: cpr, Now: c.now, PublicURL: "https://audit.acme.example/", Exports: jobs})
	srv := httptest.NewServer(api)
	e := &env{t: t, store: store, srv: srv, api: api}
	x := &exportEnv{env: e, clock: c, dir: dir, jobs: jobs}
	x.startJobs()
	t.Cleanup(func() { x.stopJobs(); srv.Close(); api.Shutdown(ctx); store.Close() })
	e.org, _ = store.CreateOrg(ctx, "acme")
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	x.vkey, _ = cpr.VerifierKey(e.org)
	return x
}

func (x *exportEnv) startJobs() {
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel, x.done = cancel, make(chan struct{})
	go func() { defer close(x.done); x.jobs.Run(ctx) }()
}

func (x *exportEnv) stopJobs() {
	if x.cancel != nil {
		x.cancel()
		<-x.done
		x.cancel = nil
	}
}

func (x *exportEnv) create(token, body string) string {
	x.t.Helper()
	r := x.do("POST", "/api/v1/exports", token, strings.NewReader(body))
	if r.status != 202 {
		x.t.Fatalf("create export %s: %d %s", body, r.status, r.body)
	}
	m := r.json(x.t)
	if m["state"] != "pending" || m["id"] == "" {
		x.t.Fatalf("create export: %s", r.body)
	}
	return m["id"].(string)
}

// wait polls a job until it leaves pending and running.
func (x *exportEnv) wait(token, id string) map[string]any {
	x.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := x.do("GET", "/api/v1/exports/"+id, token, nil)
		if r.status != 200 {
			x.t.Fatalf("get export: %d %s", r.status, r.body)
		}
		m := r.json(x.t)
		if m["state"] != "pending" && m["state"] != "running" {
			return m
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("export %s still %s", id, m["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// local points a link built on the public URL at the test server.
func (x *exportEnv) local(link string) string {
	return strings.Replace(link, "https://audit.acme.example", "", 1)
}

var linkRE = regexp.MustCompile(`https://audit\.acme\.example/api/v1/exports/[^\s]+`)

func TestExportJobs(t *testing.T) {
	smtp := smtptest.Start(t)
	x := newExportEnv(t, &mail.Config{URL: smtp.URL(), From: "veritrail@acme.example", CAFile: smtp.CAFile})
	x.ingestSeeds()
	x.postMany(600)
	security := x.token(x.org, veritrail.RoleSecurity, nil, nil)
	auditor := x.token(x.org, veritrail.RoleAuditor, nil, nil)

	// A job with every event of two categories, e-mailed when ready.
	id := x.create(security, `{"format":"ndjson","filters":{"type":["auth.*","ai.*"]},"notify":"sec@acme.example"}`)
	job := x.wait(security, id)
	want := x.listIDs(security, "type=auth.*&type=ai.*&order=asc")
	if job["state"] != "ready" || job["progress"] != float64(len(want)) || job["size_bytes"].(float64) <= 0 || job["content"] != true {
		t.Fatalf("job: %v (want %d events)", job, len(want))
	}
	link, _ := job["download_url"].(string)
	if !strings.HasPrefix(link, "https://audit.acme.example/api/v1/exports/"+id+"/download?") {
		t.Fatalf("download_url %q is not built on the public URL", link)
	}
	msgs := smtp.Wait(t, 1, 30*time.Second)
	mailed := linkRE.FindString(msgs[0])
	if !strings.Contains(msgs[0], "X-Rcpt-To: sec@acme.example") || !strings.Contains(msgs[0], "Subject: Your Veritrail export is ready") || mailed == "" {
		t.Fatalf("e-mail:\n%s", msgs[0])
	}

	// The e-mailed link downloads the file, without a token.
	r := x.do("GET", x.local(mailed), "", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" || !strings.Contains(r.header.Get("Content-Disposition"), ".ndjson") {
		t.Fatalf("download: %d %v %s", r.status, r.header, r.body)
	}
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		json.Unmarshal(sc.Bytes(), &ev)
		got = append(got, ev["id"].(string))
	}
	if !slices.Equal(got, want) || !strings.Contains(string(r.body), "secret words") {
		t.Fatalf("downloaded %d events, want %d", len(got), len(want))
	}

	// Forged or altered links are refused.
	u, _ := url.Parse(x.local(mailed))
	q := u.Query()
	alter := func(k, v string) string {
		c := url.Values{}
		for kk, vv := range q {
			c[kk] = slices.Clone(vv)
		}
		c.Set(k, v)
		return u.Path + "?" + c.Encode()
	}
	sig := q.Get("sig")
	flipped := string(sig[:len(sig)-1]) + map[bool]string{true: "0", false: "1"}[sig[len(sig)-1] != '0']
	exp := q.Get("expires")
	for name, path := range map[string]string{
		"changed signature": alter("sig", flipped),
		"no signature":      alter("sig", ""),
		"later expiry":      alter("expires", exp+"0"),
		"other org":         alter("o", "999"),
		"other job":         strings.Replace(alter("sig", sig), id, "exp_forged", 1),
	} {
		r := x.do("GET", path, "", nil)
		if r.status != 403 || !strings.Contains(string(r.body), `"error"`) {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}

	// Jobs are shared in the organization, but a content file gets no link
	// for an auditor, and another organization sees nothing.
	r = x.do("GET", "/api/v1/exports/"+id, auditor, nil)
	if r.status != 200 || strings.Contains(string(r.body), "download_url") {
		t.Errorf("auditor sees: %d %s", r.status, r.body)
	}
	other, _ := x.store.CreateOrg(context.Background(), "globex")
	if r := x.do("GET", "/api/v1/exports/"+id, x.token(other, veritrail.RoleOwner, nil, nil), nil); r.status != 404 {
		t.Errorf("another organization's owner: %d %s", r.status, r.body)
	}
	if r := x.do("GET", "/api/v1/exports", security, nil); r.status != 200 || !strings.Contains(string(r.body), id) {
		t.Errorf("list: %d %s", r.status, r.body)
	}

	// After the TTL the link is gone, and so is the file: on this node's
	// disk, or in a store several nodes share (no file on the node then).
	files, _ := filepath.Glob(filepath.Join(x.dir, "exports", "*"))
	fileGone := func() bool { _, err := os.Stat(files[0]); return os.IsNotExist(err) }
	if fs, shared := x.store.(veritrail.ExportFileStore); shared {
		if len(files) != 0 {
			t.Fatalf("a shared store's export left files on the node: %v", files)
		}
		if f, err := fs.OpenExportFile(context.Background(), x.org.ID, id); err != nil {
			t.Fatalf("the store does not hold the export file: %v", err)
		} else {
			f.Close()
		}
		fileGone = func() bool {
			_, err := fs.OpenExportFile(context.Background(), x.org.ID, id)
			return veritrail.ErrorCode(err) == veritrail.ENotFound
		}
	} else if len(files) != 1 {
		t.Fatalf("export files: %v", files)
	}
	x.clock.set(x.clock.now().Add(24*time.Hour + time.Second))
	if r := x.do("GET", x.local(mailed), "", nil); r.status != 410 || !strings.Contains(string(r.body), `"code":"expired"`) {
		t.Errorf("expired link: %d %s", r.status, r.body)
	}
	x.jobs.Sweep(context.Background())
	if !fileGone() {
		t.Errorf("the expired file is still there")
	}
	if job := x.wait(security, id); job["state"] != "expired" || job["download_url"] != nil {
		t.Errorf("expired job: %v", job)
	}

	// Bad requests name the field.
	for body, wantMsg := range map[string]string{
		`{"format":"xml"}`: "field format",
		`{"format":"csv","notify":"a@b.example\r\nBcc: x@y.example"}`: "field notify",
		`{"format":"csv","filters":{"since":"yesterday"}}`:            "since",
		`{"format":"csv","filters":{"limit":"5"}}`:                    "parameter limit",
		`{"format":"csv","filters":{"type":{"a":1}}}`:                 "filters.type",
		`{"format":"csv"`:   "JSON ends early",
		`{"format":5}`:      "field format",
		`{"format":"csv",}`: "byte 17",
	} {
		r := x.do("POST", "/api/v1/exports", security, strings.NewReader(body))
		if r.status != 400 || !strings.Contains(string(r.body), wantMsg) {
			t.Errorf("%s: %d %s, want 400 naming %q", body, r.status, r.body, wantMsg)
		}
	}
	if r := x.do("POST", "/api/v1/exports", x.token(x.org, veritrail.RoleIngest, nil, nil), strings.NewReader(`{"format":"csv"}`)); r.status != 403 {
		t.Errorf("ingest token: %d", r.status)
	}
}

func TestExportJobSurvivesRestart(t *testing.T) {
	x := newExportEnv(t, nil)
	x.postMany(200)
	x.stopJobs()
	// A job that was running when the server stopped, with half a file.
	id := x.create(x.owner, `{"format":"csv","filters":{"type":"admin.*"}}`)
	j, err := x.store.ClaimExport(context.Background(), x.clock.now())
	if err != nil || j.ID != id {
		t.Fatalf("claim: %v", err)
	}
	os.MkdirAll(filepath.Join(x.dir, "exports"), 0o700)
	os.WriteFile(filepath.Join(x.dir, "exports", id+".csv.part"), []byte("id,seq\nhalf"), 0o600)
	if r := x.do("GET", "/api/v1/exports/"+id, x.owner, nil); !strings.Contains(string(r.body), `"state":"running"`) {
		t.Fatalf("before restart: %s", r.body)
	}
	// Its worker is gone for minutes; the next start takes it up again.
	x.clock.set(x.clock.now().Add(3 * time.Minute))
	x.startJobs()
	job := x.wait(x.owner, id)
	if job["state"] != "ready" {
		t.Fatalf("after restart: %v", job)
	}
	r := x.do("GET", x.local(job["download_url"].(string)), "", nil)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows)-1 != len(x.listIDs(x.owner, "type=admin.*")) || strings.Contains(string(r.body), "half") {
		t.Fatalf("file after restart: %d rows, %v", len(rows)-1, err)
	}
}

func TestExportBundle(t *testing.T) {
	x := newExportEnv(t, nil)
	x.ingestSeeds()
	x.postMany(120)
	auditor := x.token(x.org, veritrail.RoleAuditor, nil, nil)
	for _, c := range []struct {
		token       string
		withContent bool
	}{{x.owner, true}, {auditor, false}} {
		id := x.create(c.token, `{"format":"bundle","filters":{"type":["auth.*","admin.*"]}}`)
		job := x.wait(c.token, id)
		if job["state"] != "ready" {
			t.Fatalf("bundle job: %v", job)
		}
		r := x.do("GET", x.local(job["download_url"].(string)), "", nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/zip" {
			t.Fatalf("download: %d %s", r.status, r.body)
		}
		want := len(x.listIDs(c.token, "type=auth.*&type=admin.*"))
		check := func(b []byte) (*verify.BundleResult, *verify.Report) {
			rep := &verify.Report{}
			res, err := verify.Bundle(bytes.NewReader(b), int64(len(b)), x.vkey, rep)
			if err != nil {
				rep.Add(verify.Failure{Kind: "error", Detail: err.Error()})
			}
			return res, rep
		}
		res, rep := check(r.body)
		if !rep.OK() || res.Events != want || (res.Contents > 0) != c.withContent {
			t.Fatalf("bundle: %+v, %d events (want %d), %d contents: %v", res, res.Events, want, res.Contents, rep.Failures)
		}
		if !c.withContent && bytes.Contains(r.body, []byte("secret words")) {
			t.Error("the auditor's bundle holds content")
		}
		// Any one changed byte fails: every byte of the archive's metadata
		// and small files, and bytes spread over the events.
		zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		evf := zr.File[len(zr.File)-1]
		from, _ := evf.DataOffset()
		to := from + int64(evf.CompressedSize64)
		step := max(1, int(to-from)/1500)
		if raceEnabled {
			step *= 8
		}
		passed := 0
		for i := 0; i < len(r.body); i++ {
			if int64(i) >= from && int64(i) < to && (int64(i)-from)%int64(step) != 0 {
				continue
			}
			b := slices.Clone(r.body)
			b[i] ^= 0x20
			if _, rep := check(b); rep.OK() {
				passed++
				if passed < 5 {
					t.Errorf("a bundle with byte %d of %d changed verified", i, len(b))
				}
			}
		}
		if passed > 0 {
			t.Errorf("%d one-byte changes verified", passed)
		}
	}
}
