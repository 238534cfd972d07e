package demo

import "time"

// One generator per kind of event. Each fills what the caller left empty in
// e (actor, context, …), then writes the event.

// Authentication on the whiteboard (Miro's log object: category
// "authentication", details in content).

var signInFailures = []struct{ authType, reason string }{
	{"PASSWORD", "invalid_credentials"}, {"PASSWORD", "invalid_credentials"}, {"PASSWORD", "invalid_credentials"},
	{"PASSWORD", "mfa_failed"}, {"SSO", "sso_assertion_expired"}, {"SSO", "user_not_assigned_to_app"},
}

// signIn writes authentication.sign_in_succeeded or sign_in_failed. p may be
// nil when the caller set the actor (an address that is nobody's).
func (g *gen) signIn(e *event, p *person, ok bool, authType, reason string) {
	if p != nil {
		g.as(e, p)
	}
	g.req(e)
	e.target = orgTarget
	if authType == "" {
		authType = "SSO"
		if g.chance(0.15) {
			authType = "PASSWORD"
		}
	}
	mfa := "NONE"
	if authType == "PASSWORD" {
		mfa = "TOTP"
		if g.chance(0.4) {
			mfa = "WEBAUTHN"
		}
	}
	if ok {
		e.typ, e.outcome = "authentication.sign_in_succeeded", "success"
	} else {
		e.typ, e.outcome, e.status = "authentication.sign_in_failed", "failure", 401
		if reason == "" {
			f := pick(g, signInFailures)
			authType, reason = f.authType, f.reason
		}
		if reason != "mfa_failed" {
			mfa = "NONE"
		}
	}
	g.begin(e)
	w := &g.w
	w.obj("details")
	w.str("authType", authType)
	w.str("mfaFactorType", mfa)
	w.strNE("reason", reason)
	if authType == "SSO" {
		w.str("identityProvider", "okta")
	}
	w.end()
	g.finish()
}

func (g *gen) signOut(e *event, p *person) {
	g.as(e, p)
	e.typ, e.outcome, e.target = "authentication.sign_out_succeeded", "success", orgTarget
	g.begin(e)
	g.w.obj("details")
	g.w.int("sessionDurationMinutes", g.between(12, 540))
	g.w.end()
	g.finish()
}

// Authentication on the agent workspace (Miteos style: auth.*).

func (g *gen) authLogin(e *event, p *person, client *agent) {
	g.as(e, p)
	if client != nil {
		e.ctx.ua = client.ua
	}
	e.typ, e.outcome, e.target = "auth.login", "success", workspace
	g.begin(e)
	w := &g.w
	w.str("method", "sso")
	w.bool("mfa", true)
	if client != nil {
		w.str("client", client.name)
	} else {
		w.str("client", "web")
	}
	w.int("session_ttl_hours", 12)
	g.finish()
}

func (g *gen) authLogout(e *event, p *person) {
	g.as(e, p)
	e.typ, e.outcome, e.target = "auth.logout", "success", workspace
	g.begin(e)
	if g.chance(0.6) {
		g.w.str("reason", "user")
	} else {
		g.w.str("reason", "idle_timeout")
	}
	g.finish()
}

var ssoErrors = []string{
	"SAML response expired: NotOnOrAfter exceeded by 312s (clock skew)",
	"audience restriction mismatch: expected https://agents.acme.example/saml",
	"user is not assigned to the Acme Agent Workspace app in Okta",
}

// authSSO writes auth.sso: the workspace validated an Okta SAML assertion.
func (g *gen) authSSO(e *event, p *person, ok bool) {
	g.as(e, p)
	e.typ, e.target = "auth.sso", workspace
	if ok {
		e.outcome = "success"
	} else {
		e.outcome, e.status = "failure", 403
	}
	g.begin(e)
	w := &g.w
	w.str("idp", "okta")
	w.str("protocol", "saml2")
	w.str("assertion_id", "_"+g.hex(32))
	w.str("name_id", p.email)
	w.strs("groups", teams[p.team].name, "all-staff")
	if !ok {
		w.str("error", pick(g, ssoErrors))
	}
	g.finish()
}

type apiKey struct {
	id, name, prefix string
	scopes           []string
}

var apiKeyNames = []struct {
	name   string
	scopes []string
}{
	{"warehouse-sync", []string{"auditlogs:read"}},
	{"ci-deploy", []string{"events:write"}},
	{"grafana-alerts", []string{"auditlogs:read"}},
	{"zapier-intake", []string{"events:write", "integrations:read"}},
	{"local-dev", []string{"drive.readonly", "events:write"}},
}

func (g *gen) randAPIKey() apiKey {
	k := pick(g, apiKeyNames)
	return apiKey{id: g.id("key_", 10), name: k.name, prefix: g.id("vt_live_", 4), scopes: k.scopes}
}

