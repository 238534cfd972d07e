package main

import (
	"context"
	"fmt"
	"io"

	"github.com/veritrail/veritrail/postgres"
)

const dbUsage = "usage: veritrail db distribute --db URL [--shard-count N]"

// runDB is veritrail db: operations on a PostgreSQL store as a whole.
// distribute places the tables on a Citus cluster (docs/SCALING.md).
func runDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "distribute" {
		return fmt.Errorf("%s", dbUsage)
	}
	var c dbConfig
	pos, err := c.settings(args[0]).ParseInterspersed(args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 || c.db == "" {
		return fmt.Errorf("%s (or VERITRAIL_DB)", dbUsage)
	}
	if err := postgres.Distribute(ctx, c.db, postgres.DistributeOptions{ShardCount: c.shardCount}, stdout); err != nil {
		return fmt.Errorf("distribute: %w", err)
	}
	fmt.Fprintln(stdout, "The database is distributed. Point every node at the coordinator (docs/SCALING.md).")
	return nil
}
