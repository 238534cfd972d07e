package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testSettings checks SettingsStore: an organization starts with the
// default settings, a put replaces them whole (nothing merged), and each
// organization has its own.
func testSettings(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	same := func(what string, got, want *veritrail.Settings) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s:\n got %s\nwant %s", what, g, w)
		}
	}
	read := func(org int64) *veritrail.Settings {
		t.Helper()
		st, err := s.OrgSettings(ctx, org)
		if err != nil {
			t.Fatalf("OrgSettings: %v", err)
		}
		return st
	}
	same("settings never set", read(a.ID), veritrail.DefaultSettings())

	on := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	full := &veritrail.Settings{
		AIInteractionLogsEnabled: true, AIEnabledAt: &on,
		Retention:           []veritrail.RetentionRule{{Category: "*", ContentDays: 30, MetadataDays: 365}, {Category: "ai", ContentDays: 7, MetadataDays: 90}},
		DLP:                 veritrail.DLPSettings{Mode: veritrail.DLPRedact, Detectors: []string{"email", "card"}},
		KeepAttachmentBytes: true,
		MCPPolicy:           json.RawMessage(`{"rules":[{"tool":"export_*","action":"block"}]}`),
	}
	if err := s.PutOrgSettings(ctx, a.ID, full); err != nil {
		t.Fatal(err)
	}
	same("settings read back", read(a.ID), full)
	same("another organization's settings", read(b.ID), veritrail.DefaultSettings())

	// A put replaces: what the new settings leave out is gone.
	less := &veritrail.Settings{Retention: []veritrail.RetentionRule{{Category: "*", ContentDays: 0, MetadataDays: 0}}, DLP: veritrail.DLPSettings{Mode: veritrail.DLPOff}}
	if err := s.PutOrgSettings(ctx, a.ID, less); err != nil {
		t.Fatal(err)
	}
	same("settings replaced", read(a.ID), less)
	same("another organization's settings after a second put", read(b.ID), veritrail.DefaultSettings())
}
