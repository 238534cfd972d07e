package demo

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// The sample organization: Acme Corp, ~40 people in six teams across three
// offices, a few service accounts, eight AI agents, six MCP connectors.
// Every address is from the documentation ranges (RFC 5737, RFC 3849,
// RFC 2544) and every domain is .example, so nothing points at a real party.

const (
	orgID   = "org_acme"
	orgName = "Acme Corp"
	domain  = "acme.example"
)

type team struct {
	id, name string
	policy   string // the team's default MCP gateway policy
}

var teams = [...]team{
	{"team_eng", "Engineering", "eng-default"},
	{"team_product", "Product & Design", "product-default"},
	{"team_sales", "Sales", "sales-default"},
	{"team_marketing", "Marketing", "marketing-default"},
	{"team_finance", "Finance & Ops", "finance-default"},
	{"team_security", "Security & IT", "security-default"},
}

const (
	tEng = iota
	tProduct
	tSales
	tMarketing
	tFinance
	tSecurity
)

type office struct {
	name string
	utc  int      // offset from UTC in hours (standard time)
	ips  []string // egress NAT addresses
}

var offices = [...]office{
	{"San Francisco", -8, []string{"198.51.100.11", "198.51.100.12", "198.51.100.13", "2001:db8:4ac3:10::1f"}},
	{"New York", -5, []string{"198.51.100.41", "198.51.100.42"}},
	{"London", 0, []string{"198.51.100.71", "198.51.100.72", "198.51.100.73"}},
}

const (
	oSF = iota
	oNYC
	oLDN
)

// vpnIPs are the corporate VPN's egress addresses.
var vpnIPs = []string{"192.0.2.101", "192.0.2.102", "192.0.2.103", "192.0.2.104"}

// Addresses outside Acme that the storylines use.
const (
	ipSpray     = "203.0.113.7"   // password spraying against the whiteboard
	ipLeakedKey = "203.0.113.66"  // a hosting provider using a leaked API key
	ipTor       = "203.0.113.201" // a Tor exit: stray failed sign-ins
	ipTravel    = "203.0.113.145" // Derek's late-night sign-in from abroad
	ipIdP       = "192.0.2.20"    // Okta, for SCIM
	ipBroker    = "192.0.2.30"    // the connector token broker
	ipBackup    = "192.0.2.31"    // the nightly board backup job
)

var browsers = [...]string{
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Miro/0.8.71 (Macintosh; Intel Mac OS X 14.5) Electron/30.1.0",
}

type person struct {
	id, name, email string
	team            int
	office          int
	remote          bool // works from home; the office sets the time zone
	title           string
	browser         int
	home            string // home address, set by init
}

