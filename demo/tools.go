package demo

// MCP tools reachable through the gateway, by connector. args is the JSON
// object of arguments, result the text of a successful response, pii the
// text a DLP policy redacted (empty when the tool never returns personal
// data), reqs the connector API requests a call makes. Templates use the
// $variables of varTable.
type tool struct {
	connector, name string
	write           bool
	ms              int // typical duration of a call
	args            string
	result          string
	pii             string
	piiPolicy       string
	piiReason       string
	reqs            []apiReq
	block           *block  // the policy most likely to block it
	blockRate       float64 // chance a call is blocked; 0 means the default
	weight          int     // how often it is picked among its connector's tools; 0 means 10
	argsT, resultT  tmpl
	piiT            tmpl
}

type apiReq struct {
	method, url string
	status      int
	urlT        tmpl
}

type block struct {
	policy, reason string
	pin            func(g *gen) // pins variables so the arguments match the reason
}

const (
	gh = "https://api.github.example/repos/acme/$repo"
	sf = "https://acme.my.salesforce.example/services/data/v61.0"
	jr = "https://acme.atlassian.example/rest/api/3"
	gd = "https://www.googleapis.example/drive/v3/files"
	nt = "https://api.notion.example/v1"
	sl = "https://slack.example/api"
)

var tools = [...]tool{
	// GitHub
	{connector: "github", name: "create_issue", write: true, ms: 650,
		args:   `{"owner":"acme","repo":"$repo","title":"$title","body":"$body","labels":["$label"]}`,
		result: "Created issue #$num in acme/$repo: $title",
		reqs:   []apiReq{{method: "POST", url: gh + "/issues", status: 201}}},
	{connector: "github", name: "list_pull_requests", ms: 420,
		args:   `{"owner":"acme","repo":"$repo","state":"open","per_page":30}`,
		result: "Found $n open pull requests in acme/$repo. Most recent: #$num \"$title\" by @$handle, updated 2 hours ago, checks passing.",
		reqs:   []apiReq{{method: "GET", url: gh + "/pulls?state=open&per_page=30", status: 200}}},
	{connector: "github", name: "get_file_contents", ms: 380,
		args:      `{"owner":"acme","repo":"$repo","path":"$path","ref":"main"}`,
		result:    "$path ($bytes bytes, blob $sha) on main:\n// Package settlement batches card settlements and retries failed transfers.\npackage settlement\n\nconst maxAttempts = 5\n...",
		pii:       "$path ($bytes bytes, blob $sha) on main:\nGITHUB_TOKEN=[REDACTED:github_token]\nSTRIPE_KEY=[REDACTED:stripe_secret_key]\n...",
		piiPolicy: "dlp-secrets", piiReason: "response contained 2 credentials (GitHub token, Stripe secret key)",
		reqs: []apiReq{{method: "GET", url: gh + "/contents/$path?ref=main", status: 200}}},
	{connector: "github", name: "search_code", ms: 900,
		args:   `{"q":"$symbol repo:acme/$repo","per_page":20}`,
		result: "$n results for $symbol in acme/$repo; first: $path (line $num2).",
		reqs:   []apiReq{{method: "GET", url: "https://api.github.example/search/code?q=$symbol+repo:acme/$repo&per_page=20", status: 200}}},
	{connector: "github", name: "create_pull_request", write: true, ms: 1100,
		args:   `{"owner":"acme","repo":"$repo","title":"$title","head":"$branch","base":"main","draft":false}`,
		result: "Opened pull request #$num in acme/$repo: $title ($branch → main).",
		reqs:   []apiReq{{method: "GET", url: gh + "/branches/$branch", status: 200}, {method: "POST", url: gh + "/pulls", status: 201}}},
	{connector: "github", name: "merge_pull_request", write: true, ms: 1400,
		args:   `{"owner":"acme","repo":"$repo","pull_number":$num,"merge_method":"squash"}`,
		result: "Pull request #$num merged into main as $sha.",
		reqs:   []apiReq{{method: "GET", url: gh + "/pulls/$num/reviews", status: 200}, {method: "PUT", url: gh + "/pulls/$num/merge", status: 200}},
		block:  &block{policy: "change-management", reason: "merging to protected branch main requires an approving human review"}, blockRate: 0.25, weight: 3},

	// Slack
	{connector: "slack", name: "post_message", write: true, ms: 300,
		args:   `{"channel":"$channel","text":"$msg"}`,
		result: "Message posted to $channel (ts 1718$num.00$num2).",
		reqs:   []apiReq{{method: "POST", url: sl + "/chat.postMessage", status: 200}},
		block: &block{policy: "broadcast-channels", reason: "agents may not post to org-wide channels such as #general",
			pin: func(g *gen) { g.setVar(varID("channel"), "#general") }}},
	{connector: "slack", name: "search_messages", ms: 700,
		args:      `{"query":"$squery","count":20}`,
		result:    "Found $n messages for \"$squery\". Top: @$handle in $channel: \"$msg\"",
		pii:       "Found $n messages for \"$squery\". Top: @$handle in $channel: \"customer [REDACTED:email] asked us to charge card [REDACTED:credit_card] for the renewal\"",
		piiPolicy: "dlp-pii", piiReason: "response contained a payment card number and a customer email address",
		reqs: []apiReq{{method: "GET", url: sl + "/search.messages?query=$squery&count=20", status: 200}}},
	{connector: "slack", name: "get_channel_history", ms: 450,
		args:   `{"channel":"$channel","limit":50}`,
		result: "Returned 50 messages from $channel; latest from @$handle: \"$msg\"",
		reqs:   []apiReq{{method: "GET", url: sl + "/conversations.history?channel=$cid&limit=50", status: 200}}},
	{connector: "slack", name: "list_channels", ms: 260,
		args:   `{"types":"public_channel","limit":200}`,
		result: "Returned 87 public channels.",
		reqs:   []apiReq{{method: "GET", url: sl + "/conversations.list?types=public_channel&limit=200", status: 200}}},

	// Salesforce
	{connector: "salesforce", name: "query_records", ms: 800,
		args:   `{"soql":"SELECT Id, Name, StageName, Amount, CloseDate FROM Opportunity WHERE Account.Name = '$account' AND IsClosed = false"}`,
		result: "$n records. $account – Renewal FY26: $amount, stage Negotiation, close date end of quarter, owner $person.",
		reqs:   []apiReq{{method: "GET", url: sf + "/query?q=SELECT+Id,Name,StageName,Amount,CloseDate+FROM+Opportunity", status: 200}}},
	{connector: "salesforce", name: "get_account", ms: 520,
		args:      `{"account_id":"001$sfid"}`,
		result:    "$account: industry Retail, account owner $person, ARR $amount, health score 72, 3 open opportunities.",
		pii:       "$account: primary contact [REDACTED:person_name] <[REDACTED:email]>, mobile [REDACTED:phone], billing address [REDACTED:address].",
		piiPolicy: "dlp-pii", piiReason: "response contained contact details of a customer (name, email, phone, address)",
		reqs: []apiReq{{method: "GET", url: sf + "/sobjects/Account/001$sfid", status: 200}, {method: "GET", url: sf + "/sobjects/Account/001$sfid/Contacts", status: 200}}},
	{connector: "salesforce", name: "update_opportunity", write: true, ms: 610,
		args:   `{"opportunity_id":"006$sfid","fields":{"StageName":"Negotiation","Amount":$amountn,"NextStep":"Send revised order form"}}`,
		result: "Opportunity 006$sfid updated (StageName, Amount, NextStep).",
		reqs:   []apiReq{{method: "PATCH", url: sf + "/sobjects/Opportunity/006$sfid", status: 204}}},
	{connector: "salesforce", name: "export_contacts", ms: 2400,
		args:   `{"account":"$account","fields":["Name","Email","Phone","Title"],"limit":$limit}`,
		result: "Exported $limit contacts of $account to contacts_export.csv.",
		reqs:   []apiReq{{method: "GET", url: sf + "/query?q=SELECT+Name,Email,Phone,Title+FROM+Contact", status: 200}},
		block: &block{policy: "dlp-bulk-export", reason: "bulk export of customer contacts is limited to 500 records for role member",
			pin: func(g *gen) { g.setVar(vLimit, pick(g, []string{"2000", "5000", "25000"})) }},
		blockRate: 0.3, weight: 1},
	{connector: "salesforce", name: "create_lead", write: true, ms: 540, weight: 5,
		args:   `{"FirstName":"$pfirst","LastName":"$plast","Company":"$pcompany","Email":"$pemail","LeadSource":"Webinar"}`,
		result: "Lead 00Q$sfid created for $pfirst $plast ($pcompany).",
		reqs:   []apiReq{{method: "POST", url: sf + "/sobjects/Lead", status: 201}}},

	// Jira
	{connector: "jira", name: "create_issue", write: true, ms: 700,
		args:   `{"project":"$jproj","issuetype":"Bug","summary":"$title","priority":"High","labels":["$label"]}`,
		result: "Created $jproj-$num2: $title",
		reqs:   []apiReq{{method: "POST", url: jr + "/issue", status: 201}}},
	{connector: "jira", name: "search_issues", ms: 560,
		args:   `{"jql":"project = $jproj AND status != Done ORDER BY priority DESC","maxResults":25}`,
		result: "$n issues. Top: $jproj-$num2 \"$title\" (In Progress, assignee $person).",
		reqs:   []apiReq{{method: "POST", url: jr + "/search/jql", status: 200}}},
	{connector: "jira", name: "transition_issue", write: true, ms: 480,
		args:   `{"issue":"$jproj-$num2","transition":"Done","comment":"Fixed in acme/$repo#$num"}`,
		result: "$jproj-$num2 moved to Done.",
		reqs:   []apiReq{{method: "GET", url: jr + "/issue/$jproj-$num2/transitions", status: 200}, {method: "POST", url: jr + "/issue/$jproj-$num2/transitions", status: 204}}},
	{connector: "jira", name: "add_comment", write: true, ms: 390,
		args:   `{"issue":"$jproj-$num2","body":"$msg"}`,
		result: "Comment added to $jproj-$num2.",
		reqs:   []apiReq{{method: "POST", url: jr + "/issue/$jproj-$num2/comment", status: 201}}},

	// Google Drive
	{connector: "google_drive", name: "search_files", ms: 480,
		args:   `{"query":"name contains '$dq'","pageSize":10}`,
		result: "$n files match \"$dq\". First: $doc (owner $email, modified yesterday).",
		reqs:   []apiReq{{method: "GET", url: gd + "?q=name+contains+'$dq'&pageSize=10", status: 200}}},
	{connector: "google_drive", name: "read_file", ms: 900,
		args:      `{"file_id":"1$gid","mime_type":"text/plain"}`,
		result:    "$doc ($bytes bytes): Summary tab – totals by department, variance against plan, notes from the last review.",
		pii:       "$doc ($bytes bytes): employee [REDACTED:person_name], SSN [REDACTED:us_ssn], base salary [REDACTED:salary], bank account [REDACTED:iban].",
		piiPolicy: "dlp-pii", piiReason: "response contained employee identifiers and compensation data",
		reqs: []apiReq{{method: "GET", url: gd + "/1$gid?fields=name,mimeType,size", status: 200}, {method: "GET", url: gd + "/1$gid/export?mimeType=text/plain", status: 200}}},
	{connector: "google_drive", name: "share_file", write: true, ms: 620,
		args:   `{"file_id":"1$gid","email":"$ext","role":"writer","notify":false}`,
		result: "Shared $doc with $ext as writer.",
		reqs:   []apiReq{{method: "POST", url: gd + "/1$gid/permissions?sendNotificationEmail=false", status: 200}},
		block: &block{policy: "external-sharing", reason: "sharing files outside acme.example and the approved partner domains requires an approved request",
			pin: func(g *gen) { g.setVar(vExt, pick(g, outsideEmails)) }},
		blockRate: 0.3, weight: 4},
	{connector: "google_drive", name: "create_document", write: true, ms: 750,
		args:   `{"title":"$title – notes","folder":"Shared drives/$team"}`,
		result: "Created document \"$title – notes\" in Shared drives/$team.",
		reqs:   []apiReq{{method: "POST", url: gd + "?supportsAllDrives=true", status: 200}}},

	// Notion
	{connector: "notion", name: "search", ms: 520,
		args:   `{"query":"$page","filter":{"property":"object","value":"page"}}`,
		result: "$n pages. Best match: $page (last edited by $person).",
		reqs:   []apiReq{{method: "POST", url: nt + "/search", status: 200}}},
	{connector: "notion", name: "get_page", ms: 640,
		args:      `{"page_id":"$nid"}`,
		result:    "$page — last edited by $person. 14 blocks: overview, owners, steps, escalation contacts in #support-escalations.",
		pii:       "$page — escalation log: customer [REDACTED:email] (phone [REDACTED:phone]) reported card [REDACTED:credit_card] charged twice.",
		piiPolicy: "dlp-pii", piiReason: "response contained a payment card number and customer contact details",
		reqs: []apiReq{{method: "GET", url: nt + "/pages/$nid", status: 200}, {method: "GET", url: nt + "/blocks/$nid/children?page_size=100", status: 200}}},
	{connector: "notion", name: "create_page", write: true, ms: 700,
		args:   `{"parent":{"page_id":"$nid"},"properties":{"title":"$title"}}`,
		result: "Created page \"$title\".",
		reqs:   []apiReq{{method: "POST", url: nt + "/pages", status: 200}}},
	{connector: "notion", name: "update_page", write: true, ms: 430,
		args:   `{"page_id":"$nid","properties":{"Status":"Done","Owner":"$person"}}`,
		result: "Updated $page (Status, Owner).",
		reqs:   []apiReq{{method: "PATCH", url: nt + "/pages/$nid", status: 200}}},
}

