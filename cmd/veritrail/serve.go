package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/demo"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/mcp"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/sink"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	addr := fs.String("addr", env("VERITRAIL_ADDR", "127.0.0.1:8080"), "listen address (env VERITRAIL_ADDR)")
	withDemo := fs.Bool("demo", envBool("VERITRAIL_DEMO"), "load the sample organization's events into organization default (env VERITRAIL_DEMO)")
	publicURL := fs.String("public-url", env("VERITRAIL_PUBLIC_URL", ""), "external base URL for links (env VERITRAIL_PUBLIC_URL)")
	logOrigin := fs.String("log-origin", env("VERITRAIL_LOG_ORIGIN", ""), "origin prefix of the logs' checkpoints, e.g. audit.example.com, fixed on first start (env VERITRAIL_LOG_ORIGIN; default veritrail-<random>)")
	witnesses := fs.String("witness-urls", env("VERITRAIL_WITNESS_URLS", ""), "comma-separated C2SP tlog-witness URLs to send checkpoints to (env VERITRAIL_WITNESS_URLS)")
	logLevel := fs.String("log-level", env("VERITRAIL_LOG_LEVEL", "info"), "debug, info, warn or error (env VERITRAIL_LOG_LEVEL)")
	lim := veritrail.DefaultLimits
	maxEvent := fs.Int64("max-event-bytes", envInt("VERITRAIL_MAX_EVENT_BYTES", int64(lim.MaxEventBytes)), "largest event accepted, in bytes")
	maxBatch := fs.Int64("max-batch-events", envInt("VERITRAIL_MAX_BATCH_EVENTS", int64(lim.MaxBatchEvents)), "most events in one request")
	maxBody := fs.Int64("max-body-bytes", envInt("VERITRAIL_MAX_BODY_BYTES", lim.MaxBodyBytes), "largest request body after decompression, in bytes")
	rateLimit := fs.Int64("rate-limit", envInt("VERITRAIL_RATE_LIMIT", 6000), "requests per minute per token (a bucket that size, refilled continuously); 0: no limit (env VERITRAIL_RATE_LIMIT)")
	retentionEvery := fs.Duration("retention-interval", envDuration("VERITRAIL_RETENTION_INTERVAL", time.Hour), "how often retention runs (env VERITRAIL_RETENTION_INTERVAL); 0: only on demand")
	exportTTL := fs.Duration("export-ttl", envDuration("VERITRAIL_EXPORT_TTL", 24*time.Hour), "how long an export job's file and download links last (env VERITRAIL_EXPORT_TTL)")
	smtpFrom := fs.String("smtp-from", env("VERITRAIL_SMTP_FROM", "veritrail@localhost"), "sender address of export e-mails (env VERITRAIL_SMTP_FROM)")
	smtpCA := fs.String("smtp-ca-file", env("VERITRAIL_SMTP_CA_FILE", ""), "PEM CA certificate of the SMTP server, when a private CA signs it (env VERITRAIL_SMTP_CA_FILE)")
	sinkPoll := fs.Duration("sink-poll-interval", envDuration("VERITRAIL_SINK_POLL_INTERVAL", 200*time.Millisecond), "how often an idle sink looks for new events (env VERITRAIL_SINK_POLL_INTERVAL)")
	sinkMinBackoff := fs.Duration("sink-min-backoff", envDuration("VERITRAIL_SINK_MIN_BACKOFF", time.Second), "first wait before retrying a failed delivery; doubles per failure (env VERITRAIL_SINK_MIN_BACKOFF)")
	sinkMaxBackoff := fs.Duration("sink-max-backoff", envDuration("VERITRAIL_SINK_MAX_BACKOFF", 5*time.Minute), "longest wait between retries of a failed delivery (env VERITRAIL_SINK_MAX_BACKOFF)")
	sessionIdle := fs.Duration("session-idle-timeout", envDuration("VERITRAIL_SESSION_IDLE_TIMEOUT", vhttp.DefaultSessionIdle), "console sessions end after this long without a request (env VERITRAIL_SESSION_IDLE_TIMEOUT)")
	sessionMax := fs.Duration("session-max-age", envDuration("VERITRAIL_SESSION_MAX_AGE", vhttp.DefaultSessionMaxAge), "console sessions end this long after sign-in, whatever the activity (env VERITRAIL_SESSION_MAX_AGE)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for benchmarking)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	lim.MaxEventBytes, lim.MaxBatchEvents, lim.MaxBodyBytes = int(*maxEvent), int(*maxBatch), *maxBody

	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	m := metrics.New()
	store, err := sf.open(ctx, log, true, m)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", slog.Any("err", err))
		}
	}()

	if err := bootstrap(ctx, store, sf.data, stdout, log); err != nil {
		return err
	}
	if *withDemo {
		if err := loadDemo(ctx, store, log); err != nil {
			return err
		}
	}

	key, err := signingKey(ctx, store, sf.data, true)
	if err != nil {
		return err
	}
	cpr, err := checkpoint.New(ctx, checkpoint.Config{
		Store: store, Key: key, OriginPrefix: *logOrigin, Witnesses: strings.Split(*witnesses, ","),
		Logger: log, Observer: m, Lead: leader(store, "checkpoints", leaseTTL, log),
	})
	if err != nil {
		return err
	}
	cctx, stopCheckpoints := context.WithCancel(context.Background())
	checkpointsDone := make(chan struct{})
	go func() {
		defer close(checkpointsDone)
		cpr.Run(cctx)
	}()
	defer func() {
		stopCheckpoints()
		<-checkpointsDone
	}()

	if *retentionEvery > 0 {
		rctx, stopRetention := context.WithCancel(context.Background())
		retentionDone := make(chan struct{})
		go func() {
			defer close(retentionDone)
			runRetentionSchedule(rctx, store, *retentionEvery, leader(store, "retention", *retentionEvery+time.Minute, log), log)
		}()
		defer func() {
			stopRetention()
			<-retentionDone
		}()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? choose another --addr)", *addr, err)
	}
	// The SMTP URL may carry a password: a secret (_FILE supported).
	smtpURL, err := secret("VERITRAIL_SMTP_URL")
	if err != nil {
		return err
	}
	var linkKey []byte
	if sharedStore(store) {
		linkKey, err = clusterLinkKey(ctx, store, sf.data)
	} else {
		linkKey, err = loadLinkKey(sf.data)
	}
	if err != nil {
		return err
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	// Forwarding: sinks deliver from their cursors until shutdown.
	sinks, err := newSinkEngine(store, sf.data, log, m, sink.Options{PollInterval: *sinkPoll, MinBackoff: *sinkMinBackoff, MaxBackoff: *sinkMaxBackoff})
	if err != nil {
		return err
	}
	fctx, stopForwarding := context.WithCancel(context.Background())
	forwardingDone := make(chan struct{})
	go func() {
		defer close(forwardingDone)
		sinks.Run(fctx)
	}()
	defer func() {
		stopForwarding()
		<-forwardingDone
	}()
	srv := vhttp.New(vhttp.Config{Store: store, Logger: log, Metrics: m, Limits: lim, PublicURL: *publicURL, Checkpointer: cpr, RateLimit: int(*rateLimit),
		ExportDir: filepath.Join(sf.data, "exports"), LinkKey: linkKey, ExportTTL: *exportTTL,
		Mail: &mail.Config{URL: smtpURL, From: *smtpFrom, CAFile: *smtpCA}, Sinks: sinks,
		CheckMCPPolicy: func(b []byte) error { _, err := mcp.ParsePolicy(b); return err },
		SessionIdle:    *sessionIdle, SessionMaxAge: *sessionMax})
	ectx, stopExports := context.WithCancel(context.Background())
	exportsDone := make(chan struct{})
	go func() {
		defer close(exportsDone)
		srv.RunExports(ectx)
	}()
	defer func() {
		stopExports()
		<-exportsDone
	}()
	log.Info("veritrail serving", slog.String("addr", ln.Addr().String()), slog.String("data", sf.data))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", slog.Any("err", err))
	}
	// Sign what was committed last, so the final state is covered.
	if orgs, err := store.ListOrgs(sctx); err == nil {
		for _, o := range orgs {
			if _, err := cpr.Sign(sctx, o); err != nil {
				log.Error("final checkpoint", slog.String("org", o.Name), slog.Any("err", err))
			}
		}
	}
	return nil
}

