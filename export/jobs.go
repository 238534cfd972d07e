package export

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/internal/admission"
	"github.com/veritrail/veritrail/mail"
)

// JobsConfig configures the export job runner.
type JobsConfig struct {
	Store  veritrail.Store
	Logger *slog.Logger
	// Checkpointer signs the checkpoint an evidence bundle is proved
	// against; without it bundle jobs fail.
	Checkpointer *checkpoint.Checkpointer
	// Dir holds finished files, unless the store keeps them
	// (veritrail.ExportFileStore).
	Dir string
	// TTL is how long a ready file and its links last (default 24h).
	TTL time.Duration
	// Links makes the download links e-mailed when a job is done.
	Links Links
	// Mail sends those e-mails; nil or empty URL: none are sent.
	Mail *mail.Config
	// Turns schedules the jobs' reads behind ingest (package admission):
	// while ingest is busy a job slows down to the readers' share. Nil:
	// jobs read at full speed.
	Turns *admission.Scheduler
	Now   func() time.Time
}

// Jobs runs export jobs (POST /api/v1/exports): a single worker per
// process claims the oldest pending job from the store, writes its file,
// marks it ready with an expiry, records audit.export_finished and e-mails
// the link; expired files are deleted. Several processes sharing a store
// may each run one: claims are atomic.
type Jobs struct {
	cfg  JobsConfig
	log  *slog.Logger
	wake chan struct{}
}

// NewJobs returns a runner for cfg; Run runs it.
func NewJobs(cfg JobsConfig) *Jobs {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	return &Jobs{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
}

// The methods below may be called on a nil *Jobs (a server that runs no
// jobs): no link verifies, no e-mail or bundle is offered.

// Links makes and checks the download links of the runner's jobs.
func (x *Jobs) Links() Links {
	if x == nil {
		return Links{}
	}
	return x.cfg.Links
}

// Notifies reports whether jobs can e-mail their requester.
func (x *Jobs) Notifies() bool { return x != nil && x.cfg.Mail.Enabled() }

// Bundles reports whether jobs can make evidence bundles.
func (x *Jobs) Bundles() bool { return x != nil && x.cfg.Checkpointer != nil }

// Wake tells Run that a job was queued, so it need not wait for its next
// round.
func (x *Jobs) Wake() {
	if x == nil {
		return
	}
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// Run works through export jobs until ctx ends: it takes up jobs
// interrupted by a restart, runs pending ones in order, and deletes the
// files of expired ones (every minute, and after each round of jobs).
func (x *Jobs) Run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		// Between jobs of this process: any running job is another's,
		// and the store requeues those whose worker is gone.
		if err := x.cfg.Store.RequeueRunningExports(ctx); err != nil && ctx.Err() == nil {
			x.log.Error("export jobs: requeue", slog.Any("err", err))
		}
		for {
			j, err := x.cfg.Store.ClaimExport(ctx, x.cfg.Now().UTC())
			if veritrail.ErrorCode(err) == veritrail.EConflict {
				continue // another worker took it
			}
			if err != nil {
				if veritrail.ErrorCode(err) != veritrail.ENotFound && ctx.Err() == nil {
					x.log.Error("export jobs: claim", slog.Any("err", err))
				}
				break
			}
			x.run(ctx, j)
		}
		x.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-x.wake:
		case <-tick.C:
		}
	}
}

// Sweep deletes the files of expired export jobs now and marks the jobs
// expired (Run does it every minute).
func (x *Jobs) Sweep(ctx context.Context) {
	js, err := x.cfg.Store.ExpiredExports(ctx, x.cfg.Now())
	if err != nil {
		return
	}
	for _, j := range js {
		x.removeFile(ctx, j)
		j.State, j.Path = veritrail.ExportExpired, ""
		x.cfg.Store.UpdateExport(ctx, j)
	}
}

// run runs one claimed job to its end, ready or failed.
func (x *Jobs) run(ctx context.Context, j *veritrail.ExportJob) {
	log := x.log.With(slog.String("export", j.ID))
	err := x.build(ctx, j)
	if ctx.Err() != nil {
		return // shutting down: the job is taken up again at the next start
	}
	now := x.cfg.Now().UTC()
	j.FinishedAt = &now
	if err != nil {
		log.Error("export failed", slog.Any("err", err))
		j.State, j.Error = veritrail.ExportFailed, veritrail.ErrorMessage(err)
	} else {
		exp := now.Add(x.cfg.TTL)
		j.State, j.ExpiresAt = veritrail.ExportReady, &exp
	}
	if err := x.cfg.Store.UpdateExport(ctx, j); err != nil {
		log.Error("export state not saved", slog.Any("err", err))
		return
	}
	// The job acts for whoever asked for it: a token, or a person signed
	// in to the console.
	actor := veritrail.Actor{Type: veritrail.ActorAPIKey, ID: j.TokenID, Name: "export job " + j.ID}
	if strings.HasPrefix(j.TokenID, "usr_") {
		actor.Type = veritrail.ActorUser
	}
	rec, err := veritrail.NewRecord(now, "audit.export_finished", actor, &veritrail.Target{Type: "export", ID: j.ID},
		veritrail.OutcomeSuccess, map[string]any{"format": j.Format, "results": j.Progress, "state": j.State})
	if err == nil {
		_, err = x.cfg.Store.Append(ctx, j.OrgID, []*veritrail.Event{rec})
	}
	if err != nil {
		log.Error("export finished but not recorded", slog.Any("err", err))
	}
	if j.Notify != "" {
		x.notify(ctx, j)
	}
}

