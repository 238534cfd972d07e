package veritrail

import (
	"strings"
	"testing"
	"time"
)

// TestSettingsValidate refuses each kind of bad rule with the field and
// its position.
func TestSettingsValidate(t *testing.T) {
	star := RetentionRule{Category: "*", ContentDays: 90, MetadataDays: 730}
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatalf("default settings: %v", err)
	}
	for _, tc := range []struct {
		s    Settings
		want string
	}{
		{Settings{}, `retention: a rule for category "*"`},
		{Settings{Retention: []RetentionRule{star, {Category: "Bad Cat", ContentDays: 1, MetadataDays: 2}}}, "retention[1].category"},
		{Settings{Retention: []RetentionRule{star, star}}, "retention[1].category"},
		{Settings{Retention: []RetentionRule{{Category: "*", ContentDays: -1}}}, "retention[0].content_days"},
		{Settings{Retention: []RetentionRule{{Category: "*", MetadataDays: MaxRetentionDays + 1}}}, "retention[0].metadata_days"},
		{Settings{Retention: []RetentionRule{star, {Category: "ai", ContentDays: 0, MetadataDays: 5}}}, "retention[1]: content_days"},
		{Settings{Retention: []RetentionRule{star}, DLP: DLPSettings{Mode: "on"}}, "dlp.mode"},
	} {
		err := tc.s.Validate()
		if ErrorCode(err) != EInvalid || !strings.HasPrefix(ErrorMessage(err), tc.want) {
			t.Errorf("%+v: got %v, want an invalid error starting %q", tc.s, err, tc.want)
		}
	}
}

func TestCutoffs(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := int64(24 * time.Hour)
	s := &Settings{Retention: []RetentionRule{
		{Category: "*", ContentDays: 90, MetadataDays: 730},
		{Category: "ai", ContentDays: 30, MetadataDays: 365},
		{Category: "audit"},
	}}
	c := s.Cutoffs(now)
	if content, meta := c.For("ai"); content != now.UnixNano()-30*day || meta != now.UnixNano()-365*day {
		t.Errorf("ai: %d %d", content, meta)
	}
	if content, meta := c.For("auth"); content != now.UnixNano()-90*day || meta != now.UnixNano()-730*day {
		t.Errorf("auth (the * rule): %d %d", content, meta)
	}
	if content, meta := c.For("audit"); content != 0 || meta != 0 {
		t.Errorf("audit (forever): %d %d", content, meta)
	}
	if got := c.Latest(); got != now.UnixNano()-30*day {
		t.Errorf("latest %d, want the ai content cutoff", got)
	}
	if got := (&Settings{Retention: []RetentionRule{{Category: "*"}}}).Cutoffs(now).Latest(); got != 0 {
		t.Errorf("nothing expires: latest %d", got)
	}
}
