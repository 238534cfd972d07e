package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/export"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/mcp"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sso"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	if err := c.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(c.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	tuneGC(os.Getenv, c.store.db, c.store.statsCacheMB<<20)
	log := newLogger(stderr, c.logLevel)
	m := metrics.New()
	// Forwarding's hand-off: each commit's new events go to the sinks
	// that keep up, which then need not read them back.
	feed := sink.NewFeed(0)
	// Reads run behind ingest: the commits' time tells the scheduler how
	// busy ingest is.
	turns := c.admission()
	m.ReadScheduling(turns.Busy, turns.Waiting)
	store, err := c.store.open(ctx, log, true, turns.Observer(m))
	if err != nil {
		return err
	}
	if cp, ok := store.(veritrail.CommitPublisher); ok {
		defer cp.Commits().Subscribe(feed.Add)()
		// Sinks that read the feed forward the envelopes the commit
		// built rather than encoding each event again.
		cp.Commits().WantEnvelopes(feed.Wants)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", slog.Any("err", err))
		}
	}()

	if err := bootstrap(ctx, store, c.store.data, c.bootstrapToken, stdout, log); err != nil {
		return err
	}
	if c.demo {
		if err := loadDemo(ctx, store, log); err != nil {
			return err
		}
	}

	key, err := signingKey(ctx, store, c.store.data, c.keys, true)
	if err != nil {
		return err
	}
	cpr, err := checkpoint.New(ctx, checkpoint.Config{
		Store: store, Key: key, OriginPrefix: c.logOrigin, Witnesses: c.witnesses,
		Client: netguard.Guard{AllowLoopback: c.allowLoopback}.Client(10 * time.Second),
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

	if c.retentionEvery > 0 {
		rctx, stopRetention := context.WithCancel(context.Background())
		retentionDone := make(chan struct{})
		go func() {
			defer close(retentionDone)
			runRetentionSchedule(rctx, store, c.retentionEvery, leader(store, "retention", c.retentionEvery+time.Minute, log), log)
		}()
		defer func() {
			stopRetention()
			<-retentionDone
		}()
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? choose another --addr)", c.addr, err)
	}
	var linkKey []byte
	if sharedStore(store) {
		linkKey, err = clusterLinkKey(ctx, store, c.store.data, c.keys, c.linkKey)
	} else {
		linkKey, err = loadLinkKey(c.store.data, c.linkKey)
	}
	if err != nil {
		return err
	}
	publicURL := c.publicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	// Forwarding: sinks deliver from their cursors until shutdown.
	sinks, err := newSinkEngine(store, c.store.data, c.keys, log, m, sink.Options{Outbound: netguard.Guard{AllowLoopback: c.allowLoopback}, PollInterval: c.sinkPoll, MinBackoff: c.sinkMinBackoff, MaxBackoff: c.sinkMaxBackoff, Feed: feed})
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
	smtp := &mail.Config{URL: c.smtpURL, From: c.smtpFrom, CAFile: c.smtpCA}
	// Detection: rules follow the logs from their cursors, alerts go out
	// from the store's delivery queue, until shutdown.
	rulesEngine, alerts, err := newRulesEngine(store, c.store.data, c.keys, log, publicURL, smtp, netguard.Guard{AllowLoopback: c.allowLoopback})
	if err != nil {
		return err
	}
	dctx, stopDetection := context.WithCancel(context.Background())
	var detection sync.WaitGroup
	detection.Add(2)
	go func() { defer detection.Done(); rulesEngine.Run(dctx) }()
	go func() { defer detection.Done(); alerts.Run(dctx) }()
	defer func() {
		stopDetection()
		detection.Wait()
	}()
	exports := export.NewJobs(export.JobsConfig{Store: store, Logger: log, Checkpointer: cpr,
		Dir: filepath.Join(c.store.data, "exports"), Links: export.Links{Key: linkKey, PublicURL: publicURL}, TTL: c.exportTTL,
		Mail: smtp, Turns: turns})
	// Single sign-on: client secrets and sign-in flows sealed under the
	// master key; the relying party reaches providers through its client.
	master, err := masterKey(c.store.data, c.keys)
	if err != nil {
		return err
	}
	srv := vhttp.New(vhttp.Config{Store: store, Logger: log, Metrics: m, Limits: c.limits, PublicURL: publicURL, Checkpointer: cpr, RateLimit: c.rateLimit, PollRecordInterval: pollRecordInterval(c.pollRecord),
		AddressRateLimit: c.addrRateLimit, Turns: turns,
		Exports: exports, Sinks: sinks, Rules: rulesEngine, Outbound: netguard.Guard{AllowLoopback: c.allowLoopback},
		SealKey: master, SSO: sso.New(netguard.Guard{AllowLoopback: c.allowLoopback}.Client(10*time.Second), nil),
		CheckMCPPolicy: func(b []byte) error { _, err := mcp.ParsePolicy(b); return err },
		Mail:           smtp,
		SessionIdle:    c.sessionIdle, SessionMaxAge: c.sessionMaxAge})
	ectx, stopExports := context.WithCancel(context.Background())
	exportsDone := make(chan struct{})
	go func() {
		defer close(exportsDone)
		exports.Run(ectx)
	}()
	defer func() {
		stopExports()
		<-exportsDone
	}()
	log.Info("veritrail serving", slog.String("addr", ln.Addr().String()), slog.String("data", c.store.data))
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
// <data>/bootstrap-token (0600), unless supplied (VERITRAIL_BOOTSTRAP_TOKEN).
func bootstrap(ctx context.Context, store veritrail.Store, dataDir, supplied string, stdout io.Writer, log *slog.Logger) error {
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
		tokenSecret = veritrail.NewOrgTokenSecret(org.ID)
	}
	if err := createToken(ctx, store, org.ID, "bootstrap", veritrail.RoleOwner, nil, nil, tokenSecret); err != nil {
		return err
	}
	if err := appendAdmin(ctx, store, org.ID, "audit.org_created", &veritrail.Target{Type: "organization", ID: org.Name, Name: org.Name}, nil); err != nil {
		return err
	}
	if err := appendAdmin(ctx, store, org.ID, "audit.token_created", &veritrail.Target{Type: "api_key", ID: tokenIDOf(ctx, store, org.ID, tokenSecret), Name: "bootstrap"},
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

// pollRecordInterval is the server's setting for --poll-record-interval,
// whose 0 records every read alone.
func pollRecordInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// startCPUProfile writes a CPU profile of the process to path until stop
// is called (the --cpuprofile flag of serve, bench and verify); an empty
// path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
