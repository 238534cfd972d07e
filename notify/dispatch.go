package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/webhook"
)

// Store is what the dispatcher needs of the store.
type Store interface {
	veritrail.AlertStore
	OrgByID(ctx context.Context, id int64) (*veritrail.Org, error)
}

// Options configure a Dispatcher.
type Options struct {
	Store Store
	// Key opens the routes' sealed secrets. Required.
	Key *seal.Key
	// Mail is the SMTP server of e-mail routes; nil: e-mail routes fail.
	Mail *mail.Config
	// Outbound says which destinations routes may reach.
	Outbound netguard.Guard
	// PublicURL is the server's external base URL, for links.
	PublicURL string
	Logger    *slog.Logger
	// Now is the clock (escalations fall due by it). Default time.Now.
	Now func() time.Time

	// Workers send concurrently (default 4). Idle ones look for due
	// deliveries every PollInterval (default 1s) and at Wake.
	Workers      int
	PollInterval time.Duration
	// ClaimFor is how long a claimed delivery is this process's before
	// another may take it (default 2m; a send is bounded by SendTimeout,
	// default 30s).
	ClaimFor    time.Duration
	SendTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (default
	// 5s and 15m, doubling with ±50% jitter; a 429's Retry-After is
	// honoured within them). Retryable failures (no answer, 5xx, 429, an
	// SMTP server down) are retried until the delivery is GiveUpAfter old
	// (default 72h), so that an outage of a destination or of the SMTP
	// server for hours or a weekend loses no notification: a delivery
	// gives up by its age, never by its count of attempts. Refusals (4xx)
	// give up after 3. What waits is bounded by the store's queue
	// (veritrail.MaxPendingDeliveries an organization).
	MinBackoff, MaxBackoff time.Duration
	GiveUpAfter            time.Duration
}

// DefaultGiveUpAfter is how long a delivery is retried unless
// Options.GiveUpAfter says otherwise.
const DefaultGiveUpAfter = 72 * time.Hour

// Dispatcher sends the store's due deliveries.
type Dispatcher struct {
	cfg    Options
	store  Store
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	wake   chan struct{}

	mu   sync.Mutex
	orgs map[int64]string
}

// New returns a dispatcher; Run starts it.
func New(cfg Options) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Key == nil {
		return nil, errors.New("notify: a store and a master key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ClaimFor <= 0 {
		cfg.ClaimFor = 2 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(cfg.MinBackoff, 15*time.Minute)
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = DefaultGiveUpAfter
	}
	return &Dispatcher{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now,
		client: outboundClient(cfg.Outbound, cfg.SendTimeout), wake: make(chan struct{}, 1), orgs: map[int64]string{}}, nil
}

// MailEnabled reports whether e-mail routes can be delivered.
func (d *Dispatcher) MailEnabled() bool { return d.cfg.Mail.Enabled() }

// Outbound says which destinations routes may reach.
func (d *Dispatcher) Outbound() netguard.Guard { return d.cfg.Outbound }

// outboundClient is the guard's client that does not follow redirects: a
// redirect would carry an alert, and a route's credentials, to a place
// nobody configured.
func outboundClient(g netguard.Guard, timeout time.Duration) *http.Client {
	c := g.Client(timeout)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// Wake makes an idle worker look for due deliveries now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, err := d.Tick(ctx, 8)
				if err != nil && ctx.Err() == nil {
					d.log.Error("alert deliveries: claim", slog.Any("err", err))
				}
				if n > 0 && err == nil {
					continue
				}
				t := time.NewTimer(d.cfg.PollInterval)
				select {
				case <-ctx.Done():
				case <-t.C:
				case <-d.wake:
				}
				t.Stop()
			}
		}()
	}
	wg.Wait()
}

// Tick claims up to limit due deliveries, sends them one after the other
// and records each outcome. It returns how many it handled.
func (d *Dispatcher) Tick(ctx context.Context, limit int) (int, error) {
	now := d.now()
	ds, err := d.store.ClaimDeliveries(ctx, now, now.Add(d.cfg.ClaimFor), limit)
	if err != nil {
		return 0, err
	}
	for _, dl := range ds {
		d.deliver(ctx, dl)
	}
	return len(ds), nil
}

// deliver sends one claimed delivery and records what happened.
func (d *Dispatcher) deliver(ctx context.Context, dl *veritrail.Delivery) {
	log := d.log.With(slog.String("delivery", dl.ID), slog.String("alert", dl.AlertID), slog.String("route", dl.Destination))
	result, err := d.send(ctx, dl)
	now := d.now().UTC()
	var skip *skipError
	var later *laterError
	switch {
	case err == nil:
		dl.State, dl.Result, dl.LastError, dl.FinishedAt = veritrail.DeliveryDelivered, result, "", &now
		dl.Attempts++
	case errors.As(err, &skip):
		dl.State, dl.LastError, dl.FinishedAt = veritrail.DeliverySkipped, skip.reason, &now
	case errors.As(err, &later):
		dl.DueAt = later.at
	default:
		if ctx.Err() != nil {
			return // shutting down: the claim lapses and another try follows
		}
		dl.Attempts++
		dl.LastError = cut(strings.ToValidUTF8(err.Error(), "?"), 500)
		var ref *refusedError
		refusedNow := errors.As(err, &ref)
		tooOld := now.Sub(dl.CreatedAt) >= d.cfg.GiveUpAfter
		if (refusedNow && dl.Attempts >= 3) || tooOld {
			dl.State, dl.FinishedAt = veritrail.DeliveryFailed, &now
			log.Warn("alert delivery failed; giving up", slog.Int("attempts", dl.Attempts), slog.String("err", dl.LastError))
		} else {
			wait := sink.Backoff(d.cfg.MinBackoff, d.cfg.MaxBackoff, dl.Attempts)
			var ra *retryAfterError
			if errors.As(err, &ra) {
				wait = min(max(wait, ra.after), d.cfg.MaxBackoff)
			}
			dl.DueAt = now.Add(wait)
			log.Info("alert delivery failed; will retry", slog.Int("attempts", dl.Attempts), slog.Duration("retry_in", wait),
				slog.String("err", dl.LastError))
		}
	}
	if err := d.store.FinishDelivery(ctx, dl); err != nil && ctx.Err() == nil {
		log.Error("alert delivery: recording the outcome", slog.Any("err", err))
	}
}

