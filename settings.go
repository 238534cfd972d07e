package veritrail

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Settings are an organization's own choices.
type Settings struct {
	// AIInteractionLogsEnabled turns the collection of AI interaction logs
	// (category ai) on. Off by default: while off, ai events are answered
	// recorded: false and not stored. Only interactions that happened after
	// it was turned on are kept.
	AIInteractionLogsEnabled bool `json:"ai_interaction_logs_enabled"`
	// AIEnabledAt is when collection was last turned on (set by the server).
	AIEnabledAt *time.Time `json:"ai_interaction_logs_enabled_at,omitempty"`
	// Retention rules per category; "*" applies to categories without a
	// rule of their own.
	Retention []RetentionRule `json:"retention"`
	// DLP is what ingest does with events whose content holds secrets or
	// personal data (the dlp package's detectors). Off by default.
	DLP DLPSettings `json:"dlp"`
	// KeepAttachmentBytes keeps the bytes of images and other attachments
	// that arrive inline over OTLP, as content under retention; otherwise
	// only their mime type, size and SHA-256 are kept.
	KeepAttachmentBytes bool `json:"keep_attachment_bytes"`
	// MCPPolicy is the organization's policy for MCP tool calls (the mcp
	// package's JSON: rules that allow, block or redact), fetched by
	// `veritrail mcp-proxy --policy server`. Absent: none held. The HTTP
	// layer, which knows the format, checks it.
	MCPPolicy json.RawMessage `json:"mcp_policy,omitempty"`
	// TlogPublic serves the log's checkpoint and hash tiles
	// (/tlog/{org}/checkpoint, /tlog/{org}/tile/…) without a token: they
	// hold hashes, no event data. Entry bundles (the envelopes) always
	// need a token that may read the log.
	TlogPublic bool `json:"tlog_public"`
	// Witnessing is who cosigns the log's checkpoints, and how many must.
	Witnessing WitnessPolicy `json:"witnessing"`
}

// WitnessPolicy is an organization's witness policy: every new checkpoint
// goes to each witness (C2SP tlog-witness), and a checkpoint becomes the
// checkpoint of record, the one served to the world, once Quorum of them
// cosigned it.
type WitnessPolicy struct {
	Witnesses []Witness `json:"witnesses"`
	// Quorum is K of the len(Witnesses) = N; 0: no cosignature needed.
	Quorum int `json:"quorum"`
}

// Witness is one witness of a policy.
type Witness struct {
	// URL is the witness's base URL: checkpoints go to URL/add-checkpoint.
	URL string `json:"url"`
	// Key is the witness's verifier key (C2SP signed-note, Ed25519
	// cosignature/v1: name+hash+base64). The HTTP layer, which knows the
	// format, checks it.
	Key string `json:"key"`
}

// DLP modes: what ingest does with an event whose content has findings.
const (
	DLPOff    = "off"    // nothing is scanned (the default; ingest costs nothing more)
	DLPRecord = "record" // stored as sent; the findings are recorded in decision and content
	DLPRedact = "redact" // findings are masked in the content before it is stored
	DLPBlock  = "block"  // the content is not stored, only the envelope and the findings
)

// DLPSettings choose the DLP mode and, optionally, which detectors run
// (all when empty). Detector names are checked by the HTTP layer, which
// knows the detectors.
type DLPSettings struct {
	Mode      string   `json:"mode"`
	Detectors []string `json:"detectors,omitempty"`
}

// Enabled reports whether ingest scans content.
func (d DLPSettings) Enabled() bool { return d.Mode != "" && d.Mode != DLPOff }

// RetentionRule keeps the full event (content included) for ContentDays
// and its envelope (metadata) for MetadataDays, counted from the event's
// time. 0 keeps it forever. Leaf hashes are kept forever whatever the rule:
// the tree and every proof stay valid.
type RetentionRule struct {
	Category     string `json:"category"`
	ContentDays  int    `json:"content_days"`
	MetadataDays int    `json:"metadata_days"`
}

