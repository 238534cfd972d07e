package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/admission"
	"github.com/veritrail/veritrail/internal/config"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
)

// Every flag and VERITRAIL_* variable of every command is declared in this
// file, verify's beside its command in verify.go: one type per command,
// whose settings method declares them on a config.Set. Parsing that set reads flags and variables together (a flag
// overrides its variable, a variable the default; a secret's variable may
// name a file instead, NAME_FILE) and refuses a malformed value with its
// name and the form expected, before the command does anything. The run
// functions only use the values. README.md's configuration table lists
// these settings; TestREADMEConfigurationTable keeps the two in step.

// storeConfig selects a store.
type storeConfig struct {
	data         string
	db           string
	statsCacheMB int
	bucketShift  int
}

func (c *storeConfig) declare(s *config.Set) {
	config.Add(s, &c.data, "data", "VERITRAIL_DATA", "./veritrail-data", config.Path(),
		"data directory of the embedded SQLite store (with --db: this node's local files)")
	config.Add(s, &c.db, "db", "VERITRAIL_DB", "", config.URL("postgres", "postgresql"),
		"PostgreSQL URL, postgres://user:password@host:5432/db: the store several nodes may share; overrides --data").Secret()
	config.Add(s, &c.statsCacheMB, "stats-cache-mb", "VERITRAIL_STATS_CACHE_MB", 0, config.Int(0, 1<<20),
		"memory for the columns the stats endpoint counts from, in MiB (0: the store's default, 96 on SQLite plus four thirds of it for event times, 256 on PostgreSQL, where the node's garbage collector runs at GOGC=200 under a soft memory limit of twice this plus 64 MiB unless GOGC or GOMEMLIMIT is set)")
	config.Add(s, &c.bucketShift, "index-bucket-shift", "VERITRAIL_INDEX_BUCKET_SHIFT", sqlite.DefaultBucketShift, config.Int(sqlite.MinBucketShift, sqlite.MaxBucketShift),
		"SQLite: index buckets of 2^N events for a store created now (an existing store keeps its own); smaller buckets write fewer pages each time the index is written out, larger ones make fewer buckets for a query to visit")
}

// keyFiles are the key files variables name; without them the keys are
// files of the data directory (or, on PostgreSQL, kept sealed in the
// database).
type keyFiles struct {
	signing string // VERITRAIL_SIGNING_KEY_FILE
	master  string // VERITRAIL_MASTER_KEY_FILE
}

func (k *keyFiles) declare(s *config.Set) {
	config.Add(s, &k.signing, "", "VERITRAIL_SIGNING_KEY_FILE", "", config.File(),
		"the log's Ed25519 signing key (signed-note private key form)").ShowDefault("<data>/signing-key")
	config.Add(s, &k.master, "", "VERITRAIL_MASTER_KEY_FILE", "", config.File(),
		"AES-256 key (64 hex digits) sealing secrets at rest; the same file on every node").ShowDefault("<data>/master-key")
}

// serveConfig is the configuration of veritrail serve.
type serveConfig struct {
	store          storeConfig
	keys           keyFiles
	addr           string
	demo           bool
	publicURL      string
	logOrigin      string
	witnesses      []string
	allowLoopback  bool
	logLevel       slog.Level
	limits         veritrail.Limits
	rateLimit      int
	addrRateLimit  int
	retentionEvery time.Duration
	pollRecord     time.Duration
	exportTTL      time.Duration
	smtpURL        string
	smtpFrom       string
	smtpCA         string
	linkKey        string
	bootstrapToken string
	sinkPoll       time.Duration
	sinkMinBackoff time.Duration
	sinkMaxBackoff time.Duration
	sessionIdle    time.Duration
	sessionMaxAge  time.Duration
	cpuProfile     string
	// reads behind ingest (package admission)
	readSharePercent int
	readBusyPercent  int
	readMaxWait      time.Duration
}

// admission is the scheduler of reads behind ingest c configures.
func (c *serveConfig) admission() *admission.Scheduler {
	return admission.New(admission.Config{ReadShare: float64(c.readSharePercent) / 100,
		BusyThreshold: float64(c.readBusyPercent) / 100, MaxWait: c.readMaxWait})
}

