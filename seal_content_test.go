package veritrail

import (
	"bytes"
	"testing"
)

func TestSealContent(t *testing.T) {
	e := &Event{Content: []byte(`{"a":1}`), ContentSalt: []byte("short")}
	e.SealContent()
	if len(e.ContentSalt) != SaltSize || e.ContentDigest != ContentDigest(e.ContentSalt, e.Content) {
		t.Fatalf("a salt of the wrong size was kept: %x %s", e.ContentSalt, e.ContentDigest)
	}
	salt, digest := bytes.Clone(e.ContentSalt), e.ContentDigest
	e.SealContent() // done once: kept
	if !bytes.Equal(salt, e.ContentSalt) || digest != e.ContentDigest {
		t.Fatal("a sealed event was sealed again")
	}
	e.ContentDigest = ""
	if e.SealContent(); e.ContentDigest != ContentDigest(e.ContentSalt, e.Content) {
		t.Fatal("a missing digest was not computed")
	}
	e.Content = nil
	if e.SealContent(); e.ContentSalt != nil || e.ContentDigest != "" {
		t.Fatalf("no content, yet salt %x digest %q", e.ContentSalt, e.ContentDigest)
	}
}
