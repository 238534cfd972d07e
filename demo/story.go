package demo

// Storylines: the incidents an investigator can find in the demo.
//
//   - AI interaction logs are switched on in the first minutes of the window;
//     no AI interaction is older.
//   - Derek Olsen (Sales) signs in late at night from 203.0.113.145, then
//     tries to export Salesforce contacts in bulk and share the pricing
//     sheet with a personal address through Claude Desktop: blocked by
//     dlp-bulk-export and external-sharing. Two days later he is removed.
//   - Password spraying from 203.0.113.7 against the whiteboard locks two
//     accounts; the next morning the address is blocked and both unlocked.
//   - Ravi Shankar creates API key "local-dev"; a day and a half later it
//     reads compensation files from 203.0.113.66 at night and is deleted.
//   - The On-call Triage Agent's rollback task fails: its approval is denied
//     and its merge is blocked by change-management.
//   - The Invoice Reconciler's scheduled run fails on a changed CSV; Laura
//     reruns it by hand.
//   - The Salesforce refresh token is revoked: refreshes and calls fail
//     until Victor reconnects the integration.
//   - Billing: an upgrade, a downgrade, usage alerts at 80/90/100 %.

const uaPy = "python-requests/2.32.3"

func (p *planner) storyAILogsOn() {
	olu := &people[pOlu]
	ep := newEpisode(pOlu)
	ep.add(0, func(g *gen, e *event) {
		g.settingChanged(e, olu, "ai_interaction_logs.collect", "Collect AI interaction logs", "false", "true")
	})
	ep.add(p.between(20, 90)*second, func(g *gen, e *event) {
		g.settingChanged(e, olu, "retention.ai_interaction", "AI interaction log retention", `"30d"`, `"90d"`)
	})
	s := p.end - p.span + 1 + p.between(2, 20)*minute
	p.put(ep, s)
	p.aiOn = s + ep.at + 1
}

// call helpers for storylines.
func pins(kv ...any) []pin {
	var out []pin
	for i := 0; i < len(kv); i += 2 {
		out = append(out, pin{kv[i].(int), kv[i+1].(string)})
	}
	return out
}

func (p *planner) storyBulkExport() {
	d := &people[pDerek]
	claude := &agents[aClaude]
	ep := newEpisode(pDerek)
	away := func(e *event) { e.ctx.ip, e.ctx.ua = ipTravel, browsers[3] }
	ep.add(0, func(g *gen, e *event) { away(e); g.signIn(e, d, true, "PASSWORD", "") })
	for _, b := range []*board{&boards[12], &boards[11], &boards[13]} {
		ep.add(p.between(40, 300)*second, func(g *gen, e *event) { away(e); g.boardEvent(e, d, "board_opened", b) })
	}
	ep.add(10*hour+p.between(0, 20)*minute, func(g *gen, e *event) { g.authLogin(e, d, claude) })
	main := len(ep.steps) - 1
	sess := randID(p.r, "mcp-sess-", 10)
	sfTool := func(name string) *tool { return toolByName("salesforce", name) }
	const bulk = "bulk export of customer contacts is limited to 500 records for role member"
	calls := []*call{
		{tool: sfTool("query_records"), mode: "allowed", pins: pins(vAccount, "Globex Corporation")},
		{tool: sfTool("get_account"), mode: "redacted", pins: pins(vAccount, "Globex Corporation")},
		{tool: sfTool("export_contacts"), mode: "blocked", policy: "dlp-bulk-export", reason: bulk + " (requested 50000)",
			pins: pins(vAccount, "Globex Corporation", vLimit, "50000")},
		{tool: sfTool("export_contacts"), mode: "blocked", policy: "dlp-bulk-export", reason: bulk + " (requested 10000)",
			pins: pins(vAccount, "Globex Corporation", vLimit, "10000")},
		{tool: sfTool("export_contacts"), mode: "blocked", policy: "dlp-bulk-export", reason: bulk + " (requested 5000)",
			pins: pins(vAccount, "Initech", vLimit, "5000")},
		{tool: toolByName("google_drive", "search_files"), mode: "allowed", pins: pins(vDQ, "pricing", vDoc, "Pricing Sheet 2026.xlsx")},
		{tool: toolByName("google_drive", "share_file"), mode: "blocked",
			pins: pins(vDoc, "Pricing Sheet 2026.xlsx", vExt, "derek.olsen.personal@mail.example")},
		{tool: toolByName("slack", "search_messages"), mode: "allowed", pins: pins(varID("squery"), "contract")},
	}
	for _, c := range calls {
		c.user, c.agent, c.session = d, claude, sess
		ep.add(p.between(20, 150)*second, func(g *gen, e *event) { g.toolCall(e, c) })
	}
	victor := &people[pVictor]
	ep.add(2*day-2*hour+p.between(0, 60)*minute, func(g *gen, e *event) { // 09:00–10:00 two days later
		g.memberRemoved(e, victor, d, "offboarding: access revoked pending DLP investigation SEC-112")
	})
	p.placeAt(ep, 0.62, 23.6, tzOf(d), main)
	p.leftAt[pDerek] = p.out[len(p.out)-1].ms
}

