package veritrail

import (
	"context"
	"io"
	"time"
)

// Store is a Veritrail storage engine (sqlite.Store, postgres.Store).
// Every method that touches organization data takes the organization's id
// and MUST confine itself to that organization: no argument can widen it.
type Store interface {
	OrgStore
	TokenStore
	UserStore
	TeamStore
	EventStore
	LogStore
	SettingsStore
	RetentionStore
	ExportStore
	SinkStore
	SessionStore
	StatsStore
	HoldStore
	SSOStore
	// Close finishes acknowledged work and releases the store.
	Close() error
}

// OrgStore manages organizations.
type OrgStore interface {
	// CreateOrg creates an organization; EConflict if the name is taken.
	CreateOrg(ctx context.Context, name string) (*Org, error)
	// OrgByName returns an organization; ENotFound if there is none.
	OrgByName(ctx context.Context, name string) (*Org, error)
	// OrgByID returns an organization; ENotFound if there is none.
	OrgByID(ctx context.Context, id int64) (*Org, error)
	// ListOrgs returns every organization, oldest first.
	ListOrgs(ctx context.Context) ([]*Org, error)
}

// TokenStore manages API tokens. Secrets are never stored, only hashes.
type TokenStore interface {
	// CreateToken stores t (its OrgID set); EConflict if its id or lookup
	// key is taken, ENotFound if the org is gone.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByLookup finds a token by its lookup key, whatever its
	// organization: the token itself decides which organization a request
	// acts for. The caller MUST still compare the hash in constant time.
	TokenByLookup(ctx context.Context, lookup string) (*Token, error)
	// TokenByID returns a token of orgID by its public id; ENotFound if
	// not in orgID.
	TokenByID(ctx context.Context, orgID int64, id string) (*Token, error)
	// ListTokens returns the organization's tokens, newest first.
	ListTokens(ctx context.Context, orgID int64) ([]*Token, error)
	// RevokeToken marks a token revoked (revoking again keeps the first
	// time); ENotFound if not in orgID.
	RevokeToken(ctx context.Context, orgID int64, id string, at time.Time) error
	// TouchTokens records last-used times (best effort, batched by callers,
	// so possibly late): it never moves a time back and ignores unknown ids.
	TouchTokens(ctx context.Context, used map[string]time.Time) error
	// RevocationGeneration returns a number that changes whenever a token
	// of orgID is revoked (it may change at other times too), so that a
	// cache of the organization's tokens may be trusted while it stays the
	// same. It MUST reflect every revocation that completed before the
	// call began, whichever process or node made it (a cache must never
	// outlive a revocation), and SHOULD be cheap: it is called on every
	// authenticated request.
	RevocationGeneration(ctx context.Context, orgID int64) (uint64, error)
}

// UserStore manages an organization's users.
type UserStore interface {
	// CreateUser stores u; EConflict if its e-mail is taken in the org
	// (addresses compare, and are kept, in lower case), ENotFound if the
	// org is gone.
	CreateUser(ctx context.Context, u *User) error
	// ListUsers returns the organization's users, oldest first.
	ListUsers(ctx context.Context, orgID int64) ([]*User, error)
	// UserByID returns a user of orgID; ENotFound if not in orgID.
	UserByID(ctx context.Context, orgID int64, id string) (*User, error)
	// UsersByEmail returns the users with this e-mail address (compared
	// case-insensitively) in every organization, disabled ones included,
	// oldest first: the e-mail sign-in sends a link for each.
	UsersByEmail(ctx context.Context, email string) ([]*User, error)
	// DisableUser marks a user disabled (disabling again keeps the first
	// time); ENotFound if not in orgID.
	DisableUser(ctx context.Context, orgID int64, id string, at time.Time) error
	// SetUserRole changes a user's role; ENotFound if not in orgID.
	SetUserRole(ctx context.Context, orgID int64, id, role string) error
}

// TeamStore manages an organization's teams.
type TeamStore interface {
	// CreateTeam stores t; EConflict if its id is taken, ENotFound if the
	// org is gone. Names need not be unique.
	CreateTeam(ctx context.Context, t *Team) error
	// ListTeams returns the organization's teams (not deleted), oldest
	// first.
	ListTeams(ctx context.Context, orgID int64) ([]*Team, error)
	// DeleteTeam marks a team deleted; ENotFound if not in orgID or
	// already deleted.
	DeleteTeam(ctx context.Context, orgID int64, id string, at time.Time) error
}

// AppendResult says where an appended event landed.
type AppendResult struct {
	Seq int64
	// Duplicate is true when the id was already stored with the same
	// event: nothing new was written and Seq is the stored event's.
	Duplicate bool
}