var people = [...]person{
	// Engineering
	{id: "usr_m9s346q3", name: "Priya Natarajan", team: tEng, office: oSF, title: "Staff Engineer, Payments", browser: 0},
	{id: "usr_d25vt4f5", name: "Marcus Chen", team: tEng, office: oSF, title: "Engineering Manager", browser: 1},
	{id: "usr_v37e3s3e", name: "Sofia Alvarez", team: tEng, office: oSF, title: "Senior Backend Engineer", browser: 0},
	{id: "usr_28jt97kb", name: "Daniel Okafor", team: tEng, office: oSF, title: "Site Reliability Engineer", browser: 3},
	{id: "usr_6cq643dz", name: "Hannah Becker", team: tEng, office: oLDN, title: "Frontend Engineer", browser: 4},
	{id: "usr_vmxxqkfb", name: "Liam O'Brien", team: tEng, office: oLDN, title: "Platform Engineer", browser: 0},
	{id: "usr_f5kznwj4", name: "Aisha Rahman", team: tEng, office: oSF, remote: true, title: "Data Engineer", browser: 0},
	{id: "usr_7tan9zt2", name: "Tomasz Kowalski", team: tEng, office: oLDN, title: "Mobile Engineer", browser: 1},
	{id: "usr_4mnpzx45", name: "Kenji Watanabe", team: tEng, office: oSF, title: "Senior Engineer, Agents", browser: 0},
	{id: "usr_hy43kwjr", name: "Emily Foster", team: tEng, office: oSF, title: "QA Engineer", browser: 2},
	{id: "usr_p1xpa7z3", name: "Ravi Shankar", team: tEng, office: oSF, remote: true, title: "Infrastructure Engineer", browser: 3},
	{id: "usr_dj8fssz5", name: "Noah Goldberg", team: tEng, office: oNYC, title: "Backend Engineer", browser: 0},
	{id: "usr_awsh8vht", name: "Ibrahim Diallo", team: tEng, office: oSF, title: "Engineer, Developer Experience", browser: 0},
	// Product & Design
	{id: "usr_pre95b9e", name: "Sam Lee", team: tProduct, office: oSF, title: "Head of Product", browser: 5},
	{id: "usr_e0zbgj09", name: "Olivia Martin", team: tProduct, office: oSF, title: "Product Manager", browser: 5},
	{id: "usr_tqm83xss", name: "Yuki Tanaka", team: tProduct, office: oSF, title: "Product Designer", browser: 5},
	{id: "usr_ss6ys3c4", name: "Grace Kim", team: tProduct, office: oNYC, title: "UX Researcher", browser: 1},
	{id: "usr_dwa7n360", name: "Mateo Rossi", team: tProduct, office: oLDN, title: "Product Designer", browser: 5},
	{id: "usr_96q14dr9", name: "Chloé Dubois", team: tProduct, office: oLDN, title: "Product Manager", browser: 0},
	{id: "usr_gpqy77zx", name: "Hugo Lambert", team: tProduct, office: oLDN, remote: true, title: "Design Systems Lead", browser: 5},
	// Sales
	{id: "usr_yyk596ng", name: "Derek Olsen", team: tSales, office: oNYC, title: "Account Executive", browser: 2},
	{id: "usr_ya1dq91k", name: "Jessica Moreno", team: tSales, office: oNYC, title: "VP Sales", browser: 0},
	{id: "usr_5gqapene", name: "Brian Walsh", team: tSales, office: oNYC, title: "Account Executive", browser: 2},
	{id: "usr_cfseczp1", name: "Fatima Haddad", team: tSales, office: oLDN, title: "Sales Engineer", browser: 0},
	{id: "usr_1hygcpwp", name: "Carlos Mendes", team: tSales, office: oSF, title: "SDR", browser: 0},
	{id: "usr_q5e6eycn", name: "Megan Clarke", team: tSales, office: oNYC, title: "Customer Success Manager", browser: 1},
	{id: "usr_dy0yp57r", name: "Tyler Brooks", team: tSales, office: oNYC, remote: true, title: "SDR", browser: 2},
	// Marketing
	{id: "usr_cybvn5sx", name: "Zoe Patel", team: tMarketing, office: oSF, title: "Head of Marketing", browser: 1},
	{id: "usr_s5aa819x", name: "Ethan Wright", team: tMarketing, office: oSF, title: "Content Lead", browser: 0},
	{id: "usr_9yp98106", name: "Isabella Costa", team: tMarketing, office: oNYC, title: "Demand Generation Manager", browser: 0},
	{id: "usr_8vcd1gdj", name: "Lucas Meyer", team: tMarketing, office: oLDN, title: "Product Marketing Manager", browser: 4},
	{id: "usr_fmgt83px", name: "Ava Thompson", team: tMarketing, office: oSF, remote: true, title: "Brand Designer", browser: 5},
	// Finance & Ops
	{id: "usr_t891wb09", name: "Robert Nguyen", team: tFinance, office: oSF, title: "CFO", browser: 1},
	{id: "usr_b9y73my6", name: "Laura Schmidt", team: tFinance, office: oLDN, title: "Controller", browser: 2},
	{id: "usr_3fch26w1", name: "Omar Farouk", team: tFinance, office: oNYC, title: "FP&A Analyst", browser: 2},
	{id: "usr_4wmchwyf", name: "Nina Petrova", team: tFinance, office: oSF, title: "People Operations", browser: 0},
	// Security & IT
	{id: "usr_gcw8t7sw", name: "Olu Adeyemi", team: tSecurity, office: oSF, title: "Head of IT & Security", browser: 0},
	{id: "usr_m4fv4dk7", name: "Rachel Stein", team: tSecurity, office: oSF, title: "Security Engineer", browser: 3},
	{id: "usr_9q9g8xe6", name: "Victor Hughes", team: tSecurity, office: oNYC, title: "IT Administrator", browser: 2},
	{id: "usr_szaeavsn", name: "Mei Lin", team: tSecurity, office: oLDN, title: "Security Analyst", browser: 0},
}

