package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/veritrail/veritrail/internal/config"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// verifyConfig is the configuration of veritrail verify.
type verifyConfig struct {
	data, db, server, bundle string // the source: exactly one
	event                    string // or one event
	token                    string
	keys                     []string
	signingKey               string
	trusted                  string
	org                      string
	quiet, index             bool
	cpuProfile               string
}

func (c *verifyConfig) settings() *config.Set {
	s := config.NewSet("verify")
	s.Intro = "Usage: veritrail verify (--data DIR | --db URL | --server URL | --bundle FILE | --event FILE) --key KEY [flags]"
	config.Add(s, &c.data, "data", "", "", config.Path(), "verify the stored files of this data directory (offline; stop the server or use a copy for a consistent view)")
	config.Add(s, &c.db, "db", "", "", config.URL("postgres", "postgresql"), "verify this PostgreSQL store, postgres://… (read only, in one snapshot; the server may run)")
	config.Add(s, &c.server, "server", "", "", config.URL("http", "https"), "verify through this server's API")
	config.Add(s, &c.token, "token", "VERITRAIL_TOKEN", "", config.Text().Named("TOKEN"), "token for --server with auditlogs:read (content:read to check content too)").Secret()
	config.Add(s, &c.bundle, "bundle", "", "", config.File(), "verify this evidence bundle (offline)")
	config.Add(s, &c.event, "event", "", "", config.File(), "verify one event (offline): as GET /api/v1/events/{id}?proof=true answered it, or a line of a bundle's events.ndjson")
	config.AddRepeated(s, &c.keys, "key", verifierKeyKind(), "a log's verifier key, or a file holding it: the key you trust, one per organization's log (without it: the key found beside the data, with a warning)")
	config.Add(s, &c.signingKey, "", "VERITRAIL_SIGNING_KEY_FILE", "", config.File(),
		"without --key: the signing key whose verifier keys are trusted, with a warning").ShowDefault("<data>/signing-key")
	config.Add(s, &c.trusted, "trusted", "", "", config.File(), "a checkpoint you kept earlier: the log must still extend it")
	config.Add(s, &c.org, "org", "", "", orgNameKind(), "only this organization (--data, --db; default all)")
	config.Add(s, &c.quiet, "quiet", "", false, config.Bool(), "no progress line")
	config.Add(s, &c.index, "index", "", true, config.Bool(), "with --data or --db, also check the search and id indexes (and with --data the stored counts of events) against the envelopes")
	config.Add(s, &c.cpuProfile, "cpuprofile", "", "", config.Path(), "write a CPU profile to this file (for benchmarking)")
	s.Check(func() error {
		modes := 0
		for _, m := range []string{c.data, c.db, c.server, c.bundle, c.event} {
			if m != "" {
				modes++
			}
		}
		switch {
		case modes != 1:
			return errors.New("give exactly one of --data DIR, --db URL, --server URL, --bundle FILE or --event FILE")
		case c.event != "" && len(c.keys) != 1:
			return errors.New("--event needs --key: the verifier key of the event's log, obtained from the operator earlier")
		case c.event != "" && c.trusted != "":
			return errors.New("--trusted goes with --data, --db or --server: one event holds no consistency proof")
		case c.trusted != "" && c.bundle != "":
			return errors.New("--trusted needs --data, --db or --server: a bundle holds one checkpoint and no consistency proof; verify the log itself against the checkpoint you kept")
		case c.org != "" && c.data == "" && c.db == "":
			return errors.New("--org goes with --data or --db; with --server the token's organization is verified")
		case c.server != "" && c.token == "":
			return errors.New("--server needs --token or VERITRAIL_TOKEN")
		}
		return nil
	})
	return s
}

// verifierKeyKind is a verifier key, or the name of a file holding one.
func verifierKeyKind() config.Kind[string] {
	return config.Kind[string]{Want: "a verifier key (origin+hash+key, as `veritrail key` and GET /api/v1/log/key print it) or a file holding one", Meta: "KEY",
		Parse: func(v string) (string, error) {
			k := v
			if b, err := os.ReadFile(v); err == nil {
				k = strings.TrimSpace(string(b))
			}
			if _, err := tlog.VerifierKeyOrigin(k); err != nil {
				return "", config.ErrMalformed
			}
			return k, nil
		}}
}