// EventStore appends to and reads from organizations' logs.
type EventStore interface {
	// Append commits events, in order, to the organization's log.
	//
	// It MUST NOT return success before the events are durable (committed
	// and synced), MUST assign gap-free seqs in input order, and MUST be
	// all-or-nothing: on error nothing of this call is stored. An id
	// already stored with the same event is reported as a Duplicate; with a
	// different event the call fails with EConflict. Concurrent calls SHOULD
	// share one transaction and one sync (group commit).
	//
	// Append sets Seq, ReceivedAt and ContentDigest on the new events.
	Append(ctx context.Context, orgID int64, events []*Event) ([]AppendResult, error)

	// Query returns one page of the organization's events matching q.
	// Paging with the returned cursor MUST NOT skip or repeat an event
	// while appends go on.
	Query(ctx context.Context, orgID int64, q *Query) (*Page, error)

	// EventByID returns one event; ENotFound when it is not in orgID.
	EventByID(ctx context.Context, orgID int64, id string, withContent bool) (*StoredEvent, error)

	// Enqueue hands an event to the process that appends to the store, for
	// processes that do not (the admin CLI beside a running server): it is
	// durable when Enqueue returns and appended soon after (at the latest
	// when a server next runs). e must carry an id.
	Enqueue(ctx context.Context, orgID int64, e *Event) error
}

// Observer receives measurements from a store; the server exports them as
// Prometheus metrics. Implementations must be safe for concurrent use and
// cheap: they are called on the commit path.
type Observer interface {
	// CommitDone reports one group commit: how many requests and new events
	// it carried, how long the transaction took, and its error if any.
	CommitDone(requests, events int, d time.Duration, err error)
	// Queued reports the requests waiting for the next commit.
	Queued(n int)
	// QueryDone reports one query's duration.
	QueryDone(kind string, d time.Duration)
	// FullTextLag reports how many committed events the full-text index
	// does not hold yet (it trails the commit by design).
	FullTextLag(events int64)
}

// Committed receives the new events of each commit, once it is durable
// and before the appends are answered, organization by organization, in
// seq order (events of one organization arrive in seq order across
// commits of one store, though commits made by other nodes are not seen).
// The events are shared with the appender and the store: the receiver
// MUST NOT change them, and MUST return quickly (it runs on the commit
// path). Forwarding uses it to hand fresh events to sinks without reading
// them back.
type Committed func(org int64, events []*Event)

// NopObserver discards measurements.
type NopObserver struct{}

func (NopObserver) CommitDone(int, int, time.Duration, error) {}
func (NopObserver) Queued(int)                                {}
func (NopObserver) QueryDone(string, time.Duration)           {}
func (NopObserver) FullTextLag(int64)                         {}

// Checkpoint is a signed tree head of an organization's log.
type Checkpoint struct {
	Size     int64
	Root     []byte
	Note     []byte // the signed note, C2SP tlog-checkpoint
	SignedAt time.Time
}

// LogStore reads organizations' Merkle logs and keeps their checkpoints.
type LogStore interface {
	// LogHead returns the committed size and root of org's log.
	LogHead(ctx context.Context, org int64) (size int64, root []byte, err error)
	// ReadTile returns a tile's hashes (C2SP tlog-tiles layout) as stored,
	// partial at the right edge; ENotFound if there is none.
	ReadTile(ctx context.Context, org int64, level uint8, index uint64) ([]byte, error)
	// AddCheckpoint appends cp to org's checkpoint history. It MUST refuse
	// (EConflict) a size below the latest, or the latest size with another
	// root; adding the latest again is a no-op.
	AddCheckpoint(ctx context.Context, org int64, cp *Checkpoint) error
	// LatestCheckpoint returns org's newest checkpoint; ENotFound if none.
	LatestCheckpoint(ctx context.Context, org int64) (*Checkpoint, error)
	// Checkpoints lists org's checkpoints of size >= fromSize, oldest first.
	Checkpoints(ctx context.Context, org int64, fromSize int64, limit int) ([]*Checkpoint, error)
	// RecordWitness records an attempt to hand a checkpoint to a witness.
	RecordWitness(ctx context.Context, org, size int64, url string, ok bool, detail string) error
	// WitnessLog returns org's latest witness attempts, newest first.
	WitnessLog(ctx context.Context, org int64, limit int) ([]WitnessAttempt, error)
	// AddCosignature keeps a witness's cosignature of org's checkpoint of
	// size c.Size, replacing the one under the same key name for that
	// size (a witness cosigning again gives a fresher timestamp).
	AddCosignature(ctx context.Context, org int64, c *Cosignature) error
	// Cosignatures returns the cosignatures kept for org's checkpoints of
	// the `sizes` largest sizes that have any: largest size first, then
	// by key name.
	Cosignatures(ctx context.Context, org int64, sizes int) ([]*Cosignature, error)
	// Setting returns an installation-wide setting, storing def first if the
	// setting is unset and def is not empty (set-once values such as the log
	// origin prefix).
	Setting(ctx context.Context, key, def string) (string, error)
}

