package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Administration: the API's sink requests go through these, so that
// validation, sealing and the shown form live beside the engine that uses
// them.

// Create builds a new sink of org from an administrator's request body (a
// JSON object; docs/FORWARDING.md). The caller stores it. mayReadContent
// says whether the caller may read content: only such a caller may make a
// sink that forwards it.
func (e *Engine) Create(ctx context.Context, org int64, body []byte, mayReadContent bool) (*veritrail.Sink, error) {
	if err := object(body); err != nil {
		return nil, err
	}
	sp, err := decodeSpec(body)
	if err != nil {
		return nil, err
	}
	if sp.Type == "" {
		return nil, invalid("type", "required: one of %s", strings.Join(Types, ", "))
	}
	if err := sp.validate(false); err != nil {
		return nil, err
	}
	if _, ok := e.cfg.Types[sp.Type]; !ok {
		return nil, invalid("type", "%s sinks are not part of this build", sp.Type)
	}
	if err := e.checkOutbound(ctx, &sp.Config); err != nil {
		return nil, err
	}
	if sp.Content && !mayReadContent {
		return nil, veritrail.Errorf(veritrail.EForbidden, "field content: only a token that may read content (content:read) may forward it")
	}
	now := e.now().UTC()
	k := &veritrail.Sink{ID: veritrail.NewID("snk"), OrgID: org, Name: sp.Name, Type: sp.Type, CreatedAt: now, UpdatedAt: now, Delivered: -1}
	if sp.Start == "now" {
		head, _, err := e.store.LogHead(ctx, org)
		if err != nil {
			return nil, err
		}
		k.Delivered = head - 1
	}
	if sp.Paused {
		k.Paused, k.PausedReason = true, "paused by an administrator"
	}
	st := &stored{Config: sp.Config}
	if sp.Secret != nil {
		st.SecretSealed = e.cfg.Key.Seal([]byte(*sp.Secret), secretContext(org, k.ID))
	}
	if k.Config, err = json.Marshal(st); err != nil {
		return nil, err
	}
	return k, nil
}

// Update applies an administrator's change (a JSON object of the fields to
// change; null clears an optional one) to k, in place, and returns the
// names of the fields that changed. The caller stores it.
func (e *Engine) Update(ctx context.Context, k *veritrail.Sink, body []byte, mayReadContent bool) ([]string, error) {
	if err := object(body); err != nil {
		return nil, err
	}
	old, err := decodeStored(k.Config)
	if err != nil {
		return nil, err
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(body, &patch); err != nil {
		return nil, veritrail.Errorf(veritrail.EInvalidJSON, "request body: %v", err)
	}
	if t, ok := patch["type"]; ok && string(t) != `"`+k.Type+`"` {
		return nil, invalid("type", "a sink's type does not change; create another sink")
	}
	if _, ok := patch["start"]; ok {
		return nil, invalid("start", "only when a sink is created")
	}
	// The current settings as the request's fields, with the change on top.
	cur, _ := json.Marshal(&spec{Name: k.Name, Type: k.Type, Paused: k.Paused, Config: old.Config})
	before := map[string]json.RawMessage{}
	json.Unmarshal(cur, &before)
	merged := maps.Clone(before)
	for f, v := range patch {
		if string(v) == "null" {
			delete(merged, f)
		} else {
			merged[f] = v
		}
	}
	if _, ok := patch["secret_file"]; ok {
		old.SecretSealed = "" // switching to a file
	}
	mb, _ := json.Marshal(merged)
	sp, err := decodeSpec(mb)
	if err != nil {
		return nil, err
	}
	if sp.Secret != nil {
		sp.SecretFile = "" // switching to a sealed secret
	}
	if err := sp.validate(old.SecretSealed != ""); err != nil {
		return nil, err
	}
	if err := e.checkOutbound(ctx, &sp.Config); err != nil {
		return nil, err
	}
	if sp.Content && !old.Content && !mayReadContent {
		return nil, veritrail.Errorf(veritrail.EForbidden, "field content: only a token that may read content (content:read) may forward it")
	}
	st := &stored{Config: sp.Config, SecretSealed: old.SecretSealed}
	if sp.Secret != nil {
		st.SecretSealed = e.cfg.Key.Seal([]byte(*sp.Secret), secretContext(k.OrgID, k.ID))
	} else if needsSecret(k.Type, &sp.Config) && sp.SecretFile == "" && st.SecretSealed == "" {
		return nil, invalid("secret", "required")
	} else if !needsSecret(k.Type, &sp.Config) {
		st.SecretSealed = ""
	}
	// What changed, by field name (never values: secrets stay out of the
	// audit trail).
	var changed []string
	after := map[string]json.RawMessage{}
	ab, _ := json.Marshal(&spec{Name: sp.Name, Type: k.Type, Paused: sp.Paused, Config: sp.Config})
	json.Unmarshal(ab, &after)
	for f := range after {
		if !bytes.Equal(before[f], after[f]) {
			changed = append(changed, f)
		}
	}
	for f := range before {
		if _, ok := after[f]; !ok {
			changed = append(changed, f)
		}
	}
	if sp.Secret != nil {
		changed = append(changed, "secret")
	}
	sort.Strings(changed)
	changed = slices.Compact(changed)

	cfg, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	k.Name, k.Config = sp.Name, cfg
	switch {
	case sp.Paused && !k.Paused:
		k.Paused, k.PausedReason = true, "paused by an administrator"
	case !sp.Paused:
		k.Paused, k.PausedReason = false, ""
	}
	k.UpdatedAt = e.now().UTC()
	return changed, nil
}

// checkOutbound refuses a destination on a loopback, link-local or cloud
// metadata address (Options.Outbound) when it is set, naming the field: a
// sink is a way to make the server send requests, and must not reach what
// only the server can reach. Every connection is checked again (Settings.Outbound).
func (e *Engine) checkOutbound(ctx context.Context, c *Config) error {
	check := func(field, addr string) error {
		if addr == "" {
			return nil
		}
		// Whatever the scheme (or none: host:port for syslog and Kafka),
		// the host is what is checked.
		if _, rest, ok := strings.Cut(addr, "://"); ok {
			addr = rest
		}
		if err := e.cfg.Outbound.CheckURL(ctx, "http://"+addr); err != nil {
			return invalid(field, "%v", err)
		}
		return nil
	}
	for _, f := range []struct{ name, addr string }{{"url", c.URL}, {"address", c.Address}, {"endpoint", c.Endpoint}} {
		if err := check(f.name, f.addr); err != nil {
			return err
		}
	}
	for i, b := range c.Brokers {
		if err := check(fmt.Sprintf("brokers[%d]", i), b); err != nil {
			return err
		}
	}
	return nil
}

func object(body []byte) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return veritrail.Errorf(veritrail.EInvalid, "request body: a JSON object expected")
	}
	return nil
}

