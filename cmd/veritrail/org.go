package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func runOrg(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: veritrail org create NAME | veritrail org list  [--data DIR | --db URL]")
	}
	sub, args := args[0], args[1:]
	if sub != "create" && sub != "list" {
		return fmt.Errorf("unknown subcommand %q: use create or list", sub)
	}
	var c orgConfig
	pos, err := c.settings(sub).ParseInterspersed(args)
	if err != nil {
		return err
	}
	if sub == "create" && len(pos) != 1 || sub == "list" && len(pos) != 0 {
		return fmt.Errorf("usage: veritrail org create NAME | veritrail org list  [--data DIR | --db URL]")
	}
	store, err := c.store.openAdmin(ctx, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	switch sub {
	case "create":
		org, err := store.CreateOrg(ctx, pos[0])
		if err != nil {
			return err
		}
		if err := recordAdmin(ctx, store, org.ID, "audit.org_created", &veritrail.Target{Type: "organization", ID: org.Name, Name: org.Name}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Created organization %q. Create its first token with:\n  veritrail token create --org %s --role owner\n%s\n", org.Name, org.Name, org.Name)
	case "list":
		orgs, err := store.ListOrgs(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED")
		for _, o := range orgs {
			fmt.Fprintf(tw, "%s\t%s\n", o.Name, o.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}
