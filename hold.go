package veritrail

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Hold is a legal hold: while it is not released, the events it covers keep
// their envelopes and content whatever retention and erasure say. It
// covers the events that match every part it gives: any of its actors (by
// id or e-mail address), its time range, and its filter.
type Hold struct {
	ID     string `json:"id"`
	OrgID  int64  `json:"-"`
	Name   string `json:"name"`
	Reason string `json:"reason"`

	ActorIDs    []string   `json:"actor_ids,omitempty"`
	ActorEmails []string   `json:"actor_emails,omitempty"` // lower case
	Since       *time.Time `json:"since,omitempty"`        // inclusive
	Until       *time.Time `json:"until,omitempty"`        // exclusive
	// Filter is list parameters of GET /api/v1/events (type=auth.*&ip=…),
	// field filters only.
	Filter string `json:"filter,omitempty"`

	PlacedBy      Actor      `json:"placed_by"`
	PlacedAt      time.Time  `json:"placed_at"`
	ReleasedBy    *Actor     `json:"released_by,omitempty"`
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
}

// Active reports whether the hold still keeps its events.
func (h *Hold) Active() bool { return h.ReleasedAt == nil }

// Release marks the hold released by by at at, for reason; EConflict if it
// was already.
func (h *Hold) Release(at time.Time, by Actor, reason string) error {
	if !h.Active() {
		return Errorf(EConflict, "hold %q was released at %s", h.ID, h.ReleasedAt.Format(time.RFC3339))
	}
	at = at.UTC()
	h.ReleasedAt, h.ReleasedBy, h.ReleaseReason = &at, &by, reason
	return nil
}

// UnmarshalHold reads a hold of org as a store keeps it (its JSON).
func UnmarshalHold(org int64, body []byte) (*Hold, error) {
	var h Hold
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("hold of org %d: %w", org, err)
	}
	h.OrgID = org
	return &h, nil
}

// MaxHoldActors bounds the actors one hold names.
const MaxHoldActors = 1000

// Validate checks a hold before it is placed, names the offending field,
// and normalizes its e-mail addresses to lower case.
func (h *Hold) Validate() error {
	if strings.TrimSpace(h.Name) == "" || len(h.Name) > 200 {
		return Errorf(EInvalid, "name: give a short name (1 to 200 characters)")
	}
	if strings.TrimSpace(h.Reason) == "" || len(h.Reason) > 4000 {
		return Errorf(EInvalid, "reason: say why the hold is placed (1 to 4000 characters)")
	}
	if len(h.ActorIDs)+len(h.ActorEmails) > MaxHoldActors {
		return Errorf(EInvalid, "actor_ids, actor_emails: at most %d actors in one hold", MaxHoldActors)
	}
	// An actor no event can carry would hold nothing, silently: refused.
	for i, a := range h.ActorIDs {
		if a == "" || len(a) > maxIDLen || !utf8.ValidString(a) {
			return Errorf(EInvalid, "actor_ids[%d]: give an actor id as events carry it (1 to %d bytes of UTF-8)", i, maxIDLen)
		}
	}
	for i, a := range h.ActorEmails {
		if len(a) > maxEmailLen || !strings.Contains(a, "@") || !utf8.ValidString(a) {
			return Errorf(EInvalid, "actor_emails[%d]: %q is not an e-mail address (at most %d bytes)", i, truncateForError(a), maxEmailLen)
		}
		h.ActorEmails[i] = strings.ToLower(a)
	}
	if len(h.Filter) > maxHoldFilter {
		return Errorf(EInvalid, "filter: at most %d bytes of query parameters", maxHoldFilter)
	}
	if h.Since != nil && h.Until != nil && !h.Since.Before(*h.Until) {
		return Errorf(EInvalid, "since (%s) must be before until (%s)", h.Since.Format(time.RFC3339Nano), h.Until.Format(time.RFC3339Nano))
	}
	if _, err := h.filters(); err != nil {
		return err
	}
	if len(h.ActorIDs)+len(h.ActorEmails) == 0 && h.Since == nil && h.Until == nil && h.Filter == "" {
		return Errorf(EInvalid, "a hold needs actors (actor_ids, actor_emails), a time range (since, until) or a filter")
	}
	return nil
}

// maxHoldFilter bounds a hold's filter, as a URL's query is bounded.
const maxHoldFilter = 4000

// truncateForError shortens what an error message quotes back.
func truncateForError(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}

// filters parses the hold's filter.
func (h *Hold) filters() ([]Filter, error) {
	if h.Filter == "" {
		return nil, nil
	}
	vals, err := url.ParseQuery(h.Filter)
	if err != nil {
		return nil, Errorf(EInvalid, "filter: not URL query parameters: %v", err)
	}
	for name := range vals {
		if _, ok := FieldByName(name); !ok {
			return nil, Errorf(EInvalid, "filter: %q is not a field filter; filters are: %s", name, strings.TrimSuffix(filterNames(), ", since, until, q, order, limit, cursor"))
		}
	}
	q, err := ParseQuery(vals, false)
	if err != nil {
		return nil, Errorf(EInvalid, "filter: %s", ErrorMessage(err))
	}
	return q.Filters, nil
}

// Queries returns queries whose union is the events the hold covers (one
// per kind of actor identifier, or one without actors), in seq order.
func (h *Hold) Queries() ([]*Query, error) {
	fs, err := h.filters()
	if err != nil {
		return nil, err
	}
	base := Query{Filters: fs, Order: OrderSeq, Limit: MaxLimit}
	if h.Since != nil {
		base.Since = *h.Since
	}
	if h.Until != nil {
		base.Until = *h.Until
	}
	var out []*Query
	add := func(f Field, vs []string) {
		if len(vs) == 0 {
			return
		}
		q := base
		filter := Filter{Field: f}
		for _, v := range vs {
			filter.Ranges = append(filter.Ranges, Exact(v))
		}
		q.Filters = append(slices.Clone(fs), filter)
		out = append(out, &q)
	}
	add(FieldActorID, h.ActorIDs)
	add(FieldActorEmail, h.ActorEmails)
	if len(h.ActorIDs)+len(h.ActorEmails) == 0 {
		out = append(out, &base)
	}
	return out, nil
}

