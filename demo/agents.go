package demo

import (
	"math/rand/v2"
	"slices"
)

// Generators for agents and AI: tasks, approvals, agent actions, MCP tool
// calls through the gateway, AI interactions on the whiteboard.

// Tasks, approvals and agent actions (Miteos style).

type taskRun struct {
	id     string
	agent  *agent
	user   *person // who asked; nil for a scheduled run
	title  string
	steps  int
	failAt string // the error of a failed run
}

// onBehalf makes the person who asked the actor, else the agent itself.
func (g *gen) onBehalf(e *event, t *taskRun) {
	if t.user != nil {
		g.as(e, t.user)
		if t.agent.team >= 0 {
			e.ctx.team = teams[t.agent.team].id
		}
	} else {
		e.actor = agentActor(t.agent)
		e.ctx = evctx{team: teams[t.agent.team].id, ip: pick(g, agentIPs), ua: t.agent.ua}
		g.req(e)
	}
	e.agentID, e.taskID = t.agent.id, t.id
}

// agentSide sets the agent as the actor, running in the hosted runtime.
func (g *gen) agentSide(e *event, t *taskRun) {
	e.actor = agentActor(t.agent)
	e.agentID, e.taskID = t.agent.id, t.id
	e.ctx = evctx{team: teams[t.agent.team].id, ip: pick(g, agentIPs), ua: t.agent.ua}
	g.req(e)
}

func (g *gen) taskEvent(e *event, kind string, t *taskRun) {
	switch kind {
	case "created", "cancelled":
		g.onBehalf(e, t)
	default:
		g.agentSide(e, t)
	}
	e.typ, e.target, e.outcome = "task."+kind, target{"task", t.id, t.title}, "success"
	if kind == "failed" {
		e.outcome = "failure"
	}
	if kind == "completed" || kind == "failed" {
		e.dur = g.between(20_000, 900_000)
	}
	g.begin(e)
	w := &g.w
	switch kind {
	case "created":
		w.str("title", t.title)
		if t.user != nil {
			w.str("trigger", "manual")
		} else {
			w.str("trigger", "schedule")
			w.str("schedule", "weekdays")
		}
		w.str("agent", t.agent.name)
	case "started":
		w.str("runtime", "sandbox")
		w.str("sandbox_id", g.id("sbx_", 12))
		w.str("model", pick(g, models))
	case "completed":
		w.int("steps", int64(t.steps))
		w.str("summary", "Finished: "+t.title)
		w.obj("usage")
		w.int("input_tokens", g.between(4_000, 90_000))
		w.int("output_tokens", g.between(500, 8_000))
		w.end()
	case "failed":
		w.obj("error")
		msg := t.failAt
		if msg == "" {
			msg = "step timed out after 300s"
		}
		w.str("message", msg)
		w.end()
		w.int("steps", int64(t.steps))
	case "cancelled":
		if t.user != nil {
			w.str("reason", "cancelled by the requester")
		} else {
			w.str("reason", "superseded by a newer scheduled run")
		}
	}
	g.finish()
}

// approvalEvent writes approval.requested by the agent, or approval.approved
// / approval.denied by the approver.
func (g *gen) approvalEvent(e *event, kind string, t *taskRun, aprID string, by *person, action, reason string) {
	if kind == "requested" {
		g.agentSide(e, t)
	} else {
		g.as(e, by)
		e.agentID, e.taskID = t.agent.id, t.id
	}
	e.typ, e.outcome, e.target = "approval."+kind, "success", target{"approval", aprID, action}
	g.begin(e)
	w := &g.w
	w.str("requested_action", action)
	w.str("task", t.title)
	switch kind {
	case "requested":
		w.str("justification", reason)
		if t.user != nil {
			w.str("approver_hint", t.user.email)
		}
	case "denied":
		w.str("reason", reason)
	case "approved":
		w.strNE("comment", reason)
	}
	g.finish()
}

var approvalAsks = []struct{ needs, action, why string }{
	{"github", "github.merge_pull_request", "tests are green and the change is limited to retry configuration"},
	{"google_drive", "google_drive.share_file", "the customer asked for the signed order form"},
	{"slack", "slack.post_message #general", "announce the completed migration"},
	{"salesforce", "salesforce.update_opportunity", "stage change for 4 opportunities based on call notes"},
	{"file.write", "file.delete /workspace/out/summary.csv", "duplicate of the finance-approved version"},
	{"jira", "jira.transition_issue (bulk, 18 issues)", "close issues fixed in the last release"},
	{"notion", "notion.update_page Release Notes 4.12", "publish the drafted release notes"},
}

// randAsk picks an approval the agent could need: for one of its
// connectors or actions.
func randAsk(r *rand.Rand, a *agent) (action, why string) {
	for {
		x := approvalAsks[r.IntN(len(approvalAsks))]
		if hasConnector(a, x.needs) || slices.Contains(a.actions, x.needs) {
			return x.action, x.why
		}
	}
}

