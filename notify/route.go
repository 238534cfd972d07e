// Package notify delivers alerts to their routes: a signed webhook, Slack
// and Microsoft Teams incoming webhooks, PagerDuty (Events API v2), e-mail
// through the configured SMTP server, and Jira issues. Deliveries are rows
// of the store's queue (veritrail.Delivery): the Dispatcher claims those
// that are due, sends them, and retries failures with exponential backoff
// until they succeed or it gives up, so delivery is at least once and a
// destination that is down never holds anything else up (docs/RULES.md).
//
// Escalation is a delivery due later ("after": 15m) that goes out only if
// the alert is still unacknowledged then.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
)

// Route types.
const (
	Webhook   = "webhook"
	Slack     = "slack"
	Teams     = "teams"
	PagerDuty = "pagerduty"
	Email     = "email"
	Jira      = "jira"
)

// Types lists the route types.
var Types = []string{Webhook, Slack, Teams, PagerDuty, Email, Jira}

// Alert events a route may be told about.
const (
	EventOpened       = "opened"
	EventAcknowledged = "acknowledged"
	EventSnoozed      = "snoozed"
	EventResolved     = "resolved"
	EventReopened     = "reopened"
)

// Events lists the alert events.
var Events = []string{EventOpened, EventAcknowledged, EventSnoozed, EventResolved, EventReopened}

// defaultEvents are the events each type is told about when a route does
// not say: chat and e-mail hear of new alerts, PagerDuty of what changes
// an incident, a ticket is made once.
var defaultEvents = map[string][]string{
	Webhook:   Events,
	Slack:     {EventOpened, EventAcknowledged, EventResolved, EventReopened},
	Teams:     {EventOpened, EventAcknowledged, EventResolved, EventReopened},
	PagerDuty: {EventOpened, EventAcknowledged, EventResolved, EventReopened},
	Email:     {EventOpened, EventReopened},
	Jira:      {EventOpened},
}

// PagerDutyURL is the Events API v2 endpoint.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// Route is where a rule's alerts go, as written in a rule (JSON or YAML).
// Which fields apply depends on Type; the secret of each type (webhook
// secret, Slack and Teams URL, PagerDuty routing key, Jira token) is
// sealed when stored and never shown again.
type Route struct {
	Type string `json:"type"`
	// MinSeverity skips alerts below it (the built-in pack's routes are
	// shared by rules of several severities).
	MinSeverity string `json:"min_severity,omitempty"`
	// After makes the route an escalation step: it is sent that long
	// after the alert opened, and only if nobody acknowledged it.
	After veritrail.Duration `json:"after,omitempty"`
	// Events are the alert events sent (default by type).
	Events []string `json:"events,omitempty"`

	URL        string   `json:"url,omitempty"`         // webhook, slack, teams, jira (site), pagerduty (optional)
	Secret     string   `json:"secret,omitempty"`      // webhook: HMAC key of X-Veritrail-Signature
	RoutingKey string   `json:"routing_key,omitempty"` // pagerduty: the service's integration key
	To         []string `json:"to,omitempty"`          // email
	Project    string   `json:"project,omitempty"`     // jira: project key
	IssueType  string   `json:"issue_type,omitempty"`  // jira (default Task)
	User       string   `json:"user,omitempty"`        // jira: account e-mail (Basic auth); none: Bearer token
	Token      string   `json:"token,omitempty"`       // jira: API token

	// Sealed holds the secret fields, sealed, as stored; never in input.
	Sealed string `json:"sealed,omitempty"`
}

// secretFields are the fields of each type that are secret.
func (r *Route) secretFields() []*string {
	switch r.Type {
	case Webhook:
		return []*string{&r.Secret}
	case Slack, Teams:
		return []*string{&r.URL}
	case PagerDuty:
		return []*string{&r.RoutingKey}
	case Jira:
		return []*string{&r.Token}
	}
	return nil
}

// secretNames are the JSON names of secretFields, in their order.
var secretNames = map[string][]string{Webhook: {"secret"}, Slack: {"url"}, Teams: {"url"}, PagerDuty: {"routing_key"}, Jira: {"token"}}

