package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Placement is where a table lives on a Citus cluster.
type Placement string

const (
	// Distributed tables are sharded by org_id, all in one colocation
	// group: an organization's rows of every table are on one worker, so
	// each statement Veritrail sends (which names one organization) runs
	// on that worker alone.
	Distributed Placement = "distributed"
	// Reference tables have a copy on every node.
	Reference Placement = "reference"
	// Local tables stay on the coordinator only.
	Local Placement = "local"
)

// TablePlacement is one table's placement.
type TablePlacement struct {
	Table     string
	Placement Placement
}

// Placements says where each of Veritrail's tables goes on a Citus
// cluster, in the order Distribute places them: reference tables first
// (distributed tables refer to orgs), then log_heads, which the other
// distributed tables are colocated with. docs/SCALING.md says why each
// goes where it does (TestScalingDocPlacements keeps the two in step).
// Every table of the schema is here (guard_test.go checks it), so that a
// new table is placed on purpose.
var Placements = []TablePlacement{
	{"orgs", Reference},
	{"meta", Reference},
	{"token_routes", Reference},
	{"log_heads", Distributed},
	{"tiles", Distributed},
	{"events", Distributed},
	{"contents", Distributed},
	{"event_ids", Distributed},
	{"checkpoints", Distributed},
	{"witness_log", Distributed},
	{"cosignatures", Distributed},
	{"removals", Distributed},
	{"tokens", Distributed},
	{"token_generations", Distributed},
	{"users", Distributed},
	{"teams", Distributed},
	{"settings", Distributed},
	{"sinks", Distributed},
	{"exports", Distributed},
	{"export_files", Distributed},
	{"sessions", Distributed},
	{"signin_links", Distributed},
	{"event_counts", Distributed},
	{"holds", Distributed},
	{"sso_configs", Distributed},
	{"leases", Local},
	{"schema_migrations", Local},
}

// colocationTable is the distributed table the others are colocated with.
const colocationTable = "log_heads"

// DistributeOptions configure Distribute.
type DistributeOptions struct {
	// ShardCount is the number of shards of each distributed table; 0
	// leaves it to Citus (citus.shard_count, 32 by default). Tables
	// already distributed keep theirs.
	ShardCount int
}

// ErrNoCitus is Distribute's error on a server without Citus.
var ErrNoCitus = errors.New("no Citus")

// Distribute places Veritrail's tables on the Citus cluster whose
// coordinator url names, as Placements says, and writes what it does to
// out. It is idempotent: a
// table already placed as it should be is left as it is, so it may run
// again after a failure or an upgrade. Data already in a table is copied
// to its shards, then removed from the coordinator's own copy of the
// table (where retention would never reach it). It migrates the schema
// first, as a node's start does. It refuses, with
// ErrNoCitus, a server without the citus extension, and a coordinator
// without workers.
func Distribute(ctx context.Context, url string, opts DistributeOptions, out io.Writer) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())
	if err := checkCitus(ctx, conn); err != nil {
		return err
	}
	// The schema as this version has it, as any node's start makes it.
	store, err := Open(ctx, url, Options{Logger: slog.New(slog.DiscardHandler), MaxConns: 2})
	if err != nil {
		return err
	}
	store.Close()
	// Citus refuses to distribute a table with triggers unless this is on
	// for the session: it cannot tell a trigger that reads only its own
	// row (Veritrail's guards; guard_test.go keeps them so) from one that
	// reads other tables, which on a shard would see only part of them.
	// Set for this session only; nothing at run time needs it.
	if _, err := conn.Exec(ctx, `SET citus.enable_unsafe_triggers = on`); err != nil {
		return err
	}
	if opts.ShardCount > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`SET citus.shard_count = %d`, opts.ShardCount)); err != nil {
			return err
		}
	}
	var moved []string // tables whose local rows were copied to shards
	for _, p := range Placements {
		kind, column, err := citusTable(ctx, conn, p.Table)
		if err != nil {
			return err
		}
		var sql string
		switch {
		case p.Placement == Local && kind == "":
			fmt.Fprintf(out, "%-18s local: stays on the coordinator\n", p.Table)
			continue
		case p.Placement == Local:
			sql = `SELECT undistribute_table($1)`
		case p.Placement == Reference && kind == "reference",
			p.Placement == Distributed && kind == "distributed" && column == "org_id":
			fmt.Fprintf(out, "%-18s %s: already\n", p.Table, p.Placement)
			continue
		case p.Placement == Distributed && kind == "distributed":
			return fmt.Errorf("table %s is distributed by %s, not org_id: undistribute it (SELECT undistribute_table('%s')) and run this again", p.Table, column, p.Table)
		case p.Placement == Reference:
			sql = `SELECT create_reference_table($1)`
		case p.Table == colocationTable:
			sql = `SELECT create_distributed_table($1, 'org_id', colocate_with => 'none')`
		default:
			sql = `SELECT create_distributed_table($1, 'org_id', colocate_with => '` + colocationTable + `')`
		}
		rows, err := hasRows(ctx, conn, p.Table)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, sql, p.Table); err != nil {
			return fmt.Errorf("%s as a %s table: %w", p.Table, p.Placement, err)
		}
		if rows && p.Placement != Local {
			moved = append(moved, p.Table)
		}
		fmt.Fprintf(out, "%-18s %s: done\n", p.Table, p.Placement)
	}
	// The copied rows stay, unseen, in the coordinator's own table: remove
	// them there, distributed tables first (they refer to orgs).
	for i := len(moved) - 1; i >= 0; i-- {
		if _, err := conn.Exec(ctx, `SELECT truncate_local_data_after_distributing_table($1)`, moved[i]); err != nil {
			return fmt.Errorf("removing %s's copied rows from the coordinator: %w", moved[i], err)
		}
		fmt.Fprintf(out, "%-18s rows copied to the workers; the coordinator's copy removed\n", moved[i])
	}
	return describeCluster(ctx, conn, out)
}