// DefaultSettings are what an organization starts with: AI interaction logs
// off; content 90 days and metadata 2 years for everything; AI prompts and
// responses 30 days, their metadata a year; the log of the log, retention
// and erasure records metadata 7 years, content 2.
func DefaultSettings() *Settings {
	return &Settings{
		DLP: DLPSettings{Mode: DLPOff},
		Retention: []RetentionRule{
			{Category: "*", ContentDays: 90, MetadataDays: 730},
			{Category: "ai", ContentDays: 30, MetadataDays: 365},
			{Category: "audit", ContentDays: 730, MetadataDays: 2555},
			{Category: "retention", ContentDays: 730, MetadataDays: 2555},
			{Category: "privacy", ContentDays: 730, MetadataDays: 2555},
		},
	}
}

// MaxRetentionDays bounds a rule (100 years).
const MaxRetentionDays = 36500

// Validate checks settings and names the offending field and position.
func (s *Settings) Validate() error {
	seen := map[string]bool{}
	for i, r := range s.Retention {
		if r.Category != "*" && !validCategory(r.Category) {
			return Errorf(EInvalid, "retention[%d].category: %q is not \"*\" or a category such as ai or auth", i, r.Category)
		}
		if seen[r.Category] {
			return Errorf(EInvalid, "retention[%d].category: %q appears twice", i, r.Category)
		}
		seen[r.Category] = true
		if r.ContentDays < 0 || r.ContentDays > MaxRetentionDays {
			return Errorf(EInvalid, "retention[%d].content_days: must be 0 (forever) to %d, got %d", i, MaxRetentionDays, r.ContentDays)
		}
		if r.MetadataDays < 0 || r.MetadataDays > MaxRetentionDays {
			return Errorf(EInvalid, "retention[%d].metadata_days: must be 0 (forever) to %d, got %d", i, MaxRetentionDays, r.MetadataDays)
		}
		if r.MetadataDays > 0 && (r.ContentDays == 0 || r.ContentDays > r.MetadataDays) {
			return Errorf(EInvalid, "retention[%d]: content_days (%d) must not outlast metadata_days (%d): content without its envelope cannot be read or verified", i, r.ContentDays, r.MetadataDays)
		}
	}
	if !seen["*"] {
		return Errorf(EInvalid, `retention: a rule for category "*" is required (it covers every other category)`)
	}
	if err := s.Witnessing.validate(); err != nil {
		return err
	}
	switch s.DLP.Mode {
	case "", DLPOff, DLPRecord, DLPRedact, DLPBlock:
	default:
		return Errorf(EInvalid, "dlp.mode: must be off, record, redact or block, got %q", s.DLP.Mode)
	}
	return nil
}

// Rule returns the rule that applies to a category.
func (s *Settings) Rule(category string) RetentionRule {
	i := slices.IndexFunc(s.Retention, func(r RetentionRule) bool { return r.Category == category })
	if i < 0 {
		i = slices.IndexFunc(s.Retention, func(r RetentionRule) bool { return r.Category == "*" })
	}
	if i < 0 {
		return RetentionRule{Category: "*"}
	}
	return s.Retention[i]
}

// Cutoffs is what retention removes at one moment: for each category, the
// event time before which content, and before which the envelope, are
// removed (zero: never).
type Cutoffs struct {
	rules map[string]RetentionRule
	def   RetentionRule
	now   time.Time
	// Held is what legal holds keep: a store MUST NOT remove any of it.
	Held *HeldSet
}

// Cutoffs returns the settings' cutoffs at now.
func (s *Settings) Cutoffs(now time.Time) *Cutoffs {
	c := &Cutoffs{rules: map[string]RetentionRule{}, now: now}
	for _, r := range s.Retention {
		if r.Category == "*" {
			c.def = r
		} else {
			c.rules[r.Category] = r
		}
	}
	return c
}

func daysBefore(now time.Time, days int) int64 {
	if days <= 0 {
		return 0
	}
	return now.Add(-time.Duration(days) * 24 * time.Hour).UnixNano()
}

// For returns the content and envelope cutoffs (unix ns; 0 = never) of a
// category.
func (c *Cutoffs) For(category string) (content, metadata int64) {
	r, ok := c.rules[category]
	if !ok {
		r = c.def
	}
	return daysBefore(c.now, r.ContentDays), daysBefore(c.now, r.MetadataDays)
}

