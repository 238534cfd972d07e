package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/config"
)

// readmeRow is one row of README.md's configuration table.
type readmeRow struct {
	line   int
	cmd    string   // the command its flags are of; "" for serve or any
	flags  []string // without dashes
	envs   []string
	secret map[string]bool // envs marked (`_FILE`)
	def    string          // the default cell, without backticks
}

var backticked = regexp.MustCompile("`([^`]*)`")

// readmeConfigTable parses the table under "## Configuration".
func readmeConfigTable(t *testing.T) []readmeRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	start := slices.Index(lines, "## Configuration")
	if start < 0 {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	var rows []readmeRow
	inTable := false
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "|") {
			if inTable || strings.HasPrefix(l, "#") {
				break
			}
			continue
		}
		if !inTable { // the header row and the separator row
			inTable = true
			i++
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) < 4 {
			t.Fatalf("README.md:%d: want 4 cells: %s", i+1, l)
		}
		r := readmeRow{line: i + 1, secret: map[string]bool{}, def: strings.ReplaceAll(strings.TrimSpace(cells[2]), "`", "")}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			for _, w := range strings.Fields(m[1]) {
				if f, ok := strings.CutPrefix(w, "--"); ok {
					r.flags = append(r.flags, f)
				} else {
					r.cmd = w
				}
			}
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			switch {
			case m[1] == "_FILE" && len(r.envs) > 0:
				r.secret[r.envs[len(r.envs)-1]] = true
			case strings.HasPrefix(m[1], "VERITRAIL_"):
				r.envs = append(r.envs, m[1])
			default:
				t.Errorf("README.md:%d: %q in the env column is no variable", r.line, m[1])
			}
		}
		rows = append(rows, r)
	}
	if len(rows) < 10 {
		t.Fatalf("README.md's configuration table: only %d rows found", len(rows))
	}
	return rows
}

// documented reports whether README.md's table must list a setting of
// command cmd: every variable, and every flag of the two long-running
// commands (other commands' flags are listed by -h).
func documented(cmd string, st *config.Setting) bool {
	return st.Env != "" || cmd == "serve" || cmd == "mcp-proxy"
}

// TestREADMEConfigurationTable fails when a flag or variable exists in the
// code but not in README.md's configuration table, or the other way
// round, or when the two disagree on pairing, _FILE or default.
func TestREADMEConfigurationTable(t *testing.T) {
	rows := readmeConfigTable(t)
	type codeSetting struct {
		cmd string
		st  *config.Setting
	}
	var code []codeSetting
	for _, s := range allSettings() {
		cmd := strings.Fields(s.Name())[0]
		for _, st := range s.Settings() {
			code = append(code, codeSetting{cmd, st})
		}
	}
	inScope := func(r readmeRow, cmd string) bool { return r.cmd == "" || r.cmd == cmd }

	// Code → README.
	for _, c := range code {
		if !documented(c.cmd, c.st) {
			continue
		}
		name := strings.TrimSpace(c.cmd + " --" + c.st.Flag + " " + c.st.Env)
		if c.st.Flag == "" {
			name = c.st.Env
		}
		i := slices.IndexFunc(rows, func(r readmeRow) bool {
			return (c.st.Flag == "" || inScope(r, c.cmd) && slices.Contains(r.flags, c.st.Flag)) &&
				(c.st.Env == "" || slices.Contains(r.envs, c.st.Env))
		})
		if i < 0 {
			t.Errorf("README.md's configuration table has no row for %s", name)
			continue
		}
		r := rows[i]
		if c.st.Env != "" && r.secret[c.st.Env] != c.st.IsSecret() {
			t.Errorf("README.md:%d: %s: (`_FILE`) %v in README, secret %v in the code", r.line, name, r.secret[c.st.Env], c.st.IsSecret())
		}
		if c.st.Default != "" && !strings.Contains(r.def, c.st.Default) {
			t.Errorf("README.md:%d: %s: default %q in the code, not in the default cell %q", r.line, name, c.st.Default, r.def)
		}
	}

	// README → code.
	for _, r := range rows {
		for _, f := range r.flags {
			if !slices.ContainsFunc(code, func(c codeSetting) bool { return c.st.Flag == f && inScope(r, c.cmd) }) {
				t.Errorf("README.md:%d: %s is no flag of the code", r.line, strings.TrimSpace(r.cmd+" --"+f))
			}
		}
		for _, e := range r.envs {
			if !slices.ContainsFunc(code, func(c codeSetting) bool { return c.st.Env == e }) {
				t.Errorf("README.md:%d: %s is no variable of the code", r.line, e)
			}
		}
		// A row of one flag and one variable pairs them.
		if len(r.flags) == 1 && len(r.envs) == 1 && !slices.ContainsFunc(code, func(c codeSetting) bool {
			return c.st.Flag == r.flags[0] && c.st.Env == r.envs[0] && inScope(r, c.cmd)
		}) {
			t.Errorf("README.md:%d: --%s and %s are not one setting in the code", r.line, r.flags[0], r.envs[0])
		}
	}
}