func (p *planner) storyPasswordSpray() {
	ep := newEpisode(-1)
	real := []*person{&people[pOlu], &people[pRobert]}
	for len(real) < 7 {
		u := randPerson(p.r)
		dup := false
		for _, r := range real {
			dup = dup || r == u
		}
		if !dup {
			real = append(real, u)
		}
	}
	fakes := []string{"admin@acme.example", "it@acme.example", "ceo@acme.example", "finance@acme.example", "support@acme.example"}
	const ua = "python-requests/2.31.0"
	fails := map[*person]int{}
	for i := range 60 {
		gap := p.between(2, 12) * second
		if i == 0 {
			gap = 0
		}
		if p.chance(0.45) {
			email := fakes[p.r.IntN(len(fakes))]
			ep.add(gap, func(g *gen, e *event) {
				e.actor, e.ctx = actor{typ: "user", email: email}, evctx{ip: ipSpray, ua: ua}
				g.signIn(e, nil, false, "PASSWORD", "user_not_found")
			})
			continue
		}
		u := real[2+p.r.IntN(len(real)-2)]
		if p.chance(0.6) {
			u = real[p.r.IntN(2)]
		}
		fails[u]++
		reason := "invalid_credentials"
		if fails[u] > 6 && (u == real[0] || u == real[1]) {
			reason = "account_locked"
		}
		ep.add(gap, func(g *gen, e *event) {
			e.ctx.ip, e.ctx.ua = ipSpray, ua
			g.signIn(e, u, false, "PASSWORD", reason)
		})
		if fails[u] == 6 && (u == real[0] || u == real[1]) {
			ep.add(1*second, func(g *gen, e *event) { g.userLocked(e, u, true, nil, 6, ipSpray) })
		}
	}
	rachel, victor := &people[pRachel], &people[pVictor]
	ep.add(6*hour+p.between(10, 40)*minute, func(g *gen, e *event) {
		g.settingChanged(e, rachel, "network.ip_blocklist", "Blocked IP ranges", `[]`, `["203.0.113.7/32"]`)
	})
	for _, u := range real[:2] {
		if fails[u] >= 6 {
			ep.add(p.between(3, 25)*minute, func(g *gen, e *event) { g.userLocked(e, u, false, victor, 0, "") })
		}
	}
	p.placeAt(ep, 0.45, 3.0, offices[oSF].utc, len(ep.steps)-1)
}