// People the storylines refer to, by index into people.
const (
	pMarcus = 1
	pDaniel = 3
	pRavi   = 10
	pSam    = 13
	pDerek  = 20
	pJess   = 21
	pMegan  = 25
	pZoe    = 27
	pRobert = 32
	pLaura  = 33
	pOlu    = 36
	pRachel = 37
	pVictor = 38
)

// admins are the people who change settings and membership.
var admins = []int{pOlu, pRachel, pVictor}

// newHires are invited during the month.
var newHires = []struct{ name, title string }{
	{"Jordan Reyes", "Backend Engineer"}, {"Anika Sharma", "Account Executive"},
	{"Felix Wagner", "Product Designer"}, {"Maya Johnson", "Marketing Coordinator"},
	{"Samuel Osei", "IT Support Specialist"}, {"Elena Popescu", "Data Analyst"},
}

type service struct{ id, name, ip, ua string }

var (
	svcSCIM   = service{"svc_okta_scim", "Okta SCIM provisioning", ipIdP, "Okta SCIM Client 1.0"}
	svcBroker = service{"svc_token_broker", "Connector token broker", ipBroker, "veritrail-connector-broker/1.4.2"}
	svcBackup = service{"svc_board_backup", "Nightly board backup", ipBackup, "acme-board-backup/2.3 (+https://it.acme.example/backup)"}
)

type agent struct {
	id, name   string
	ua         string
	team       int
	owner      int      // the person who set the agent up
	client     bool     // an interactive MCP client (Claude Desktop, Cursor) used by anyone
	connectors []string // MCP connectors it calls
	actions    []string // agent.action tools it uses
	tasks      []string // task titles it runs
	sites      []int    // the pages it browses, by index into urls
	code       []int    // the code it runs, by index into codeSnippets
	files      []int    // the files it reads and writes, by index into workFiles
}