// TestSettingsDeclared: every setting has words for -h and a variable
// named VERITRAIL_*, and every default parses (no variables set).
func TestSettingsDeclared(t *testing.T) {
	for _, s := range allSettings() {
		for _, st := range s.Settings() {
			if st.Usage == "" || st.Want == "" || st.Flag == "" && st.Env == "" {
				t.Errorf("%s: a setting without usage, form or name: %+v", s.Name(), st)
			}
			if st.Env != "" && !strings.HasPrefix(st.Env, "VERITRAIL_") {
				t.Errorf("%s: variable %s is not VERITRAIL_*", s.Name(), st.Env)
			}
		}
		s.LookupEnv = func(string) (string, bool) { return "", false }
		_, err := s.Parse(nil)
		// Commands with a setting no default can stand for.
		if want, ok := map[string]string{"mcp-proxy": "--server and a token", "verify": "give exactly one of --data", "monitor": "--logs FILE is required"}[s.Name()]; ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s without its required setting: %v", s.Name(), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s with its defaults: %v", s.Name(), err)
		}
	}
}

// TestServeSettings: serve's values from variables and flags, and the
// refusals of malformed ones, word for word.
func TestServeSettings(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("pem"), 0o600)
	smtpFile := filepath.Join(dir, "smtp-url")
	os.WriteFile(smtpFile, []byte("smtp://u:hunter2@mail.example:587\n"), 0o600)
	cases := []struct {
		name  string
		args  []string
		vars  map[string]string
		check func(c *serveConfig) bool
		err   string // the whole error, when refused
	}{
		{name: "defaults", check: func(c *serveConfig) bool {
			return c.addr == "127.0.0.1:8080" && c.store.data == "./veritrail-data" && c.rateLimit == 6000 && c.retentionEvery == time.Hour &&
				c.limits.MaxBatchEvents == 10000 && c.limits.MaxFuture == 24*time.Hour && c.sinkPoll == 200*time.Millisecond && !c.demo
		}},
		{name: "variables", vars: map[string]string{"VERITRAIL_RATE_LIMIT": "120", "VERITRAIL_DEMO": "true", "VERITRAIL_RETENTION_INTERVAL": "0",
			"VERITRAIL_SMTP_URL_FILE": smtpFile, "VERITRAIL_SMTP_CA_FILE": ca, "VERITRAIL_WITNESS_URLS": "https://w1.example,https://w2.example"},
			check: func(c *serveConfig) bool {
				return c.rateLimit == 120 && c.demo && c.retentionEvery == 0 && c.smtpURL == "smtp://u:hunter2@mail.example:587" &&
					c.smtpCA == ca && len(c.witnesses) == 2
			}},
		{name: "flags over variables", args: []string{"--rate-limit", "0", "--addr", ":9000", "--demo=false"},
			vars:  map[string]string{"VERITRAIL_RATE_LIMIT": "120", "VERITRAIL_ADDR": "127.0.0.1:1", "VERITRAIL_DEMO": "1"},
			check: func(c *serveConfig) bool { return c.rateLimit == 0 && c.addr == ":9000" && !c.demo }},
		{name: "rate limit not a number", vars: map[string]string{"VERITRAIL_RATE_LIMIT": "abc"},
			err: `VERITRAIL_RATE_LIMIT="abc": want a whole number of requests per minute, like 6000 (0: no limit)`},
		{name: "negative rate limit flag", args: []string{"--rate-limit", "-5"},
			err: `--rate-limit="-5": want a whole number of requests per minute, like 6000 (0: no limit)`},
		{name: "duration without unit", vars: map[string]string{"VERITRAIL_EXPORT_TTL": "24"},
			err: `VERITRAIL_EXPORT_TTL="24": want a duration like 1h30m, 30s or 500ms, at least 1m`},
		{name: "negative retention", args: []string{"--retention-interval=-1h"},
			err: `--retention-interval="-1h": want a duration like 1h30m, 30s or 500ms, or 0`},
		{name: "bool", vars: map[string]string{"VERITRAIL_DEMO": "yes"}, err: `VERITRAIL_DEMO="yes": want true or false`},
		{name: "address", vars: map[string]string{"VERITRAIL_ADDR": "8080"}, err: `VERITRAIL_ADDR="8080": want host:port, like 127.0.0.1:8080 or :8080`},
		{name: "public URL", args: []string{"--public-url", "audit.example.com"},
			err: `--public-url="audit.example.com": want a URL starting with http:// or https:// and naming a host: no scheme`},
		{name: "PostgreSQL URL is a secret", vars: map[string]string{"VERITRAIL_DB": "host=db password=hunter2"},
			err: `VERITRAIL_DB (not shown: a secret): want a URL starting with postgres:// or postgresql:// and naming a host`},
		{name: "SMTP URL twice", vars: map[string]string{"VERITRAIL_SMTP_URL": "smtp://mail.example", "VERITRAIL_SMTP_URL_FILE": smtpFile},
			err: `VERITRAIL_SMTP_URL and VERITRAIL_SMTP_URL_FILE are both set: keep one (the _FILE one keeps the secret out of the environment)`},
		{name: "missing CA file", vars: map[string]string{"VERITRAIL_SMTP_CA_FILE": filepath.Join(dir, "nope.pem")},
			err: `VERITRAIL_SMTP_CA_FILE="` + filepath.Join(dir, "nope.pem") + `": want the path of a readable file: no such file or directory`},
		{name: "missing signing key file", vars: map[string]string{"VERITRAIL_SIGNING_KEY_FILE": filepath.Join(dir, "key")},
			err: `VERITRAIL_SIGNING_KEY_FILE="` + filepath.Join(dir, "key") + `": want the path of a readable file: no such file or directory`},
		{name: "short link key", vars: map[string]string{"VERITRAIL_LINK_KEY": "short"},
			err: "VERITRAIL_LINK_KEY (not shown: a secret): want at least 32 characters, like the output of `openssl rand -hex 32`"},
		{name: "log level", vars: map[string]string{"VERITRAIL_LOG_LEVEL": "verbose"}, err: `VERITRAIL_LOG_LEVEL="verbose": want debug, info, warn or error`},
		{name: "log origin", args: []string{"--log-origin", "audit log"},
			err: `--log-origin="audit log": want a host-like name without spaces or '+', like audit.example.com`},
		{name: "sender", vars: map[string]string{"VERITRAIL_SMTP_FROM": "Veritrail <v@example.com>"},
			err: `VERITRAIL_SMTP_FROM="Veritrail <v@example.com>": want an e-mail address alone, like veritrail@example.com`},
		{name: "witness", vars: map[string]string{"VERITRAIL_WITNESS_URLS": "https://w1.example,w2"},
			err: `VERITRAIL_WITNESS_URLS="https://w1.example,w2": want a comma-separated list of URL starting with http:// or https:// and naming a host: "w2": no scheme`},
		{name: "zero batch", args: []string{"--max-batch-events", "0"}, err: `--max-batch-events="0": want a whole number, 1 or more`},
		{name: "several at once", args: []string{"--max-batch-events", "0"}, vars: map[string]string{"VERITRAIL_RATE_LIMIT": "abc"},
			err: "--max-batch-events=\"0\": want a whole number, 1 or more\nVERITRAIL_RATE_LIMIT=\"abc\": want a whole number of requests per minute, like 6000 (0: no limit)"},
		{name: "event over body", args: []string{"--max-event-bytes", "2000", "--max-body-bytes", "1000"},
			err: "--max-event-bytes (2000) is larger than --max-body-bytes (1000), so no request could carry such an event: lower the first or raise the second"},
		{name: "read scheduling defaults", check: func(c *serveConfig) bool {
			return c.readSharePercent == 10 && c.readBusyPercent == 50 && c.readMaxWait == 30*time.Second
		}},
		{name: "read scheduling", vars: map[string]string{"VERITRAIL_READ_SHARE": "25", "VERITRAIL_READ_BUSY_THRESHOLD": "80", "VERITRAIL_READ_MAX_WAIT": "5s"},
			check: func(c *serveConfig) bool {
				return c.readSharePercent == 25 && c.readBusyPercent == 80 && c.readMaxWait == 5*time.Second && c.admission() != nil
			}},
		{name: "read share over 100", args: []string{"--read-share", "150"},
			err: `--read-share="150": want a whole percentage from 1 to 100, like 10`},
		{name: "read share 0", vars: map[string]string{"VERITRAIL_READ_SHARE": "0"},
			err: `VERITRAIL_READ_SHARE="0": want a whole percentage from 1 to 100, like 10`},
		{name: "busy threshold not a number", vars: map[string]string{"VERITRAIL_READ_BUSY_THRESHOLD": "0.5"},
			err: `VERITRAIL_READ_BUSY_THRESHOLD="0.5": want a whole percentage from 1 to 100, like 50`},
		{name: "read max wait", args: []string{"--read-max-wait", "0"},
			err: `--read-max-wait="0": want a duration like 1h30m, 30s or 500ms, at least 1ms`},
		{name: "stats cache", vars: map[string]string{"VERITRAIL_STATS_CACHE_MB": "32"},
			check: func(c *serveConfig) bool { return c.store.statsCacheMB == 32 }},
		{name: "stats cache negative", args: []string{"--stats-cache-mb", "-1"},
			err: `--stats-cache-mb="-1": want a whole number from 0 to 1048576`},
		{name: "index bucket shift default", check: func(c *serveConfig) bool { return c.store.bucketShift == 14 }},
		{name: "index bucket shift", vars: map[string]string{"VERITRAIL_INDEX_BUCKET_SHIFT": "12"},
			check: func(c *serveConfig) bool { return c.store.bucketShift == 12 }},
		{name: "index bucket shift too small", args: []string{"--index-bucket-shift", "3"},
			err: `--index-bucket-shift="3": want a whole number from 4 to 20`},
		{name: "index bucket shift too large", args: []string{"--index-bucket-shift", "21"},
			err: `--index-bucket-shift="21": want a whole number from 4 to 20`},
		{name: "backoffs crossed", vars: map[string]string{"VERITRAIL_SINK_MIN_BACKOFF": "10m"},
			err: "--sink-min-backoff (10m) is longer than --sink-max-backoff (5m): lower the first or raise the second"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg serveConfig
			s := cfg.settings()
			s.LookupEnv = func(name string) (string, bool) { v, ok := c.vars[name]; return v, ok }
			_, err := s.Parse(c.args)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("got error\n  %v\nwant\n  %s", err, c.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatal("the error shows a secret")
				}
				return
			}
			if err != nil || !c.check(&cfg) {
				t.Fatalf("%v %+v", err, cfg)
			}
		})
	}
}

