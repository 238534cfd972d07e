package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/notify"
	"github.com/veritrail/veritrail/rules"
)

// newRulesEngine builds a server's detection: the rules engine that
// follows the organizations' logs and the dispatcher that delivers their
// alerts. On a store shared by several nodes a lease per organization
// picks the node that evaluates it; deliveries are claimed row by row.
func newRulesEngine(store veritrail.Store, dataDir string, keys keyFiles, log *slog.Logger, publicURL string,
	m *mail.Config, outbound netguard.Guard) (*rules.Engine, *notify.Dispatcher, error) {
	key, err := masterKey(dataDir, keys)
	if err != nil {
		return nil, nil, err
	}
	d, err := notify.New(notify.Options{Store: store, Key: key, Mail: m, Outbound: outbound, PublicURL: publicURL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	opts := rules.Options{Store: store, Key: key, Notifier: d, Logger: log}
	if held := leases(store, "rules", log); held != nil {
		opts.MayEvaluate = func(ctx context.Context, org int64) bool { return held(ctx, fmt.Sprintf("rules/%d", org)) }
	}
	e, err := rules.New(opts)
	if err != nil {
		return nil, nil, err
	}
	return e, d, nil
}

// veritrail rules: manage an organization's detection rules through the
// HTTP API, from files a team keeps in git.

const rulesUsage = `Usage:
  veritrail rules apply FILE… [--prune] [--dry-run]
  veritrail rules test FILE… [--since 30d] [--until WHEN] [--limit N]
  veritrail rules list
  veritrail rules pack [--enable [--routes FILE] | --disable]

apply creates or replaces the files' rules, by name (applying again changes
nothing); --prune deletes the organization's other rules. test replays the
stored events of the period through the files' rules and lists the alerts
they would have raised, storing and sending nothing. pack shows the
built-in pack, or turns it on (with the routes of FILE) or off.

Rules files are YAML (docs/RULES.md): a list of rules, "rules:" and a list,
or one rule, in one or more documents. ${NAME} in a value is replaced by the
environment variable NAME, so secrets stay out of the files.

Every command takes --server URL (env VERITRAIL_SERVER) and --token T (env
VERITRAIL_TOKEN), a token with the alerts scope.
`

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, rulesUsage)
		if len(args) == 0 {
			return errors.New("a subcommand is required")
		}
		return nil
	}
	sub := args[0]
	if !slices.Contains(rulesSubcommands, sub) {
		fmt.Fprint(stderr, rulesUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	var cfg rulesConfig
	files, err := cfg.settings(sub).ParseInterspersed(args[1:])
	if err != nil {
		return err
	}
	c, err := cfg.client.api("a token with the alerts scope")
	if err != nil {
		return err
	}
	switch sub {
	case "apply", "test":
		if len(files) == 0 {
			return fmt.Errorf("rules %s takes one or more rules files", sub)
		}
		rs, err := readRulesFiles(files)
		if err != nil {
			return err
		}
		if sub == "apply" {
			return applyRules(ctx, c, rs, &cfg, stdout)
		}
		return testRules(ctx, c, rs, &cfg, stdout)
	case "list":
		if len(files) > 0 {
			return errors.New("rules list takes no arguments")
		}
		var out struct {
			Data []rules.RuleView `json:"data"`
		}
		if err := c.call(ctx, "GET", "/api/v1/rules", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKIND\tSEVERITY\tSTATUS\tROUTES")
		for _, v := range out.Data {
			var types []string
			for _, r := range v.Routes {
				types = append(types, r.Type)
			}
			status := v.Status
			if v.Error != "" {
				status += ": " + v.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Kind, v.Severity, status, strings.Join(types, ","))
		}
		return tw.Flush()
	case "pack":
		if len(files) > 0 {
			return errors.New("rules pack takes no arguments (the routes file goes with --routes)")
		}
		if !cfg.enable && !cfg.disable {
			return c.print(ctx, stdout, "GET", "/api/v1/rules/pack", nil)
		}
		req := map[string]any{"enabled": cfg.enable}
		if cfg.routes != "" {
			b, err := os.ReadFile(cfg.routes)
			if err != nil {
				return err
			}
			routes, err := rules.ParseRoutes(b, os.LookupEnv)
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.routes, err)
			}
			req["routes"] = routes
		}
		b, _ := json.Marshal(req)
		return c.print(ctx, stdout, "PUT", "/api/v1/rules/pack", b)
	}
	return nil
}

// fileRule is a rule of a file, with where it came from.
type fileRule struct {
	*rules.FileRule
	file string
}

func (r *fileRule) where(field string) string {
	return fmt.Sprintf("%s:%d", r.file, r.LineOf(field))
}

// readRulesFiles reads the files' rules and checks what can be checked
// without the server (fields, CEL), saying where a problem is.
func readRulesFiles(files []string) ([]*fileRule, error) {
	var out []*fileRule
	names := map[string]string{}
	for _, f := range files {
		rs, err := rules.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			fr := &fileRule{FileRule: r, file: f}
			if err := rules.CheckSpec(r.JSON); err != nil {
				return nil, fr.explain(err)
			}
			if prev, dup := names[r.Name]; dup {
				return nil, fmt.Errorf("%s: rule %q is also at %s", fr.where("name"), r.Name, prev)
			}
			names[r.Name] = fr.where("name")
			out = append(out, fr)
		}
	}
	return out, nil
}