func (p *planner) storyLeakedKey() {
	ravi := &people[pRavi]
	key := apiKey{id: randID(p.r, "key_", 10), name: "local-dev", prefix: randID(p.r, "vt_live_", 4), scopes: []string{"drive.readonly"}}
	keyActor := actor{typ: "api_key", id: key.id, name: key.name}
	gd := func(name string) *tool { return toolByName("google_drive", name) }
	ep := newEpisode(-1)
	ep.add(0, func(g *gen, e *event) { g.apiKeyEvent(e, ravi, key, true, "") })
	use := func(gap int64, ip string, c *call) {
		ep.add(gap, func(g *gen, e *event) {
			e.actor, e.ctx = keyActor, evctx{ip: ip, ua: uaPy}
			g.toolCall(e, c)
		})
	}
	// First use the same afternoon, from Ravi's home.
	use(p.between(15, 40)*minute, ravi.home, &call{tool: gd("search_files"), mode: "allowed", pins: pins(vDQ, "budget")})
	use(p.between(20, 60)*second, ravi.home, &call{tool: gd("read_file"), mode: "allowed", pins: pins(vDoc, "FY26 Budget.xlsx")})
	// A day and a half later, at night, from a hosting provider.
	use(34*hour+p.between(0, 50)*minute, ipLeakedKey, &call{tool: gd("search_files"), mode: "allowed", pins: pins(vDQ, "salary", vDoc, "Compensation Bands 2026.xlsx")})
	use(p.between(10, 40)*second, ipLeakedKey, &call{tool: gd("read_file"), mode: "redacted", pins: pins(vDoc, "Compensation Bands 2026.xlsx")})
	use(p.between(10, 40)*second, ipLeakedKey, &call{tool: gd("search_files"), mode: "allowed", pins: pins(vDQ, "password", vDoc, "Vendor Security Questionnaire.docx")})
	use(p.between(10, 40)*second, ipLeakedKey, &call{tool: gd("read_file"), mode: "redacted", pins: pins(vDoc, "AP Aging Report.csv")})
	use(p.between(10, 40)*second, ipLeakedKey, &call{tool: gd("share_file"), mode: "blocked", pins: pins(vDoc, "Compensation Bands 2026.xlsx", vExt, "archive.7731@mail.example")})
	use(p.between(10, 40)*second, ipLeakedKey, &call{tool: gd("search_files"), mode: "allowed", pins: pins(vDQ, "contract")})
	rachel := &people[pRachel]
	ep.add(6*hour+p.between(0, 40)*minute, func(g *gen, e *event) {
		g.apiKeyEvent(e, rachel, key, false, "suspected leak: used at night from 203.0.113.66 (hosting provider); key found in a public paste")
	})
	ep.add(p.between(3, 15)*minute, func(g *gen, e *event) {
		g.settingChanged(e, rachel, "api_keys.max_ttl_days", "API key maximum lifetime (days)", `90`, `30`)
	})
	p.placeAt(ep, 0.22, 15.2, tzOf(ravi), 0)
}

func (p *planner) storyFailedRollback() {
	a := &agents[aOncall]
	dan, marcus := &people[pDaniel], &people[pMarcus]
	apr := randID(p.r, "apr_", 8)
	t := &taskRun{id: randID(p.r, "task_", 12), agent: a, user: dan, steps: 5,
		title:  "Roll back feature flag settlement_v2 if error budget burns",
		failAt: "approval " + apr + " denied and github.merge_pull_request blocked by policy change-management"}
	gh := func(name string) *tool { return toolByName("github", name) }
	repo := varID("repo")
	ep := newEpisode(pDaniel)
	ep.add(0, func(g *gen, e *event) { g.taskEvent(e, "created", t) })
	ep.add(p.between(2, 6)*second, func(g *gen, e *event) { g.taskEvent(e, "started", t) })
	ep.add(p.between(10, 30)*second, func(g *gen, e *event) { g.agentAction(e, t, "browser.navigate", true, "") })
	ep.add(p.between(20, 50)*second, func(g *gen, e *event) { g.agentAction(e, t, "code.execute", true, "") })
	for _, c := range []*call{
		{tool: gh("get_file_contents"), mode: "allowed", pins: pins(repo, "payments", varID("path"), "config/feature_flags.yaml")},
		{tool: gh("create_pull_request"), mode: "allowed", pins: pins(repo, "payments", varID("title"), "Disable settlement_v2 flag", varID("branch"), "revert/settlement-v2-flag")},
	} {
		c.user, c.agent, c.task = dan, a, t
		ep.add(p.between(10, 45)*second, func(g *gen, e *event) { g.toolCall(e, c) })
	}
	const action = "github.merge_pull_request acme/payments"
	ep.add(p.between(5, 15)*second, func(g *gen, e *event) {
		g.approvalEvent(e, "requested", t, apr, nil, action, "5xx error budget burning 14x over the last hour; the rollback PR is green")
	})
	ep.add(p.between(4, 9)*minute, func(g *gen, e *event) {
		g.approvalEvent(e, "denied", t, apr, marcus, action, "Rollback needs the payments on-call lead (Priya); the burn comes from one merchant's retries, not the flag")
	})
	merge := &call{user: dan, agent: a, task: t, tool: gh("merge_pull_request"), mode: "blocked", pins: pins(repo, "payments")}
	ep.add(p.between(15, 40)*second, func(g *gen, e *event) { g.toolCall(e, merge) })
	ep.add(p.between(3, 8)*second, func(g *gen, e *event) { g.taskEvent(e, "failed", t) })
	p.placeAt(ep, 0.55, 14.3, tzOf(dan), 0)
}