// actionErrors are the errors of failed agent actions.
var actionErrors = map[string]string{
	"browser.navigate": "browser.navigate failed: navigation timeout after 30000ms",
	"file.read":        "file.read failed: permission denied: path is outside the task workspace",
	"file.write":       "file.write failed: permission denied: path is outside the task workspace",
	"code.execute":     "code.execute exited with status 1",
}

var denyReasons = []string{
	"Needs a second approver from the owning team",
	"Not during the change freeze",
	"Share the redacted version instead",
	"Deleting finance reports needs Controller sign-off",
}

var codeSnippets = []struct{ lang, code, stdout string }{
	{"python", "import pandas as pd\ndf = pd.read_csv('invoices.csv')\nprint(df.groupby('vendor')['amount'].sum().head())", "vendor\nCloudCo      18420.00\nOfficeHub     2310.50\nPrintWorks     880.00"},
	{"python", "rate = errors_5xx / requests\nprint(f'error rate {rate:.2%}')", "error rate 2.41%"},
	{"bash", "go test ./internal/settlement/... -run TestRetry -count=5", "ok  \tgithub.com/acme/payments/internal/settlement\t3.214s"},
	{"python", "import json\nleads = json.load(open('leads.json'))\nprint(len([l for l in leads if l['country'] == 'US']))", "128"},
}

var workFiles = []string{"/workspace/invoices.csv", "/workspace/notes/standup.md", "/workspace/report.md", "/workspace/leads.json", "/workspace/out/summary.csv", "/workspace/repo/config/feature_flags.yaml"}

// agentAction writes agent.action for one tool of the agent's runtime.
func (g *gen) agentAction(e *event, t *taskRun, tool string, ok bool, errMsg string) {
	g.onBehalf(e, t)
	e.ctx.ip, e.ctx.ua = pick(g, agentIPs), t.agent.ua // runs in the hosted runtime
	g.req(e)
	e.typ, e.tool, e.outcome = "agent.action", tool, "success"
	if !ok {
		e.outcome = "failure"
	}
	w := &g.w
	switch tool {
	case "browser.navigate":
		u := urls[g.r.IntN(len(urls))]
		if s := t.agent.sites; len(s) > 0 {
			u = urls[s[g.r.IntN(len(s))]]
		}
		e.dur = g.between(300, 4000)
		g.begin(e)
		w.str("url", u.url)
		if ok {
			w.str("title", u.title)
			w.int("http_status", 200)
		} else {
			w.int("http_status", 503)
			w.str("error", "navigation timeout after 30000ms")
		}
	case "file.read", "file.write":
		e.dur = g.between(2, 60)
		g.begin(e)
		if f := t.agent.files; len(f) > 0 {
			w.str("path", workFiles[f[g.r.IntN(len(f))]])
		} else {
			w.str("path", pick(g, workFiles))
		}
		w.int("bytes", g.between(200, 400_000))
		if tool == "file.write" {
			w.str("sha256", g.hex(64))
		}
		if !ok {
			w.str("error", "permission denied: path is outside the task workspace")
		}
	default: // code.execute
		s := codeSnippets[g.r.IntN(len(codeSnippets))]
		if c := t.agent.code; len(c) > 0 {
			s = codeSnippets[c[g.r.IntN(len(c))]]
		}
		e.dur = g.between(400, 30_000)
		g.begin(e)
		w.str("language", s.lang)
		w.str("code", s.code)
		if ok {
			w.int("exit_code", 0)
			w.str("stdout", s.stdout)
		} else {
			w.int("exit_code", 1)
			if errMsg == "" {
				errMsg = "Traceback (most recent call last):\n  File \"main.py\", line 3, in <module>\nKeyError: 'vendor_id'"
			}
			w.str("stderr", errMsg)
		}
	}
	g.finish()
}

// MCP tool calls through the gateway.

type call struct {
	user    *person // on whose behalf; nil: the agent (or API key) acts alone
	agent   *agent  // nil for a call made with an API key
	task    *taskRun
	session string
	tool    *tool
	mode    string // "", or forced: allowed, blocked, redacted, error
	policy  string // forced decision policy and reason
	reason  string
	pins    []pin // template variables fixed by a storyline
}

type pin struct {
	v int
	s string
}

var upstreamErrors = []struct {
	status int64
	text   string
}{
	{429, "rate limited by the upstream API; retry after 30s"},
	{502, "upstream returned 502 Bad Gateway"},
	{404, "not found: the object does not exist or the connection cannot see it"},
	{504, "upstream timed out after 30s"},
}