// Cosignature is a witness's signature line on a checkpoint (C2SP
// tlog-cosignature), kept to be served as a further signature line of the
// checkpoint.
type Cosignature struct {
	Size    int64
	KeyName string // the witness key's name; one cosignature per name and size
	Line    []byte // the signature line as the witness sent it: "— name base64\n"
	At      time.Time
}

// WitnessAttempt is one attempt to hand a checkpoint to a witness.
type WitnessAttempt struct {
	Size   int64
	URL    string
	OK     bool
	Detail string
	At     time.Time
}

// SettingsStore keeps organizations' settings.
type SettingsStore interface {
	// OrgSettings returns org's settings; DefaultSettings if never set.
	OrgSettings(ctx context.Context, org int64) (*Settings, error)
	// PutOrgSettings replaces org's settings (already validated).
	PutOrgSettings(ctx context.Context, org int64, s *Settings) error
}

// RetentionStore removes what retention and erasure take.
//
// Removal MUST keep every leaf hash and tree node (so every checkpoint and
// proof stays valid), MUST record every removed range (Removals) under the
// id of the event that records the run, MUST remove the data from the
// search indexes and, as far as the engine allows, from the disk, and
// SHOULD work in small steps so appends go on between them.
type RetentionStore interface {
	// Expire removes content and envelopes older than the cutoffs, except
	// what c.Held keeps.
	Expire(ctx context.Context, org int64, c *Cutoffs, record string) (*RemovalResult, error)
	// PreviewExpiry counts, per category, what Expire with c would remove
	// now (c.Held excepted), removing nothing.
	PreviewExpiry(ctx context.Context, org int64, c *Cutoffs) (map[string]*RemovalCounts, error)
	// EraseContent removes the content of the events matching f (an
	// actor_id or actor_email filter), except what held keeps (nil: no
	// holds); envelopes stay.
	EraseContent(ctx context.Context, org int64, f Filter, held *HeldSet, record string) (*RemovalResult, error)
	// Removals lists org's removals that end at or after fromSeq, in order.
	Removals(ctx context.Context, org int64, fromSeq int64, limit int) ([]*Removal, error)
}

// Export job states.
const (
	ExportPending = "pending"
	ExportRunning = "running"
	ExportReady   = "ready"
	ExportFailed  = "failed"
	ExportExpired = "expired"
)

// ExportJob is a background export.
type ExportJob struct {
	ID          string
	OrgID       int64
	TokenID     string // who asked: a token's id, or a console user's (usr_…)
	Format      string
	Query       string // the filters, as URL query parameters
	WithContent bool
	Notify      string // e-mail address, optional
	State       string
	Progress    int64 // events written
	SizeBytes   int64
	Path        string
	Error       string
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	ExpiresAt   *time.Time
}

// ExportStore keeps export jobs.
type ExportStore interface {
	CreateExport(ctx context.Context, j *ExportJob) error
	// ExportByID returns a job of org; ENotFound if not in org.
	ExportByID(ctx context.Context, org int64, id string) (*ExportJob, error)
	ListExports(ctx context.Context, org int64) ([]*ExportJob, error)
	// ClaimExport marks the oldest pending job running and returns it;
	// ENotFound when none waits. Of concurrent claimers only one MUST win.
	ClaimExport(ctx context.Context, at time.Time) (*ExportJob, error)
	// UpdateExport saves a job's state, progress and outcome.
	UpdateExport(ctx context.Context, j *ExportJob) error
	// RequeueRunningExports puts back to pending the running jobs whose
	// worker is gone. Callers call it between jobs of their own. A store
	// one process owns (SQLite) requeues every running job; a store
	// several nodes share (PostgreSQL) only those whose worker has not
	// saved them (ClaimExport, UpdateExport) for two minutes.
	RequeueRunningExports(ctx context.Context) error
	// ExpiredExports lists ready jobs whose files expired before t.
	ExpiredExports(ctx context.Context, t time.Time) ([]*ExportJob, error)
}

