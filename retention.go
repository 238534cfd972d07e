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
	record := NewEventID(now)
	res, err := s.Expire(ctx, org, st.Cutoffs(now), record)
	if res == nil {
		res = &RemovalResult{}
	}
	details := map[string]any{
		"content_removed":   res.Contents,
		"envelopes_removed": res.Envelopes,
		"content_ranges":    res.SeqRanges("content"),
		"envelope_ranges":   res.SeqRanges("envelope"),
		"rules":             st.Retention,
		"at":                now.UTC().Format(time.RFC3339Nano),
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
	record := NewEventID(now)
	res, err := s.EraseContent(ctx, org, f, record)
	if res == nil {
		res = &RemovalResult{}
	}
	details := map[string]any{
		"by":              f.Field.String(),
		"content_removed": res.Contents,
		"content_ranges":  res.SeqRanges("content"),
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