// build writes a job's file: under Dir, or into the store when the store
// keeps files.
func (x *Jobs) build(ctx context.Context, j *veritrail.ExportJob) error {
	if err := os.MkdirAll(x.cfg.Dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(x.cfg.Dir, j.ID+"."+Extension(j.Format))
	tmp := final + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	vals, err := url.ParseQuery(j.Query)
	if err != nil {
		f.Close()
		return err
	}
	q, err := ParseQuery(vals, j.WithContent, j.CreatedAt)
	if err != nil {
		f.Close()
		return err
	}
	last := time.Now()
	progress := func(n int64) {
		if time.Since(last) > time.Second {
			last = time.Now()
			j.Progress = n
			x.cfg.Store.UpdateExport(ctx, j)
		}
	}
	var count int64
	if j.Format == Bundle {
		count, err = x.writeBundle(ctx, j, q, f, progress)
	} else {
		var ew Writer
		if ew, err = NewWriter(f, j.Format, j.WithContent); err == nil {
			if err = WriteEvents(ctx, x.cfg.Store, j.OrgID, q, ew, x.cfg.Turns, progress); err == nil {
				err = ew.Close()
			}
			count = ew.Count()
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if fs, ok := x.cfg.Store.(veritrail.ExportFileStore); ok {
		// A store several nodes share keeps the file, so that any node
		// serves the download link.
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := fs.PutExportFile(ctx, j.OrgID, j.ID, f)
		if err != nil {
			return err
		}
		j.Path, j.Progress, j.SizeBytes = inStore+j.ID, count, size
		return nil
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	fi, err := os.Stat(final)
	if err != nil {
		return err
	}
	j.Path, j.Progress, j.SizeBytes = final, count, fi.Size()
	return nil
}

// inStore prefixes the Path of export files kept by the store
// (veritrail.ExportFileStore) rather than on this node's disk.
const inStore = "store:"

// OpenFile opens a ready job's file, wherever it is kept: on this node's
// disk or, for a store several nodes share, in the store.
func OpenFile(ctx context.Context, store veritrail.Store, j *veritrail.ExportJob) (io.ReadSeekCloser, error) {
	if strings.HasPrefix(j.Path, inStore) {
		fs, ok := store.(veritrail.ExportFileStore)
		if !ok {
			return nil, veritrail.Errorf(veritrail.ENotFound, "export file not kept by this store")
		}
		return fs.OpenExportFile(ctx, j.OrgID, j.ID)
	}
	return os.Open(j.Path)
}

// removeFile deletes an expired job's file, wherever it is kept.
func (x *Jobs) removeFile(ctx context.Context, j *veritrail.ExportJob) {
	if strings.HasPrefix(j.Path, inStore) {
		if fs, ok := x.cfg.Store.(veritrail.ExportFileStore); ok {
			fs.DeleteExportFile(ctx, j.OrgID, j.ID)
		}
		return
	}
	os.Remove(j.Path)
}

// notify e-mails the requester the job's link, or why it failed.
func (x *Jobs) notify(ctx context.Context, j *veritrail.ExportJob) {
	// The link is built on Links.PublicURL; without one, a job has no
	// request to take the host from.
	const base = "http://localhost"
	var body strings.Builder
	subject := "Your Veritrail export is ready"
	if j.State == veritrail.ExportReady {
		fmt.Fprintf(&body, "Your export %s (%s, %d events) is ready.\n\nDownload it (the link works until %s):\n%s\n",
			j.ID, j.Format, j.Progress, j.ExpiresAt.UTC().Format(time.RFC1123), x.cfg.Links.URL(base, j))
	} else {
		subject = "Your Veritrail export failed"
		fmt.Fprintf(&body, "Your export %s (%s) failed: %s\n", j.ID, j.Format, j.Error)
	}
	body.WriteString("\nThis message was sent by Veritrail because an export was requested with this address.\n")
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := mail.Send(mctx, x.cfg.Mail, &mail.Message{To: j.Notify, Subject: subject, Body: body.String()}); err != nil {
		x.log.Error("export e-mail not sent", slog.String("export", j.ID), slog.Any("err", err))
	}
}