// ExportFileStore keeps finished export files in the store itself, so that
// every node sharing the store can serve a download link whichever node
// built the file. Stores several nodes share (PostgreSQL) implement it; a
// store one process owns (SQLite) leaves files in the data directory.
type ExportFileStore interface {
	// PutExportFile stores the whole of r as export id's file of org and
	// returns its size. It MUST be all or nothing: a failed or cancelled
	// put leaves no file behind.
	PutExportFile(ctx context.Context, org int64, id string, r io.Reader) (int64, error)
	// OpenExportFile opens a stored file for reading, with seeking (HTTP
	// ranges); ENotFound when there is none.
	OpenExportFile(ctx context.Context, org int64, id string) (io.ReadSeekCloser, error)
	// DeleteExportFile removes a stored file; no error when there is none.
	DeleteExportFile(ctx context.Context, org int64, id string) error
}

// Sink is a forwarding destination of an organization (webhook, Splunk HEC,
// Datadog, syslog, Kafka): package sink delivers the organization's events
// to it in seq order, at least once.
type Sink struct {
	ID    string
	OrgID int64
	Name  string // unique within the organization
	Type  string
	// Config is the sink's settings as package sink encodes them (JSON,
	// secrets sealed); opaque to the store.
	Config    []byte
	CreatedAt time.Time
	UpdatedAt time.Time

	// Delivered is the cursor: every event of seq <= Delivered was
	// delivered (or skipped by the sink's filters); -1 before the first.
	Delivered   int64
	DeliveredAt *time.Time // when the cursor last moved

	// Paused stops delivery until an administrator resumes the sink;
	// PausedReason says why (an administrator's pause, or the error that
	// made delivery give up).
	Paused       bool
	PausedReason string

	// Failures counts consecutive failed deliveries (0 after a success);
	// LastError is the latest failure, kept after later successes.
	Failures    int
	LastError   string
	LastErrorAt *time.Time
}

// SinkFailure is a failed delivery as SinkFailed records it.
type SinkFailure struct {
	Failures int       // consecutive failures, this one included
	Error    string    // safe to show: no secrets
	At       time.Time //
	Pause    bool      // give up: pause the sink with Error as the reason
}

// SinkStore keeps organizations' sinks and their delivery cursors.
//
// The cursor is the at-least-once guarantee: a deliverer moves it only
// after the destination acknowledged every event up to the new position,
// so a crash redelivers, never skips. It lives in the same store as the
// events so that a backup or a failover keeps both together.
type SinkStore interface {
	// CreateSink stores s (ID, OrgID, Name, Type, Config, CreatedAt,
	// UpdatedAt, Delivered, Paused, PausedReason); EConflict if the
	// organization has a sink of that name.
	CreateSink(ctx context.Context, s *Sink) error
	// SinkByID returns a sink of org; ENotFound if not in org.
	SinkByID(ctx context.Context, org int64, id string) (*Sink, error)
	// ListSinks returns org's sinks, oldest first.
	ListSinks(ctx context.Context, org int64) ([]*Sink, error)
	// UpdateSink saves an administrator's change: Name, Config, Paused,
	// PausedReason and UpdatedAt. Resuming (Paused false) also resets
	// Failures to 0. It MUST NOT change the cursor. ENotFound if not in
	// s.OrgID; EConflict if the new name is taken.
	UpdateSink(ctx context.Context, s *Sink) error
	// DeleteSink removes a sink and its cursor; ENotFound if not in org.
	DeleteSink(ctx context.Context, org int64, id string) error
	// AdvanceSink moves the cursor from `from` to `to` (to > from) and
	// resets Failures, as one compare-and-set: EConflict when the stored
	// cursor is not `from` (another deliverer or a change moved it),
	// ENotFound when the sink is gone. It MUST be durable when it returns
	// nil: the events up to `to` are never delivered again after a crash.
	AdvanceSink(ctx context.Context, org int64, id string, from, to int64, at time.Time) error
	// SinkFailed records a failed delivery (and pauses the sink when
	// f.Pause); ENotFound when the sink is gone. It MUST NOT move the
	// cursor.
	SinkFailed(ctx context.Context, org int64, id string, f SinkFailure) error
}

// Leaser is implemented by stores that several nodes share (PostgreSQL):
// background work that must run once at a time (signing checkpoints,
// retention, delivering a sink) runs on the node holding its lease.
type Leaser interface {
	// Lease takes or renews the lease called name for holder until ttl
	// from now; it reports whether holder has it. A lease not renewed
	// passes to the next holder that asks once it expires. Of holders
	// asking at once for a free or expired lease, exactly one MUST get
	// it. Time is one clock every node shares (the database's), so nodes'
	// clocks may differ.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}
