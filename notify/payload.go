package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
)

// RuleInfo is what a notification says about the rule behind an alert.
type RuleInfo struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description,omitempty"`
	Owner       string   `json:"owner,omitempty"`
	Runbook     string   `json:"runbook,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// Queued is a delivery's Route column: the route (secrets sealed) and the
// rule as it was when the delivery was queued.
type Queued struct {
	Route Route    `json:"route"`
	Rule  RuleInfo `json:"rule"`
}

// Notice is one notification: an alert, what happened to it, and where
// to see it.
type Notice struct {
	Org        string // organization name
	Alert      *veritrail.Alert
	Rule       RuleInfo
	Event      string // opened, acknowledged, …
	DeliveryID string
	// URL is the alert in the API (or the console) and EventsURL its
	// events; empty without a public URL.
	URL       string
	EventsURL string
	SentAt    time.Time
}

// WebhookBody is the JSON a webhook route POSTs (docs/API.md).
type WebhookBody struct {
	AlertID      string          `json:"alert_id"`
	Event        string          `json:"event"`
	State        string          `json:"state"`
	Rule         string          `json:"rule"`
	RuleID       string          `json:"rule_id"`
	Kind         string          `json:"kind"`
	Severity     string          `json:"severity"`
	Organization string          `json:"organization"`
	DedupKey     string          `json:"dedup_key"`
	Group        json.RawMessage `json:"group,omitempty"`
	Count        int64           `json:"count"`
	Suppressed   int64           `json:"suppressed,omitempty"`
	EventIDs     []string        `json:"event_ids"`
	FirstSeen    string          `json:"first_seen"`
	LastSeen     string          `json:"last_seen"`
	OpenedAt     string          `json:"opened_at"`
	SnoozedUntil string          `json:"snoozed_until,omitempty"`
	Owner        string          `json:"owner,omitempty"`
	Runbook      string          `json:"runbook,omitempty"`
	Tags         []string        `json:"tags,omitempty"`
	URL          string          `json:"url,omitempty"`
	DeliveryID   string          `json:"delivery_id"`
	SentAt       string          `json:"sent_at"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Webhook returns the body of a webhook route.
func (n *Notice) Webhook() ([]byte, error) {
	a := n.Alert
	b := WebhookBody{
		AlertID: a.ID, Event: n.Event, State: a.State, Rule: a.Rule, RuleID: a.RuleID, Kind: n.Rule.Kind,
		Severity: a.Severity, Organization: n.Org, DedupKey: a.DedupKey, Count: a.Count, Suppressed: a.Suppressed,
		EventIDs: a.EventIDs, FirstSeen: rfc3339(a.FirstSeen), LastSeen: rfc3339(a.LastSeen), OpenedAt: rfc3339(a.OpenedAt),
		Owner: n.Rule.Owner, Runbook: n.Rule.Runbook, Tags: n.Rule.Tags, URL: n.URL, DeliveryID: n.DeliveryID, SentAt: rfc3339(n.SentAt),
	}
	if b.EventIDs == nil {
		b.EventIDs = []string{}
	}
	if len(a.Group) > 0 {
		b.Group = a.Group
	}
	if a.SnoozedUntil != nil {
		b.SnoozedUntil = rfc3339(*a.SnoozedUntil)
	}
	return marshal(b)
}

// marshal encodes JSON without escaping <, > and & (chat text keeps them).
func marshal(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(sb.String(), "\n")), nil
}

// cut shortens s to at most n bytes at a character boundary, marking the
// cut (destinations refuse fields over their limits).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// title is the one line that names the alert.
func (n *Notice) title() string {
	verb := map[string]string{EventOpened: "Alert", EventAcknowledged: "Acknowledged", EventSnoozed: "Snoozed",
		EventResolved: "Resolved", EventReopened: "Reopened"}[n.Event]
	return fmt.Sprintf("%s [%s] %s", verb, strings.ToUpper(n.Alert.Severity), n.Alert.Rule)
}

