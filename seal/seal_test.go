package seal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := Parse([]byte(Generate() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := k.Seal([]byte("hec-token-123"), "org 1 sink snk_a")
	if strings.Contains(s, "hec-token") {
		t.Fatal("the sealed form shows the secret")
	}
	if s2 := k.Seal([]byte("hec-token-123"), "org 1 sink snk_a"); s2 == s {
		t.Fatal("two seals of one secret are equal (nonce reused)")
	}
	pt, err := k.Open(s, "org 1 sink snk_a")
	if err != nil || string(pt) != "hec-token-123" {
		t.Fatalf("Open: %q %v", pt, err)
	}
	// Another context (a copy onto another sink), another key, or any
	// changed character: refused.
	if _, err := k.Open(s, "org 2 sink snk_a"); err != ErrOpen {
		t.Fatalf("other context: %v", err)
	}
	other, _ := Parse([]byte(Generate()))
	if _, err := other.Open(s, "org 1 sink snk_a"); err != ErrOpen {
		t.Fatalf("other key: %v", err)
	}
	for i := len(prefix); i < len(s); i++ {
		b := []byte(s)
		b[i] ^= 1
		if _, err := k.Open(string(b), "org 1 sink snk_a"); err == nil {
			t.Fatalf("a change at %d opened", i)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master-key")
	k1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", fi.Mode(), err)
	}
	k2, err := LoadOrCreate(path) // the same key on the next start
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k2.Open(k1.Seal([]byte("x"), "c"), "c"); err != nil || string(pt) != "x" {
		t.Fatalf("reloaded key does not open: %v", err)
	}
	os.WriteFile(path, []byte("not hex"), 0o600)
	if _, err := Load(path); err == nil {
		t.Fatal("a malformed key loaded")
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := New(make([]byte, KeySize))
	f.Add(k.Seal([]byte("secret"), "ctx"), "ctx")
	f.Add("v1:", "")
	f.Add("v1:AAAA", "ctx")
	f.Add("garbage", "ctx")
	f.Fuzz(func(t *testing.T, sealed, ctx string) {
		// Nothing opens but what was sealed: no change to the seed's
		// text or context, and no made-up text, may open (or panic).
		pt, err := k.Open(sealed, ctx)
		if err == nil && (ctx != "ctx" || string(pt) != "secret") {
			t.Fatalf("%q opened under context %q as %q", sealed, ctx, pt)
		}
		if err != nil && err != ErrOpen {
			t.Fatalf("an error other than ErrOpen: %v", err)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Generate()))
	f.Add([]byte("zz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b) // must not panic
	})
}