// toolCall writes agent.tool_call.
func (g *gen) toolCall(e *event, c *call) {
	t := c.tool
	g.resetVars()
	for _, p := range c.pins {
		g.setVar(p.v, p.s)
	}
	mode := c.mode
	if mode == "" {
		br := 0.042
		if t.blockRate > 0 {
			br = t.blockRate
		}
		switch x := g.r.Float64(); {
		case x < br:
			mode = "blocked"
		case t.pii != "" && x < br+0.16:
			mode = "redacted"
		case x > 0.975:
			mode = "error"
		default:
			mode = "allowed"
		}
	}
	teamIdx := -1
	switch {
	case c.user != nil:
		g.as(e, c.user)
		teamIdx = c.user.team
		if c.agent != nil && c.agent.client {
			e.ctx.ua = c.agent.ua
		}
	case c.agent != nil:
		e.actor = agentActor(c.agent)
		teamIdx = c.agent.team
		e.ctx.team, e.ctx.ip, e.ctx.ua = teams[teamIdx].id, pick(g, agentIPs), c.agent.ua
	}
	if c.task != nil && c.task.user != nil {
		// Hosted agents call from the runtime, not the requester's laptop.
		e.ctx.ip, e.ctx.ua = pick(g, agentIPs), c.agent.ua
	}
	g.req(e)
	if c.agent != nil {
		e.agentID = c.agent.id
	}
	if c.task != nil {
		e.taskID = c.task.id
	}
	e.typ, e.sessionID, e.connector, e.tool = "agent.tool_call", c.session, t.connector, t.name

	var errStatus int64
	var errText string
	switch mode {
	case "blocked":
		pol, why := c.policy, c.reason
		if pol == "" {
			if t.block != nil && (t.blockRate > 0 || g.chance(0.7)) {
				pol, why = t.block.policy, t.block.reason
			} else {
				for {
					s := pick(g, situational)
					if !s.write || t.write {
						pol, why = s.policy, s.reason
						break
					}
				}
			}
		}
		if t.block != nil && pol == t.block.policy && t.block.pin != nil && c.pins == nil {
			t.block.pin(g)
		}
		e.decision = decision{"blocked", pol, why}
		e.outcome, e.status, e.dur = "failure", 403, g.between(1, 6)
	case "redacted":
		pol, why := c.policy, c.reason
		if pol == "" {
			pol, why = t.piiPolicy, t.piiReason
		}
		e.decision = decision{"redacted", pol, why}
		e.outcome, e.status = "success", 200
	case "error":
		u := pick(g, upstreamErrors)
		errStatus, errText = u.status, u.text
		if c.reason != "" {
			errStatus, errText = 401, c.reason
		}
		e.decision = decision{action: "allowed", policy: policyOf(teamIdx)}
		e.outcome, e.status = "failure", errStatus
	default:
		e.decision = decision{action: "allowed", policy: policyOf(teamIdx)}
		e.outcome, e.status = "success", 200
	}
	if e.dur < 0 {
		e.dur = int64(t.ms/2 + g.r.IntN(t.ms+1))
	}

	g.begin(e)
	w := &g.w
	g.json("arguments", t.argsT)
	w.obj("response")
	w.arr("content")
	w.elem()
	w.str("type", "text")
	switch mode {
	case "blocked":
		w.str("text", "Blocked by policy "+e.decision.policy+": "+e.decision.reason)
	case "redacted":
		g.text("text", t.piiT)
	case "error":
		w.str("text", errText)
	default:
		g.text("text", t.resultT)
	}
	w.end()
	w.endArr()
	w.bool("isError", mode == "blocked" || mode == "error")
	w.end()
	if mode != "blocked" {
		w.arr("api_requests")
		left := e.dur - 2
		for i, r := range t.reqs {
			w.elem()
			w.str("method", r.method)
			g.text("url", r.urlT)
			st := int64(r.status)
			if mode == "error" && i == len(t.reqs)-1 {
				st = errStatus
			}
			w.int("status", st)
			d := left / int64(len(t.reqs)-i)
			if i < len(t.reqs)-1 {
				d = d * int64(60+g.r.IntN(35)) / 100
			}
			d = max(d, 1)
			left -= d
			w.int("duration_ms", d)
			w.end()
			if mode == "error" && i == len(t.reqs)-1 {
				break
			}
		}
		w.endArr()
	}
	g.finish()
}

func policyOf(teamIdx int) string {
	if teamIdx < 0 {
		return "api-key-default"
	}
	return teams[teamIdx].policy
}

// AI interactions on the whiteboard.

