package main

import (
	"context"
	"errors"
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
	var c tokenConfig
	pos, err := c.settings(sub).ParseInterspersed(args)
	if err != nil {
		return err
	}
	if sub == "revoke" && len(pos) != 1 {
		return fmt.Errorf("usage: veritrail token revoke --org NAME TOKEN_ID (ids are in `veritrail token list`)")
	}
	if sub != "revoke" && len(pos) != 0 {
		return fmt.Errorf("veritrail token %s takes no argument %q; its settings are flags (veritrail token %s -h)", sub, pos[0], sub)
	}
	// Checked before the store opens, as the API checks it: same refusals,
	// same words, each naming its flag.
	var expires *time.Time
	if sub == "create" {
		if expires, err = c.request.Check(time.Now()); err != nil {
			return tokenFlagError(err)
		}
	}
	store, err := c.store.openAdmin(ctx, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	org, err := store.OrgByName(ctx, c.org)
	if err != nil {
		return fmt.Errorf("%w (list them with `veritrail org list`)", err)
	}
	switch sub {
	case "create":
		secret := veritrail.NewOrgTokenSecret(org.ID)
		r := c.request
		if err := createToken(ctx, store, org.ID, r.Name, r.Role, r.Scopes, expires, secret); err != nil {
			return err
		}
		if err := recordAdmin(ctx, store, org.ID, "audit.token_created", &veritrail.Target{Type: "api_key", ID: tokenIDOf(ctx, store, org.ID, secret), Name: r.Name},
			map[string]any{"role": r.Role, "scopes": veritrail.EffectiveScopes(r.Role, r.Scopes), "expires_at": fmtTime(expires)}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Created a token of role %s for organization %q. It is shown once; store it now.\n", r.Role, org.Name)
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

// tokenFlagError says a refusal of TokenRequest.Check in terms of the
// command's flags: "--scopes: the auditor role does not hold content:read…".
func tokenFlagError(err error) error {
	flags := map[string]string{"role": "--role", "scopes": "--scopes", "name": "--name", "expires_in": "--expires"}
	var e *veritrail.Error
	if errors.As(err, &e) && flags[e.Field] != "" {
		return errors.New(flags[e.Field] + ": " + strings.TrimPrefix(e.Message, "field "+e.Field+": "))
	}
	return err
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
	e, err := adminRecord(typ, target, details)
	if err != nil {
		return err
	}
	if err := store.Enqueue(ctx, org, e); err != nil {
		return fmt.Errorf("recording the change in the audit log: %w", err)
	}
	return nil
}

// appendAdmin records the change as recordAdmin does, but appends it at
// once: for serve, which owns the log, so that its bootstrap records come
// first in the log rather than whenever the outbox is next drained.
func appendAdmin(ctx context.Context, store veritrail.Store, org int64, typ string, target *veritrail.Target, details map[string]any) error {
	e, err := adminRecord(typ, target, details)
	if err != nil {
		return err
	}
	if _, err := store.Append(ctx, org, []*veritrail.Event{e}); err != nil {
		return fmt.Errorf("recording the change in the audit log: %w", err)
	}
	return nil
}

func adminRecord(typ string, target *veritrail.Target, details map[string]any) (*veritrail.Event, error) {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return veritrail.NewRecord(time.Now(), typ, veritrail.Actor{Type: veritrail.ActorSystem, ID: "veritrail-cli", Name: "veritrail CLI run by " + who},
		target, veritrail.OutcomeSuccess, details)
}