// situational are the policies that block any tool now and then.
var situational = []struct {
	policy, reason string
	write          bool // applies to write tools only
}{
	{"human-in-the-loop", "write actions need the user's confirmation; none was given within 60s", true},
	{"session-rate-limit", "more than 40 tool calls in 5 minutes in this session", false},
	{"restricted-data", "the request matched the restricted-data classifier (customer financials)", false},
}

func toolByName(connector, name string) *tool {
	for i := range tools {
		if tools[i].connector == connector && tools[i].name == name {
			return &tools[i]
		}
	}
	panic("demo: unknown tool " + connector + "." + name)
}

// AI features of the whiteboard, with prompt/response pairs.
type aiPrompt struct {
	feature            string
	prompt, response   string
	promptT, responseT tmpl
}

var aiPrompts = [...]aiPrompt{
	{feature: "ai_generate_sticky_notes",
		prompt:   "Generate 6 sticky notes with the main risks for the $board launch",
		response: "1. Vendor migration slips past the code freeze\n2. SSO edge cases for newly provisioned users\n3. Support team not trained on the new billing flow\n4. Load on checkout API during the launch email\n5. Translations for de-DE not reviewed\n6. Pricing page and order form disagree on seat minimums"},
	{feature: "ai_summarize_board",
		prompt:   "Summarize this board for an exec update, 5 bullets max",
		response: "- Scope is frozen; 3 of 14 items still in design review\n- Biggest risk: dependency on the payments provider's new API, owner $person\n- Launch target unchanged, contingent on security review sign-off\n- Customer interviews (n=$n) support the simplified onboarding\n- Decision needed: whether to ship the mobile app in the same release"},
	{feature: "ai_generate_diagram",
		prompt:   "Create a sequence diagram of the checkout flow: browser, web app, payments API, bank, webhook worker",
		response: "Created a sequence diagram with 5 participants and 11 messages: browser → web app (POST /checkout), web app → payments API (create intent), payments API → bank (authorize), bank → payments API (approved), payments API → webhook worker (intent.succeeded), webhook worker → web app (mark order paid)."},
	{feature: "ai_cluster_stickies",
		prompt:   "Cluster the $items selected stickies by theme and name each cluster",
		response: "Grouped $items stickies into 4 clusters: \"Onboarding friction\" (11), \"Pricing confusion\" (7), \"Performance\" (5), \"Integrations wishlist\" (9). 3 stickies did not fit any cluster and were left in place."},
	{feature: "ai_sidekick_chat",
		prompt:   "What are the open action items assigned to $person on this board?",
		response: "$person has 3 open action items: (1) confirm the data retention wording with Legal, (2) share the updated wireframes for the settings page, (3) book the follow-up with $account. Two were created in the last retro and one is overdue by 4 days."},
	{feature: "ai_create_doc",
		prompt:   "Draft a one-page PRD from the selected items for the $board workstream",
		response: "# $board – PRD (draft)\n## Problem\nTeams lose track of decisions made on boards.\n## Goals\n- Capture decisions with owner and date\n- Surface open decisions in weekly review\n## Non-goals\n- Replacing the ticket tracker\n## Success metrics\n- 60% of active boards use decision cards within a quarter"},
	{feature: "ai_sidekick_chat",
		prompt:   "Rewrite these meeting notes as a customer-facing recap for $account, friendly tone",
		response: "Hi team at $account, thanks for the time today! Recap: we walked through the Q3 roadmap, agreed on a pilot for 40 seats starting next month, and $person will send the security questionnaire answers by Friday. Let us know if we missed anything."},
	{feature: "ai_translate",
		prompt:   "Translate the selected stickies to German",
		response: "Translated $items stickies to German (de-DE). Example: \"Onboarding friction\" → \"Hürden beim Onboarding\"."},
}

// aiInstructions is the system context the whiteboard's AI runs with.
const aiInstructions = "You are Acme's whiteboard assistant. Answer using only the board content and the user's selection. Follow the organization AI policy acme-ai-v3: no customer personal data in outputs, no credentials, cite board items by id."