func (c *serveConfig) settings() *config.Set {
	s := config.NewSet("serve")
	c.store.declare(s)
	c.keys.declare(s)
	config.Add(s, &c.addr, "addr", "VERITRAIL_ADDR", "127.0.0.1:8080", config.Addr(), "listen address")
	config.Add(s, &c.demo, "demo", "VERITRAIL_DEMO", false, config.Bool(), "load the sample organization's events into organization default")
	config.Add(s, &c.publicURL, "public-url", "VERITRAIL_PUBLIC_URL", "", config.URL("http", "https"),
		"external base URL for links (Link headers, export download links, e-mail)").ShowDefault("http://<addr>")
	config.Add(s, &c.logOrigin, "log-origin", "VERITRAIL_LOG_ORIGIN", "", originKind(),
		"origin prefix of the logs' checkpoints, e.g. audit.example.com, fixed on first start").ShowDefault("veritrail-<random>")
	config.Add(s, &c.witnesses, "witness-urls", "VERITRAIL_WITNESS_URLS", nil, config.URLList("http", "https"),
		"comma-separated C2SP tlog-witness URLs that receive every new checkpoint")
	allowLoopback(s, &c.allowLoopback)
	config.Add(s, &c.logLevel, "log-level", "VERITRAIL_LOG_LEVEL", slog.LevelInfo, logLevelKind(), "debug, info, warn or error").ShowDefault("info")
	c.limits = veritrail.DefaultLimits
	config.Add(s, &c.limits.MaxEventBytes, "max-event-bytes", "VERITRAIL_MAX_EVENT_BYTES", veritrail.DefaultLimits.MaxEventBytes, config.Int(1, math.MaxInt),
		"largest event accepted, in bytes")
	config.Add(s, &c.limits.MaxBatchEvents, "max-batch-events", "VERITRAIL_MAX_BATCH_EVENTS", veritrail.DefaultLimits.MaxBatchEvents, config.Int(1, math.MaxInt),
		"most events in one request")
	config.Add(s, &c.limits.MaxBodyBytes, "max-body-bytes", "VERITRAIL_MAX_BODY_BYTES", veritrail.DefaultLimits.MaxBodyBytes, config.Int[int64](1, math.MaxInt64),
		"largest request body after decompression, in bytes")
	config.Add(s, &c.rateLimit, "rate-limit", "VERITRAIL_RATE_LIMIT", 6000, config.Int(0, math.MaxInt),
		"requests per minute per token (a bucket that size, refilled continuously); 0: no limit").
		Wanting("a whole number of requests per minute, like 6000 (0: no limit)")
	config.Add(s, &c.addrRateLimit, "rate-limit-per-address", "VERITRAIL_RATE_LIMIT_PER_ADDRESS", 0, config.Int(0, math.MaxInt),
		"requests per minute per client address, whatever the token; 0: no limit (behind a proxy, limit there)").
		Wanting("a whole number of requests per minute, like 60000 (0: no limit)")
	config.Add(s, &c.pollRecord, "poll-record-interval", "VERITRAIL_POLL_RECORD_INTERVAL", time.Minute, config.Duration(0),
		"window in which a token's repeated reads without content make one audit.query record; 0: every read its own")
	config.Add(s, &c.readSharePercent, "read-share", "VERITRAIL_READ_SHARE", int(admission.DefaultReadShare*100), config.Int(1, 100),
		"percent of the time reads (lists, search, stats, exports) may run while ingest is busy; 100: reads are never slowed").
		Wanting("a whole percentage from 1 to 100, like 10")
	config.Add(s, &c.readBusyPercent, "read-busy-threshold", "VERITRAIL_READ_BUSY_THRESHOLD", int(admission.DefaultBusyThreshold*100), config.Int(1, 100),
		"percent of the recent time spent committing from which ingest counts as busy and reads are slowed").
		Wanting("a whole percentage from 1 to 100, like 50")
	config.Add(s, &c.readMaxWait, "read-max-wait", "VERITRAIL_READ_MAX_WAIT", admission.DefaultMaxWait, config.Duration(time.Millisecond),
		"longest a list, search or stats request waits for its turn while ingest is busy before it is answered 503 (exports wait, slowed)")
	config.Add(s, &c.retentionEvery, "retention-interval", "VERITRAIL_RETENTION_INTERVAL", time.Hour, config.Duration(0),
		"how often retention runs; 0: only on demand")
	config.Add(s, &c.exportTTL, "export-ttl", "VERITRAIL_EXPORT_TTL", 24*time.Hour, config.Duration(time.Minute),
		"how long an export job's file and download links last")
	config.Add(s, &c.smtpURL, "", "VERITRAIL_SMTP_URL", "", config.URL("smtp", "smtps"),
		"SMTP server of export and sign-in e-mails: smtp://user:password@host:587 (STARTTLS) or smtps://host:465").Secret()
	config.Add(s, &c.smtpFrom, "smtp-from", "VERITRAIL_SMTP_FROM", "veritrail@localhost", emailKind(), "sender address of export and sign-in e-mails")
	config.Add(s, &c.smtpCA, "smtp-ca-file", "VERITRAIL_SMTP_CA_FILE", "", config.File(),
		"PEM CA certificate of the SMTP server, when a private CA signs it").ShowDefault("system roots")
	config.Add(s, &c.linkKey, "", "VERITRAIL_LINK_KEY", "", linkKeyKind(),
		"HMAC key of export download links; changing it invalidates every link handed out").Secret().ShowDefault("<data>/link-key")
	config.Add(s, &c.bootstrapToken, "", "VERITRAIL_BOOTSTRAP_TOKEN", "", config.Text().Named("TOKEN"),
		"owner token of organization default, created on first start").Secret().ShowDefault("generated")
	config.Add(s, &c.sinkPoll, "sink-poll-interval", "VERITRAIL_SINK_POLL_INTERVAL", 200*time.Millisecond, config.Duration(time.Millisecond),
		"how often an idle sink looks for new events")
	config.Add(s, &c.sinkMinBackoff, "sink-min-backoff", "VERITRAIL_SINK_MIN_BACKOFF", time.Second, config.Duration(time.Millisecond),
		"first wait before retrying a failed delivery; doubles per failure")
	config.Add(s, &c.sinkMaxBackoff, "sink-max-backoff", "VERITRAIL_SINK_MAX_BACKOFF", 5*time.Minute, config.Duration(time.Millisecond),
		"longest wait between retries of a failed delivery")
	config.Add(s, &c.sessionIdle, "session-idle-timeout", "VERITRAIL_SESSION_IDLE_TIMEOUT", vhttp.DefaultSessionIdle, config.Duration(time.Minute),
		"a console session ends after this long without a request")
	config.Add(s, &c.sessionMaxAge, "session-max-age", "VERITRAIL_SESSION_MAX_AGE", vhttp.DefaultSessionMaxAge, config.Duration(time.Minute),
		"a console session ends this long after sign-in, whatever the activity")
	config.Add(s, &c.cpuProfile, "cpuprofile", "", "", config.Path(), "write a CPU profile of the whole run to this file (for benchmarking)")
	s.Check(func() error {
		if c.sessionIdle > c.sessionMaxAge {
			return fmt.Errorf("--session-idle-timeout (%s) is longer than --session-max-age (%s): lower the first or raise the second",
				config.FormatDuration(c.sessionIdle), config.FormatDuration(c.sessionMaxAge))
		}
		return nil
	})
	s.Check(func() error {
		if int64(c.limits.MaxEventBytes) > c.limits.MaxBodyBytes {
			return fmt.Errorf("--max-event-bytes (%d) is larger than --max-body-bytes (%d), so no request could carry such an event: lower the first or raise the second",
				c.limits.MaxEventBytes, c.limits.MaxBodyBytes)
		}
		return nil
	})
	s.Check(func() error {
		if c.sinkMinBackoff > c.sinkMaxBackoff {
			return fmt.Errorf("--sink-min-backoff (%s) is longer than --sink-max-backoff (%s): lower the first or raise the second",
				config.FormatDuration(c.sinkMinBackoff), config.FormatDuration(c.sinkMaxBackoff))
		}
		return nil
	})
	return s
}

