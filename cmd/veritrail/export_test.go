package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/smtptest"
)

// waitExport polls an export job until it is no longer pending or running.
func waitExport(t *testing.T, s *server, tok, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, b := s.do("GET", "/api/v1/exports/"+id, tok, "")
		var m map[string]any
		if code != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("get export: %d %s", code, b)
		}
		if m["state"] != "pending" && m["state"] != "running" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s still %s", id, m["state"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createExport(t *testing.T, s *server, tok, body string) string {
	t.Helper()
	code, b := s.do("POST", "/api/v1/exports", tok, body)
	var m map[string]string
	if code != 202 || json.Unmarshal(b, &m) != nil || m["id"] == "" {
		t.Fatalf("create export: %d %s", code, b)
	}
	return m["id"]
}

func download(t *testing.T, link string) []byte {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("download %s: %d %s", link, resp.StatusCode, b)
	}
	return b
}

// TestExportJobEndToEnd runs export jobs on the real binary: an evidence
// bundle e-mailed through a real SMTP server (STARTTLS, authentication),
// its link on VERITRAIL_PUBLIC_URL, checked by `veritrail verify --bundle`;
// and a job that outlives a killed server.
func TestExportJobEndToEnd(t *testing.T) {
	smtp := smtptest.Start(t)
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_export-test-token-0123456789abcd"
	addr := freeAddr(t)
	public := "http://localhost:" + strings.Split(addr, ":")[1]
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_PUBLIC_URL=" + public,
		"VERITRAIL_SMTP_URL=" + smtp.URL(), "VERITRAIL_SMTP_FROM=audit@acme.example", "VERITRAIL_SMTP_CA_FILE=" + smtp.CAFile}
	srv := startServer(t, data, env, "--addr", addr)
	postDemo(t, srv, tok, 3000)
	key, _ := cli(t, "key", "--data", data)
	vkey := strings.TrimSpace(key)

	id := createExport(t, srv, tok, `{"format":"bundle","filters":{"type":["ai.*","agent.*"]},"notify":"ciso@acme.example"}`)
	job := waitExport(t, srv, tok, id)
	if job["state"] != "ready" || job["progress"].(float64) < 100 {
		t.Fatalf("bundle job: %v", job)
	}
	msg := smtp.Wait(t, 1, time.Minute)[0]
	link := regexp.MustCompile(regexp.QuoteMeta(public) + `/api/v1/exports/\S+`).FindString(msg)
	if link == "" || !strings.Contains(msg, "From: audit@acme.example") || !strings.Contains(msg, "X-Rcpt-To: ciso@acme.example") {
		t.Fatalf("e-mail without a link on the public URL:\n%s", msg)
	}
	bundle := filepath.Join(t.TempDir(), "evidence.zip")
	body := download(t, link)
	os.WriteFile(bundle, body, 0o600)
	out, errOut, code := runBin(t, "verify", "--bundle", bundle, "--key", vkey)
	if code != 0 || !strings.Contains(out, "events") {
		t.Fatalf("verify --bundle: %d %s%s", code, out, errOut)
	}
	body[len(body)/2] ^= 1
	os.WriteFile(bundle, body, 0o600)
	if out, _, code := runBin(t, "verify", "--bundle", bundle, "--key", vkey); code == 0 {
		t.Fatalf("a bundle with one byte changed verified: %s", out)
	}
	if strings.Contains(srv.stderr.String(), smtp.Password) {
		t.Error("the server logged the SMTP password")
	}

	// A job queued just before the server dies is finished after restart.
	id = createExport(t, srv, tok, `{"format":"csv","filters":{"type":"auth.*"}}`)
	srv.cmd.Process.Kill()
	<-srv.exited
	srv = startServer(t, data, env, "--addr", addr)
	job = waitExport(t, srv, tok, id)
	if job["state"] != "ready" {
		t.Fatalf("job after restart: %v", job)
	}
	rows, err := csv.NewReader(strings.NewReader(string(download(t, job["download_url"].(string))))).ReadAll()
	if err != nil || len(rows) < 2 || rows[0][0] != "id" {
		t.Fatalf("csv after restart: %d rows, %v", len(rows), err)
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[4], "auth.") {
			t.Fatalf("row of type %s in an auth.* export", r[4])
		}
	}
	srv.stop()
}