// checkCitus refuses a server that is not a Citus coordinator with
// workers, saying what is missing.
func checkCitus(ctx context.Context, conn *pgx.Conn) error {
	var version *string
	if err := conn.QueryRow(ctx, `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'citus')`).Scan(&version); err != nil {
		return err
	}
	if version == nil {
		var available bool
		var preload string
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus'),
			current_setting('shared_preload_libraries')`).Scan(&available, &preload); err != nil {
			return err
		}
		switch {
		case !available:
			return fmt.Errorf("%w: this PostgreSQL server has no citus extension installed; distributing needs a Citus coordinator (docs/SCALING.md)", ErrNoCitus)
		case !strings.Contains(preload, "citus"):
			return fmt.Errorf("%w: the citus extension is installed but not loaded: add citus to shared_preload_libraries, restart, and run CREATE EXTENSION citus in this database (docs/SCALING.md)", ErrNoCitus)
		default:
			return fmt.Errorf("%w: the citus extension is not created in this database: run CREATE EXTENSION citus here and on every worker (docs/SCALING.md)", ErrNoCitus)
		}
	}
	var coordinator bool
	var workers int
	if err := conn.QueryRow(ctx, `SELECT citus_is_coordinator(),
		(SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid <> 0)`).Scan(&coordinator, &workers); err != nil {
		return err
	}
	if !coordinator {
		return fmt.Errorf("%w: this server is a Citus worker: run this against the coordinator", ErrNoCitus)
	}
	if workers == 0 {
		return fmt.Errorf("%w: the coordinator has no workers: add them with SELECT citus_add_node('host', port) (docs/SCALING.md)", ErrNoCitus)
	}
	return nil
}

// citusTable returns how Citus holds table ("" when it does not) and its
// distribution column.
func citusTable(ctx context.Context, conn *pgx.Conn, table string) (kind, column string, err error) {
	err = conn.QueryRow(ctx, `SELECT citus_table_type, distribution_column FROM citus_tables WHERE table_name = $1::regclass`,
		table).Scan(&kind, &column)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return kind, column, err
}

func hasRows(ctx context.Context, conn *pgx.Conn, table string) (bool, error) {
	var any bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{table}.Sanitize()+`)`).Scan(&any)
	return any, err
}

// describeCluster writes the workers and how many organizations each
// holds.
func describeCluster(ctx context.Context, conn *pgx.Conn, out io.Writer) error {
	rows, err := conn.Query(ctx, `SELECT n.nodename, n.nodeport,
			(SELECT count(*) FROM orgs o JOIN pg_dist_placement p
				ON p.shardid = get_shard_id_for_distribution_column('`+colocationTable+`', o.id) WHERE p.groupid = n.groupid)
		FROM pg_dist_node n WHERE n.noderole = 'primary' AND n.isactive AND n.groupid <> 0 ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var host string
		var port, orgs int
		if err := rows.Scan(&host, &port, &orgs); err != nil {
			return err
		}
		fmt.Fprintf(out, "worker %s:%d holds %d organization(s)\n", host, port, orgs)
	}
	return rows.Err()
}
