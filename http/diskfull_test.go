package http_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// smallDisk mounts a tmpfs of size bytes on a new directory for the test.
// It needs root (CAP_SYS_ADMIN): elsewhere the test is skipped with a
// banner, except under CI, which runs as root and must run it.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("SKIPPING the full-disk test: cannot mount a small tmpfs (needs root): %v %s", err, out)
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// TestDiskFull: the disk under the data directory fills up during
// ingest. Requests are answered 507 with a message that says so, or 503,
// never 500; once space is freed, ingest resumes by itself, every
// acknowledged event is there, and the store verifies.
func TestDiskFull(t *testing.T) {
	if onPostgres {
		t.Skip("the data directory is SQLite's")
	}
	ctx := context.Background()
	dir := smallDisk(t, 32<<20)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "data"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	api := vhttp.New(vhttp.Config{Store: store})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Shutdown(ctx) })
	e := &env{t: t, store: store, srv: srv, api: api}
	if e.org, err = store.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example"})
	if err != nil {
		t.Fatal(err)
	}

	// Leave about 2 MiB free.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 2000)
	request := func(n int) string {
		var b strings.Builder
		for i := range 50 {
			fmt.Fprintf(&b, `{"id":"e%d-%d","time":"2026-06-01T00:00:00Z","type":"auth.login","actor":{"type":"user","id":"u"},"content":{"pad":%q}}`+"\n", n, i, pad)
		}
		return b.String()
	}
	acked, n := 0, 0
	var full response
	for ; n < 200; n++ {
		r := e.post(request(n))
		if r.status == 200 {
			acked += 50
			continue
		}
		full = r
		break
	}
	if full.status == 0 {
		t.Fatalf("%d requests fitted on a full disk", n)
	}
	msg := fmt.Sprint(full.json(t)["error"])
	switch {
	case full.status == 507 && strings.Contains(msg, "storage is full") && full.header.Get("Retry-After") != "":
	case full.status == 503 && full.header.Get("Retry-After") != "":
	default:
		t.Fatalf("ingest on a full disk: %d %s %v, want 507 (storage is full) or 503, with Retry-After", full.status, msg, full.header)
	}
	t.Logf("request %d answered %d: %s", n, full.status, msg)
	// Still full: still refused, nothing half-stored.
	if r := e.post(request(n)); r.status == 200 {
		t.Fatalf("a request on a full disk was stored")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Space freed: the refused request, resent, is stored, and more.
	for i := n; i < n+3; i++ {
		if r := e.post(request(i)); r.status != 200 || strings.Contains(string(r.body), `"duplicate":true`) {
			t.Fatalf("after space was freed, request %d: %d %s", i, r.status, r.body)
		}
		acked += 50
	}
	size, _, err := store.LogHead(ctx, e.org.ID)
	if err != nil || size != int64(acked) {
		t.Fatalf("the log holds %d events (%v), %d were acknowledged", size, err, acked)
	}
	if _, err := cpr.Sign(ctx, e.org); err != nil {
		t.Fatal(err)
	}
	vkey, _ := cpr.VerifierKey(e.org)
	rep := &verify.Report{}
	if _, err := verify.Check(ctx, store.VerifySource(), verify.Options{Keys: []string{vkey}, Index: true}, rep); err != nil || !rep.OK() {
		t.Fatalf("verify after the disk was full: %v %v", err, rep.Failures)
	}
}