// orgConfig is the configuration of veritrail org.
type orgConfig struct {
	store storeConfig
}

func (c *orgConfig) settings(sub string) *config.Set {
	s := config.NewSet("org " + sub)
	c.store.declare(s)
	return s
}

// tokenConfig is the configuration of veritrail token.
type tokenConfig struct {
	store   storeConfig
	org     string
	request veritrail.TokenRequest // create
}

func (c *tokenConfig) settings(sub string) *config.Set {
	s := config.NewSet("token " + sub)
	c.store.declare(s)
	config.Add(s, &c.org, "org", "", "default", orgNameKind(), "organization")
	if sub == "create" {
		// Checked by TokenRequest.Check, as the API checks them.
		r := &c.request
		config.Add(s, &r.Role, "role", "", "", config.Text().Named("ROLE"), "role: "+strings.Join(veritrail.Roles, ", "))
		config.Add(s, &r.Name, "name", "", "", config.Text().Named("NAME"), "a name to recognize the token by")
		config.Add(s, &r.Scopes, "scopes", "", nil, listKind(),
			"narrow the role to these scopes (comma separated): "+strings.Join(veritrail.AllScopes, ", "))
		config.Add(s, &r.ExpiresIn, "expires", "", "", config.Text().Named("DURATION"), "lifetime, e.g. 720h (default: no expiry)")
	}
	return s
}

// keyConfig is the configuration of veritrail key.
type keyConfig struct {
	store storeConfig
	keys  keyFiles
	org   string
}

func (c *keyConfig) settings() *config.Set {
	s := config.NewSet("key")
	c.store.declare(s)
	c.keys.declare(s)
	config.Add(s, &c.org, "org", "", "default", orgNameKind(), "organization")
	return s
}

// clientConfig is how a command reaches a server: its URL and a token.
type clientConfig struct {
	server string
	token  string
}

// declare declares --server (with VERITRAIL_SERVER and the default
// server, when server is "") and --token.
func (c *clientConfig) declare(s *config.Set, defServer, tokenUsage string) {
	usage := "the Veritrail server's base URL"
	if defServer == "" {
		usage += " (required)"
	}
	config.Add(s, &c.server, "server", "VERITRAIL_SERVER", defServer, config.URL("http", "https"), usage)
	config.Add(s, &c.token, "token", "VERITRAIL_TOKEN", "", config.Text().Named("TOKEN"), tokenUsage).Secret()
}

// api returns a client of the server with the token, or says which token
// is missing (who: the token the command needs).
func (c *clientConfig) api(who string) (*apiClient, error) {
	if c.token == "" {
		return nil, fmt.Errorf("no token: pass --token, or set VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE (%s)", who)
	}
	return &apiClient{base: strings.TrimRight(c.server, "/"), token: c.token}, nil
}

