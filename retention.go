package veritrail

import (
	"context"
	"encoding/json"
	"time"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// RunRetention applies org's retention rules at now: content and envelopes
// past their days are removed (leaf hashes never), and the run is recorded
// as a retention.run event with its counts and seq ranges, which removals
// point to. actor is who ran it (the scheduler or a token).
func RunRetention(ctx context.Context, s Store, org int64, now time.Time, actor Actor) (*Event, *RemovalResult, error) {
	st, err := s.OrgSettings(ctx, org)
	if err != nil {
		return nil, nil, err
	}
	c, holds, err := retentionCutoffs(ctx, s, org, st, now)
	if err != nil {
		return nil, nil, err
	}
	record := NewEventID(now)
	res, err := s.Expire(ctx, org, c, record)
	if res == nil {
		res = &RemovalResult{}
	}
	res.Held = c.Held.Blocked(holds, c.Takes)
	details := map[string]any{
		"content_removed":   res.Contents,
		"envelopes_removed": res.Envelopes,
		"content_ranges":    res.SeqRanges("content"),
		"envelope_ranges":   res.SeqRanges("envelope"),
		"rules":             st.Retention,
		"at":                now.UTC().Format(time.RFC3339Nano),
	}
	if len(res.Held) > 0 {
		details["kept_by_holds"] = res.Held
	}
	outcome := OutcomeSuccess
	if err != nil {
		// What was removed before the error is recorded all the same.
		outcome = OutcomeFailure
		details["error"] = ErrorMessage(err)
	}
	e, rerr := record_(ctx, s, org, record, now, "retention.run", actor, outcome, details)
	if err == nil {
		err = rerr
	}
	return e, res, err
}

// Erase removes the content of one person's events (by actor_id or
// actor_email) and records it as a privacy.erasure event. The record names
// what kind of identifier was erased and which events lost content, never
// the identifier or the content.
func Erase(ctx context.Context, s Store, org int64, f Filter, now time.Time, actor Actor) (*Event, *RemovalResult, error) {
	held, holds, err := Held(ctx, s, org, narrowTo(f))
	if err != nil {
		return nil, nil, err
	}
	record := NewEventID(now)
	res, err := s.EraseContent(ctx, org, f, held, record)
	if res == nil {
		res = &RemovalResult{}
	}
	res.Held = held.Blocked(holds, func(HeldEvent) bool { return true })
	details := map[string]any{
		"by":              f.Field.String(),
		"content_removed": res.Contents,
		"content_ranges":  res.SeqRanges("content"),
	}
	if len(res.Held) > 0 {
		details["kept_by_holds"] = res.Held
	}
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeFailure
		details["error"] = ErrorMessage(err)
	}
	e, rerr := record_(ctx, s, org, record, now, "privacy.erasure", actor, outcome, details)
	if err == nil {
		err = rerr
	}
	return e, res, err
}

// retentionCutoffs returns st's cutoffs at now with what org's holds keep
// of the events they reach, and the active holds.
func retentionCutoffs(ctx context.Context, s Store, org int64, st *Settings, now time.Time) (*Cutoffs, []*Hold, error) {
	c := st.Cutoffs(now)
	latest := c.Latest()
	if latest == 0 {
		return c, nil, nil
	}
	held, holds, err := Held(ctx, s, org, func(q *Query) {
		// Only events older than the latest cutoff can go.
		if u := time.Unix(0, latest); q.Until.IsZero() || u.Before(q.Until) {
			q.Until = u
		}
	})
	c.Held = held
	return c, holds, err
}

// HeldFromRetention counts, per active hold of org, the held events that
// retention under st would take at now but for the hold (a retention change
// a hold blocks); empty when no hold stands in its way.
func HeldFromRetention(ctx context.Context, s Store, org int64, st *Settings, now time.Time) ([]HoldCount, error) {
	c, holds, err := retentionCutoffs(ctx, s, org, st, now)
	if err != nil {
		return nil, err
	}
	return c.Held.Blocked(holds, c.Takes), nil
}