// runVerify checks logs offline (a data directory, a PostgreSQL database,
// an evidence bundle) or through a server's API, trusting only the
// verifier keys given. The checks are verify.Check's; this parses flags,
// opens the source and prints.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c verifyConfig
	if err := c.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(c.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if c.event != "" {
		raw, err := os.ReadFile(c.event)
		if err != nil {
			return err
		}
		p, err := verify.CheckEvent(raw, c.keys[0])
		if err != nil {
			return fmt.Errorf("%s does not verify: %w", c.event, err)
		}
		fmt.Fprint(stdout, p)
		return nil
	}
	opts := verify.Options{Keys: c.keys, Org: c.org, Index: c.index}
	if c.trusted != "" {
		b, err := os.ReadFile(c.trusted)
		if err != nil {
			return fmt.Errorf("--trusted: %w", err)
		}
		opts.Trusted = b
	}
	prog := &progress{w: stderr, quiet: c.quiet}
	opts.Progress = prog.org
	var src verify.Source
	switch {
	case c.data != "":
		store, err := sqlite.Open(ctx, c.data, sqlite.Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return fmt.Errorf("open %s: %w", c.data, err)
		}
		defer store.Close()
		src = store.VerifySource()
		opts.KeyBeside = localKey(c.data, c.signingKey, stderr, "the key found in the data directory")
	case c.db != "":
		store, err := postgres.OpenVerifySource(ctx, c.db)
		if err != nil {
			return err
		}
		defer store.Close()
		src = store
		if len(c.keys) == 0 {
			if c.signingKey == "" {
				return errors.New("--db needs --key: the verifier key of each log to check (`veritrail key --db URL --org NAME` prints it), or VERITRAIL_SIGNING_KEY_FILE to use the signing key itself")
			}
			opts.KeyBeside = localKey("", c.signingKey, stderr, "the key of VERITRAIL_SIGNING_KEY_FILE")
		}
	case c.server != "":
		s, err := verify.NewServerSource(ctx, c.server, c.token)
		if err != nil {
			return err
		}
		src = s
		opts.KeyBeside = func(ctx context.Context, _ verify.LogRef) (string, error) {
			fmt.Fprintln(stderr, "warning: checking signatures with the key the server serves; pass --key with the verifier key you obtained earlier, or a replaced key would go unnoticed")
			return s.Key(ctx)
		}
	default:
		f, err := os.Open(c.bundle)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		b, err := verify.OpenBundle(f, fi.Size())
		if err != nil {
			return err
		}
		src = b
		opts.KeyBeside = func(context.Context, verify.LogRef) (string, error) {
			fmt.Fprintln(stderr, "warning: checking the signature with the key inside the bundle; pass --key with the verifier key you obtained from the log operator")
			return b.Key(), nil
		}
	}
	rep := &verify.Report{}
	sums, err := verify.Check(ctx, src, opts, rep)
	prog.done()
	if errors.Is(err, verify.ErrNoSuchOrg) && c.data != "" {
		return fmt.Errorf("%w in %s (list them with `veritrail org list --data %s`)", err, c.data, c.data)
	}
	if err != nil {
		return err
	}
	return report(stdout, sums, rep)
}

// localKey returns a verify.Options.KeyBeside that derives each log's
// verifier key from the installation's signing key (the file, else
// <dir>/signing-key), with a warning.
func localKey(dir, file string, stderr io.Writer, what string) func(context.Context, verify.LogRef) (string, error) {
	var once sync.Once
	var key *tlog.Key
	var err error
	return func(_ context.Context, ref verify.LogRef) (string, error) {
		once.Do(func() {
			if key, err = loadSigningKeyFile(dir, file, false); err != nil {
				err = fmt.Errorf("no --key given and %w", err)
				return
			}
			fmt.Fprintf(stderr, "warning: checking signatures with %s; pass --key with the verifier key you obtained earlier, or a replaced key would go unnoticed\n", what)
		})
		if err != nil {
			return "", err
		}
		return key.VerifierKey(ref.Origin)
	}
}