// demoConfig is the configuration of veritrail demo.
type demoConfig struct {
	client clientConfig
	print  bool
	data   string
	count  int
	days   int
	seed   int64
	anchor time.Time
}

func (c *demoConfig) settings() *config.Set {
	s := config.NewSet("demo")
	config.Add(s, &c.print, "print", "", false, config.Bool(), "print the events as NDJSON instead of sending them")
	c.client.declare(s, defaultServer, "bearer token with events:write (default: <data>/bootstrap-token)")
	config.Add(s, &c.data, "data", "VERITRAIL_DATA", "./veritrail-data", config.Path(), "data directory whose bootstrap-token to use")
	config.Add(s, &c.count, "count", "", 20000, config.Int(1, math.MaxInt), "number of events")
	config.Add(s, &c.days, "days", "", 30, config.Int(1, 36500), "days the events span, ending now")
	config.Add(s, &c.seed, "seed", "", 1, config.Int[int64](math.MinInt64, math.MaxInt64), "random seed (same seed and anchor: same events)")
	config.Add(s, &c.anchor, "anchor", "", time.Time{}, config.Time(), "time of the newest event").ShowDefault("now")
	return s
}

const defaultServer = "http://127.0.0.1:8080"

// benchConfig is the configuration of veritrail bench.
type benchConfig struct {
	server     string
	token      string
	conc       int
	batch      int
	duration   time.Duration
	warmup     time.Duration
	rate       int
	ids        string
	gzip       bool
	keep       bool
	serverArgs string
	events     int64
	queries    int
	queryLimit int
	rules      int
	alertProbe bool
	db         string
	nodes      int
	orgs       int
	stored     int64
	data       string // the started server's data directory, kept and reused
	sinks      string
	cpuProfile string // the load generator's own
	receiver   string // the webhook receiver's URL, once started

	exports      int // mixed load (benchmixed.go)
	queryClients int
}

func (c *benchConfig) settings() *config.Set {
	s := config.NewSet("bench")
	// No VERITRAIL_SERVER: without --server, bench loads a server of its own.
	config.Add(s, &c.server, "server", "", "", config.URL("http", "https"), "server to load (default: start one on a temporary data directory)")
	config.Add(s, &c.token, "token", "VERITRAIL_TOKEN", "", config.Text().Named("TOKEN"), "bearer token with events:write (with --server)").Secret()
	config.Add(s, &c.conc, "concurrency", "", 8, config.Int(1, 10000), "concurrent senders")
	config.Add(s, &c.batch, "batch", "", 500, config.Int(1, math.MaxInt), "events per request")
	config.Add(s, &c.duration, "duration", "", 20*time.Second, config.Duration(time.Millisecond), "measured duration")
	config.Add(s, &c.warmup, "warmup", "", 2*time.Second, config.Duration(0), "load before measuring")
	config.Add(s, &c.rate, "rate", "", 0, config.Int(0, math.MaxInt), "target events/s across all senders (0: as fast as acknowledged)")
	config.Add(s, &c.ids, "ids", "", "client", config.OneOf("client", "server"),
		"event ids: client (unique ids sent, as idempotent senders do) or server (assigned by the server)")
	config.Add(s, &c.gzip, "gzip", "", false, config.Bool(), "gzip request bodies")
	config.Add(s, &c.keep, "keep", "", false, config.Bool(), "keep the temporary server's data directory")
	config.Add(s, &c.serverArgs, "server-args", "", "", config.Text(), "extra flags for the started server")
	config.Add(s, &c.events, "events", "", 0, config.Int[int64](0, math.MaxInt64), "load until this many events are acknowledged (instead of --duration)")
	config.Add(s, &c.queries, "queries", "", 0, config.Int(0, math.MaxInt), "after loading, time this many first-page queries per filter")
	config.Add(s, &c.exports, "exports", "", 0, config.Int(0, 1000), "measure ingest alone, then beside this many clients streaming whole-log exports (with --query-clients)")
	config.Add(s, &c.queryClients, "query-clients", "", 0, config.Int(0, 1000), "measure ingest alone, then beside this many clients running list queries (with --exports)")
	config.Add(s, &c.queryLimit, "query-limit", "", 100, config.Int(1, 1000), "page size of the timed queries")
	config.Add(s, &c.rules, "rules", "", 0, config.Int(0, 190), "install this many detection rules of mixed kinds before loading")
	config.Add(s, &c.alertProbe, "alert-latency", "", false, config.Bool(),
		"send a marker event every 100ms and time the alert each raises (from its acknowledgement to the alert and to its webhook)")
	// No VERITRAIL_DB either: the database is named on purpose.
	config.Add(s, &c.db, "db", "", "", config.URL("postgres", "postgresql"), "PostgreSQL for the started servers (default: SQLite in the temporary data directory)")
	config.Add(s, &c.nodes, "nodes", "", 1, config.Int(1, 16), "servers to start on the one --db; senders are spread over them")
	config.Add(s, &c.orgs, "orgs", "", 1, config.Int(1, 1000), "organizations to load, each with its own token; sender i sends to organization i mod orgs (and node i mod nodes)")
	config.Add(s, &c.stored, "stored", "", 0, config.Int[int64](0, math.MaxInt64), "store this many events (1,000 a request) before the warm-up, so that the measured load meets a store of that size")
	config.Add(s, &c.data, "data", "", "", config.Text().Named("DIR"),
		"data directory of the started server (SQLite), created if missing and kept: with --stored, only the events it lacks are stored, so a store built once is reused")
	config.Add(s, &c.sinks, "sinks", "", "", config.Text().Named("LIST"),
		"sinks each organization forwards to while loaded, comma-separated: webhook (a receiver bench runs), kafka:HOST:PORT (OCSF to topic veritrail); both with content, up to 1,000 events a batch")
	config.Add(s, &c.cpuProfile, "cpuprofile", "", "", config.Path(), "write a CPU profile of the load generator (bench itself) to this file; --server-args \"--cpuprofile FILE\" profiles the server")
	s.Check(func() error {
		switch {
		case c.server != "" && c.token == "":
			return fmt.Errorf("--server needs --token, VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE (a token with events:write)")
		case c.server != "" && (c.keep || c.serverArgs != "" || c.db != "" || c.nodes > 1 || c.orgs > 1):
			return fmt.Errorf("--keep, --server-args, --db, --nodes and --orgs are for the servers bench starts; with --server there is none: drop them")
		case c.data != "" && (c.server != "" || c.db != "" || c.orgs > 1):
			return fmt.Errorf("--data is the SQLite directory of the one server bench starts, loading one organization: drop --server, --db and --orgs")
		case c.nodes > 1 && c.db == "":
			return fmt.Errorf("--nodes %d needs --db: several nodes share one PostgreSQL", c.nodes)
		}
		for _, k := range strings.Split(c.sinks, ",") {
			if k != "" && k != "webhook" && !strings.HasPrefix(k, "kafka:") {
				return fmt.Errorf("--sinks: %q is neither webhook nor kafka:HOST:PORT", k)
			}
		}
		return nil
	})
	return s
}