// View is a sink as the API shows it: its settings without the secret,
// its cursor, lag and health.
type View struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	Config
	SecretSet bool `json:"secret_set"` // a secret is sealed in the store (it is never shown)

	// State is active, retrying (failing; retried with backoff) or paused.
	State        string  `json:"state"`
	PausedReason string  `json:"paused_reason,omitempty"`
	Delivered    *int64  `json:"last_delivered_seq"` // null before the first
	DeliveredAt  *string `json:"last_delivered_at"`
	LagEvents    int64   `json:"lag_events"`
	LagSeconds   float64 `json:"lag_seconds"`
	Failures     int     `json:"failures"`
	LastError    string  `json:"last_error,omitempty"`
	LastErrorAt  *string `json:"last_error_at,omitempty"`
	CreatedAt    string  `json:"created_at"`
	UpdatedAt    string  `json:"updated_at"`
}

func timeString(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// View returns k as the API shows it, with its lag now.
func (e *Engine) View(ctx context.Context, k *veritrail.Sink) (*View, error) {
	st, err := decodeStored(k.Config)
	if err != nil {
		return nil, err
	}
	v := &View{ID: k.ID, Name: k.Name, Type: k.Type, Config: st.Config, SecretSet: st.SecretSealed != "",
		State: "active", PausedReason: k.PausedReason, DeliveredAt: timeString(k.DeliveredAt), Failures: k.Failures,
		LastError: k.LastError, LastErrorAt: timeString(k.LastErrorAt),
		CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: k.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	if k.Delivered >= 0 {
		d := k.Delivered
		v.Delivered = &d
	}
	switch {
	case k.Paused:
		v.State = "paused"
	case k.Failures > 0:
		v.State = "retrying"
	}
	lag, err := e.lag(ctx, k, -1)
	if err != nil {
		return nil, err
	}
	v.LagEvents, v.LagSeconds = lag.Events, lag.Seconds
	return v, nil
}

// AuditDetails describes k for the audit record of a change: where it
// sends what, never its secret.
func AuditDetails(k *veritrail.Sink) map[string]any {
	st, err := decodeStored(k.Config)
	if err != nil {
		return map[string]any{"type": k.Type}
	}
	c := st.Config
	d := map[string]any{"type": k.Type, "format": c.Format, "content": c.Content, "paused": k.Paused}
	if len(c.Filters.Types)+len(c.Filters.Categories) > 0 {
		d["filters"] = c.Filters
	}
	switch {
	case c.URL != "":
		d["destination"] = c.URL
	case c.Site != "":
		d["destination"] = c.Site
	case c.Address != "":
		d["destination"] = c.Protocol + "://" + c.Address
	case len(c.Brokers) > 0:
		d["destination"] = c.Brokers
		d["topic"] = c.Topic
	}
	return d
}