var agents = [...]agent{
	{id: "agt_claude_desktop", name: "Claude Desktop", ua: "Claude-Desktop/0.12.28 (macOS 14.5) mcp/2025-06-18", team: -1, client: true,
		connectors: []string{"github", "slack", "jira", "google_drive", "notion", "salesforce"}},
	{id: "agt_cursor", name: "Cursor", ua: "Cursor/1.2.4 mcp-client/2025-06-18", team: tEng, client: true,
		connectors: []string{"github", "jira", "notion"}},
	{id: "agt_research_01", name: "Market Research Agent", ua: "acme-agents/3.1 (research)", team: tMarketing, owner: pZoe,
		connectors: []string{"notion", "google_drive", "slack"}, actions: []string{"browser.navigate", "browser.navigate", "file.write"},
		tasks: []string{"Compile competitor pricing changes for the weekly digest", "Summarize analyst coverage of AI whiteboards", "Draft webinar follow-up email from session notes"},
		sites: []int{2, 3}, files: []int{2, 1}},
	{id: "agt_sdr_02", name: "SDR Assistant", ua: "acme-agents/3.1 (sdr)", team: tSales, owner: pJess,
		connectors: []string{"salesforce", "slack", "google_drive"}, actions: []string{"browser.navigate", "file.read"},
		tasks: []string{"Enrich new webinar leads and assign owners", "Prepare account brief for renewal call", "Update stale opportunities from call notes"},
		sites: []int{5, 2}, code: []int{3}, files: []int{3, 4}},
	{id: "agt_review_03", name: "PR Review Agent", ua: "acme-agents/3.1 (code-review)", team: tEng, owner: pMarcus,
		connectors: []string{"github", "jira"}, actions: []string{"code.execute", "file.read", "file.read"},
		tasks: []string{"Review open pull requests in acme/payments", "Check dependency updates for breaking changes", "Triage failing CI on main"},
		sites: []int{6}, code: []int{2}, files: []int{5, 2}},
	{id: "agt_oncall_04", name: "On-call Triage Agent", ua: "acme-agents/3.1 (oncall)", team: tEng, owner: pDaniel,
		connectors: []string{"github", "slack", "jira"}, actions: []string{"browser.navigate", "code.execute", "file.read"},
		tasks: []string{"Investigate elevated 5xx on checkout API", "Summarize overnight alerts for standup", "Roll back feature flag settlement_v2 if error budget burns"},
		sites: []int{0, 1, 4, 6}, code: []int{1, 2}, files: []int{5, 1}},
	{id: "agt_finops_05", name: "Invoice Reconciler", ua: "acme-agents/3.1 (finops)", team: tFinance, owner: pLaura,
		connectors: []string{"google_drive", "slack"}, actions: []string{"file.read", "file.write", "code.execute"},
		tasks: []string{"Reconcile vendor invoices against purchase orders", "Flag duplicate invoices in the AP inbox", "Build month-end accrual worksheet"},
		code:  []int{0}, files: []int{0, 4}},
	{id: "agt_support_06", name: "Support Digest Agent", ua: "acme-agents/3.1 (support)", team: tProduct, owner: pSam,
		connectors: []string{"notion", "jira", "slack"}, actions: []string{"browser.navigate", "file.write"},
		tasks: []string{"Summarize this week's top support themes", "Link duplicate bug reports to Jira issues", "Draft release notes from merged tickets"},
		sites: []int{4, 6}, files: []int{1, 2}},
}

const (
	aClaude   = 0
	aCursor   = 1
	aResearch = 2
	aSDR      = 3
	aReview   = 4
	aOncall   = 5
	aFinops   = 6
	aSupport  = 7
)

type connector struct {
	name, integration, label string
	scopes                   []string
}

var connectors = [...]connector{
	{"github", "int_github", "GitHub (acme)", []string{"repo", "read:org", "workflow"}},
	{"slack", "int_slack", "Slack (acme.slack.example)", []string{"channels:history", "chat:write", "search:read"}},
	{"salesforce", "int_salesforce", "Salesforce (acme.my.salesforce.example)", []string{"api", "refresh_token"}},
	{"jira", "int_jira", "Jira (acme.atlassian.example)", []string{"read:jira-work", "write:jira-work"}},
	{"google_drive", "int_google_drive", "Google Drive (acme.example)", []string{"drive.readonly", "drive.file"}},
	{"notion", "int_notion", "Notion (Acme)", []string{"read_content", "update_content", "insert_content"}},
}

func connectorByName(name string) *connector {
	for i := range connectors {
		if connectors[i].name == name {
			return &connectors[i]
		}
	}
	panic("demo: unknown connector " + name)
}

type board struct {
	id, name string
	team     int
}

