package veritrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Detection: rules watch an organization's log as it grows and raise
// alerts; alerts go out to routes (chat, paging, tickets, e-mail). Package
// rules compiles and evaluates rules, package notify delivers; the store
// keeps rules, alerts, the evaluator's position and the delivery queue
// (docs/RULES.md).

// Severities of rules and alerts, lowest first.
const (
	SeverityInformational = "informational"
	SeverityLow           = "low"
	SeverityMedium        = "medium"
	SeverityHigh          = "high"
	SeverityCritical      = "critical"
)

// Severities lists the severities, lowest first.
var Severities = []string{SeverityInformational, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// SeverityRank orders severities (0 for informational … 4 for critical);
// -1 for an unknown one.
func SeverityRank(s string) int { return slices.Index(Severities, s) }

// Alert states. An alert opens; a person acknowledges it (escalations
// stop), snoozes it until a time (it opens again then) or resolves it.
const (
	AlertOpen         = "open"
	AlertAcknowledged = "acknowledged"
	AlertSnoozed      = "snoozed"
	AlertResolved     = "resolved"
)

// AlertStates lists the states.
var AlertStates = []string{AlertOpen, AlertAcknowledged, AlertSnoozed, AlertResolved}

// MaxAlertEventIDs is how many matched event ids an alert keeps (the
// first ones); Count has the total.
const MaxAlertEventIDs = 100

// Rule is a detection rule of an organization.
type Rule struct {
	ID    string
	OrgID int64
	Name  string // unique within the organization
	// Spec is the rule as package rules encodes it (JSON; route secrets
	// sealed): opaque to the store.
	Spec []byte
	// Author is the principal that last wrote the rule ("tok_…", "usr_…",
	// or "veritrail" for the built-in pack): its access decides whether
	// the rule may read content.
	Author string
	// SinceSeq is the log's size when the rule was last written: the rule
	// judges the events from that seq on.
	SinceSeq  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Alert is what a rule raised: one per rule and dedup key at a time.
type Alert struct {
	ID       string
	OrgID    int64
	RuleID   string
	Rule     string // the rule's name when it fired
	Severity string
	DedupKey string
	// Group is the rule's group_by values (JSON object), empty without.
	Group []byte
	State string
	// Count is how many matching events the alert holds; Suppressed how
	// many more matched after it was resolved, within the rule's
	// suppression window (they opened no new alert).
	Count      int64
	Suppressed int64
	// EventIDs are the first MaxAlertEventIDs matched events' ids.
	EventIDs []string
	// FirstSeen and LastSeen are the times of the first and the last
	// matched event; LastSeq is the highest seq counted.
	FirstSeen time.Time
	LastSeen  time.Time
	LastSeq   int64
	OpenedAt  time.Time // when it fired
	UpdatedAt time.Time
	// SnoozedUntil is set while snoozed.
	SnoozedUntil *time.Time
	// StateBy and StateAt say who made the last change of state, and
	// when; Note is what they wrote.
	StateBy string
	StateAt time.Time
	Note    string
	// RecordedAt is when the alert's latest alert.* record was made.
	RecordedAt time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"  // gave up after retrying
	DeliverySkipped   = "skipped" // an escalation no longer needed (acknowledged in time)
	DeliveryDropped   = "dropped" // the organization's queue was full
)

// MaxPendingDeliveries bounds an organization's delivery queue: past it,
// new deliveries are stored as dropped (and say so) instead of queued.
const MaxPendingDeliveries = 10000

// Delivery is one notification of an alert to one route: the queue that
// package notify works through, at least once.
type Delivery struct {
	ID      string
	OrgID   int64
	AlertID string
	RuleID  string
	// RouteIndex is the route's position in the rule; Destination its
	// type (webhook, slack, …); Route its settings as package notify
	// encodes them (JSON, secrets sealed), copied so that a later change
	// of the rule does not change what was queued.
	RouteIndex  int
	Destination string
	Route       []byte
	// Event is what happened to the alert: opened, acknowledged,
	// snoozed, resolved, reopened.
	Event string
	// Escalation deliveries go out only if the alert is still neither
	// acknowledged nor resolved when they fall due.
	Escalation bool
	State      string
	Attempts   int
	DueAt      time.Time // not before
	LastError  string
	Result     string // what the destination answered (a ticket's key)
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// RuleState is where an organization's evaluator stands.
type RuleState struct {
	// Cursor: every event of seq <= Cursor was judged and what it raised
	// is stored; -1 before the first.
	Cursor int64
	// Snapshot holds the rules' windows as of SnapshotSeq (<= Cursor;
	// -1 and nil when none was saved). The evaluator restores it and
	// replays the log from SnapshotSeq+1 to Cursor to rebuild the rest.
	SnapshotSeq int64
	Snapshot    []byte
}

// RuleCommit is what one evaluation step stores, in one transaction.
type RuleCommit struct {
	From, To int64 // the cursor moves From → To (compare-and-set)
	// Snapshot, when not nil, is the windows as of To.
	Snapshot []byte
	// NewAlerts are created; Merged alerts had matches added (their
	// Count, Suppressed, EventIDs, LastSeen, LastSeq, UpdatedAt and
	// RecordedAt are saved, nothing else).
	NewAlerts  []*Alert
	Merged     []*Alert
	Deliveries []*Delivery
	// Records are alert.* events, appended to the log after the commit
	// (and again at start until they are: ids make that idempotent).
	Records []*Event
}

// AlertChange is a change of an alert's state.
type AlertChange struct {
	AlertID      string
	From, To     string // compare-and-set on the state
	SnoozedUntil *time.Time
	By           string
	At           time.Time
	Note         string
	Deliveries   []*Delivery
	Record       *Event // the alert.* record, appended like RuleCommit's
}

// AlertFilter selects alerts; zero values select all.
type AlertFilter struct {
	State    string
	RuleID   string
	Severity string
	// Before continues a listing after the alert of this id (newest
	// first).
	Before string
	Limit  int
}

// AlertRecord is an alert.* event waiting to be appended to its
// organization's log (an outbox row); Event is veritrail.MarshalInput's
// JSON.
type AlertRecord struct {
	OrgID int64
	ID    string
	Event []byte
}

// RuleStore keeps organizations' rules and where their evaluation stands.
type RuleStore interface {
	// CreateRule stores r; EConflict if the organization has a rule of
	// that name.
	CreateRule(ctx context.Context, r *Rule) error
	// RuleByID returns a rule of org; ENotFound if not in org.
	RuleByID(ctx context.Context, org int64, id string) (*Rule, error)
	// ListRules returns org's rules, oldest first.
	ListRules(ctx context.Context, org int64) ([]*Rule, error)
	// UpdateRule saves Name, Spec, Author, SinceSeq and UpdatedAt;
	// ENotFound if not in r.OrgID, EConflict if the name is taken.
	UpdateRule(ctx context.Context, r *Rule) error
	// DeleteRule removes a rule (its alerts stay); ENotFound if not in org.
	DeleteRule(ctx context.Context, org int64, id string) error

	// RuleState returns org's evaluation state ({-1, -1, nil} before
	// the first commit).
	RuleState(ctx context.Context, org int64) (*RuleState, error)
	// CommitRules stores c as one transaction: the cursor moves from
	// c.From to c.To (EConflict when it is not at c.From: another
	// evaluator moved it), with the snapshot, the alerts, the deliveries
	// and the records. Deliveries beyond MaxPendingDeliveries pending in
	// the organization are stored as DeliveryDropped. It MUST be durable
	// when it returns nil, and store nothing otherwise.
	CommitRules(ctx context.Context, org int64, c *RuleCommit) error
}

// AlertKey names the alerts of one rule and dedup key.
type AlertKey struct {
	RuleID   string
	DedupKey string
}

// MaxAlertKeys bounds the keys of one LatestAlerts call.
const MaxAlertKeys = 1000

// AlertStore keeps alerts, their delivery queue and their records.
type AlertStore interface {
	// AlertByID returns an alert of org; ENotFound if not in org.
	AlertByID(ctx context.Context, org int64, id string) (*Alert, error)
	// ListAlerts returns org's alerts matching f, newest first.
	ListAlerts(ctx context.Context, org int64, f AlertFilter) ([]*Alert, error)
	// LatestAlerts returns, for each of keys that has an alert in org,
	// the newest one (keys without are left out), in no particular order:
	// what the evaluator decides a store's findings by, in one query
	// however many keys it found. At most MaxAlertKeys keys (EInvalid
	// beyond).
	LatestAlerts(ctx context.Context, org int64, keys []AlertKey) ([]*Alert, error)
	// ChangeAlert applies c in one transaction: the state moves from
	// c.From to c.To (EConflict when the alert is not in c.From; ENotFound
	// when it is not in org), with its deliveries (bounded as in
	// CommitRules) and its record.
	ChangeAlert(ctx context.Context, org int64, c *AlertChange) error
	// SnoozesDue returns up to limit snoozed alerts, of any organization,
	// whose SnoozedUntil is at or before t.
	SnoozesDue(ctx context.Context, t time.Time, limit int) ([]*Alert, error)

	// ClaimDeliveries returns up to limit pending deliveries, of any
	// organization, due at or before now and not claimed by someone else
	// (or whose claim lapsed), claimed until `until`. Of concurrent
	// claimers each delivery goes to one.
	ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]*Delivery, error)
	// FinishDelivery saves a claimed delivery's State, Attempts, DueAt,
	// LastError, Result and FinishedAt, and releases the claim; ENotFound
	// if it is gone.
	FinishDelivery(ctx context.Context, d *Delivery) error
	// ListDeliveries returns an alert's deliveries, oldest first.
	ListDeliveries(ctx context.Context, org int64, alertID string) ([]*Delivery, error)

	// AlertRecords returns up to limit records not yet appended, of any
	// organization, oldest first.
	AlertRecords(ctx context.Context, limit int) ([]*AlertRecord, error)
	// AlertRecorded forgets records that were appended.
	AlertRecorded(ctx context.Context, org int64, ids []string) error
}

// Commits tells subscribers, after each commit, which organization's log
// grew and by which events: the evaluator of rules follows the log through
// it instead of polling, and judges the events without reading them back.
// Publishing never blocks: subscribers MUST return at once (hand the
// events to a buffered channel, or drop them and read the log later).
type Commits struct {
	mu    sync.RWMutex
	subs  map[*func(int64, []*Event)]struct{}
	wants []func(org int64) bool
}

// WantEnvelopes asks the commit path to keep each committed event's
// envelope (Event.Envelope) for the organizations fn reports true for:
// what a subscriber that forwards envelopes would otherwise encode again.
// fn is called once per organization per commit and MUST return at once.
func (c *Commits) WantEnvelopes(fn func(org int64) bool) {
	c.mu.Lock()
	c.wants = append(c.wants, fn)
	c.mu.Unlock()
}

// EnvelopesWanted reports whether a subscriber wants org's committed
// envelopes kept.
func (c *Commits) EnvelopesWanted(org int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, fn := range c.wants {
		if fn(org) {
			return true
		}
	}
	return false
}

// Subscribe calls fn after every commit of new events, with their
// organization and the events in seq order (Seq and ReceivedAt set),
// until cancel is called. The events are shared with their writer: fn
// and whoever it hands them to MUST NOT change them.
func (c *Commits) Subscribe(fn func(org int64, events []*Event)) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		c.subs = map[*func(int64, []*Event)]struct{}{}
	}
	p := &fn
	c.subs[p] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(c.subs, p)
		c.mu.Unlock()
	}
}

// Publish tells every subscriber that org's log grew by events.
func (c *Commits) Publish(org int64, events []*Event) {
	c.mu.RLock()
	for fn := range c.subs {
		(*fn)(org, events)
	}
	c.mu.RUnlock()
}

// CommitPublisher is implemented by stores that announce their commits.
type CommitPublisher interface {
	// Commits is the store's commit announcements.
	Commits() *Commits
}

// Duration is a length of time written as text: Go's form ("90s", "15m",
// "1h30m") or whole days and weeks ("30d", "2w"). JSON carries it as that
// text.
type Duration time.Duration

// ParseDuration reads a Duration's text form.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration such as 90s, 15m, 2h or 30d", s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseInt(s[:n-1], 10, 32)
		if err != nil || v < 0 {
			return 0, bad
		}
		day := 24 * time.Hour
		if s[n-1] == 'w' {
			day *= 7
		}
		return time.Duration(v) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return d, nil
}

// String is the shortest text form: days when whole days, else Go's.
func (d Duration) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(t/(24*time.Hour)), 10) + "d"
	}
	s := t.String() // "2h0m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a duration such as 90s, 15m, 2h or 30d")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