// narrowTo narrows a hold's queries to an erasure's filter.
func narrowTo(f Filter) func(*Query) {
	return func(q *Query) { q.Filters = append(q.Filters, f) }
}

// RetentionPreview is what a retention run would remove now: counts per
// category, and per hold what holds keep from it.
type RetentionPreview struct {
	Categories map[string]*RemovalCounts `json:"categories"`
	Total      RemovalCounts             `json:"total"`
	Held       []HoldCount               `json:"kept_by_holds"`
}

// PreviewRetention counts what RunRetention would remove from org at now
// under st (the stored settings, or settings about to be saved), removing
// nothing.
func PreviewRetention(ctx context.Context, s Store, org int64, st *Settings, now time.Time) (*RetentionPreview, error) {
	c, holds, err := retentionCutoffs(ctx, s, org, st, now)
	if err != nil {
		return nil, err
	}
	cats, err := s.PreviewExpiry(ctx, org, c)
	if err != nil {
		return nil, err
	}
	p := &RetentionPreview{Categories: cats, Held: c.Held.Blocked(holds, c.Takes)}
	if p.Categories == nil {
		p.Categories = map[string]*RemovalCounts{}
	}
	for _, n := range cats {
		p.Total.Contents += n.Contents
		p.Total.Envelopes += n.Envelopes
	}
	return p, nil
}

// ErasurePreview is what an erasure would remove now: per category, how
// many events would lose their content, and what holds keep.
type ErasurePreview struct {
	Categories map[string]int64 `json:"categories"`
	Total      int64            `json:"content_removed"`
	Held       []HoldCount      `json:"kept_by_holds"`
}

// PreviewErasure counts the events of org matching f (an actor_id or
// actor_email filter) that still hold content and would lose it,
// removing nothing.
func PreviewErasure(ctx context.Context, s Store, org int64, f Filter) (*ErasurePreview, error) {
	held, holds, err := Held(ctx, s, org, narrowTo(f))
	if err != nil {
		return nil, err
	}
	p := &ErasurePreview{Categories: map[string]int64{}, Held: held.Blocked(holds, func(HeldEvent) bool { return true })}
	q := &Query{Filters: []Filter{f}, Order: OrderSeq, Limit: MaxLimit, WithContent: true}
	for {
		page, err := s.Query(ctx, org, q)
		if err != nil {
			return nil, err
		}
		for _, se := range page.Events {
			if se.Content == nil || held.Held(se.Seq) {
				continue
			}
			e, err := ParseEnvelope(se.Envelope)
			if err != nil {
				return nil, err
			}
			p.Categories[Category(e.Type)]++
			p.Total++
		}
		if len(page.Events) < q.Limit || page.Next == nil {
			return p, nil
		}
		q.After = page.Next
	}
}

// record_ appends a server-made event with an id chosen beforehand.
func record_(ctx context.Context, s Store, org int64, id string, now time.Time, typ string, actor Actor, outcome string, details map[string]any) (*Event, error) {
	e, err := NewRecord(now, typ, actor, nil, outcome, details)
	if err != nil {
		return nil, err
	}
	e.ID = id // named before the work, so removals can point at it
	if _, err := s.Append(ctx, org, []*Event{e}); err != nil {
		return nil, err
	}
	return e, nil
}

// NewRecord builds an event the server records about itself (changes made
// through the API or the CLI, retention runs, paused sinks): a new id, the
// time now, details as canonical content. The store seals the content and
// derives the index keys when it commits the event (these are rare).
func NewRecord(now time.Time, typ string, actor Actor, target *Target, outcome string, details map[string]any) (*Event, error) {
	e := &Event{ID: NewEventID(now), Time: now.UTC(), Type: typ, Actor: actor, Target: target, Outcome: outcome}
	if len(details) > 0 {
		raw, err := json.Marshal(details)
		if err != nil {
			return nil, err
		}
		if e.Content, err = canonjson.Append(nil, raw); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// SystemActor is the actor of what the server does on its own.
func SystemActor(name string) Actor {
	return Actor{Type: ActorSystem, ID: "veritrail", Name: name}
}
