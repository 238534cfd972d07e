// Package http is Veritrail's HTTP API: the native /api/v1 endpoints, the
// Miro-compatible and OTLP/HTTP ones, health and metrics. Handlers decode,
// authorize and return errors, which one adapter answers (handler.go); the
// store does the rest.
package http

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/export"
	"github.com/veritrail/veritrail/internal/admission"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/rules"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sso"
)

// Config configures a Server.
type Config struct {
	Store   veritrail.Store
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Limits  veritrail.Limits
	// PublicURL is the externally visible base URL (links in Link headers
	// and e-mails). Empty: derived from each request's Host.
	PublicURL string
	Now       func() time.Time
	// Checkpointer signs checkpoints; without it the log endpoints answer 503.
	Checkpointer *checkpoint.Checkpointer
	// RateLimit is how many requests per minute each token may make (a
	// bucket of that size refilled continuously); 0 means no limit.
	RateLimit int
	// AddressRateLimit is how many requests per minute each client address
	// may make, whatever its token (none included: it slows token
	// guessing); 0 means no limit. Behind a proxy every client has the
	// proxy's address, so leave it off there and limit at the proxy.
	AddressRateLimit int
	// StoreTimeout bounds the store reads every request makes before its
	// own work (the token, the organization's settings), so that a
	// database that stops answering is answered 503 rather than held
	// (default 10 s). The commit itself is bounded by the store.
	StoreTimeout time.Duration
	// HeaderTimeout is how long a client may take to send a request's
	// headers (default 10 s), BodyTimeout its body (default 2 min), and
	// MaxHeaderBytes caps the headers' size (default 64 KiB; larger is
	// answered 431): a client that trickles bytes (slow-loris) or sends
	// huge headers holds a connection no longer than that.
	HeaderTimeout  time.Duration
	BodyTimeout    time.Duration
	MaxHeaderBytes int

	// Exports runs export jobs (POST /api/v1/exports) and makes and
	// checks their download links. Nil: jobs are queued for another
	// process to run, no e-mail or bundle is offered, and no download
	// link verifies.
	Exports *export.Jobs
	// Sinks is the forwarding engine behind /api/v1/sinks; without it
	// those endpoints answer 503.
	Sinks *sink.Engine
	// Rules is the rules engine behind /api/v1/rules and the changes of
	// alerts' states; without it those endpoints answer 503 (alerts can
	// still be read).
	Rules *rules.Engine
	// CheckMCPPolicy checks an organization's MCP policy (settings
	// mcp_policy) before it is stored: mcp.ParsePolicy, plugged in by the
	// command (the mcp package's tests run against this package, so it
	// cannot import mcp). Nil: settings holding a policy are refused.
	CheckMCPPolicy func(policy []byte) error
	// PollRecordInterval is the window in which a reader's repeated reads
	// without content make one audit record (pollaudit.go): 0 means
	// DefaultPollRecordInterval; negative, every read is recorded alone.
	PollRecordInterval time.Duration
	// Turns runs reads behind ingest (package admission): event lists,
	// search, stats and streaming exports wait for a turn, and while the
	// commit queue is busy they run one at a time for a share of the
	// time; a list or stats that waits too long is answered 503 with
	// Retry-After. Nil: reads are not scheduled.
	Turns *admission.Scheduler

	// Outbound checks destinations set through the API (witnesses; sinks
	// are checked by their engine, sink.Options.Outbound):
	// the zero Guard refuses loopback and metadata addresses.
	Outbound netguard.Guard

	// Mail sends the console's sign-in links (with PublicURL to build them
	// on); nil or empty URL: no sign-in by e-mail.
	Mail *mail.Config
	// Console sessions (session.go): idle and absolute timeouts, and how
	// long an e-mailed sign-in link lasts; 0 takes the defaults (30 min,
	// 12 h, 15 min).
	SessionIdle   time.Duration
	SessionMaxAge time.Duration
	SignInLinkTTL time.Duration
	// StreamPoll is how often a live tail (GET /api/v1/events/stream)
	// looks for new events; 0: 500 ms.
	StreamPoll time.Duration
	// SSO is the OpenID Connect relying party of single sign-on, its
	// client bound by the outbound policy; SealKey (the master key) seals
	// the client secrets and the sign-in flow cookie. Without both, the
	// single sign-on endpoints answer 503.
	SSO     *sso.RP
	SealKey *seal.Key
}