// Takes reports whether the cutoffs reach a held event (it would lose
// content or envelope without its hold). Whether its content is already
// gone is not known here, so this may count such events too.
func (c *Cutoffs) Takes(e HeldEvent) bool {
	content, metadata := c.For(e.Category)
	return content > 0 && e.TimeNS < content || metadata > 0 && e.TimeNS < metadata
}

// Latest returns the latest cutoff of any category (events at or after it
// are kept whole by every rule), 0 if nothing ever expires.
func (c *Cutoffs) Latest() int64 {
	latest := max(0, daysBefore(c.now, c.def.ContentDays), daysBefore(c.now, c.def.MetadataDays))
	for _, r := range c.rules {
		latest = max(latest, daysBefore(c.now, r.ContentDays), daysBefore(c.now, r.MetadataDays))
	}
	return latest
}

// Removal is a range of an organization's log whose content or envelopes
// were removed, and by what.
type Removal struct {
	From, To int64  // seqs, inclusive
	What     string // "content" or "envelope" (an envelope removal takes the content too)
	Reason   string // "retention" or "erasure"
	Record   string // id of the retention.run or privacy.erasure event that records it
	At       time.Time
}

// RemovalCounts count, for one category, what a removal would take.
type RemovalCounts struct {
	Contents  int64 `json:"content_removed"`
	Envelopes int64 `json:"envelopes_removed"`
}

// RemovalResult counts what one retention run or erasure removed.
type RemovalResult struct {
	Contents  int64      `json:"content_removed"`
	Envelopes int64      `json:"envelopes_removed"`
	Ranges    []*Removal `json:"-"`
	// Held counts, per hold, the events holds kept from this removal.
	Held []HoldCount `json:"kept_by_holds"`
}

// SeqRanges returns the removed ranges of one kind as [from, to] pairs.
func (r *RemovalResult) SeqRanges(what string) [][2]int64 {
	out := [][2]int64{}
	for _, rm := range r.Ranges {
		if rm.What == what {
			out = append(out, [2]int64{rm.From, rm.To})
		}
	}
	return out
}

// Admits reports whether an event may be recorded under these settings,
// and why not: AI interaction logs (category ai) are kept only while
// collection is on, and only for interactions after it was turned on.
func (s *Settings) Admits(e *Event) (bool, string) {
	if e.Category() != "ai" {
		return true, ""
	}
	if !s.AIInteractionLogsEnabled {
		return false, "AI interaction logs are turned off for this organization (settings: ai_interaction_logs_enabled)"
	}
	if s.AIEnabledAt != nil && e.Time.Before(*s.AIEnabledAt) {
		return false, "the interaction happened before AI interaction logs were turned on at " + s.AIEnabledAt.UTC().Format(time.RFC3339)
	}
	return true, ""
}

// MaxWitnesses bounds a witness policy.
const MaxWitnesses = 16

func (w *WitnessPolicy) validate() error {
	if len(w.Witnesses) > MaxWitnesses {
		return Errorf(EInvalid, "witnessing.witnesses: at most %d, got %d", MaxWitnesses, len(w.Witnesses))
	}
	keys := map[string]int{}
	for i, wt := range w.Witnesses {
		u, err := url.Parse(wt.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return Errorf(EInvalid, "witnessing.witnesses[%d].url: %q is not an http(s) base URL such as https://witness.example/", i, wt.URL)
		}
		name, _, _ := strings.Cut(wt.Key, "+")
		if wt.Key == "" || name == "" {
			return Errorf(EInvalid, "witnessing.witnesses[%d].key: the witness's verifier key (name+hash+base64) is required", i)
		}
		if j, ok := keys[name]; ok {
			return Errorf(EInvalid, "witnessing.witnesses[%d].key: the key name %q is also witnesses[%d]'s", i, name, j)
		}
		keys[name] = i
	}
	if w.Quorum < 0 || w.Quorum > len(w.Witnesses) {
		return Errorf(EInvalid, "witnessing.quorum: must be 0 to the number of witnesses (%d), got %d", len(w.Witnesses), w.Quorum)
	}
	return nil
}