// sinkConfig is the configuration of veritrail sink.
type sinkConfig struct {
	client     clientConfig
	json       string
	file       string
	secretFile string
}

func (c *sinkConfig) settings(sub string) *config.Set {
	s := config.NewSet("sink " + sub)
	s.Intro = sinkUsage
	c.client.declare(s, defaultServer, "owner or admin token")
	if sub == "create" || sub == "update" {
		config.Add(s, &c.json, "json", "", "", config.Text().Named("JSON"), "the sink's settings as a JSON object")
		config.Add(s, &c.file, "file", "", "", config.File(), "a file holding the settings as a JSON object")
		config.Add(s, &c.secretFile, "secret-file", "", "", config.File(), "a file holding the sink's secret")
		s.Check(func() error {
			if c.json != "" && c.file != "" {
				return fmt.Errorf("give --json or --file, not both")
			}
			return nil
		})
	}
	return s
}

// rulesConfig is the configuration of veritrail rules.
type rulesConfig struct {
	client  clientConfig
	prune   bool
	dryRun  bool
	since   string
	until   string
	limit   int
	enable  bool
	disable bool
	routes  string
}

var rulesSubcommands = []string{"apply", "test", "list", "pack"}

func (c *rulesConfig) settings(sub string) *config.Set {
	s := config.NewSet("rules " + sub)
	s.Intro = rulesUsage
	c.client.declare(s, defaultServer, "a token with the alerts scope (owner, admin or security)")
	switch sub {
	case "apply":
		config.Add(s, &c.prune, "prune", "", false, config.Bool(), "delete the organization's rules that no file names (the built-in pack's are kept)")
		config.Add(s, &c.dryRun, "dry-run", "", false, config.Bool(), "check the files and say what would change, changing nothing")
	case "test":
		config.Add(s, &c.since, "since", "", "7d", config.Text().Named("WHEN"), "replay events from this time (RFC 3339) or this long ago (30d)")
		config.Add(s, &c.until, "until", "", "", config.Text().Named("WHEN"), "replay events up to this time or this long ago").ShowDefault("now")
		config.Add(s, &c.limit, "limit", "", 100, config.Int(1, 1000), "most alerts listed")
	case "pack":
		config.Add(s, &c.enable, "enable", "", false, config.Bool(), "turn the built-in pack on")
		config.Add(s, &c.disable, "disable", "", false, config.Bool(), "turn the built-in pack off")
		config.Add(s, &c.routes, "routes", "", "", config.File(), "a YAML or JSON file with the list of routes of the pack's alerts (with --enable)")
		s.Check(func() error {
			if c.enable && c.disable {
				return fmt.Errorf("give --enable or --disable, not both")
			}
			if c.routes != "" && !c.enable {
				return fmt.Errorf("--routes goes with --enable")
			}
			return nil
		})
	}
	return s
}