var boards = [...]board{
	{name: "Q3 Roadmap", team: tProduct}, {name: "Payments Architecture", team: tEng},
	{name: "Sprint 42 Planning", team: tEng}, {name: "Retro – Sprint 41", team: tEng},
	{name: "Checkout Incident Postmortem", team: tEng}, {name: "Threat Model – Agent Gateway", team: tSecurity},
	{name: "Customer Journey Map", team: tProduct}, {name: "Onboarding Flow v3", team: tProduct},
	{name: "Design System Tokens", team: tProduct}, {name: "User Interviews Synthesis", team: tProduct},
	{name: "Mobile App Wireframes", team: tProduct}, {name: "Sales Territory Plan FY26", team: tSales},
	{name: "Account Plan – Globex", team: tSales}, {name: "QBR – Initech", team: tSales},
	{name: "Competitive Landscape", team: tMarketing}, {name: "Brand Refresh Moodboard", team: tMarketing},
	{name: "Campaign Calendar H2", team: tMarketing}, {name: "Webinar: AI for Ops Teams", team: tMarketing},
	{name: "Budget FY26", team: tFinance}, {name: "Vendor Assessment", team: tFinance},
	{name: "Month-end Close Checklist", team: tFinance}, {name: "SOC 2 Evidence Tracker", team: tSecurity},
	{name: "Access Review Q3", team: tSecurity}, {name: "Kanban – Platform", team: tEng},
	{name: "API Deprecation Plan", team: tEng}, {name: "Pricing Experiments", team: tProduct},
	{name: "Launch Checklist – Atlas", team: tProduct}, {name: "Offsite Agenda", team: tFinance},
}

var templates = [...]struct{ id, name string }{
	{"tpl_kanban", "Kanban Framework"}, {"tpl_retro", "Retrospective"}, {"tpl_journey", "Customer Journey Map"},
	{"tpl_lean", "Lean Canvas"}, {"tpl_mindmap", "Mind Map"}, {"tpl_flowchart", "Flowchart"},
	{"tpl_swot", "SWOT Analysis"}, {"tpl_okr", "OKR Planning"}, {"tpl_eventstorm", "Event Storming"},
}