// skipError ends a delivery that is no longer wanted.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// laterError puts a delivery back until at (a snoozed alert's escalation).
type laterError struct{ at time.Time }

func (e *laterError) Error() string { return "not yet" }

// refusedError is a destination's refusal that retrying will not fix.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// retryAfterError is a throttling answer with the wait it asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// send sends one delivery, returning what the destination answered worth
// keeping (a ticket's key).
func (d *Dispatcher) send(ctx context.Context, dl *veritrail.Delivery) (string, error) {
	var q Queued
	if err := json.Unmarshal(dl.Route, &q); err != nil {
		return "", &skipError{"the queued route does not decode: " + err.Error()}
	}
	r := q.Route
	if err := r.Open(d.cfg.Key, dl.OrgID, dl.RuleID, dl.RouteIndex); err != nil {
		return "", &refusedError{err}
	}
	a, err := d.store.AlertByID(ctx, dl.OrgID, dl.AlertID)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return "", &skipError{"the alert is gone"}
	}
	if err != nil {
		return "", err
	}
	if dl.Escalation {
		switch a.State {
		case veritrail.AlertAcknowledged, veritrail.AlertResolved:
			return "", &skipError{"not needed: the alert was " + a.State + " in time"}
		case veritrail.AlertSnoozed:
			if a.SnoozedUntil != nil && a.SnoozedUntil.After(d.now()) {
				return "", &laterError{*a.SnoozedUntil}
			}
		}
	}
	org, err := d.orgName(ctx, dl.OrgID)
	if err != nil {
		return "", err
	}
	n := &Notice{Org: org, Alert: a, Rule: q.Rule, Event: dl.Event, DeliveryID: dl.ID, SentAt: d.now()}
	if base := strings.TrimRight(d.cfg.PublicURL, "/"); base != "" {
		n.URL = base + "/api/v1/alerts/" + url.PathEscape(a.ID)
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	return d.sendTo(sctx, &r, n)
}

// sendTo sends n to route r (secrets open).
func (d *Dispatcher) sendTo(ctx context.Context, r *Route, n *Notice) (string, error) {
	switch r.Type {
	case Webhook:
		body, err := n.Webhook()
		if err != nil {
			return "", err
		}
		_, err = d.post(ctx, r.URL, body, webhook.SignatureHeader, webhook.Sign([]byte(r.Secret), body),
			"X-Veritrail-Delivery", n.DeliveryID, "X-Veritrail-Event", "alert."+n.Event)
		return "", err
	case Slack:
		body, err := n.Slack()
		if err != nil {
			return "", err
		}
		_, err = d.post(ctx, r.URL, body)
		return "", err
	case Teams:
		body, err := n.Teams()
		if err != nil {
			return "", err
		}
		_, err = d.post(ctx, r.URL, body)
		return "", err
	case PagerDuty:
		body, err := n.PagerDuty(r.RoutingKey)
		if err != nil {
			return "", err
		}
		u := r.URL
		if u == "" {
			u = PagerDutyURL
		}
		_, err = d.post(ctx, u, body)
		return "", err
	case Jira:
		body, err := n.JiraIssue(r.Project, r.IssueType)
		if err != nil {
			return "", err
		}
		auth := "Bearer " + r.Token
		if r.User != "" {
			auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(r.User+":"+r.Token))
		}
		resp, err := d.post(ctx, strings.TrimRight(r.URL, "/")+"/rest/api/2/issue", body, "Authorization", auth)
		if err != nil {
			return "", err
		}
		var created struct {
			Key string `json:"key"`
		}
		json.Unmarshal(resp, &created)
		return created.Key, nil
	case Email:
		if !d.cfg.Mail.Enabled() {
			return "", &refusedError{errors.New("no SMTP server is configured (VERITRAIL_SMTP_URL)")}
		}
		subject, body := n.Mail()
		for _, to := range r.To {
			if err := mail.Send(ctx, d.cfg.Mail, &mail.Message{To: to, Subject: subject, Body: body}); err != nil {
				return "", err
			}
		}
		return "", nil
	}
	return "", &refusedError{fmt.Errorf("route type %q is not part of this build", r.Type)}
}

// post sends a JSON body and returns the start of the answer once the
// destination accepted it (2xx); otherwise a classified error.
func (d *Dispatcher) post(ctx context.Context, u string, body []byte, header ...string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &refusedError{errors.New("the route's URL does not make a request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veritrail-alerts")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// Keep the URL out of the message: Slack's and Teams' URLs are
		// their secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	msg := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	err = fmt.Errorf("HTTP %d from the destination: %s", resp.StatusCode, cut(msg, 200))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return nil, &retryAfterError{err, time.Duration(s) * time.Second}
		}
		return nil, err
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return nil, err
	}
	return nil, &refusedError{err}
}

func (d *Dispatcher) orgName(ctx context.Context, id int64) (string, error) {
	d.mu.Lock()
	name, ok := d.orgs[id]
	d.mu.Unlock()
	if ok {
		return name, nil
	}
	o, err := d.store.OrgByID(ctx, id)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.orgs[id] = o.Name
	d.mu.Unlock()
	return o.Name, nil
}