// apiKeyEvent writes auth.api_key_created or auth.api_key_deleted.
func (g *gen) apiKeyEvent(e *event, p *person, k apiKey, created bool, reason string) {
	g.as(e, p)
	e.outcome, e.target = "success", target{"api_key", k.id, k.name}
	w := &g.w
	if created {
		e.typ = "auth.api_key_created"
		g.begin(e)
		w.str("key_prefix", k.prefix)
		w.strs("scopes", k.scopes...)
		w.str("expires_at", e.t.AddDate(0, 0, 90).UTC().Format(time.DateOnly))
	} else {
		e.typ = "auth.api_key_deleted"
		g.begin(e)
		w.str("key_prefix", k.prefix)
		if reason == "" {
			reason = "no longer needed"
		}
		w.str("reason", reason)
	}
	g.finish()
}

// Whiteboard content (Miro: category "board" and "template").

var roles = []string{"OWNER", "EDITOR", "EDITOR", "EDITOR", "COMMENTER", "VIEWER"}

// boardEvent writes board.<kind> for b, e.g. board.board_opened.
func (g *gen) boardEvent(e *event, p *person, kind string, b *board) {
	if p != nil {
		g.as(e, p)
	}
	e.typ, e.outcome, e.target = "board."+kind, "success", target{"board", b.id, b.name}
	g.begin(e)
	w := &g.w
	w.obj("details")
	switch kind {
	case "board_opened":
		switch {
		case p == nil:
			w.str("role", "VIEWER")
		case b.team == p.team:
			w.str("role", pick(g, roles))
		default:
			w.str("role", pick(g, roles[2:]))
		}
	case "board_created":
		w.str("project", teams[b.team].name)
		if g.chance(0.5) {
			w.str("template", templates[g.r.IntN(len(templates))].name)
		}
	case "board_shared_for_editing", "board_shared_for_viewing", "board_shared_for_commenting":
		if g.chance(0.2) {
			w.str("sharedWith", pick(g, extEmails[:3]))
			w.bool("external", true)
		} else {
			w.str("sharedWith", randPerson(g.r).email)
			w.bool("external", false)
		}
	case "board_deleted":
		w.str("restorableUntil", e.t.AddDate(0, 0, 30).UTC().Format(time.DateOnly))
	case "board_public_link_enabled":
		w.str("permission", "VIEW")
		w.bool("passwordProtected", false)
	}
	w.end()
	g.finish()
}

func (g *gen) templateOpened(e *event, p *person) {
	g.as(e, p)
	t := templates[g.r.IntN(len(templates))]
	e.typ, e.outcome, e.target = "template.template_opened", "success", target{"template", t.id, t.name}
	g.begin(e)
	g.w.obj("details")
	if g.chance(0.5) {
		g.w.str("source", "template_picker")
	} else {
		g.w.str("source", "search")
	}
	g.w.end()
	g.finish()
}

// Team membership (Miteos style: team.*).

func (g *gen) memberInvited(e *event, by *person, name, title string, t int) {
	email := emailOf(name)
	if by != nil {
		g.as(e, by)
	} else {
		g.asService(e, &svcSCIM)
	}
	e.typ, e.outcome, e.target = "team.member_invited", "success", target{"user", g.id("inv_", 10), email}
	e.ctx.team = teams[t].id
	g.begin(e)
	w := &g.w
	w.str("invited_email", email)
	w.str("name", name)
	w.str("title", title)
	w.str("team", teams[t].name)
	w.str("role", "member")
	if by == nil {
		w.str("via", "scim")
	} else {
		w.str("via", "admin_console")
	}
	g.finish()
}

func (g *gen) memberRoleChanged(e *event, by, p *person, from, to string) {
	g.as(e, by)
	e.typ, e.outcome, e.target = "team.member_role_changed", "success", target{"user", p.id, p.email}
	e.ctx.team = teams[p.team].id
	g.begin(e)
	g.w.str("team", teams[p.team].name)
	g.w.str("from", from)
	g.w.str("to", to)
	g.finish()
}

func (g *gen) memberRemoved(e *event, by, p *person, reason string) {
	g.as(e, by)
	e.typ, e.outcome, e.target = "team.member_removed", "success", target{"user", p.id, p.email}
	e.ctx.team = teams[p.team].id
	g.begin(e)
	g.w.str("team", teams[p.team].name)
	g.w.str("reason", reason)
	g.w.str("boards_transferred_to", randTeammate(g.r, p.team).email)
	g.w.bool("sessions_revoked", true)
	g.finish()
}

// Billing.

func (g *gen) planChanged(e *event, by *person, up bool) {
	g.as(e, by)
	e.outcome = "success"
	w := &g.w
	if up {
		e.typ, e.target = "billing.plan_upgraded", target{"subscription", "sub_agents", "Acme Agent Workspace"}
		g.begin(e)
		w.str("product", "agent_workspace")
		w.str("from", "business")
		w.str("to", "enterprise")
		w.obj("seats")
		w.int("from", 35)
		w.int("to", 45)
		w.end()
		w.str("billing_period", "annual")
		w.str("reason", "2-year audit log retention and SIEM streaming")
	} else {
		e.typ, e.target = "billing.plan_downgraded", target{"subscription", "sub_whiteboard", "Whiteboard"}
		g.begin(e)
		w.str("product", "whiteboard")
		w.str("from", "enterprise_plus")
		w.str("to", "enterprise")
		w.str("effective", "next_renewal")
		w.str("reason", "Guard add-on replaced by the central audit log")
	}
	g.finish()
}