// FieldError is a route's invalid field: its JSON name and why.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Check validates a route as written (secrets in the clear); g says which
// destinations it may reach. Errors are *FieldError.
func (r *Route) Check(ctx context.Context, g netguard.Guard) error {
	if !slices.Contains(Types, r.Type) {
		return invalid("type", "must be one of %s, got %q", strings.Join(Types, ", "), r.Type)
	}
	if r.Sealed != "" {
		return invalid("sealed", "is set by the server")
	}
	if r.MinSeverity != "" && veritrail.SeverityRank(r.MinSeverity) < 0 {
		return invalid("min_severity", "must be one of %s", strings.Join(veritrail.Severities, ", "))
	}
	if r.After < 0 {
		return invalid("after", "must not be negative")
	}
	for i, ev := range r.Events {
		if !slices.Contains(Events, ev) {
			return invalid(fmt.Sprintf("events[%d]", i), "must be one of %s", strings.Join(Events, ", "))
		}
	}
	// Fields of other types are refused, so that a misplaced one is not
	// silently ignored.
	allowed := map[string][]string{
		Webhook: {"url", "secret"}, Slack: {"url"}, Teams: {"url"}, PagerDuty: {"routing_key", "url"},
		Email: {"to"}, Jira: {"url", "project", "issue_type", "user", "token"},
	}[r.Type]
	for name, set := range map[string]bool{"url": r.URL != "", "secret": r.Secret != "", "routing_key": r.RoutingKey != "",
		"to": len(r.To) > 0, "project": r.Project != "", "issue_type": r.IssueType != "", "user": r.User != "", "token": r.Token != ""} {
		if set && !slices.Contains(allowed, name) {
			return invalid(name, "does not apply to %s routes", r.Type)
		}
	}
	// What the API shows of a stored secret is never a secret: one sent
	// back where no stored route of its kind stood to keep it from.
	for name, v := range map[string]string{"secret": r.Secret, "url": r.URL, "routing_key": r.RoutingKey, "token": r.Token} {
		if slices.Contains(secretNames[r.Type], name) && (v == "(set)" || strings.HasSuffix(v, "/…")) {
			return invalid(name, "is what the API shows of a stored secret, not the secret: the route it was shown from was removed, moved or changed; type the secret again")
		}
	}
	checkURL := func(field, u string, required bool) error {
		if u == "" {
			if required {
				return invalid(field, "required for %s routes", r.Type)
			}
			return nil
		}
		if err := g.CheckURL(ctx, u); err != nil {
			return invalid(field, "refused destination: %v", err)
		}
		if pu, _ := url.Parse(u); pu != nil && pu.User != nil {
			return invalid(field, "credentials in the URL are not accepted; give them in the route's own fields")
		}
		return nil
	}
	switch r.Type {
	case Webhook:
		if err := checkURL("url", r.URL, true); err != nil {
			return err
		}
		if len(r.Secret) < 16 || len(r.Secret) > 4096 {
			return invalid("secret", "required: the HMAC key of X-Veritrail-Signature, 16 to 4096 bytes")
		}
	case Slack, Teams:
		return checkURL("url", r.URL, true)
	case PagerDuty:
		if r.RoutingKey == "" || len(r.RoutingKey) > 128 {
			return invalid("routing_key", "required: the integration key of a PagerDuty service (Events API v2)")
		}
		return checkURL("url", r.URL, false)
	case Email:
		if len(r.To) == 0 || len(r.To) > 50 {
			return invalid("to", "required: 1 to 50 e-mail addresses")
		}
		for i, a := range r.To {
			if p, err := mail.ParseAddress(a); err != nil || p.Address != a {
				return invalid(fmt.Sprintf("to[%d]", i), "%q is not an e-mail address", a)
			}
		}
	case Jira:
		if err := checkURL("url", r.URL, true); err != nil {
			return err
		}
		if u, _ := url.Parse(r.URL); u != nil && strings.Trim(u.Path, "/") != "" {
			return invalid("url", "is the Jira site (https://acme.atlassian.net), without a path")
		}
		if r.Project == "" || len(r.Project) > 64 {
			return invalid("project", "required: the project key, such as SEC")
		}
		if r.Token == "" || len(r.Token) > 4096 {
			return invalid("token", "required: an API token (with user) or a personal access token")
		}
		if r.User != "" {
			if a, err := mail.ParseAddress(r.User); err != nil || a.Address != r.User {
				return invalid("user", "is the Jira account's e-mail address")
			}
		}
	}
	return nil
}

// SendsEvent reports whether the route is told about ev.
func (r *Route) SendsEvent(ev string) bool {
	evs := r.Events
	if len(evs) == 0 {
		evs = defaultEvents[r.Type]
	}
	return slices.Contains(evs, ev)
}

// Accepts reports whether the route takes alerts of this severity.
func (r *Route) Accepts(severity string) bool {
	return r.MinSeverity == "" || veritrail.SeverityRank(severity) >= veritrail.SeverityRank(r.MinSeverity)
}

// secretContext binds a rule's sealed route secrets to the rule.
func secretContext(org int64, ruleID string, index int) string {
	return fmt.Sprintf("veritrail rule route secret\norg %d\nrule %s\nroute %d", org, ruleID, index)
}

// Seal moves the route's secret fields into Sealed, bound to the rule and
// the route's position.
func (r *Route) Seal(k *seal.Key, org int64, ruleID string, index int) error {
	var vals []string
	for _, f := range r.secretFields() {
		vals = append(vals, *f)
		*f = ""
	}
	if len(vals) == 0 {
		return nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	r.Sealed = k.Seal(b, secretContext(org, ruleID, index))
	return nil
}

// Open restores the route's secret fields from Sealed.
func (r *Route) Open(k *seal.Key, org int64, ruleID string, index int) error {
	if r.Sealed == "" {
		return nil
	}
	b, err := k.Open(r.Sealed, secretContext(org, ruleID, index))
	if err != nil {
		return fmt.Errorf("the route's secret does not open (was the master key changed?): %w", err)
	}
	var vals []string
	if err := json.Unmarshal(b, &vals); err != nil {
		return err
	}
	fs := r.secretFields()
	if len(vals) != len(fs) {
		return fmt.Errorf("the route's sealed secret does not fit a %s route", r.Type)
	}
	for i, f := range fs {
		*f = vals[i]
	}
	r.Sealed = ""
	return nil
}

// Masked returns the route as shown: secrets replaced by "(set)"; the
// URL of a Slack or Teams route (itself the secret) by its scheme and
// host.
func (r *Route) Masked() Route {
	m := *r
	m.Sealed = ""
	for _, name := range secretNames[r.Type] {
		switch name {
		case "secret":
			m.Secret = "(set)"
		case "routing_key":
			m.RoutingKey = "(set)"
		case "token":
			m.Token = "(set)"
		case "url":
			if u, err := url.Parse(r.URL); err == nil && u.Host != "" {
				m.URL = u.Scheme + "://" + u.Host + "/…"
			} else {
				m.URL = "(set)"
			}
		}
	}
	return m
}

// Equal reports whether two routes in the clear say the same thing.
func Equal(a, b *Route) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