// bootstrap creates organization "default" and an owner token on a store
// with no organization. The token is printed once and written to
// <data>/bootstrap-token (0600), unless VERITRAIL_BOOTSTRAP_TOKEN supplies it.
func bootstrap(ctx context.Context, store veritrail.Store, dataDir string, stdout io.Writer, log *slog.Logger) error {
	supplied, err := secret("VERITRAIL_BOOTSTRAP_TOKEN")
	if err != nil {
		return err
	}
	orgs, err := store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	if len(orgs) > 0 {
		if supplied != "" {
			return ensureSuppliedToken(ctx, store, supplied, log)
		}
		return nil
	}
	org, err := store.CreateOrg(ctx, "default")
	if veritrail.ErrorCode(err) == veritrail.EConflict {
		// Another node sharing the database created it just now (and
		// printed its owner token).
		if supplied != "" {
			return ensureSuppliedToken(ctx, store, supplied, log)
		}
		return nil
	}
	if err != nil {
		return err
	}
	tokenSecret := supplied
	if tokenSecret == "" {
		tokenSecret = veritrail.NewTokenSecret()
	}
	if err := createToken(ctx, store, org.ID, "bootstrap", veritrail.RoleOwner, nil, nil, tokenSecret); err != nil {
		return err
	}
	if err := recordAdmin(ctx, store, org.ID, "audit.org_created", &veritrail.Target{Type: "organization", ID: org.Name, Name: org.Name}, nil); err != nil {
		return err
	}
	if err := recordAdmin(ctx, store, org.ID, "audit.token_created", &veritrail.Target{Type: "api_key", ID: tokenIDOf(ctx, store, org.ID, tokenSecret), Name: "bootstrap"},
		map[string]any{"role": veritrail.RoleOwner, "bootstrap": true}); err != nil {
		return err
	}
	if supplied != "" {
		log.Info("created organization default with the owner token from VERITRAIL_BOOTSTRAP_TOKEN")
		return nil
	}
	path := filepath.Join(dataDir, "bootstrap-token")
	if err := os.WriteFile(path, []byte(tokenSecret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "Created organization \"default\" and its owner token (shown once; also in %s):\n%s\n", path, tokenSecret)
	return nil
}

// ensureSuppliedToken makes a VERITRAIL_BOOTSTRAP_TOKEN work on an existing
// store too, as an owner of organization default.
func ensureSuppliedToken(ctx context.Context, store veritrail.Store, supplied string, log *slog.Logger) error {
	lookup, _ := veritrail.HashToken(supplied)
	if _, err := store.TokenByLookup(ctx, lookup); err == nil {
		return nil
	} else if veritrail.ErrorCode(err) != veritrail.ENotFound {
		return err
	}
	org, err := store.OrgByName(ctx, "default")
	if err != nil {
		return nil // no default organization: nothing to attach it to
	}
	log.Info("adding the VERITRAIL_BOOTSTRAP_TOKEN owner token to organization default")
	err = createToken(ctx, store, org.ID, "bootstrap", veritrail.RoleOwner, nil, nil, supplied)
	if veritrail.ErrorCode(err) == veritrail.EConflict {
		return nil // another node sharing the database added it
	}
	return err
}

func createToken(ctx context.Context, store veritrail.Store, org int64, name, role string, scopes []string, expires *time.Time, tokenSecret string) error {
	lookup, hash := veritrail.HashToken(tokenSecret)
	return store.CreateToken(ctx, &veritrail.Token{
		ID: veritrail.NewTokenID(), OrgID: org, Name: name, Role: role, Scopes: scopes,
		Lookup: lookup, Hash: hash, ExpiresAt: expires,
	})
}

// loadDemo appends the sample organization's events to organization
// default, once: the events have fixed ids, so a second start finds them.
func loadDemo(ctx context.Context, store veritrail.Store, log *slog.Logger) error {
	org, err := store.OrgByName(ctx, "default")
	if err != nil {
		return fmt.Errorf("demo data goes to organization default: %w", err)
	}
	opts := demo.Options{Seed: 1, Anchor: time.Now().UTC().Truncate(time.Minute)}
	// The sample organization collects AI interaction logs from the start
	// of its month of events.
	st, err := store.OrgSettings(ctx, org.ID)
	if err != nil {
		return err
	}
	if !st.AIInteractionLogsEnabled {
		st.AIInteractionLogsEnabled = true
		since := opts.Anchor.AddDate(0, 0, -31)
		st.AIEnabledAt = &since
		if err := store.PutOrgSettings(ctx, org.ID, st); err != nil {
			return err
		}
	}
	start := time.Now()
	var buf bytes.Buffer
	n, lines := 0, 0
	errLoaded := errors.New("already loaded")
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		dec := veritrail.NewDecoder(&buf, veritrail.DefaultLimits, time.Now())
		var batch []*veritrail.Event
		for {
			e, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("demo event: %w", err)
			}
			batch = append(batch, e)
		}
		buf.Reset()
		lines = 0
		if n == 0 {
			// The first event's id tells whether an earlier start loaded it all.
			if _, err := store.EventByID(ctx, org.ID, batch[0].ID, false); err == nil {
				return errLoaded
			}
		}
		if _, err := store.Append(ctx, org.ID, batch); err != nil {
			return err
		}
		n += len(batch)
		return nil
	}
	err = demo.Generate(opts, func(line []byte) error {
		buf.Write(line)
		buf.WriteByte('\n')
		if lines++; lines >= 2000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, errLoaded) {
		log.Info("demo data already loaded")
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading demo data: %w", err)
	}
	log.Info("demo data loaded", slog.Int("events", n), slog.Duration("took", time.Since(start)))
	return nil
}

// runRetentionSchedule applies every organization's retention rules a
// minute after start and then every interval.
func runRetentionSchedule(ctx context.Context, store veritrail.Store, every time.Duration, lead func(context.Context) bool, log *slog.Logger) {
	wait := min(time.Minute, every)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = every
		if !lead(ctx) {
			continue // another node runs retention
		}
		orgs, err := store.ListOrgs(ctx)
		if err != nil {
			log.Error("retention: list organizations", slog.Any("err", err))
			continue
		}
		for _, o := range orgs {
			start := time.Now()
			_, res, err := veritrail.RunRetention(ctx, store, o.ID, time.Now(), veritrail.SystemActor("scheduled retention"))
			if err != nil {
				if ctx.Err() == nil {
					log.Error("retention run failed", slog.String("org", o.Name), slog.Any("err", err))
				}
				continue
			}
			if res.Contents+res.Envelopes > 0 {
				log.Info("retention run", slog.String("org", o.Name), slog.Int64("content_removed", res.Contents),
					slog.Int64("envelopes_removed", res.Envelopes), slog.Duration("took", time.Since(start)))
			}
		}
	}
}