// mcpProxyConfig is the configuration of veritrail mcp-proxy.
type mcpProxyConfig struct {
	client        clientConfig
	connector     string
	agentID       string
	actor         veritrail.Actor
	policy        string
	policyRefresh time.Duration
	spool         string
	spoolMax      int64
	hold          time.Duration
	fail          string
	keepBytes     bool
	listen        string
	upstream      string
	identities    string
	headers       []header
	maxBody       int64
	logLevel      slog.Level
}

func (c *mcpProxyConfig) settings() *config.Set {
	s := config.NewSet("mcp-proxy")
	s.Intro = `Usage:
  veritrail mcp-proxy --server URL --token T [flags] -- COMMAND [ARGS...]   (stdio: wraps an MCP server command)
  veritrail mcp-proxy --server URL --token T --listen ADDR --upstream URL [flags]   (Streamable HTTP)

Every tools/call, resources/read and prompts/get becomes an agent.tool_call
event; --policy can allow, block or redact them. Records are spooled to disk
and sent to the Veritrail server, also after it was unreachable.

Flags:
`
	c.client.declare(s, "", "ingest token (events:write); better in VERITRAIL_TOKEN_FILE than on the command line")
	config.Add(s, &c.connector, "connector", "VERITRAIL_CONNECTOR", "", config.Text(), "connector name in records (default: the MCP server's own name)")
	config.Add(s, &c.agentID, "agent-id", "VERITRAIL_AGENT_ID", "", config.Text(), "agent_id in records (default: the MCP client's name)")
	config.Add(s, &c.actor.Type, "actor-type", "VERITRAIL_ACTOR_TYPE", "user", config.Text(), "stdio: the actor's type")
	config.Add(s, &c.actor.ID, "actor-id", "VERITRAIL_ACTOR_ID", "", config.Text(), "stdio: who the agent acts for (default: the OS user)")
	config.Add(s, &c.actor.Email, "actor-email", "VERITRAIL_ACTOR_EMAIL", "", config.Text(), "stdio: the actor's e-mail")
	config.Add(s, &c.actor.Name, "actor-name", "VERITRAIL_ACTOR_NAME", "", config.Text(), "stdio: the actor's name")
	config.Add(s, &c.policy, "policy", "VERITRAIL_MCP_POLICY", "", policyKind(),
		`policy file (JSON rules: allow, block, redact), or "server": the organization's policy held by the Veritrail server`)
	config.Add(s, &c.policyRefresh, "policy-refresh", "VERITRAIL_MCP_POLICY_REFRESH", 30*time.Second, config.Duration(time.Millisecond),
		"with --policy server: how often the policy is fetched again")
	config.Add(s, &c.spool, "spool", "VERITRAIL_SPOOL", "", config.Path(), "spool directory for records not yet acknowledged").
		ShowDefault("<user cache>/veritrail/mcp-spool")
	config.Add(s, &c.spoolMax, "spool-max-bytes", "VERITRAIL_SPOOL_MAX_BYTES", 1<<30, config.Int[int64](1, math.MaxInt64),
		"most bytes of unsent records kept on disk")
	config.Add(s, &c.hold, "hold-timeout", "VERITRAIL_HOLD_TIMEOUT", 2*time.Second, config.Duration(time.Millisecond),
		"longest a call waits for its record to be durable")
	config.Add(s, &c.fail, "fail", "VERITRAIL_FAIL", "open", config.OneOf("open", "closed"),
		"when a record is not durable in time: open (answer anyway) or closed (withhold the answer)")
	config.Add(s, &c.keepBytes, "keep-attachment-bytes", "VERITRAIL_KEEP_ATTACHMENT_BYTES", false, config.Bool(),
		"keep image, audio and blob bytes in records (default: mime, size and SHA-256 only)")
	config.Add(s, &c.listen, "listen", "VERITRAIL_MCP_LISTEN", "", config.Addr(), "HTTP mode: listen address, e.g. 127.0.0.1:8931")
	config.Add(s, &c.upstream, "upstream", "VERITRAIL_MCP_UPSTREAM", "", config.URL("http", "https"), "HTTP mode: the MCP server's endpoint URL")
	config.Add(s, &c.identities, "identities", "VERITRAIL_MCP_IDENTITIES", "", config.File(),
		"HTTP mode: JSON file mapping token SHA-256 to actors; unknown tokens get 401")
	config.AddRepeated(s, &c.headers, "upstream-header", headerKind(), `HTTP mode: "Name: value" added to upstream requests`)
	config.Add(s, &c.maxBody, "max-body-bytes", "VERITRAIL_MCP_MAX_BODY_BYTES", 16<<20, config.Int[int64](1, math.MaxInt64), "HTTP mode: largest request body")
	config.Add(s, &c.logLevel, "log-level", "VERITRAIL_LOG_LEVEL", slog.LevelInfo, logLevelKind(), "debug, info, warn or error (logs go to stderr)").ShowDefault("info")
	s.Check(func() error {
		if c.client.server == "" || c.client.token == "" {
			return fmt.Errorf("--server and a token (--token, VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE) are required")
		}
		return nil
	})
	s.Check(func() error {
		if (c.listen == "") != (c.upstream == "") {
			return fmt.Errorf("HTTP mode needs both --listen and --upstream")
		}
		return nil
	})
	return s
}