// TestCommandSettings: the other commands refuse nonsense before they do
// anything.
func TestCommandSettings(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		set  func() *config.Set
		args []string
		vars map[string]string
		err  string
	}{
		{set: new(mcpProxyConfig).settings, args: []string{"--server", "http://s", "--token", "t", "--hold-timeout", "0s"},
			err: `--hold-timeout="0s": want a duration like 1h30m, 30s or 500ms, at least 1ms`},
		{set: new(mcpProxyConfig).settings, args: []string{"--server", "http://s", "--fail", "shut"}, vars: map[string]string{"VERITRAIL_TOKEN": "t"},
			err: `--fail="shut": want one of open or closed`},
		{set: new(mcpProxyConfig).settings, args: []string{"--server", "http://s", "--listen", ":0"}, vars: map[string]string{"VERITRAIL_TOKEN": "t"},
			err: `HTTP mode needs both --listen and --upstream`},
		{set: new(mcpProxyConfig).settings, args: []string{"--server", "http://s", "--policy", filepath.Join(dir, "p.json")}, vars: map[string]string{"VERITRAIL_TOKEN": "t"},
			err: `--policy="` + filepath.Join(dir, "p.json") + `": want "server" or the path of a readable policy file: no such file or directory`},
		{set: new(mcpProxyConfig).settings, args: []string{"--upstream-header", "X-Tenant"}, vars: map[string]string{"VERITRAIL_TOKEN": "t", "VERITRAIL_SERVER": "http://s"},
			err: `--upstream-header="X-Tenant": want "Name: value"`},
		{set: new(mcpProxyConfig).settings, vars: map[string]string{"VERITRAIL_SERVER": "http://s", "VERITRAIL_SPOOL_MAX_BYTES": "-1", "VERITRAIL_TOKEN": "t"},
			err: `VERITRAIL_SPOOL_MAX_BYTES="-1": want a whole number, 1 or more`},
		{set: new(benchConfig).settings, args: []string{"--query-limit", "5000"}, err: `--query-limit="5000": want a whole number from 1 to 1000`},
		{set: new(benchConfig).settings, args: []string{"--ids", "uuid"}, err: `--ids="uuid": want one of client or server`},
		{set: new(benchConfig).settings, args: []string{"--duration", "0"}, err: `--duration="0": want a duration like 1h30m, 30s or 500ms, at least 1ms`},
		{set: new(benchConfig).settings, args: []string{"--server", "http://s"},
			err: `--server needs --token, VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE (a token with events:write)`},
		{set: new(demoConfig).settings, args: []string{"--count", "-3"}, err: `--count="-3": want a whole number, 1 or more`},
		{set: new(demoConfig).settings, args: []string{"--anchor", "yesterday"}, err: `--anchor="yesterday": want a time like 2026-06-01T12:00:00Z (RFC 3339)`},
		{set: new(demoConfig).settings, vars: map[string]string{"VERITRAIL_SERVER": "127.0.0.1:8080"},
			err: `VERITRAIL_SERVER="127.0.0.1:8080": want a URL starting with http:// or https:// and naming a host: no scheme`},
		{set: func() *config.Set { return new(tokenConfig).settings("list") }, args: []string{"--org", "Acme Corp"},
			err: `--org="Acme Corp": want an organization name: 1 to 64 characters from a-z, 0-9 and -`},
		{set: func() *config.Set { return new(sinkConfig).settings("create") }, args: []string{"--json", "{}", "--file", filepath.Join(dir, "missing.json")},
			err: `--file="` + filepath.Join(dir, "missing.json") + `": want the path of a readable file: no such file or directory`},
	}
	for _, c := range cases {
		s := c.set()
		s.LookupEnv = func(name string) (string, bool) { v, ok := c.vars[name]; return v, ok }
		_, err := s.Parse(c.args)
		if err == nil || err.Error() != c.err {
			t.Errorf("%s %v %v:\n  got  %v\n  want %s", s.Name(), c.args, c.vars, err, c.err)
		}
	}
	// Flags of token create are no flags of token list: refused, not
	// ignored.
	s := new(tokenConfig).settings("list")
	s.SetOutput(&strings.Builder{})
	if _, err := s.Parse([]string{"--role", "owner"}); err == nil || !strings.Contains(err.Error(), "flag provided but not defined: -role") {
		t.Errorf("token list --role: %v", err)
	}
}

