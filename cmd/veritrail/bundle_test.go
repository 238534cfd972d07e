package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// buildBundle assembles an evidence bundle from a server's API: one
// checkpoint, and for each seq the event and its inclusion proof in it.
func buildBundle(t *testing.T, s *server, tok, vkey string, seqs []int) string {
	t.Helper()
	_, note := s.do("GET", "/api/v1/log/checkpoint", tok, "")
	cp, err := tlog.OpenCheckpoint(note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	bw, err := verify.NewBundleWriter(&buf, note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		code, b := s.do("GET", fmt.Sprintf("/api/v1/events?order=seq&limit=1&cursor=%s", seqCursor(t, s, tok, seq)), tok, "")
		if code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		json.Unmarshal(b, &page)
		env, content, salt, err := verify.SplitEvent(page.Data[0])
		if err != nil {
			t.Fatal(err)
		}
		_, pb := s.do("GET", fmt.Sprintf("/api/v1/log/proof/inclusion?seq=%d&tree_size=%d", seq, cp.Size), tok, "")
		var p struct {
			Proof []string `json:"proof"`
		}
		json.Unmarshal(pb, &p)
		var proof [][]byte
		for _, h := range p.Proof {
			d, _ := base64.StdEncoding.DecodeString(h)
			proof = append(proof, d)
		}
		if err := bw.Add(&verify.BundleEvent{Seq: int64(seq), Envelope: env, Content: content, Salt: salt, Proof: proof}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.zip")
	os.WriteFile(path, buf.Bytes(), 0o600)
	return path
}

// seqCursor returns a polling cursor that resumes just before seq.
func seqCursor(t *testing.T, s *server, tok string, seq int) string {
	t.Helper()
	if seq == 0 {
		// The first page of a poll has no cursor: ask for the one after
		// nothing by reading one event and stepping back is not possible,
		// so read the first page directly.
		return ""
	}
	code, b := s.do("GET", fmt.Sprintf("/api/v1/events?order=seq&limit=%d", seq), tok, "")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var page struct {
		Next string `json:"next_cursor"`
	}
	json.Unmarshal(b, &page)
	return page.Next
}

func readZipEntry(t *testing.T, path, name string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			return string(b)
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return ""
}

// rewriteZipEntry writes a copy of a bundle with one entry replaced.
func rewriteZipEntry(t *testing.T, path, name, body string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		w, _ := verify.CreateStored(zw, f.Name)
		if f.Name == name {
			io.WriteString(w, body)
			continue
		}
		rc, _ := f.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	out := filepath.Join(t.TempDir(), "changed.zip")
	os.WriteFile(out, buf.Bytes(), 0o600)
	return out
}