// facts are the details every human-readable destination shows.
func (n *Notice) facts() [][2]string {
	a := n.Alert
	f := [][2]string{
		{"Organization", n.Org},
		{"State", a.State},
		{"Matched events", fmt.Sprint(a.Count)},
		{"First seen", rfc3339(a.FirstSeen)},
		{"Last seen", rfc3339(a.LastSeen)},
	}
	if a.DedupKey != "" {
		f = append(f, [2]string{"Key", a.DedupKey})
	}
	if n.Rule.Owner != "" {
		f = append(f, [2]string{"Owner", n.Rule.Owner})
	}
	if a.StateBy != "" && n.Event != EventOpened {
		f = append(f, [2]string{"By", a.StateBy})
	}
	if a.Note != "" && n.Event != EventOpened {
		f = append(f, [2]string{"Note", a.Note})
	}
	f = append(f, [2]string{"Alert", a.ID})
	return f
}

// text is a plain-text body: title, facts, runbook, links.
func (n *Notice) text() string {
	var b strings.Builder
	b.WriteString(n.title())
	b.WriteString("\n\n")
	for _, f := range n.facts() {
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	if len(n.Alert.EventIDs) > 0 {
		ids := n.Alert.EventIDs
		if len(ids) > 10 {
			ids = ids[:10]
		}
		fmt.Fprintf(&b, "Events: %s", strings.Join(ids, ", "))
		if int64(len(ids)) < n.Alert.Count {
			fmt.Fprintf(&b, " (first %d of %d)", len(ids), n.Alert.Count)
		}
		b.WriteString("\n")
	}
	if n.Rule.Runbook != "" {
		fmt.Fprintf(&b, "\nRunbook:\n%s\n", n.Rule.Runbook)
	}
	if n.URL != "" {
		fmt.Fprintf(&b, "\nAlert: %s\n", n.URL)
	}
	if n.EventsURL != "" {
		fmt.Fprintf(&b, "Events: %s\n", n.EventsURL)
	}
	return b.String()
}

// Slack returns an incoming-webhook message: text (the notification's
// fallback) and Block Kit blocks (header, fields, runbook, links).
func (n *Notice) Slack() ([]byte, error) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string `json:"type"`
		Text     *text  `json:"text,omitempty"`
		Fields   []text `json:"fields,omitempty"`
		Elements []text `json:"elements,omitempty"`
	}
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	blocks := []block{{Type: "header", Text: &text{"plain_text", cut(n.title(), 150)}}}
	var fields []text
	for _, f := range n.facts() {
		if len(fields) == 10 { // Slack's limit per section
			break
		}
		fields = append(fields, text{"mrkdwn", cut("*"+f[0]+"*\n"+esc.Replace(f[1]), 2000)})
	}
	blocks = append(blocks, block{Type: "section", Fields: fields})
	if n.Rule.Runbook != "" {
		blocks = append(blocks, block{Type: "section", Text: &text{"mrkdwn", cut("*Runbook*\n"+esc.Replace(n.Rule.Runbook), 3000)}})
	}
	var links []text
	if n.URL != "" {
		links = append(links, text{"mrkdwn", "<" + n.URL + "|Alert>"})
	}
	if n.EventsURL != "" {
		links = append(links, text{"mrkdwn", "<" + n.EventsURL + "|Events>"})
	}
	if len(links) > 0 {
		blocks = append(blocks, block{Type: "context", Elements: links})
	}
	return marshal(map[string]any{"text": cut(n.title(), 3000), "blocks": blocks})
}