func (g *gen) usageAlert(e *event, pct int64) {
	e.actor, e.typ, e.outcome = sysBilling, "billing.usage_alert_triggered", "success"
	e.target = target{"subscription", "sub_agents", "Acme Agent Workspace"}
	g.begin(e)
	w := &g.w
	w.str("metric", "agent_run_minutes")
	w.int("threshold_pct", pct)
	w.int("limit", 60000)
	w.int("used", 600*pct+g.between(0, 300))
	w.str("period", e.t.UTC().Format("2006-01"))
	w.strs("notified", people[pOlu].email, people[pRobert].email)
	g.finish()
}

// Integrations.

// integrationEvent writes integration.connected, integration.disconnected
// or integration.credential_refresh (by the token broker when by is nil).
func (g *gen) integrationEvent(e *event, kind string, c *connector, by *person, ok bool, reason string) {
	if by != nil {
		g.as(e, by)
	} else {
		g.asService(e, &svcBroker)
	}
	e.typ, e.connector = "integration."+kind, c.name
	e.target = target{"integration", c.integration, c.label}
	e.outcome = "success"
	if !ok {
		e.outcome, e.status = "failure", 400
	}
	g.begin(e)
	w := &g.w
	switch kind {
	case "connected":
		w.str("auth", "oauth2")
		w.strs("scopes", c.scopes...)
		w.str("account", c.label)
	case "disconnected":
		w.str("reason", reason)
	case "credential_refresh":
		w.str("grant", "refresh_token")
		if ok {
			w.int("expires_in", 3600)
			w.bool("rotated", true)
		} else {
			w.str("error", "invalid_grant")
			w.str("error_description", "refresh token expired or revoked by the provider")
			w.int("attempt", g.between(1, 3))
		}
	}
	g.finish()
}

// Settings and organization administration.

var settingChanges = []struct{ key, label, from, to string }{
	{"retention.ai_interaction", "AI interaction log retention", `"90d"`, `"180d"`},
	{"retention.agent_action", "Agent action log retention", `"1y"`, `"2y"`},
	{"session.idle_timeout_minutes", "Session idle timeout", `480`, `120`},
	{"mcp.policy.dlp_bulk_export", "MCP policy dlp-bulk-export", `"monitor"`, `"enforce"`},
	{"sharing.external_collaborators", "External collaborators", `"allowed"`, `"allowed_domains_only"`},
	{"mfa.required_for_admins", "Require MFA for admins", `false`, `true`},
	{"mcp.connectors.notion.write", "Notion write tools for agents", `false`, `true`},
	{"ai.features.image_generation", "AI image generation", `true`, `false`},
}

func (g *gen) settingChanged(e *event, by *person, key, label, from, to string) {
	g.as(e, by)
	e.typ, e.outcome, e.target = "settings.changed", "success", target{"setting", key, label}
	g.begin(e)
	w := &g.w
	w.str("setting", key)
	w.raw("from", from)
	w.raw("to", to)
	w.str("scope", "organization")
	g.finish()
}

var orgChanges = []struct{ event, details string }{
	{"organization_sso_settings_changed", `{"identityProvider":"okta","field":"signingCertificate","oldValue":"CN=okta-acme, expires 2026-09-30","newValue":"CN=okta-acme, expires 2029-09-30"}`},
	{"organization_sso_settings_changed", `{"identityProvider":"okta","field":"enforceForAllUsers","oldValue":false,"newValue":true}`},
	{"organization_session_idle_timeout_enabled", `{"timeoutMinutes":120}`},
	{"organization_sharing_with_external_collaborators_disabled", `{"exceptions":["globex.example","initech.example"]}`},
}

func (g *gen) orgChanged(e *event, by *person, i int) {
	g.as(e, by)
	c := orgChanges[i]
	e.typ, e.outcome, e.target = "organization."+c.event, "success", orgTarget
	g.begin(e)
	g.w.raw("details", c.details)
	g.finish()
}

// userLocked writes user.user_locked by sign-in protection, or
// user.user_unlocked by an admin.
func (g *gen) userLocked(e *event, p *person, locked bool, by *person, failures int64, ip string) {
	w := &g.w
	e.target, e.outcome = target{"user", p.id, p.email}, "success"
	if locked {
		e.actor, e.typ = sysAuthGuard, "user.user_locked"
		e.ctx = evctx{team: teams[p.team].id, ip: ip}
		g.req(e)
		g.begin(e)
		w.obj("details")
		w.str("reason", "too_many_failed_sign_ins")
		w.int("failedAttempts", failures)
		w.int("windowMinutes", 10)
		w.str("sourceIp", ip)
		w.end()
	} else {
		g.as(e, by)
		e.typ = "user.user_unlocked"
		g.begin(e)
		w.obj("details")
		w.str("note", "verified with the user by phone; password reset forced")
		w.end()
	}
	g.finish()
}