// Pools the templates draw from.
var (
	repos         = []string{"payments", "web-app", "infra", "mobile", "data-pipeline", "agent-gateway"}
	branches      = []string{"feat/invoice-retry", "fix/settlement-timeout", "chore/bump-deps", "feat/scim-groups", "fix/safari-checkout"}
	paths         = []string{"internal/settlement/retry.go", "web/src/pages/Checkout.tsx", "terraform/prod/rds.tf", "README.md", ".github/workflows/deploy.yml", "pipeline/dags/daily_revenue.py", "config/feature_flags.yaml"}
	symbols       = []string{"settleBatch", "RetryPolicy", "NewClient", "webhookSigningSecret", "DATABASE_URL", "featureFlag"}
	labels        = []string{"bug", "flaky-test", "customer-reported", "tech-debt", "security"}
	titles        = []string{"Flaky settlement test on retries", "Checkout button misaligned on Safari 17", "Rotate RDS credentials for prod", "Retry webhook deliveries with backoff", "Customer reports duplicate invoice", "Upgrade Go toolchain to 1.26", "SSO login loop for newly provisioned users", "Dashboard p95 latency regression", "Export to CSV drops unicode names"}
	bodies        = []string{"Fails roughly 1 in 20 runs when the bank mock times out.", "Reported by two enterprise customers this week; repro steps in the linked ticket.", "Part of the quarterly credential rotation; see runbook.", "Seen after the 4.12 release; bisected to the connection pool change."}
	channels      = []string{"#eng-oncall", "#sales-deals", "#product-launch", "#security", "#finance-ops", "#marketing", "#support-escalations"}
	messages      = []string{"Deploy of payments 4.12.3 finished, error rate back to baseline.", "Heads-up: Globex renewal call moved to Thursday 10am ET.", "Can someone review the Atlas launch checklist before Friday?", "Month-end close starts Monday; please submit expenses by EOD Friday.", "Reminder: access review for Q3 is due next week.", "New webinar leads are in Salesforce and assigned."}
	squeries      = []string{"renewal", "outage", "pricing", "invoice", "SSO", "roadmap", "contract"}
	accounts      = []string{"Globex Corporation", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Retail", "Hooli", "Vandelay Industries", "Soylent Foods"}
	amounts       = []string{"$48,000", "$120,000", "$18,500", "$240,000", "$72,000", "$9,600"}
	prospects     = []struct{ first, last, company string }{{"Alex", "Morgan", "Northwind Traders"}, {"Jamie", "Lin", "Contoso Pharma"}, {"Chris", "Bauer", "Fabrikam Energy"}, {"Pat", "Kowal", "Tailspin Toys"}}
	jprojects     = []string{"PAY", "WEB", "INFRA", "SUP", "MKT"}
	docs          = []string{"FY26 Budget.xlsx", "Board Deck Q3.pptx", "Globex MSA (signed).pdf", "Pricing Sheet 2026.xlsx", "Offsite Agenda.docx", "Vendor Security Questionnaire.docx", "Compensation Bands 2026.xlsx", "AP Aging Report.csv"}
	docQueries    = []string{"budget", "contract", "pricing", "invoice", "questionnaire", "offsite", "salary"}
	pages         = []string{"Support Playbook", "Release Notes 4.12", "Onboarding Checklist", "Incident Runbook: Payments", "Q3 OKRs", "Customer Escalation Process", "Agent Usage Guidelines"}
	extEmails     = []string{"procurement@globex.example", "j.doe@initech.example", "legal@globex.example"} // approved partner domains
	outsideEmails = []string{"dana.partner@agency.example", "freelance.design@studio.example", "me.backup@mail.example"}
	urls          = []struct{ url, title string }{
		{"https://grafana.acme.example/d/checkout-api/checkout-api?orgId=1&from=now-6h", "Checkout API – Grafana"},
		{"https://status.payments-provider.example/incidents", "Payments Provider Status"},
		{"https://www.competitor-one.example/pricing", "Pricing – CompetitorOne"},
		{"https://news.industry-weekly.example/ai-whiteboards-2026", "AI whiteboards: the 2026 landscape"},
		{"https://docs.acme.example/runbooks/payments", "Payments runbook"},
		{"https://crm-enrich.example/company/globex", "Globex Corporation – company profile"},
		{"https://sentry.acme.example/organizations/acme/issues/?project=checkout", "Issues – checkout – Sentry"},
	}
	models  = []string{"gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4", "gemini-2.5-flash"}
	locales = []string{"en-US", "en-US", "en-US", "en-GB", "de-DE"}
)

var varTable = [...]struct {
	name string
	pick func(g *gen) string
}{
	{"repo", func(g *gen) string { return pick(g, repos) }},
	{"branch", func(g *gen) string { return pick(g, branches) }},
	{"path", func(g *gen) string { return pick(g, paths) }},
	{"symbol", func(g *gen) string { return pick(g, symbols) }},
	{"label", func(g *gen) string { return pick(g, labels) }},
	{"title", func(g *gen) string { return pick(g, titles) }},
	{"body", func(g *gen) string { return pick(g, bodies) }},
	{"num", func(g *gen) string { return strconv.Itoa(1200 + g.r.IntN(3800)) }},
	{"num2", func(g *gen) string { return strconv.Itoa(800 + g.r.IntN(900)) }},
	{"n", func(g *gen) string { return strconv.Itoa(2 + g.r.IntN(38)) }},
	{"bytes", func(g *gen) string { return strconv.Itoa(400 + g.r.IntN(24000)) }},
	{"sha", func(g *gen) string { return g.hex(7) }},
	{"channel", func(g *gen) string { return pick(g, channels) }},
	{"cid", func(g *gen) string { return "C0" + strings.ToUpper(g.token(8)) }},
	{"msg", func(g *gen) string { return pick(g, messages) }},
	{"squery", func(g *gen) string { return pick(g, squeries) }},
	{"account", func(g *gen) string { return pick(g, accounts) }},
	{"amount", func(g *gen) string { return pick(g, amounts) }},
	{"amountn", func(g *gen) string { return strconv.Itoa(5000 * (2 + g.r.IntN(60))) }},
	{"sfid", func(g *gen) string { return "5g" + g.token(10) }},
	{"limit", func(g *gen) string { return strconv.Itoa(25 * (1 + g.r.IntN(8))) }},
	{"pfirst", func(g *gen) string { return prospects[g.prospect()].first }},
	{"plast", func(g *gen) string { return prospects[g.prospect()].last }},
	{"pcompany", func(g *gen) string { return prospects[g.prospect()].company }},
	{"pemail", func(g *gen) string {
		p := prospects[g.prospect()]
		return strings.ToLower(p.first+"."+p.last) + "@" + strings.ToLower(strings.Fields(p.company)[0]) + ".example"
	}},
	{"jproj", func(g *gen) string { return pick(g, jprojects) }},
	{"person", func(g *gen) string { return g.peer().name }},
	{"email", func(g *gen) string { return g.peer().email }},
	{"handle", func(g *gen) string { return strings.SplitN(g.peer().email, "@", 2)[0] }},
	{"doc", func(g *gen) string { return pick(g, docs) }},
	{"dq", func(g *gen) string { return pick(g, docQueries) }},
	{"gid", func(g *gen) string { return g.token(20) }},
	{"ext", func(g *gen) string { return pick(g, extEmails) }},
	{"page", func(g *gen) string { return pick(g, pages) }},
	{"nid", func(g *gen) string { return g.hex(32) }},
	{"team", func(g *gen) string { return teams[g.r.IntN(len(teams))].name }},
	{"board", func(g *gen) string { return boards[g.r.IntN(len(boards))].name }},
	{"items", func(g *gen) string { return strconv.Itoa(3 + g.r.IntN(60)) }},
}

func varID(name string) int {
	for i := range varTable {
		if varTable[i].name == name {
			return i
		}
	}
	panic("demo: unknown template variable $" + name)
}

// Variables that storylines pin.
var (
	vAccount = varID("account")
	vLimit   = varID("limit")
	vExt     = varID("ext")
	vDoc     = varID("doc")
	vDQ      = varID("dq")
	vBoard   = varID("board")
)

func pick[T any](g *gen, s []T) T { return s[g.r.IntN(len(s))] }

func init() {
	for i := range people {
		p := &people[i]
		p.email = emailOf(p.name)
		// A stable home address per person from RFC 2544's 198.18.0.0/15.
		h := fnv.New32a()
		h.Write([]byte(p.id))
		v := h.Sum32()
		p.home = "198.18." + strconv.Itoa(int(v>>8&0xff)) + "." + strconv.Itoa(int(v&0xff)|1)
	}
	for i := range boards {
		boards[i].id = miroID(boards[i].name)
	}
	for i := range tools {
		t := &tools[i]
		t.argsT, t.resultT, t.piiT = compile(t.args), compile(t.result), compile(t.pii)
		for j := range t.reqs {
			t.reqs[j].urlT = compile(t.reqs[j].url)
		}
		connectorByName(t.connector)
	}
	for i := range aiModerated {
		aiModerated[i].promptT = compile(aiModerated[i].prompt)
	}
	if len(varTable) > maxVars {
		panic("demo: too many template variables")
	}
	for i := range aiPrompts {
		a := &aiPrompts[i]
		a.promptT, a.responseT = compile(a.prompt), compile(a.response)
	}
}

// emailOf turns "Liam O'Brien" into liam.obrien@acme.example.
func emailOf(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('.')
		case r == 'é':
			b.WriteByte('e')
		}
	}
	return b.String() + "@" + domain
}

// miroID derives a Miro-style board id ("uXjVK…=") from a name.
func miroID(name string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	h := fnv.New64a()
	h.Write([]byte(name))
	v := h.Sum64()
	b := []byte("uXjVK")
	for range 6 {
		b = append(b, alpha[v&63])
		v >>= 6
	}
	return string(b) + "="
}
