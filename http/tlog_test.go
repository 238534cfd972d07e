package http_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// TestTlogTiles: the C2SP tlog-tiles layout answers what the store holds,
// to whom the organization allows, with the caching the spec permits; a
// bundle with removed envelopes answers 410.
func TestTlogTiles(t *testing.T) {
	e := newLogEnv(t)
	old := time.Now().AddDate(-3, 0, 0).UTC()
	var b strings.Builder
	for i := 0; i < 300; i++ {
		at := time.Now().UTC()
		if i < 3 { // past the default metadata retention (two years)
			at = old
		}
		fmt.Fprintf(&b, `{"id":"t%d","time":%q,"type":"auth.login","actor":{"type":"user","id":"u%d"}}`+"\n", i, at.Format(time.RFC3339), i)
	}
	if r := e.post(b.String()); r.status != 200 {
		t.Fatal(string(r.body))
	}
	cp := e.checkpoint()
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	other, _ := e.store.CreateOrg(t.Context(), "other")
	otherToken := e.token(other, veritrail.RoleOwner, nil, nil)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)

	width := int(cp.Size % 256)
	tile0 := "/tlog/acme/tile/0/000"
	tile1 := fmt.Sprintf("/tlog/acme/tile/0/001.p/%d", width)
	for _, c := range []struct {
		path, token string
		status      int
	}{
		{"/tlog/acme/checkpoint", "", 401},
		{tile0, "", 401},
		{"/tlog/nobody/checkpoint", "", 401}, // unknown and private look alike
		{"/tlog/acme/checkpoint", otherToken, 404},
		{"/tlog/acme/checkpoint", ingest, 403},
		{"/tlog/acme/checkpoint", auditor, 200},
		{tile0, auditor, 200},
		{tile1, auditor, 200},
		{"/tlog/acme/tile/0/001", auditor, 404},                            // not full yet
		{fmt.Sprintf("/tlog/acme/tile/0/001.p/%d", width+1), auditor, 404}, // beyond the log
		{"/tlog/acme/tile/0/1", auditor, 404},                              // not a tile name
		{"/tlog/acme/tile/0/000.p/256", auditor, 404},
		{"/tlog/acme/tile/entries/000", auditor, 410}, // holds removed envelopes, once retention ran
		{"/tlog/acme/tile/entries/001.p/3", "", 401},
	} {
		if c.status == 410 {
			if r := e.do("POST", "/api/v1/retention/run", e.owner, nil); r.status != 200 {
				t.Fatalf("retention: %d %s", r.status, r.body)
			}
		}
		r := e.do("GET", c.path, c.token, nil)
		if r.status != c.status {
			t.Errorf("GET %s (token %v): %d, want %d: %s", c.path, c.token != "", r.status, c.status, r.body)
		}
		if r.status == 410 && !strings.Contains(string(r.body), "entries 0 to 2 of this bundle were removed") {
			t.Errorf("410 body: %s", r.body)
		}
	}

	// Hash tiles are the stored tiles, immutable; the checkpoint verifies.
	r := e.do("GET", tile0, auditor, nil)
	want, _ := e.store.ReadTile(t.Context(), e.org.ID, 0, 0)
	if !bytes.Equal(r.body, want) || r.header.Get("Cache-Control") != "private, max-age=31536000, immutable" {
		t.Errorf("tile 0/000: %d bytes, Cache-Control %q", len(r.body), r.header.Get("Cache-Control"))
	}
	r = e.do("GET", "/tlog/acme/checkpoint", auditor, nil)
	if _, err := tlog.OpenCheckpoint(r.body, e.vkey); err != nil || r.header.Get("Cache-Control") != "private, no-cache" {
		t.Errorf("checkpoint: %v, Cache-Control %q", err, r.header.Get("Cache-Control"))
	}

	// An entry bundle holds the envelopes, each hashing to its leaf.
	r = e.do("GET", fmt.Sprintf("/tlog/acme/tile/entries/001.p/%d", width), auditor, nil)
	if r.status != 200 {
		t.Fatalf("entries: %d %s", r.status, r.body)
	}
	leaves := e.do("GET", tile1, auditor, nil).body
	n := 0
	for rest := r.body; len(rest) > 0; n++ {
		l := int(binary.BigEndian.Uint16(rest))
		entry := rest[2 : 2+l]
		rest = rest[2+l:]
		h := sha256.Sum256(append([]byte{0}, entry...))
		if !bytes.Equal(h[:], leaves[n*32:(n+1)*32]) {
			t.Fatalf("entry %d does not hash to its leaf", 256+n)
		}
	}
	if n != width {
		t.Errorf("%d entries, want %d", n, width)
	}

	// Public: checkpoint and hash tiles without a token, shareable; entry
	// bundles still need one.
	if r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(`{"retention":[{"category":"*","content_days":90,"metadata_days":730}],"tlog_public":true}`)); r.status != 200 {
		t.Fatal(string(r.body))
	}
	e.api.ForgetSettings(e.org.ID)
	for path, status := range map[string]int{"/tlog/acme/checkpoint": 200, tile0: 200, "/tlog/acme/tile/entries/001.p/3": 401} {
		r := e.do("GET", path, "", nil)
		if r.status != status {
			t.Errorf("public GET %s: %d, want %d", path, r.status, status)
		}
		if status == 200 && !strings.HasPrefix(r.header.Get("Cache-Control"), "public, ") {
			t.Errorf("public GET %s: Cache-Control %q", path, r.header.Get("Cache-Control"))
		}
	}
}

// TestWitnessPolicySettings: a witness policy names witnesses by URL and
// cosignature key; bad ones are refused naming the field.
func TestWitnessPolicySettings(t *testing.T) {
	e := newLogEnv(t)
	const key = "witness.example+5f2a5b2c+BJtQTvDJhcV0dY7Kc0Sw84XAaxWi9akHh6KAQDf0WsXV" // shape only
	for _, c := range []struct {
		body, field string
	}{
		{`{"url":"https://w.example/","key":"nokey"}],"quorum":1`, "witnessing.witnesses[0].key"},
		{`{"url":"ftp://w.example/","key":"` + key + `"}],"quorum":1`, "witnessing.witnesses[0].url"},
		{`{"url":"https://w.example/","key":"` + key + `"}],"quorum":2`, "witnessing.quorum"},
		{`{"url":"http://127.0.0.1:9/","key":"` + key + `"}],"quorum":1`, "witnessing.witnesses[0].url"},
	} {
		body := `{"retention":[{"category":"*","content_days":90,"metadata_days":730}],"witnessing":{"witnesses":[` + c.body + `}}`
		r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(body))
		if r.status != 400 || !strings.Contains(string(r.body), c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
}