// monitorConfig is the configuration of veritrail monitor.
type monitorConfig struct {
	logs          string
	state         string
	interval      time.Duration
	stallAfter    time.Duration
	once          bool
	webhook       string
	smtpURL       string
	smtpCA        string
	emailFrom     string
	emailTo       string
	allowLoopback bool
	logLevel      slog.Level
}

func (c *monitorConfig) settings() *config.Set {
	s := config.NewSet("monitor")
	s.Intro = `Usage: veritrail monitor --logs FILE [flags]

Follows Veritrail logs through their C2SP tlog-tiles layout, as an auditor
runs it outside the operator's control: each new checkpoint must verify with
the log's key, carry the cosignatures of the witnesses you trust, and extend
the last one kept in --state. A fork, a rollback or a stall is alerted on
standard output, to --webhook and by e-mail. FILE holds
{"logs": [{"url": "https://host/tlog/ORG", "key": "VERIFIER KEY",
"token": "(if not public)", "witnesses": ["WITNESS KEY", …], "quorum": K}]}.

Flags:
`
	config.Add(s, &c.logs, "logs", "VERITRAIL_MONITOR_LOGS", "", config.File(), "JSON file listing the logs to follow (see above)")
	config.Add(s, &c.state, "state", "VERITRAIL_MONITOR_STATE", "./veritrail-monitor", config.Path(), "directory keeping the last good checkpoint of each log")
	config.Add(s, &c.interval, "interval", "VERITRAIL_MONITOR_INTERVAL", time.Minute, config.Duration(time.Millisecond), "how often each log is checked")
	config.Add(s, &c.stallAfter, "stall-after", "VERITRAIL_MONITOR_STALL_AFTER", time.Hour, config.Duration(time.Millisecond),
		"alert when no fresh witnessed checkpoint (no good checkpoint, without witnesses) came for this long")
	config.Add(s, &c.once, "once", "", false, config.Bool(), "check once and exit, non-zero on an alert (for cron)")
	config.Add(s, &c.webhook, "webhook", "VERITRAIL_MONITOR_WEBHOOK", "", config.URL("http", "https"), "POST each alert as JSON to this URL")
	config.Add(s, &c.smtpURL, "", "VERITRAIL_SMTP_URL", "", config.URL("smtp", "smtps"),
		"SMTP server of alert e-mails: smtp://user:password@host:587 (STARTTLS) or smtps://host:465").Secret()
	config.Add(s, &c.smtpCA, "smtp-ca-file", "VERITRAIL_SMTP_CA_FILE", "", config.File(), "PEM CA certificate of the SMTP server").ShowDefault("system roots")
	config.Add(s, &c.emailFrom, "smtp-from", "VERITRAIL_SMTP_FROM", "veritrail@localhost", emailKind(), "sender address of alert e-mails")
	config.Add(s, &c.emailTo, "email-to", "VERITRAIL_MONITOR_EMAIL_TO", "", emailKind(), "send each alert by e-mail to this address")
	allowLoopback(s, &c.allowLoopback)
	config.Add(s, &c.logLevel, "log-level", "VERITRAIL_LOG_LEVEL", slog.LevelInfo, logLevelKind(), "debug, info, warn or error").ShowDefault("info")
	s.Check(func() error {
		if c.logs == "" {
			return errors.New("--logs FILE is required: the logs to follow")
		}
		return nil
	})
	return s
}

// dbConfig is the configuration of veritrail db.
type dbConfig struct {
	db         string
	shardCount int
}

func (c *dbConfig) settings(sub string) *config.Set {
	s := config.NewSet("db " + sub)
	config.Add(s, &c.db, "db", "VERITRAIL_DB", "", config.URL("postgres", "postgresql"),
		"PostgreSQL URL of the Citus coordinator, postgres://user:password@host:5432/db (required)").Secret()
	config.Add(s, &c.shardCount, "shard-count", "", 0, config.Int(0, 1<<16),
		"shards of each distributed table; 0: Citus's citus.shard_count (32 unless changed)")
	return s
}

// allSettings returns the settings of every command, sub-commands
// included, for the README check.
func allSettings() []*config.Set {
	sets := []*config.Set{new(serveConfig).settings(), new(keyConfig).settings(), new(demoConfig).settings(),
		new(benchConfig).settings(), new(mcpProxyConfig).settings(), new(verifyConfig).settings(), new(monitorConfig).settings()}
	for _, sub := range []string{"create", "list"} {
		sets = append(sets, new(orgConfig).settings(sub))
	}
	for _, sub := range []string{"create", "list", "revoke"} {
		sets = append(sets, new(tokenConfig).settings(sub))
	}
	sets = append(sets, new(dbConfig).settings("distribute"))
	for _, sub := range []string{"create", "list", "show", "update", "pause", "resume", "delete"} {
		sets = append(sets, new(sinkConfig).settings(sub))
	}
	for _, sub := range rulesSubcommands {
		sets = append(sets, new(rulesConfig).settings(sub))
	}
	return sets
}