// Server serves the API.
type Server struct {
	cfg      Config
	store    veritrail.Store
	log      *slog.Logger
	metrics  *metrics.Metrics
	now      func() time.Time
	mux      *http.ServeMux
	srv      *http.Server
	ready    atomic.Bool
	limiter  *rateLimiter // per token
	perAddr  *rateLimiter // per client address
	settings settingsCache
	tokens   tokenCache

	usedMu sync.Mutex
	used   map[string]time.Time // token id -> last use, flushed periodically
	stop   chan struct{}
	done   chan struct{}

	signInMails *rateLimiter   // sign-in e-mails per address
	background  sync.WaitGroup // sign-in e-mails being sent
	streams     streams        // live tails, ended at shutdown

	polls     *pollReaders // nil: every read recorded alone
	pollsDone chan struct{}
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Limits == (veritrail.Limits{}) {
		cfg.Limits = veritrail.DefaultLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 10 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 2 * time.Minute
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	s := &Server{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now,
		mux: http.NewServeMux(), used: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{}),
		limiter:     newRateLimiter(cfg.RateLimit, cfg.Now),
		perAddr:     newRateLimiter(cfg.AddressRateLimit, cfg.Now),
		signInMails: newRateLimiter(signInMailsPerMinute, cfg.Now),
		pollsDone:   make(chan struct{}),
	}
	switch {
	case cfg.PollRecordInterval == 0:
		s.polls = &pollReaders{interval: DefaultPollRecordInterval, readers: map[pollKey]*pollReader{}}
	case cfg.PollRecordInterval > 0:
		s.polls = &pollReaders{interval: cfg.PollRecordInterval, readers: map[pollKey]*pollReader{}}
	}
	s.routes()
	s.ready.Store(true)
	go s.flushTokenUse()
	go s.flushPollsLoop()
	return s
}