func (p *planner) storyFailedReconcile() {
	a := &agents[aFinops]
	laura := &people[pLaura]
	const title = "Reconcile vendor invoices against purchase orders"
	sched := &taskRun{id: randID(p.r, "task_", 12), agent: a, title: title, steps: 2,
		failAt: "code.execute exited with status 1: KeyError: 'vendor_id' (the AP export renamed its columns)"}
	rerun := &taskRun{id: randID(p.r, "task_", 12), agent: a, user: laura, title: title, steps: 4}
	ep := newEpisode(-1)
	ep.add(0, func(g *gen, e *event) { g.taskEvent(e, "created", sched) })
	ep.add(p.between(2, 10)*second, func(g *gen, e *event) { g.taskEvent(e, "started", sched) })
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.agentAction(e, sched, "file.read", true, "") })
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.agentAction(e, sched, "code.execute", false, "") })
	ep.add(p.between(1, 5)*second, func(g *gen, e *event) { g.taskEvent(e, "failed", sched) })
	ep.add(2*hour+p.between(0, 90)*minute, func(g *gen, e *event) { g.taskEvent(e, "created", rerun) })
	ep.add(p.between(2, 10)*second, func(g *gen, e *event) { g.taskEvent(e, "started", rerun) })
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.agentAction(e, rerun, "file.read", true, "") })
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.agentAction(e, rerun, "code.execute", true, "") })
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.agentAction(e, rerun, "file.write", true, "") })
	ep.add(p.between(5, 60)*second, func(g *gen, e *event) { g.taskEvent(e, "completed", rerun) })
	p.placeAt(ep, 0.8, 7.0, offices[oLDN].utc, 0)
}

func (p *planner) storySalesforceOutage() {
	sfc := connectorByName("salesforce")
	const revoked = "Salesforce rejected the access token (INVALID_SESSION_ID); reconnect the integration"
	ep := newEpisode(-1)
	for i := range 3 {
		gap := int64(0)
		if i > 0 {
			gap = hour + p.between(0, 60)*second
		}
		ep.add(gap, func(g *gen, e *event) { g.integrationEvent(e, "credential_refresh", sfc, nil, false, "") })
	}
	a := &agents[aSDR]
	t := &taskRun{id: randID(p.r, "task_", 12), agent: a, title: "Update stale opportunities from call notes", steps: 1,
		failAt: "salesforce.query_records returned 401: " + revoked}
	ep.add(p.between(5, 20)*minute, func(g *gen, e *event) { g.taskEvent(e, "created", t) })
	ep.add(p.between(2, 10)*second, func(g *gen, e *event) { g.taskEvent(e, "started", t) })
	q := &call{agent: a, task: t, tool: toolByName("salesforce", "query_records"), mode: "error", reason: revoked}
	ep.add(p.between(5, 20)*second, func(g *gen, e *event) { g.toolCall(e, q) })
	ep.add(p.between(1, 5)*second, func(g *gen, e *event) { g.taskEvent(e, "failed", t) })
	megan := &people[pMegan]
	m := &call{user: megan, agent: &agents[aClaude], session: randID(p.r, "mcp-sess-", 10),
		tool: toolByName("salesforce", "get_account"), mode: "error", reason: revoked}
	ep.add(p.between(60, 100)*minute, func(g *gen, e *event) { g.toolCall(e, m) })
	victor := &people[pVictor]
	ep.add(p.between(15, 40)*minute, func(g *gen, e *event) {
		g.integrationEvent(e, "disconnected", sfc, victor, true, "re-authorizing after the refresh token was revoked by Salesforce")
	})
	ep.add(p.between(1, 4)*minute, func(g *gen, e *event) { g.integrationEvent(e, "connected", sfc, victor, true, "") })
	ep.add(hour, func(g *gen, e *event) { g.integrationEvent(e, "credential_refresh", sfc, nil, true, "") })
	p.placeAt(ep, 0.72, 5.0, offices[oNYC].utc, 0)
}