// TestTokenFlagError: the command line says the API's refusal in terms of
// its flags.
func TestTokenFlagError(t *testing.T) {
	var c tokenConfig
	s := c.settings("create")
	s.LookupEnv = func(string) (string, bool) { return "", false }
	if _, err := s.Parse([]string{"--role", "auditor", "--scopes", "auditlogs:read, content:read", "--expires", "-1h"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.request.Check(time.Now())
	want := "--scopes: the auditor role does not hold content:read; it holds auditlogs:read, aiinteractionlogs:read, exports (roles that hold content:read: owner, security)"
	if err := tokenFlagError(err); err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	c.request.Scopes = nil
	_, err = c.request.Check(time.Now())
	if err := tokenFlagError(err); err == nil || !strings.HasPrefix(err.Error(), `--expires: a positive duration such as 720h (30 days) or 24h, got "-1h"`) {
		t.Fatalf("got %v", err)
	}
}

// TestRefusedBeforeStart runs the binary: a malformed variable stops serve
// before it touches anything, and token create refuses what the API
// refuses, creating nothing.
func TestRefusedBeforeStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(binary, "serve", "--data", data, "--addr", freeAddr(t))
	cmd.Env = append(os.Environ(), "VERITRAIL_RATE_LIMIT=abc")
	out, err := cmd.CombinedOutput()
	want := `veritrail serve: VERITRAIL_RATE_LIMIT="abc": want a whole number of requests per minute, like 6000 (0: no limit)` + "\n"
	if err == nil || cmd.ProcessState.ExitCode() != 1 || string(out) != want {
		t.Fatalf("serve with VERITRAIL_RATE_LIMIT=abc: %v\n%s", err, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the refused start created the data directory: %v", err)
	}

	cli(t, "org", "create", "acme", "--data", data)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "auditor", "--scopes", "content:read"},
			"veritrail token: --scopes: the auditor role does not hold content:read; it holds auditlogs:read, aiinteractionlogs:read, exports (roles that hold content:read: owner, security)\n"},
		{[]string{"--role", "boss"}, `veritrail token: --role: "boss" is not a role; use one of owner, admin, security, auditor, ingest` + "\n"},
		{nil, "veritrail token: --role: required; one of owner, admin, security, auditor, ingest\n"},
		{[]string{"--role", "ingest", "--expires", "-24h"}, `veritrail token: --expires: a positive duration such as 720h (30 days) or 24h, got "-24h"; leave it out for a token that never expires` + "\n"},
		{[]string{"--role", "ingest", "extra"}, `veritrail token: veritrail token create takes no argument "extra"; its settings are flags (veritrail token create -h)` + "\n"},
	} {
		stdout, stderr, code := runBin(t, append([]string{"token", "create", "--org", "acme", "--data", data}, c.args...)...)
		if code != 1 || stdout != "" || stderr != c.want {
			t.Errorf("token create %v: exit %d\n%s%s\nwant\n%s", c.args, code, stdout, stderr, c.want)
		}
	}
	if out, _ := cli(t, "token", "list", "--org", "acme", "--data", data); strings.Count(out, "\n") != 1 {
		t.Fatalf("refused requests created tokens:\n%s", out)
	}
}