// Teams returns a message for a Teams incoming webhook (a Workflows
// webhook): one Adaptive Card attachment.
func (n *Notice) Teams() ([]byte, error) {
	color := map[string]string{veritrail.SeverityCritical: "Attention", veritrail.SeverityHigh: "Attention",
		veritrail.SeverityMedium: "Warning"}[n.Alert.Severity]
	if color == "" {
		color = "Default"
	}
	if n.Event == EventResolved {
		color = "Good"
	}
	var facts []map[string]string
	for _, f := range n.facts() {
		facts = append(facts, map[string]string{"title": f[0], "value": f[1]})
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": n.title(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
		{"type": "FactSet", "facts": facts},
	}
	if n.Rule.Runbook != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": n.Rule.Runbook, "wrap": true})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	var actions []map[string]string
	if n.URL != "" {
		actions = append(actions, map[string]string{"type": "Action.OpenUrl", "title": "Alert", "url": n.URL})
	}
	if n.EventsURL != "" {
		actions = append(actions, map[string]string{"type": "Action.OpenUrl", "title": "Events", "url": n.EventsURL})
	}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return marshal(map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	})
}

// pagerDutySeverity maps a severity onto PagerDuty's four.
var pagerDutySeverity = map[string]string{
	veritrail.SeverityCritical: "critical", veritrail.SeverityHigh: "error", veritrail.SeverityMedium: "warning",
	veritrail.SeverityLow: "info", veritrail.SeverityInformational: "info",
}

// PagerDutyAction is the Events API v2 event_action of an alert event.
func PagerDutyAction(ev string) string {
	switch ev {
	case EventAcknowledged:
		return "acknowledge"
	case EventResolved:
		return "resolve"
	}
	return "trigger"
}

// PagerDuty returns an Events API v2 event: trigger (with payload),
// acknowledge or resolve, all by the alert's id as dedup_key so PagerDuty
// folds them into one incident.
func (n *Notice) PagerDuty(routingKey string) ([]byte, error) {
	a := n.Alert
	ev := map[string]any{
		"routing_key":  routingKey,
		"event_action": PagerDutyAction(n.Event),
		"dedup_key":    a.ID,
	}
	if ev["event_action"] == "trigger" {
		details := map[string]any{"alert_id": a.ID, "rule_id": a.RuleID, "count": a.Count, "event_ids": a.EventIDs,
			"first_seen": rfc3339(a.FirstSeen), "last_seen": rfc3339(a.LastSeen), "dedup_key": a.DedupKey}
		if n.Rule.Owner != "" {
			details["owner"] = n.Rule.Owner
		}
		if n.Rule.Runbook != "" {
			details["runbook"] = n.Rule.Runbook
		}
		if len(a.Group) > 0 {
			details["group"] = json.RawMessage(a.Group)
		}
		ev["payload"] = map[string]any{
			"summary":        cut(fmt.Sprintf("[%s] %s (%d events)", strings.ToUpper(a.Severity), a.Rule, a.Count), 1024),
			"source":         "veritrail/" + n.Org,
			"severity":       pagerDutySeverity[a.Severity],
			"timestamp":      rfc3339(a.OpenedAt),
			"component":      n.Rule.Kind,
			"group":          n.Org,
			"class":          a.Rule,
			"custom_details": details,
		}
		ev["client"] = "Veritrail"
		if n.URL != "" {
			ev["client_url"] = n.URL
			ev["links"] = []map[string]string{{"href": n.URL, "text": "Alert in Veritrail"}}
		}
	}
	return marshal(ev)
}

// JiraIssue returns the body of Jira's create-issue request (REST API v2,
// whose description is plain text).
func (n *Notice) JiraIssue(project, issueType string) ([]byte, error) {
	if issueType == "" {
		issueType = "Task"
	}
	labels := []string{"veritrail", "severity-" + n.Alert.Severity}
	for _, t := range n.Rule.Tags {
		labels = append(labels, strings.Join(strings.Fields(t), "-")) // labels have no spaces
	}
	return marshal(map[string]any{"fields": map[string]any{
		"project":     map[string]string{"key": project},
		"issuetype":   map[string]string{"name": issueType},
		"summary":     cut(strings.ReplaceAll(n.title(), "\n", " "), 255),
		"description": cut(n.text(), 32000),
		"labels":      labels,
	}})
}

// Mail returns an e-mail's subject and plain-text body.
func (n *Notice) Mail() (subject, body string) {
	return "[Veritrail] " + n.title(), n.text()
}
