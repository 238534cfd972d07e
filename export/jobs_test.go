package export_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/export"
	"github.com/veritrail/veritrail/sqlite"
)

func TestLinks(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	j := &veritrail.ExportJob{ID: "exp_01", OrgID: 7, ExpiresAt: &exp}
	l := export.Links{Key: []byte("0123456789abcdef0123456789abcdef")}
	link := l.URL("http://10.0.0.1:8080", j)
	u, err := url.Parse(link)
	if err != nil || u.Host != "10.0.0.1:8080" || u.Path != "/api/v1/exports/exp_01/download" || u.Query().Get("o") != "7" {
		t.Fatalf("link %q", link)
	}
	sig := u.Query().Get("sig")
	noKey, _ := url.Parse(export.Links{}.URL("", j))
	if !l.Check(7, "exp_01", exp.Unix(), sig) {
		t.Fatal("a link made by Links does not check")
	}
	for name, ok := range map[string]bool{
		"other org":      l.Check(8, "exp_01", exp.Unix(), sig),
		"other job":      l.Check(7, "exp_02", exp.Unix(), sig),
		"later expiry":   l.Check(7, "exp_01", exp.Unix()+1, sig),
		"other key":      export.Links{Key: []byte("another key of thirty-two bytes!")}.Check(7, "exp_01", exp.Unix(), sig),
		"no key":         export.Links{}.Check(7, "exp_01", exp.Unix(), noKey.Query().Get("sig")),
		"empty sig":      l.Check(7, "exp_01", exp.Unix(), ""),
		"truncated sig":  l.Check(7, "exp_01", exp.Unix(), sig[:len(sig)-1]),
		"upper-case sig": l.Check(7, "exp_01", exp.Unix(), strings.ToUpper(sig)),
	} {
		if ok {
			t.Errorf("%s: the link checks", name)
		}
	}
	public := export.Links{Key: l.Key, PublicURL: "https://audit.example.com/"}.URL("http://10.0.0.1:8080", j)
	if !strings.HasPrefix(public, "https://audit.example.com/api/v1/exports/exp_01/download?") {
		t.Errorf("the public URL does not replace the request's base: %q", public)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestJobs runs jobs on a real store without the HTTP layer: a file is
// written with every matching event, the job is marked ready with an
// expiry and recorded, a bundle without a checkpointer fails with a
// reason, and an expired file is swept.
func TestJobs(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, dir, sqlite.Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	org, _ := store.CreateOrg(ctx, "acme")
	var events []*veritrail.Event
	for i := range 30 {
		typ := []string{"auth.login", "admin.changed"}[i%2]
		e, _ := veritrail.NewRecord(c.now().Add(-time.Duration(i)*time.Minute), typ, veritrail.Actor{Type: "user", ID: fmt.Sprint("u", i)}, nil, veritrail.OutcomeSuccess, nil)
		events = append(events, e)
	}
	if _, err := store.Append(ctx, org.ID, events); err != nil {
		t.Fatal(err)
	}

	jobs := export.NewJobs(export.JobsConfig{Store: store, Logger: slog.New(slog.DiscardHandler), Dir: filepath.Join(dir, "exports"), TTL: time.Hour, Now: c.now})
	if jobs.Bundles() || jobs.Notifies() {
		t.Error("a runner without checkpointer or mail offers bundles or e-mail")
	}
	for _, j := range []*veritrail.ExportJob{
		{ID: "exp_ndjson", Format: export.NDJSON, Query: "type=auth.*", TokenID: "tok_1"},
		{ID: "exp_bundle", Format: export.Bundle, TokenID: "usr_dana"}, // asked for in the console
	} {
		j.OrgID, j.State, j.CreatedAt = org.ID, veritrail.ExportPending, c.now()
		if err := store.CreateExport(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); jobs.Run(rctx) }()
	defer func() { stop(); <-done }()
	jobs.Wake()

	wait := func(id string) *veritrail.ExportJob {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			j, err := store.ExportByID(ctx, org.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != veritrail.ExportPending && j.State != veritrail.ExportRunning {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s still %s", id, j.State)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	j := wait("exp_ndjson")
	if j.State != veritrail.ExportReady || j.Progress != 15 || j.ExpiresAt == nil || !j.ExpiresAt.Equal(j.FinishedAt.Add(time.Hour)) {
		t.Fatalf("ndjson job: %+v", j)
	}
	f, err := export.OpenFile(ctx, store, j)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		if !strings.Contains(sc.Text(), `"type":"auth.login"`) {
			t.Errorf("line %d: %s", n, sc.Text())
		}
	}
	f.Close()
	if n != 15 {
		t.Errorf("%d events in the file, want 15", n)
	}
	if b := wait("exp_bundle"); b.State != veritrail.ExportFailed || !strings.Contains(b.Error, "signs no checkpoints") {
		t.Errorf("bundle job without a checkpointer: %+v", b)
	}
	// Each job is recorded once it is saved.
	q, _ := veritrail.ParseQuery(url.Values{"type": {"audit.export_finished"}}, false)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		page, err := store.Query(ctx, org.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 2 {
			// Each as its requester: a token, or a console user.
			for _, ev := range page.Events {
				e, err := veritrail.ParseEnvelope(ev.Envelope)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[string]string{"exp_ndjson": "api_key tok_1", "exp_bundle": "user usr_dana"}[e.Target.ID]; e.Actor.Type+" "+e.Actor.ID != want {
					t.Errorf("%s recorded as %s %s, want %s", e.Target.ID, e.Actor.Type, e.Actor.ID, want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d audit.export_finished records, want 2", len(page.Events))
		}
	}

	c.add(time.Hour + time.Second)
	jobs.Sweep(ctx)
	if j := wait("exp_ndjson"); j.State != veritrail.ExportExpired {
		t.Errorf("expired job: %+v", j)
	}
	if _, err := os.Stat(j.Path); !os.IsNotExist(err) {
		t.Errorf("the expired file is still there: %v", err)
	}
}