// allowLoopback declares VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS, which lets
// outbound requests reach loopback, link-local and metadata addresses.
func allowLoopback(s *config.Set, v *bool) {
	config.Add(s, v, "", "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS", false, config.Bool(),
		"let witnesses, sinks, alert routes and monitor webhooks be on loopback, link-local or cloud metadata addresses (tests, single-host setups)")
}

// Kinds of values of more than one command.

func logLevelKind() config.Kind[slog.Level] {
	return config.Kind[slog.Level]{Want: "debug, info, warn or error", Meta: "LEVEL",
		Parse: func(s string) (slog.Level, error) {
			var l slog.Level
			if err := l.UnmarshalText([]byte(s)); err != nil {
				return 0, config.ErrMalformed
			}
			return l, nil
		}}
}

func orgNameKind() config.Kind[string] {
	return config.Kind[string]{Want: "an organization name: 1 to 64 characters from a-z, 0-9 and -", Meta: "NAME",
		Parse: func(s string) (string, error) {
			if !veritrail.ValidOrgName(s) {
				return "", config.ErrMalformed
			}
			return s, nil
		}}
}

// originKind is the origin prefix of the logs' checkpoints.
func originKind() config.Kind[string] {
	return config.Kind[string]{Want: "a host-like name without spaces or '+', like audit.example.com", Meta: "NAME",
		Parse: func(s string) (string, error) {
			if s != "" && !tlog.ValidOrigin(s+"/x") {
				return "", config.ErrMalformed
			}
			return s, nil
		}}
}

func emailKind() config.Kind[string] {
	return config.Kind[string]{Want: "an e-mail address alone, like veritrail@example.com", Meta: "ADDRESS",
		Parse: func(s string) (string, error) {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Name != "" || a.Address != s {
				return "", config.ErrMalformed
			}
			return s, nil
		}}
}

func linkKeyKind() config.Kind[string] {
	return config.Kind[string]{Want: "at least 32 characters, like the output of `openssl rand -hex 32`", Meta: "KEY",
		Parse: func(s string) (string, error) {
			if s != "" && len(s) < 32 {
				return "", config.ErrMalformed
			}
			return s, nil
		}}
}

// listKind is a comma-separated list; spaces around items are dropped,
// empty items kept (for the checks to refuse).
func listKind() config.Kind[[]string] {
	return config.Kind[[]string]{Want: "a comma-separated list", Meta: "A,B",
		Format: func(v []string) string { return strings.Join(v, ",") },
		Parse: func(s string) ([]string, error) {
			if s == "" {
				return nil, nil
			}
			out := strings.Split(s, ",")
			for i := range out {
				out[i] = strings.TrimSpace(out[i])
			}
			return out, nil
		}}
}

func policyKind() config.Kind[string] {
	file := config.File()
	return config.Kind[string]{Want: `"server" or the path of a readable policy file`, Meta: "FILE|server",
		Parse: func(s string) (string, error) {
			if s == "server" {
				return s, nil
			}
			return file.Parse(s)
		}}
}

// header is a header added to requests: name and value.
type header struct{ name, value string }

func headerKind() config.Kind[header] {
	return config.Kind[header]{Want: `"Name: value"`, Meta: `"NAME: VALUE"`,
		Parse: func(s string) (header, error) {
			k, v, ok := strings.Cut(s, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return header{}, config.ErrMalformed
			}
			return header{http.CanonicalHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v)}, nil
		}}
}

// open opens the selected store. Admin commands pass workers=false: they
// run beside a server and must not append or index. A caller that wants
// every commit's new events subscribes to the store's Commits.
func (sf *storeConfig) open(ctx context.Context, log *slog.Logger, workers bool, obs veritrail.Observer) (veritrail.Store, error) {
	if sf.db != "" {
		// The data directory still holds this node's local files (export
		// files, a master key if no file is given).
		if err := os.MkdirAll(sf.data, 0o700); err != nil {
			return nil, err
		}
		return postgres.Open(ctx, sf.db, postgres.Options{Logger: log, Observer: obs, StatsCacheBytes: sf.statsCacheMB << 20})
	}
	return sqlite.Open(ctx, sf.data, sqlite.Options{Logger: log, NoWorkers: !workers, Observer: obs, StatsCacheBytes: sf.statsCacheMB << 20,
		BucketShift: uint(sf.bucketShift)})
}

// openAdmin opens the store for an admin command run beside a server: no
// background workers, warnings to stderr.
func (sf *storeConfig) openAdmin(ctx context.Context, stderr io.Writer) (veritrail.Store, error) {
	return sf.open(ctx, slog.New(slog.NewTextHandler(stderr, nil)), false, nil)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// createSecretFile writes a new secret file (0600, synced); it fails if the
// file exists, so two processes starting at once cannot overwrite each
// other's key.
func createSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