// HoldStore keeps an organization's legal holds. Holds are never deleted:
// releasing one keeps it, with who released it and why.
type HoldStore interface {
	// CreateHold stores h (validated); EConflict if its id is taken,
	// ENotFound if the org is gone.
	CreateHold(ctx context.Context, h *Hold) error
	// ListHolds returns the organization's holds, released ones too,
	// newest first.
	ListHolds(ctx context.Context, org int64) ([]*Hold, error)
	// HoldByID returns one hold; ENotFound if not in org.
	HoldByID(ctx context.Context, org int64, id string) (*Hold, error)
	// ReleaseHold marks a hold released by by, at at, for reason;
	// ENotFound if not in org, EConflict if already released.
	ReleaseHold(ctx context.Context, org int64, id string, at time.Time, by Actor, reason string) (*Hold, error)
}

// HeldEvent is an event a hold keeps: where it is and what retention
// would apply to it.
type HeldEvent struct {
	Seq      int64
	TimeNS   int64
	Category string
	Holds    []string // ids of the holds that cover it
}

// HeldSet is what the active holds of an organization keep, taken at one
// log size: events appended after it (seq >= Through) count as held too,
// so that nothing a hold would cover slips between taking the set and
// removing. Removal MUST skip every seq Held reports.
type HeldSet struct {
	Through int64       // the log size when the set was taken
	Events  []HeldEvent // by seq
}

// Held reports whether the event at seq is kept by a hold.
func (h *HeldSet) Held(seq int64) bool {
	if h == nil {
		return false
	}
	if seq >= h.Through {
		return true
	}
	_, ok := slices.BinarySearchFunc(h.Events, seq, func(e HeldEvent, s int64) int { return cmp.Compare(e.Seq, s) })
	return ok
}

// Seqs returns the held seqs below Through, ascending.
func (h *HeldSet) Seqs() []int64 {
	if h == nil {
		return nil
	}
	out := make([]int64, len(h.Events))
	for i, e := range h.Events {
		out[i] = e.Seq
	}
	return out
}

// Held reads which events org's active holds keep, narrowed by narrow
// (applied to each hold's queries: an erasure's filter, retention's latest
// cutoff), or nil when org holds nothing. The set is taken at the log's
// current size.
func Held(ctx context.Context, s Store, org int64, narrow func(*Query)) (*HeldSet, []*Hold, error) {
	all, err := s.ListHolds(ctx, org)
	if err != nil {
		return nil, nil, err
	}
	var active []*Hold
	for _, h := range all {
		if h.Active() {
			active = append(active, h)
		}
	}
	if len(active) == 0 {
		return nil, nil, nil
	}
	size, _, err := s.LogHead(ctx, org)
	if err != nil {
		return nil, nil, err
	}
	set := &HeldSet{Through: size}
	bySeq := map[int64]*HeldEvent{}
	for _, h := range active {
		qs, err := h.Queries()
		if err != nil {
			return nil, nil, err
		}
		for _, q := range qs {
			if narrow != nil {
				narrow(q)
			}
			if err := heldBy(ctx, s, org, h.ID, q, size, bySeq); err != nil {
				return nil, nil, err
			}
		}
	}
	set.Events = make([]HeldEvent, 0, len(bySeq))
	for _, e := range bySeq {
		set.Events = append(set.Events, *e)
	}
	slices.SortFunc(set.Events, func(a, b HeldEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	return set, active, nil
}

// heldBy adds the events q matches below size to bySeq, as held by hold.
func heldBy(ctx context.Context, s Store, org int64, hold string, q *Query, size int64, bySeq map[int64]*HeldEvent) error {
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil // narrowed to nothing
	}
	for {
		p, err := s.Query(ctx, org, q)
		if err != nil {
			return err
		}
		for _, se := range p.Events {
			if se.Seq >= size {
				return nil
			}
			he := bySeq[se.Seq]
			if he == nil {
				e, err := ParseEnvelope(se.Envelope)
				if err != nil {
					return err
				}
				he = &HeldEvent{Seq: se.Seq, TimeNS: se.TimeNS, Category: Category(e.Type)}
				bySeq[se.Seq] = he
			}
			if !slices.Contains(he.Holds, hold) {
				he.Holds = append(he.Holds, hold)
			}
		}
		if len(p.Events) < q.Limit || p.Next == nil {
			return nil
		}
		q.After = p.Next
	}
}

// HoldCount says how many events one hold kept from a removal.
type HoldCount struct {
	Hold   string `json:"hold"`
	Name   string `json:"name"`
	Events int64  `json:"events"`
}

// Blocked counts, per hold, the held events that keep pick says a removal
// would otherwise have taken.
func (h *HeldSet) Blocked(holds []*Hold, pick func(HeldEvent) bool) []HoldCount {
	if h == nil {
		return []HoldCount{}
	}
	n := map[string]int64{}
	for _, e := range h.Events {
		if pick(e) {
			for _, id := range e.Holds {
				n[id]++
			}
		}
	}
	out := []HoldCount{}
	for _, hd := range holds {
		if n[hd.ID] > 0 {
			out = append(out, HoldCount{Hold: hd.ID, Name: hd.Name, Events: n[hd.ID]})
		}
	}
	return out
}
