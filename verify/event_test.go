package verify_test

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/veritrail/veritrail/verify"
)

// bundleLines returns the events.ndjson lines of a bundle.
func bundleLines(t testing.TB, bundle []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "events.ndjson" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			return strings.Split(strings.TrimSpace(string(b)), "\n")
		}
	}
	t.Fatal("no events.ndjson")
	return nil
}

func TestCheckEventBundleLine(t *testing.T) {
	bundle, vkey := smallBundle(t)
	for i, line := range bundleLines(t, bundle) {
		p, err := verify.CheckEvent([]byte(line), vkey)
		if err != nil || p.Seq != int64(i) || p.TreeSize != 2 || p.Content != "matches" {
			t.Fatalf("line %d: %+v %v", i, p, err)
		}
	}
	line := bundleLines(t, bundle)[1]
	for name, bad := range map[string]string{
		"content":    strings.Replace(line, `"n":1`, `"n":2`, 1),
		"envelope":   strings.Replace(line, `"ai.prompt"`, `"ai.promps"`, 1),
		"line's seq": strings.Replace(line, `{"seq":1`, `{"seq":0`, 1),
		"not json":   line[:40],
	} {
		if _, err := verify.CheckEvent([]byte(bad), vkey); err == nil {
			t.Errorf("a line with a changed %s verified", name)
		}
	}
}

func FuzzCheckEvent(f *testing.F) {
	bundle, vkey := smallBundle(f)
	for _, l := range bundleLines(f, bundle) {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"id":"x","seq":0,"proof":{"tree_size":1,"leaf_hash":"","hashes":["AA=="],"checkpoint":"a\n1\nAA==\n\n— a x\n"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		verify.CheckEvent(raw, vkey) // must not panic
	})
}