func (p *planner) storyBilling() {
	robert := &people[pRobert]
	up := newEpisode(pRobert)
	up.add(0, func(g *gen, e *event) { g.planChanged(e, robert, true) })
	p.placeAt(up, 0.2, 10.5, tzOf(robert), 0)
	for i, frac := range []float64{0.5, 0.75, 0.93} {
		pct := []int64{80, 90, 100}[i]
		ep := newEpisode(-1)
		ep.add(0, func(g *gen, e *event) { g.usageAlert(e, pct) })
		p.placeAt(ep, frac, 12, 0, 0)
	}
	down := newEpisode(pRobert)
	down.add(0, func(g *gen, e *event) { g.planChanged(e, robert, false) })
	p.placeAt(down, 0.66, 11, tzOf(robert), 0)
}

// storyAdmin spreads the month's routine administration: invitations,
// role changes, settings, API keys.
func (p *planner) storyAdmin() {
	one := func(by *person, f func(g *gen, e *event)) {
		ep := newEpisode(idx(by))
		ep.add(0, f)
		p.place(ep, officeHours, tzOf(by))
	}
	for range p.scale(5) {
		h := newHires[p.hires%len(newHires)]
		p.hires++
		t := p.r.IntN(len(teams))
		by := randAdmin(p.r)
		if p.chance(0.7) {
			ep := newEpisode(-1)
			ep.add(0, func(g *gen, e *event) { g.memberInvited(e, nil, h.name, h.title, t) })
			p.place(ep, officeHours, offices[oSF].utc)
			continue
		}
		one(by, func(g *gen, e *event) { g.memberInvited(e, by, h.name, h.title, t) })
	}
	for range p.scale(2) {
		by, u := randAdmin(p.r), randPerson(p.r)
		from, to := "member", "team_admin"
		if p.chance(0.3) {
			from, to = to, from
		}
		one(by, func(g *gen, e *event) { g.memberRoleChanged(e, by, u, from, to) })
	}
	for range p.scale(1) {
		by, u := randAdmin(p.r), randPerson(p.r)
		one(by, func(g *gen, e *event) { g.memberRemoved(e, by, u, "moved to another team") })
	}
	for i := range p.scale(4) {
		s := settingChanges[i%len(settingChanges)]
		by := randAdmin(p.r)
		one(by, func(g *gen, e *event) { g.settingChanged(e, by, s.key, s.label, s.from, s.to) })
	}
	for i := range p.scale(2) {
		by := randAdmin(p.r)
		one(by, func(g *gen, e *event) { g.orgChanged(e, by, i%len(orgChanges)) })
	}
	for range p.scale(4) {
		by := randTeammate(p.r, tEng)
		if p.chance(0.3) {
			by = randAdmin(p.r)
		}
		k := apiKeyNames[p.r.IntN(len(apiKeyNames))]
		key := apiKey{id: randID(p.r, "key_", 10), name: k.name, prefix: randID(p.r, "vt_live_", 4), scopes: k.scopes}
		ep := newEpisode(idx(by))
		ep.add(0, func(g *gen, e *event) { g.apiKeyEvent(e, by, key, true, "") })
		if p.chance(0.6) {
			ep.add(p.between(1, 10)*day, func(g *gen, e *event) { g.apiKeyEvent(e, by, key, false, "") })
		}
		p.place(ep, officeHours, tzOf(by))
	}
	for range p.scale(1) {
		by := randAdmin(p.r)
		c := &connectors[5] // notion
		ep := newEpisode(idx(by))
		ep.add(0, func(g *gen, e *event) {
			g.integrationEvent(e, "disconnected", c, by, true, "re-authorizing with the insert_content scope")
		})
		ep.add(p.between(1, 5)*minute, func(g *gen, e *event) { g.integrationEvent(e, "connected", c, by, true, "") })
		p.place(ep, officeHours, tzOf(by))
	}
}
