package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: veritrail token create --org NAME --role ROLE [--name N] [--scopes a,b] [--expires 720h] | token list --org NAME | token revoke --org NAME TOKEN_ID")
	}
	sub, args := args[0], args[1:]
	if sub != "create" && sub != "list" && sub != "revoke" {
		return fmt.Errorf("unknown subcommand %q: use create, list or revoke", sub)
	}
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs)
	orgName := fs.String("org", "default", "organization")
	role := fs.String("role", "", "role: "+strings.Join(veritrail.Roles, ", "))
	name := fs.String("name", "", "a name to recognize the token by")
	scopes := fs.String("scopes", "", "narrow the role to these scopes (comma separated): "+strings.Join(veritrail.AllScopes, ", "))
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: no expiry)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	store, err := sf.openAdmin(ctx, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	org, err := store.OrgByName(ctx, *orgName)
	if err != nil {
		return fmt.Errorf("%w (list them with `veritrail org list`)", err)
	}
	switch sub {
	case "create":
		if !veritrail.ValidRole(*role) {
			return fmt.Errorf("--role must be one of %s", strings.Join(veritrail.Roles, ", "))
		}
		var sc []string
		if *scopes != "" {
			for _, s := range strings.Split(*scopes, ",") {
				s = strings.TrimSpace(s)
				if !veritrail.ValidScope(s) {
					return fmt.Errorf("unknown scope %q; scopes are %s", s, strings.Join(veritrail.AllScopes, ", "))
				}
				sc = append(sc, s)
			}
		}
		var exp *time.Time
		if *expires > 0 {
			t := time.Now().Add(*expires).UTC()
			exp = &t
		}
		secret := veritrail.NewTokenSecret()
		if err := createToken(ctx, store, org.ID, *name, *role, sc, exp, secret); err != nil {
			return err
		}
		if err := recordAdmin(ctx, store, org.ID, "audit.token_created", &veritrail.Target{Type: "api_key", ID: tokenIDOf(ctx, store, org.ID, secret), Name: *name},
			map[string]any{"role": *role, "scopes": veritrail.EffectiveScopes(*role, sc), "expires_at": fmtTime(exp)}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Created a %s token for organization %q. It is shown once; store it now.\n", *role, org.Name)
		fmt.Fprintln(stdout, secret)
	case "list":
		toks, err := store.ListTokens(ctx, org.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role,
				strings.Join(veritrail.EffectiveScopes(t.Role, t.Scopes), ","), t.CreatedAt.Format(time.RFC3339),
				fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt), fmtTime(t.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("usage: veritrail token revoke --org NAME TOKEN_ID (ids are in `veritrail token list`)")
		}
		if err := store.RevokeToken(ctx, org.ID, pos[0], time.Now().UTC()); err != nil {
			return err
		}
		if err := recordAdmin(ctx, store, org.ID, "audit.token_revoked", &veritrail.Target{Type: "api_key", ID: pos[0]}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Revoked %s.\n", pos[0])
	}
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// tokenIDOf finds the id of the token with this secret.
func tokenIDOf(ctx context.Context, store veritrail.Store, org int64, secret string) string {
	lookup, _ := veritrail.HashToken(secret)
	if t, err := store.TokenByLookup(ctx, lookup); err == nil {
		return t.ID
	}
	return ""
}

// recordAdmin records an access change made from the command line as an
// audit event of the organization (through the store's outbox, since the
// running server owns the log).
func recordAdmin(ctx context.Context, store veritrail.Store, org int64, typ string, target *veritrail.Target, details map[string]any) error {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	e, err := veritrail.NewRecord(time.Now(), typ, veritrail.Actor{Type: veritrail.ActorSystem, ID: "veritrail-cli", Name: "veritrail CLI run by " + who},
		target, veritrail.OutcomeSuccess, details)
	if err != nil {
		return err
	}
	if err := store.Enqueue(ctx, org, e); err != nil {
		return fmt.Errorf("recording the change in the audit log: %w", err)
	}
	return nil
}
