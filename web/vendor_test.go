package web

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/veritrail/veritrail/internal/npmtest"
	"github.com/veritrail/veritrail/web/browsertest"
)

// TestVendoredFiles fails when a file under static/vendor/ is not, byte
// for byte, the file of the pinned npm package it claims to be: vendored
// code is upgraded by changing the pin and copying, never edited.
func TestVendoredFiles(t *testing.T) {
	for _, v := range Vendored {
		if npmtest.Version(v.Package) == "" {
			t.Fatalf("%s is vendored but not pinned in internal/npmtest/packages.txt", v.Package)
		}
	}
	entries, err := os.ReadDir("static/vendor")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := Vendored["vendor/"+e.Name()]; !ok {
			t.Errorf("static/vendor/%s is not in web.Vendored: every vendored file names its package", e.Name())
		}
	}
	for path, v := range Vendored {
		got, err := static.ReadFile("static/" + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, err := os.ReadFile(filepath.Join(npmtest.Module(t, browsertest.Group, v.Package), filepath.FromSlash(v.Path)))
		if err != nil {
			t.Fatalf("%s@%s: %v", v.Package, npmtest.Version(v.Package), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("static/%s differs from %s/%s of %s@%s: copy it again", path, v.Package, v.Path, v.Package, npmtest.Version(v.Package))
		}
	}
}