// explain places an API error in the file: FILE:LINE: rule NAME: message.
func (r *fileRule) explain(err error) error {
	field := ""
	var ve *veritrail.Error
	if errors.As(err, &ve) {
		field = ve.Field
	}
	var ae *apiError
	if errors.As(err, &ae) {
		field = ae.field
	}
	return fmt.Errorf("%s: rule %q: %w", r.where(field), r.Name, err)
}

func applyRules(ctx context.Context, c *apiClient, rs []*fileRule, cfg *rulesConfig, stdout io.Writer) error {
	var existing struct {
		Data []rules.RuleView `json:"data"`
	}
	if err := c.call(ctx, "GET", "/api/v1/rules", nil, &existing); err != nil {
		return err
	}
	byName := map[string]rules.RuleView{}
	for _, v := range existing.Data {
		byName[v.Name] = v
	}
	verb := func(s string) string {
		if cfg.dryRun {
			return "would be " + s
		}
		return s
	}
	inFiles := map[string]bool{}
	var failed int
	for _, r := range rs {
		inFiles[r.Name] = true
		old, ok := byName[r.Name]
		switch {
		case cfg.dryRun && ok:
			fmt.Fprintf(stdout, "%-40s %s\n", r.Name, verb("replaced if different"))
		case cfg.dryRun:
			fmt.Fprintf(stdout, "%-40s %s\n", r.Name, verb("created"))
		case ok:
			var out struct {
				Changed bool `json:"changed"`
			}
			if err := c.call(ctx, "PUT", "/api/v1/rules/"+url.PathEscape(old.ID), r.JSON, &out); err != nil {
				fmt.Fprintln(stdout, r.explain(err))
				failed++
				continue
			}
			state := "unchanged"
			if out.Changed {
				state = "updated"
			}
			fmt.Fprintf(stdout, "%-40s %s\n", r.Name, state)
		default:
			if err := c.call(ctx, "POST", "/api/v1/rules", r.JSON, nil); err != nil {
				fmt.Fprintln(stdout, r.explain(err))
				failed++
				continue
			}
			fmt.Fprintf(stdout, "%-40s %s\n", r.Name, "created")
		}
	}
	if cfg.prune {
		for _, v := range existing.Data {
			if inFiles[v.Name] || v.Pack == rules.PackBuiltin {
				continue
			}
			if !cfg.dryRun {
				if err := c.call(ctx, "DELETE", "/api/v1/rules/"+url.PathEscape(v.ID), nil, nil); err != nil {
					fmt.Fprintf(stdout, "%-40s not deleted: %v\n", v.Name, err)
					failed++
					continue
				}
			}
			fmt.Fprintf(stdout, "%-40s %s\n", v.Name, verb("deleted"))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d rule(s) not applied", failed)
	}
	return nil
}

func testRules(ctx context.Context, c *apiClient, rs []*fileRule, cfg *rulesConfig, stdout io.Writer) error {
	req := struct {
		Rules []json.RawMessage `json:"rules"`
		Since string            `json:"since,omitempty"`
		Until string            `json:"until,omitempty"`
		Limit int               `json:"limit"`
	}{Since: cfg.since, Until: cfg.until, Limit: cfg.limit}
	for _, r := range rs {
		req.Rules = append(req.Rules, r.JSON)
	}
	b, _ := json.Marshal(req)
	var res rules.TestResult
	if err := c.call(ctx, "POST", "/api/v1/rules/test", b, &res); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			// rules[2].window: the third rule's field.
			var i int
			var field string
			if n, _ := fmt.Sscanf(ae.field, "rules[%d]", &i); n == 1 && i >= 0 && i < len(rs) {
				_, field, _ = strings.Cut(ae.field, ".")
				return fmt.Errorf("%s: rule %q: %s", rs[i].where(field), rs[i].Name, ae.message)
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "%d events from %s to %s; %d alert(s) would have been raised (nothing was sent)\n",
		res.Scanned, res.Since.Format("2006-01-02 15:04:05Z07:00"), res.Until.Format("2006-01-02 15:04:05Z07:00"), len(res.Alerts))
	if len(res.Alerts) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tSEVERITY\tKEY\tCOUNT\tFIRST SEEN\tLAST SEEN\tEVENTS")
		for _, a := range res.Alerts {
			ids := a.EventIDs
			if len(ids) > 3 {
				ids = append(ids[:3:3], "…")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Rule, a.Severity, a.DedupKey, a.Count,
				a.FirstSeen.Format("2006-01-02 15:04:05"), a.LastSeen.Format("2006-01-02 15:04:05"), strings.Join(ids, " "))
		}
		tw.Flush()
	}
	if res.Truncated {
		fmt.Fprintln(stdout, "(stopped at the limit: narrow --since or raise --limit)")
	}
	return nil
}