// report prints what was checked and what failed, and returns the verdict.
func report(stdout io.Writer, sums []*verify.Summary, rep *verify.Report) error {
	var checked, skipped []string
	for _, s := range sums {
		if s.NotChecked != "" {
			skipped = append(skipped, s.Org)
			fmt.Fprintf(stdout, "org %s: NOT CHECKED: %s\n", s.Org, s.NotChecked)
			continue
		}
		checked = append(checked, s.Org)
		printSummary(stdout, s)
	}
	scope := fmt.Sprintf("%d of %d organizations checked (%s)", len(checked), len(sums), names(checked))
	if len(skipped) == 0 {
		scope = fmt.Sprintf("every organization checked (%s)", names(checked))
	}
	if len(sums) == 1 && len(skipped) == 0 {
		scope = "organization " + checked[0] + " checked"
	}
	if !rep.OK() {
		for _, f := range rep.Failures {
			fmt.Fprintf(stdout, "FAIL %s\n", f)
		}
		if rep.Total > len(rep.Failures) {
			fmt.Fprintf(stdout, "… and %d more\n", rep.Total-len(rep.Failures))
		}
		first := rep.Failures[0]
		where := "seq " + fmt.Sprint(first.Seq)
		if first.Seq < 0 {
			where = "the log as a whole"
		}
		return fmt.Errorf("verification FAILED: %d problem(s); the first in org %s at %s: %s (%s)", rep.Total, first.Org, where, first.Kind, scope)
	}
	if len(checked) == 0 {
		return fmt.Errorf("verification FAILED: no organization was checked (%d not checked, see above)", len(skipped))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(stdout, "verification passed for %s; %s NOT checked, see above\n", scope, names(skipped))
		return nil
	}
	fmt.Fprintf(stdout, "verification passed: %s\n", scope)
	return nil
}

// names lists organizations, the first ten of them.
func names(orgs []string) string {
	if len(orgs) > 10 {
		return strings.Join(orgs[:10], ", ") + fmt.Sprintf(" and %d more", len(orgs)-10)
	}
	return strings.Join(orgs, ", ")
}

// printSummary prints one checked log's line.
func printSummary(w io.Writer, s *verify.Summary) {
	if s.Info.Sparse {
		if s.Latest != nil {
			fmt.Fprintf(w, "bundle of %s: %d events (%d with content) proven against the checkpoint at size %d\n",
				s.Latest.Origin, s.Events, s.Contents, s.Latest.Size)
		}
		return
	}
	where := ""
	if s.Info.Where != "" {
		where = " " + s.Info.Where
	}
	latest := int64(0)
	if s.Latest != nil {
		latest = int64(s.Latest.Size)
	}
	fmt.Fprintf(w, "org %s: %d events checked%s, %.1f MB in %s (%.0f MB/s); %d signed checkpoints verified, the latest at size %d",
		s.Org, s.Checked, where, float64(s.Bytes)/1e6, s.Took.Round(time.Millisecond), mbps(s.Bytes, s.Took), s.Checkpoints, latest)
	if s.Info.Size > latest && !s.Info.Growing {
		fmt.Fprintf(w, "; %d events after it are not signed yet (the server signs them within a second of running)", s.Info.Size-latest)
	}
	if s.Trusted {
		fmt.Fprint(w, "; compared with the checkpoint you kept")
	}
	if s.Expired+s.Erased > 0 {
		fmt.Fprintf(w, "; %d envelopes expired by policy and %d contents removed by retention or erasure, their leaves checked", s.Expired, s.Erased)
	}
	if s.Info.ContentHidden {
		fmt.Fprint(w, "; content not checked (the token may not read it)")
	}
	if s.IndexChecked {
		fmt.Fprint(w, "; search and id indexes checked against the envelopes")
	}
	if s.KeyBeside {
		fmt.Fprint(w, "; signatures checked with the key found beside the data, not one you gave")
	}
	fmt.Fprintln(w)
}

// progress prints a progress line at most twice a second.
type progress struct {
	w     io.Writer
	quiet bool
	last  time.Time
	shown bool
	// The organization being checked, and since when.
	current string
	start   time.Time
}

// org reports the progress of one organization's check (verify.Options.Progress).
func (p *progress) org(name string, checked, size, bytes int64) {
	if p.quiet {
		return
	}
	now := time.Now()
	if name != p.current {
		p.current, p.start = name, now
	}
	if now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last = now
	p.shown = true
	fmt.Fprintf(p.w, "\rorg %s: %d / %d events, %.0f MB/s   ", name, checked, size, mbps(bytes, now.Sub(p.start)))
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}