func (s *Server) routes() {
	s.public("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
		return nil
	})
	s.public("GET /readyz", "readyz", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("shutting down\n"))
			return nil
		}
		w.Write([]byte("ready\n"))
		return nil
	})
	s.mux.Handle("GET /metrics", s.metrics.Handler())

	s.api("POST /api/v1/events", "events.create", veritrail.ScopeEventsWrite, s.postEvents)
	s.api("GET /api/v1/events", "events.list", veritrail.ScopeAuditLogsRead, s.listEvents)
	s.api("GET /api/v1/events/export", "events.export", veritrail.ScopeExports, s.exportEvents)
	s.api("GET /api/v1/events/{id}", "events.get", veritrail.ScopeAuditLogsRead, s.getEvent)
	s.methods("/api/v1/events", "GET, POST")
	s.methods("/api/v1/events/{id}", "GET")

	s.api("POST /api/v1/exports", "exports.create", veritrail.ScopeExports, s.createExport)
	s.api("GET /api/v1/exports", "exports.list", veritrail.ScopeExports, s.listExports)
	s.api("GET /api/v1/exports/{id}", "exports.get", veritrail.ScopeExports, s.getExport)
	// The signed link is the credential: no token.
	s.public("GET /api/v1/exports/{id}/download", "exports.download", s.downloadExport)
	s.methods("/api/v1/exports", "GET, POST")
	s.methods("/api/v1/exports/{id}", "GET")

	s.api("GET /api/v1/me", "me", "", s.getMe)

	s.api("POST /api/v1/sinks", "sinks.create", veritrail.ScopeAdmin, s.createSink)
	s.api("GET /api/v1/sinks", "sinks.list", veritrail.ScopeAdmin, s.listSinks)
	s.api("GET /api/v1/sinks/{id}", "sinks.get", veritrail.ScopeAdmin, s.getSink)
	s.api("PATCH /api/v1/sinks/{id}", "sinks.update", veritrail.ScopeAdmin, s.updateSink)
	s.api("DELETE /api/v1/sinks/{id}", "sinks.delete", veritrail.ScopeAdmin, s.deleteSink)
	s.methods("/api/v1/sinks", "GET, POST")
	s.methods("/api/v1/sinks/{id}", "GET, PATCH, DELETE")
	s.api("POST /api/v1/sinks/{id}/test", "sinks.test", veritrail.ScopeAdmin, s.testSink)
	s.methods("/api/v1/sinks/{id}/test", "POST")

	s.api("POST /api/v1/rules", "rules.create", veritrail.ScopeAlerts, s.createRule)
	s.api("GET /api/v1/rules", "rules.list", veritrail.ScopeAlerts, s.listRules)
	s.api("POST /api/v1/rules/test", "rules.test", veritrail.ScopeAlerts, s.testRules)
	s.api("GET /api/v1/rules/pack", "rules.pack.get", veritrail.ScopeAlerts, s.getRulesPack)
	s.api("PUT /api/v1/rules/pack", "rules.pack.put", veritrail.ScopeAlerts, s.putRulesPack)
	s.api("GET /api/v1/rules/{id}", "rules.get", veritrail.ScopeAlerts, s.getRule)
	s.api("PUT /api/v1/rules/{id}", "rules.replace", veritrail.ScopeAlerts, s.replaceRule)
	s.api("DELETE /api/v1/rules/{id}", "rules.delete", veritrail.ScopeAlerts, s.deleteRule)
	s.methods("/api/v1/rules", "GET, POST")
	s.methods("/api/v1/rules/{id}", "GET, PUT, DELETE")
	s.api("GET /api/v1/alerts", "alerts.list", veritrail.ScopeAuditLogsRead, s.listAlerts)
	s.api("GET /api/v1/alerts/{id}", "alerts.get", veritrail.ScopeAuditLogsRead, s.getAlert)
	s.api("PATCH /api/v1/alerts/{id}", "alerts.update", veritrail.ScopeAlerts, s.patchAlert)
	s.methods("/api/v1/alerts", "GET")
	s.methods("/api/v1/alerts/{id}", "GET, PATCH")

	s.api("POST /api/v1/tokens", "tokens.create", veritrail.ScopeAdmin, s.createToken)
	s.api("GET /api/v1/tokens", "tokens.list", veritrail.ScopeAdmin, s.listTokens)
	s.api("DELETE /api/v1/tokens/{id}", "tokens.revoke", veritrail.ScopeAdmin, s.revokeToken)
	s.api("POST /api/v1/users", "users.create", veritrail.ScopeAdmin, s.createUser)
	s.api("GET /api/v1/users", "users.list", veritrail.ScopeAdmin, s.listUsers)
	s.api("DELETE /api/v1/users/{id}", "users.disable", veritrail.ScopeAdmin, s.disableUser)
	s.api("PATCH /api/v1/users/{id}", "users.role", veritrail.ScopeAdmin, s.setUserRole)
	s.api("POST /api/v1/teams", "teams.create", veritrail.ScopeAdmin, s.createTeam)
	s.api("GET /api/v1/teams", "teams.list", veritrail.ScopeAdmin, s.listTeams)
	s.api("DELETE /api/v1/teams/{id}", "teams.delete", veritrail.ScopeAdmin, s.deleteTeam)
	s.methods("/api/v1/tokens", "GET, POST")
	s.methods("/api/v1/tokens/{id}", "DELETE")
	s.methods("/api/v1/users", "GET, POST")
	s.methods("/api/v1/users/{id}", "PATCH, DELETE")
	s.methods("/api/v1/teams", "GET, POST")
	s.methods("/api/v1/teams/{id}", "DELETE")

	s.api("GET /api/v1/log/checkpoint", "log.checkpoint", veritrail.ScopeAuditLogsRead, s.getCheckpoint)
	s.api("GET /api/v1/log/checkpoints", "log.checkpoints", veritrail.ScopeAuditLogsRead, s.listCheckpoints)
	s.api("GET /api/v1/log/key", "log.key", veritrail.ScopeAuditLogsRead, s.getLogKey)
	s.api("GET /api/v1/log/witnesses", "log.witnesses", veritrail.ScopeAuditLogsRead, s.listWitnessAttempts)
	s.api("GET /api/v1/log/removals", "log.removals", veritrail.ScopeAuditLogsRead, s.listRemovals)
	s.api("GET /api/v1/log/tile/{level}/{index}", "log.tile", veritrail.ScopeAuditLogsRead, s.getTile)

	// The C2SP tlog-tiles layout (tlog.go): public or token as the
	// organization chose, so the handlers authenticate themselves.
	s.public("GET /tlog/{org}/checkpoint", "tlog.checkpoint", s.getTlogCheckpoint)
	s.public("GET /tlog/{org}/tile/{path...}", "tlog.tile", s.getTlogTile)

	s.api("GET /api/v1/settings", "settings.get", veritrail.ScopeAdmin, s.getSettings)
	s.api("PUT /api/v1/settings", "settings.put", veritrail.ScopeAdmin, s.putSettings)
	s.api("POST /api/v1/retention/run", "retention.run", veritrail.ScopeAdmin, s.runRetention)
	s.api("POST /api/v1/erasure", "erasure", veritrail.ScopeAdmin, s.erase)
	s.methods("/api/v1/settings", "GET, PUT")
	s.holdRoutes() // holds.go
	s.ssoRoutes()  // sso.go
	s.api("GET /api/v1/mcp/policy", "mcp.policy", veritrail.ScopeEventsWrite, s.getMCPPolicy)
	s.methods("/api/v1/mcp/policy", "GET")
	s.api("GET /api/v1/log/proof/inclusion", "log.inclusion", veritrail.ScopeAuditLogsRead, s.getInclusionProof)
	s.api("GET /api/v1/log/proof/consistency", "log.consistency", veritrail.ScopeAuditLogsRead, s.getConsistencyProof)

	// Miro-compatible read endpoints (SIEM connectors work by changing
	// the host): miro.go.
	s.miroAPI("GET /v2/audit/logs", "miro.v2.auditlogs", veritrail.ScopeAuditLogsRead, s.miroV2AuditLogs)
	s.miroAPI("GET /v1/audit/logs", "miro.v1.auditlogs", veritrail.ScopeAuditLogsRead, s.miroV1AuditLogs)
	s.miroAPI("GET /v2/orgs/{org}/ai-interaction-logs", "miro.v2.ailogs", veritrail.ScopeAIRead, s.miroAIInteractionLogs)

	// OTLP/HTTP receivers (AI capture): OTLP's own answers, otlp.go.
	s.otlpAPI("POST /v1/logs", "otlp.logs", veritrail.ScopeEventsWrite, s.otlpLogs)
	s.otlpAPI("POST /v1/traces", "otlp.traces", veritrail.ScopeEventsWrite, s.otlpTraces)

	s.consoleRoutes()

	s.public("/", "not_found", func(w http.ResponseWriter, r *http.Request) error {
		return veritrail.Errorf(veritrail.ENotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, waits for those in flight (whose
// events are committed before they are answered) and records the reads
// coalesced since their reader's last record (pollaudit.go); the store
// must stay open until it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.streams.end()
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
	}
	close(s.stop)
	<-s.done
	<-s.pollsDone
	s.background.Wait()
	return err
}