var aiRedactions = []struct{ policy, reason, prompt, response string }{
	{"dlp-secrets", "prompt contained an AWS access key id",
		"Why does the key [REDACTED:aws_access_key_id] get AccessDenied on the staging bucket?",
		"AccessDenied usually means the IAM policy attached to the key's user does not allow s3:GetObject on that bucket, or the key is inactive. Check the policy and the key status in IAM."},
	{"dlp-pii", "prompt contained a customer email address and phone number",
		"Add a sticky to follow up with [REDACTED:email] ([REDACTED:phone]) about the pilot",
		"Added a sticky: \"Follow up with the customer contact about the pilot – owner: you, due Friday\"."},
	{"dlp-pii", "prompt contained a payment card number",
		"Customer says card [REDACTED:credit_card] was charged twice, draft a reply",
		"Draft reply: \"Thanks for flagging this. We confirmed the duplicate charge and issued a refund; it will appear within 5–10 business days.\""},
}

var aiBlocked = []struct{ policy, reason, prompt string }{
	{"dlp-pii", "prompt contained 23 customer email addresses",
		"Turn this list into stickies grouped by company: [REDACTED:email], [REDACTED:email], [REDACTED:email], … (20 more)"},
	{"dlp-confidential", "prompt contained text labelled CONFIDENTIAL – BOARD ONLY",
		"Summarize for the all-hands: CONFIDENTIAL – BOARD ONLY [REDACTED:confidential_document]"},
	{"dlp-pii", "prompt contained employee salary data",
		"Make a bar chart of these salaries by level: [REDACTED:salary_table]"},
}

var aiModerated = []struct {
	reason, category, prompt string
	promptT                  tmpl
}{
	{"prompt flagged by moderation: harassment (score 0.93)", "harassment",
		"Write a brutal roast of $person for the offsite slides, make fun of their accent", nil},
	{"prompt flagged by moderation: violence (score 0.81)", "violence",
		"Sticky notes: creative ways to get rid of the vendor's account manager for good", nil},
}

var itemTypes = [][]string{{"sticky_note"}, {"sticky_note", "shape"}, {"text", "frame"}, {"sticky_note", "card", "connector"}}

// aiInteraction writes ai.interaction (mode "" or "redacted"),
// ai.prompt_blocked or ai.moderation_blocked.
func (g *gen) aiInteraction(e *event, p *person, session string, b *board, mode string) {
	g.resetVars()
	g.as(e, p)
	g.setVar(vBoard, b.name)
	e.sessionID, e.target = session, target{"board", b.id, b.name}
	a := &aiPrompts[g.r.IntN(len(aiPrompts))]
	model := pick(g, models)
	w := &g.w
	switch mode {
	case "prompt_blocked", "moderation_blocked":
		e.typ, e.outcome, e.status, e.dur = "ai."+mode, "failure", 403, g.between(40, 400)
		if mode == "prompt_blocked" {
			x := pick(g, aiBlocked)
			e.decision = decision{"blocked", x.policy, x.reason}
			g.begin(e)
			w.str("feature", a.feature)
			w.str("model", model)
			w.str("prompt", x.prompt)
		} else {
			x := &aiModerated[g.r.IntN(len(aiModerated))]
			e.decision = decision{"blocked", "ai-content-safety", x.reason}
			g.begin(e)
			w.str("feature", a.feature)
			w.str("model", model)
			g.text("prompt", x.promptT)
			w.obj("moderation")
			w.bool("flagged", true)
			w.strs("categories", x.category)
			w.end()
		}
		g.finish()
		return
	}
	e.typ, e.outcome, e.dur = "ai.interaction", "success", g.between(700, 9000)
	var red int = -1
	if mode == "redacted" {
		red = g.r.IntN(len(aiRedactions))
		x := aiRedactions[red]
		e.decision = decision{"redacted", x.policy, x.reason}
	}
	g.begin(e)
	w.str("feature", a.feature)
	w.str("model", model)
	if red >= 0 {
		w.str("prompt", aiRedactions[red].prompt)
		w.str("response", aiRedactions[red].response)
	} else {
		g.text("prompt", a.promptT)
		g.text("response", a.responseT)
	}
	w.obj("system_context")
	w.obj("board_context")
	w.str("board_id", b.id)
	w.int("selected_items", g.between(0, 40))
	w.strs("item_types", pick(g, itemTypes)...)
	w.end()
	w.str("instructions", aiInstructions)
	w.str("locale", pick(g, locales))
	w.end()
	if g.chance(0.18) {
		w.arr("attachments")
		for range 1 + g.r.IntN(2) {
			w.elem()
			if g.chance(0.7) {
				w.str("mime", "image/png")
			} else {
				w.str("mime", "application/pdf")
			}
			w.str("sha256", g.hex(64))
			w.int("bytes", g.between(12_000, 2_400_000))
			w.end()
		}
		w.endArr()
	}
	w.obj("usage")
	w.int("input_tokens", g.between(600, 6000))
	w.int("output_tokens", g.between(80, 900))
	w.end()
	g.finish()
}
