package postgres_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
)

// The distributability guard: on plain PostgreSQL, it fails when a change
// would keep the schema or the store's SQL from running on Citus as
// postgres.Placements says (docs/SCALING.md). Each check is a function
// that returns the problems it finds, so that TestGuardsCanFail can show
// each one failing on what it must refuse.

// TestDistributable runs every check on the migrated schema and on the
// SQL of the package's source.
func TestDistributable(t *testing.T) {
	ctx := context.Background()
	conn := migrated(t)
	stmts := sourceSQL(t)
	if len(stmts) < 50 {
		t.Fatalf("found %d SQL statements in the source: the extraction is broken", len(stmts))
	}
	var problems []string
	problems = append(problems, placementProblems(ctx, t, conn, postgres.Placements)...)
	problems = append(problems, keyProblems(ctx, t, conn, postgres.Placements)...)
	problems = append(problems, triggerProblems(ctx, t, conn, postgres.Placements)...)
	problems = append(problems, conflictProblems(ctx, t, conn, stmts)...)
	problems = append(problems, lockProblems(stmts)...)
	problems = append(problems, countProblems(stmts)...)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestGuardsCanFail shows every check refusing what it exists to refuse:
// the schema and statements as they were before the schema was made
// distributable, and a few new mistakes.
func TestGuardsCanFail(t *testing.T) {
	ctx := context.Background()
	conn := migrated(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	expect := func(check string, problems []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, w) }) {
				t.Errorf("%s did not report %q; it reported %q", check, w, problems)
			}
		}
	}

	// A table nobody placed, and a placed table that does not exist.
	exec(`CREATE TABLE unplaced (org_id bigint NOT NULL)`)
	expect("placement", placementProblems(ctx, t, conn, append(slices.Clone(postgres.Placements),
		postgres.TablePlacement{Table: "gone", Placement: postgres.Local})), `"unplaced"`, `"gone"`)

	// Keys: the old keys of tokens, a distributed table without org_id, a
	// unique index that does not lead with it, a foreign key to a local
	// table and one between distributed tables that leaves org_id out.
	exec(`ALTER TABLE tokens DROP CONSTRAINT tokens_pkey, ADD PRIMARY KEY (id)`)
	exec(`CREATE TABLE no_org (id text PRIMARY KEY)`)
	exec(`CREATE UNIQUE INDEX sinks_by_id ON sinks (id, org_id)`)
	exec(`CREATE TABLE refs_local (org_id bigint NOT NULL, lease text REFERENCES leases (name), seq bigint, id text,
		FOREIGN KEY (org_id, id) REFERENCES exports (org_id, id), PRIMARY KEY (org_id, seq))`)
	exec(`CREATE TABLE teams_ids (org_id bigint NOT NULL, id text NOT NULL UNIQUE)`)
	exec(`CREATE TABLE refs_other (org_id bigint NOT NULL, id text REFERENCES teams_ids (id), PRIMARY KEY (org_id, id))`)
	withNew := append(slices.Clone(postgres.Placements),
		postgres.TablePlacement{Table: "no_org", Placement: postgres.Distributed},
		postgres.TablePlacement{Table: "refs_local", Placement: postgres.Distributed},
		postgres.TablePlacement{Table: "refs_other", Placement: postgres.Distributed},
		postgres.TablePlacement{Table: "teams_ids", Placement: postgres.Distributed})
	expect("keys", keyProblems(ctx, t, conn, withNew),
		`tokens: unique key tokens_pkey (id)`, `no_org: no org_id column`, `sinks: unique key sinks_by_id (id, org_id)`,
		`refs_local: foreign key refs_local_lease_fkey refers to leases, a local table`,
		`refs_other: foreign key refs_other_id_fkey (id) to teams_ids (id)`)

	// Triggers: the old checkpoint growth check, which read the table it
	// guards; one calling a function of its own; one taking a lock.
	exec(`CREATE FUNCTION old_checkpoints_grow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.size < (SELECT coalesce(max(size), 0) FROM checkpoints WHERE org_id = NEW.org_id) THEN
			RAISE EXCEPTION 'veritrail: a checkpoint never goes back in size';
		END IF;
		RETURN NEW;
	END $$`)
	exec(`CREATE TRIGGER checkpoints_only_grow BEFORE INSERT ON checkpoints FOR EACH ROW EXECUTE FUNCTION old_checkpoints_grow()`)
	exec(`CREATE FUNCTION helper(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'`)
	exec(`CREATE FUNCTION calls_helper() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF helper(NEW.org_id) THEN RETURN NEW; END IF; -- FROM in a comment is no problem
		RAISE EXCEPTION 'no: SELECT FROM in a message is no problem either';
	END $$`)
	exec(`CREATE TRIGGER sinks_helper BEFORE UPDATE ON sinks FOR EACH ROW EXECUTE FUNCTION calls_helper()`)
	exec(`CREATE FUNCTION locks() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_advisory_xact_lock(NEW.org_id);
		RETURN NEW;
	END $$`)
	exec(`CREATE TRIGGER removals_lock BEFORE INSERT ON removals FOR EACH ROW EXECUTE FUNCTION locks()`)
	expect("triggers", triggerProblems(ctx, t, conn, postgres.Placements),
		`checkpoints_only_grow on checkpoints: old_checkpoints_grow() reads with SELECT`,
		`sinks_helper on sinks: calls_helper() calls helper`,
		`removals_lock on removals: locks() reads with PERFORM`)
	for _, p := range triggerProblems(ctx, t, conn, postgres.Placements) {
		if strings.Contains(p, "calls_helper") && !strings.Contains(p, "calls helper") {
			t.Errorf("a word in a comment or a string was taken for SQL: %s", p)
		}
	}

	// Statements: the lease upsert and the export claim as they were.
	old := []sqlText{
		{fn: "Lease", sql: `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < now()
		RETURNING holder`},
		{fn: "Lease2", sql: `INSERT INTO leases (name, holder) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET holder = $2
			WHERE leases.expires_at < CURRENT_TIMESTAMP`},
		{fn: "ClaimExport", sql: `UPDATE exports SET state = 'running', started_at = $1, heartbeat_at = $1
		WHERE id = (SELECT id FROM exports WHERE state = 'pending' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id`},
		{fn: "Lock", sql: `SELECT 1 FROM log_heads WHERE org_id = ANY($1) FOR UPDATE`},
		{fn: "AddCheckpoint", sql: `SELECT pg_advisory_xact_lock(2, $1::int)`},
		{fn: "ClaimIDs", sql: `INSERT INTO event_ids (org_id, id, seq)
		SELECT $1, u.id, u.seq FROM unnest($2::text[], $3::bigint[]) AS u(id, seq)
		ON CONFLICT DO NOTHING`},
	}
	expect("ON CONFLICT", conflictProblems(ctx, t, conn, old), `Lease: ON CONFLICT … WHERE calls now()`, `Lease2: ON CONFLICT … WHERE calls current_timestamp`)
	expect("locks", lockProblems(old), `ClaimExport: FOR UPDATE`, `Lock: FOR UPDATE`, `AddCheckpoint: an advisory lock`)
	expect("counts", countProblems(old), `ClaimIDs: INSERT … SELECT … ON CONFLICT DO NOTHING`)
}

// migrated returns a connection to a new database with the store's schema.
func migrated(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func placementOf(ps []postgres.TablePlacement, table string) (postgres.Placement, bool) {
	i := slices.IndexFunc(ps, func(p postgres.TablePlacement) bool { return p.Table == table })
	if i < 0 {
		return "", false
	}
	return ps[i].Placement, true
}

func queryStrings(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// placementProblems: every table of the schema (partitions aside) is
// placed, and every placed table exists, so that a new table is placed on
// purpose and db distribute reaches it.
func placementProblems(ctx context.Context, t *testing.T, conn *pgx.Conn, ps []postgres.TablePlacement) []string {
	tables := queryStrings(ctx, t, conn, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	var problems []string
	for _, tb := range tables {
		if _, ok := placementOf(ps, tb); !ok {
			problems = append(problems, fmt.Sprintf("table %q has no placement in postgres.Placements: say whether it is distributed by org_id, a reference table or local to the coordinator", tb))
		}
	}
	for _, p := range ps {
		if !slices.Contains(tables, p.Table) {
			problems = append(problems, fmt.Sprintf("postgres.Placements places table %q, which the schema does not have", p.Table))
		}
	}
	return problems
}

// keyProblems: a distributed table has org_id, and each of its unique keys
// (primary keys included) leads with it, so Citus can enforce the key on
// one shard and a lookup by the key names one organization; foreign keys
// stay within what Citus can enforce (to a reference table, or between
// distributed tables through org_id), never to a local table.
func keyProblems(ctx context.Context, t *testing.T, conn *pgx.Conn, ps []postgres.TablePlacement) []string {
	var problems []string
	for _, p := range ps {
		if p.Placement != postgres.Distributed {
			continue
		}
		var hasOrg bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'org_id' AND NOT attisdropped)`,
			p.Table).Scan(&hasOrg); err != nil {
			t.Fatal(err)
		}
		if !hasOrg {
			problems = append(problems, fmt.Sprintf("%s: no org_id column, yet it is distributed by it", p.Table))
			continue
		}
		rows, err := conn.Query(ctx, `SELECT i.indexrelid::regclass::text,
				(SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, n)
					JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
				(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0])
			FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique ORDER BY 1`, p.Table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var cols, first *string
			if err := rows.Scan(&name, &cols, &first); err != nil {
				t.Fatal(err)
			}
			if first == nil || *first != "org_id" {
				c := "an expression"
				if cols != nil {
					c = *cols
				}
				problems = append(problems, fmt.Sprintf("%s: unique key %s (%s) does not lead with org_id", p.Table, name, c))
			}
		}
		rows.Close()
	}
	// Foreign keys of every placed table.
	rows, err := conn.Query(ctx, `SELECT c.conrelid::regclass::text, c.conname::text, c.confrelid::regclass::text,
			(SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
			(SELECT array_agg(a.attname::text ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n)
				JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
		FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
		WHERE c.contype = 'f' AND NOT r.relispartition AND c.conparentid = 0 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var from, name, to string
		var cols, refCols []string
		if err := rows.Scan(&from, &name, &to, &cols, &refCols); err != nil {
			t.Fatal(err)
		}
		pf, ok1 := placementOf(ps, from)
		pt, ok2 := placementOf(ps, to)
		switch {
		case !ok1 || !ok2: // placementProblems reports it
		case pt == postgres.Local && pf != postgres.Local:
			problems = append(problems, fmt.Sprintf("%s: foreign key %s refers to %s, a local table: only the coordinator has it", from, name, to))
		case pf == postgres.Reference && pt == postgres.Distributed:
			problems = append(problems, fmt.Sprintf("%s: foreign key %s of a reference table refers to %s, a distributed table", from, name, to))
		case pf == postgres.Distributed && pt == postgres.Distributed:
			i := slices.Index(cols, "org_id")
			if i < 0 || refCols[i] != "org_id" {
				problems = append(problems, fmt.Sprintf("%s: foreign key %s (%s) to %s (%s) does not pair org_id with org_id: it would cross shards",
					from, name, strings.Join(cols, ", "), to, strings.Join(refCols, ", ")))
			}
		}
	}
	return problems
}

// plpgsqlStatements are the words of a trigger function's body that read
// or change tables, or take locks.
var plpgsqlStatements = regexp.MustCompile(`(?i)\b(SELECT|FROM|JOIN|INSERT|UPDATE|DELETE|MERGE|PERFORM|EXECUTE|COPY|TRUNCATE|LOCK|CALL|NOTIFY|OPEN|FETCH)\b`)

// calledName finds the function calls in a body: a name before "(".
var calledName = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_.]*)\s*\(`)

// sqlConstructs are words written like calls that are no functions.
var sqlConstructs = []string{"if", "elsif", "in", "and", "or", "not", "when", "then", "return", "values", "exists",
	"any", "all", "some", "case", "coalesce", "nullif", "greatest", "least", "cast", "row", "array", "exception", "raise"}

// calls returns the names of the functions code calls, SQL's constructs
// written like calls aside.
func calls(code string) []string {
	var names []string
	for _, m := range calledName.FindAllStringSubmatch(code, -1) {
		if name := strings.ToLower(m[1]); !slices.Contains(sqlConstructs, name) {
			names = append(names, name)
		}
	}
	return names
}

// everyFunction reports whether functions called name exist and every one
// of them (each overload) meets cond, a condition on pg_proc.
func everyFunction(ctx context.Context, t *testing.T, conn *pgx.Conn, name, cond string) bool {
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1)
		AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1 AND NOT (`+cond+`))`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// stripLiterals blanks out comments, quoted strings and identifiers, and
// dollar-quoted strings, so that only the code of a body is read.
var literals = regexp.MustCompile(`(?s)--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$([a-z_]*)\$.*?\$[a-z_]*\$`)

func stripLiterals(src string) string { return literals.ReplaceAllString(src, " ") }

// triggerProblems: a trigger on a distributed or reference table runs on
// the worker holding the row's shard, where the rest of a distributed
// table is not: its function may read nothing but its own row (OLD, NEW,
// its arguments and settings). So its body has no statement that reads,
// changes or locks, and calls only PostgreSQL's own functions that are
// not volatile (which never touch tables).
func triggerProblems(ctx context.Context, t *testing.T, conn *pgx.Conn, ps []postgres.TablePlacement) []string {
	rows, err := conn.Query(ctx, `SELECT tg.tgname::text, c.relname::text, p.proname::text, l.lanname::text, p.prosrc
		FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_language l ON l.oid = p.prolang
		WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 ORDER BY 2, 1`)
	if err != nil {
		t.Fatal(err)
	}
	type trig struct{ name, table, fn, lang, src string }
	trigs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tg trig, err error) {
		err = r.Scan(&tg.name, &tg.table, &tg.fn, &tg.lang, &tg.src)
		return tg, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, tg := range trigs {
		if p, ok := placementOf(ps, tg.table); !ok || p == postgres.Local {
			continue
		}
		where := fmt.Sprintf("trigger %s on %s: %s()", tg.name, tg.table, tg.fn)
		if tg.lang != "plpgsql" {
			problems = append(problems, fmt.Sprintf("%s is in %s; only plpgsql trigger functions are checked", where, tg.lang))
			continue
		}
		code := stripLiterals(tg.src)
		for _, m := range plpgsqlStatements.FindAllString(code, -1) {
			problems = append(problems, fmt.Sprintf("%s reads with %s: a trigger on a distributed table may read only its own row", where, strings.ToUpper(m)))
		}
		for _, name := range calls(code) {
			if !everyFunction(ctx, t, conn, name, `pronamespace = 'pg_catalog'::regnamespace AND provolatile <> 'v'`) {
				problems = append(problems, fmt.Sprintf("%s calls %s, not one of PostgreSQL's own functions that are not volatile", where, name))
			}
		}
	}
	return problems
}

// sqlText is one SQL statement of the source and the function holding it.
type sqlText struct {
	fn, sql string
}

// sourceSQL returns the SQL statements of the package's Go source (tests
// aside): every string literal, or chain of literals joined with +, that
// holds SQL; what is not a literal in a chain reads as "?".
func sourceSQL(t *testing.T) []sqlText {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	looksSQL := regexp.MustCompile(`(?i)\b(SELECT|INSERT|UPDATE|DELETE|ON CONFLICT|FOR UPDATE|FOR SHARE|pg_advisory)\b`)
	var out []sqlText
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				var s string
				switch e := n.(type) {
				case *ast.BinaryExpr:
					if e.Op != token.ADD {
						return true
					}
					s = joinLiterals(e)
				case *ast.BasicLit:
					if e.Kind == token.STRING {
						s, _ = strconv.Unquote(e.Value)
					}
				default:
					return true
				}
				if looksSQL.MatchString(s) {
					out = append(out, sqlText{fn: fd.Name.Name, sql: s})
				}
				return false // a chain's parts are not statements of their own
			})
		}
	}
	return out
}

func joinLiterals(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return joinLiterals(e.X) + joinLiterals(e.Y)
		}
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, _ := strconv.Unquote(e.Value)
			return s
		}
	case *ast.ParenExpr:
		return joinLiterals(e.X)
	}
	return " ? "
}

// onConflictWhere finds the conditions of ON CONFLICT clauses: on the
// conflict target (ON CONFLICT (…) WHERE …) and on DO UPDATE (… WHERE …).
var onConflictWhere = regexp.MustCompile(`(?is)\bON\s+CONFLICT\b(.*?)(?:\bRETURNING\b|$)`)
var whereClause = regexp.MustCompile(`(?is)\bWHERE\b(.*?)(?:\bDO\b|$)`)

// sqlValueFunctions are SQL's functions written without parentheses; none
// is immutable.
var sqlValueFunctions = regexp.MustCompile(`(?i)\b(current_timestamp|current_date|current_time|localtime|localtimestamp|current_user|session_user|current_role|user)\b`)

// conflictProblems: Citus refuses a function that is not immutable in the
// WHERE of an ON CONFLICT clause (it would give each shard its own value).
func conflictProblems(ctx context.Context, t *testing.T, conn *pgx.Conn, stmts []sqlText) []string {
	var problems []string
	for _, st := range stmts {
		for _, oc := range onConflictWhere.FindAllStringSubmatch(st.sql, -1) {
			for _, w := range whereClause.FindAllStringSubmatch(oc[1], -1) {
				cond := stripLiterals(w[1])
				for _, m := range sqlValueFunctions.FindAllString(cond, -1) {
					problems = append(problems, fmt.Sprintf("%s: ON CONFLICT … WHERE calls %s, which is not immutable: Citus refuses it", st.fn, strings.ToLower(m)))
				}
				for _, name := range calls(cond) {
					if !everyFunction(ctx, t, conn, name, `provolatile = 'i'`) {
						problems = append(problems, fmt.Sprintf("%s: ON CONFLICT … WHERE calls %s(), which is not immutable: Citus refuses it", st.fn, name))
					}
				}
			}
		}
	}
	return problems
}

// rowLocks are the clauses and statements that lock rows or tables.
var rowLocks = regexp.MustCompile(`(?i)\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b|\bSKIP\s+LOCKED\b|\bNOWAIT\b|\bLOCK\s+TABLE\b`)

// oneOrg is a condition naming one organization by a parameter.
var oneOrg = regexp.MustCompile(`(?i)\borg_id\s*=\s*\$\d+`)

// advisoryLocks takes an advisory lock: it holds on the server that runs
// it, the coordinator, and only for sessions that go through it.
var advisoryLocks = regexp.MustCompile(`(?i)\bpg_(?:try_)?advisory_(?:xact_)?lock(?:_shared)?\b`)

// coordinatorLocks are the functions that may take advisory locks: they
// serialize DDL (migrations, new partitions), which Citus runs from the
// coordinator only, where every node connects.
var coordinatorLocks = []string{"migrate", "ensurePartitions"}

// lockProblems: a statement that locks rows names one organization
// (org_id = $n), so it locks rows of one shard, never several
// organizations' at once (on Citus, a lock across shards, and a deadlock
// between nodes waiting to happen); advisory locks only serialize DDL on
// the coordinator.
func lockProblems(stmts []sqlText) []string {
	var problems []string
	for _, st := range stmts {
		code := stripLiterals(st.sql)
		if m := rowLocks.FindString(code); m != "" && !oneOrg.MatchString(code) {
			problems = append(problems, fmt.Sprintf("%s: %s in a statement that does not name one organization (org_id = $n)", st.fn, strings.ToUpper(m)))
		}
		if advisoryLocks.MatchString(code) && !slices.Contains(coordinatorLocks, st.fn) {
			problems = append(problems, fmt.Sprintf("%s: an advisory lock holds only on the server that takes it, the coordinator; lock a row of the organization instead", st.fn))
		}
	}
	return problems
}

var insertSelectSkipping = regexp.MustCompile(`(?is)\bINSERT\s+INTO\b.*\bSELECT\b.*\bON\s+CONFLICT\b.*\bDO\s+NOTHING\b`)

var returning = regexp.MustCompile(`(?i)\bRETURNING\b`)

// countProblems: an INSERT … SELECT that skips conflicting rows returns
// the rows it inserted, to be counted. Citus runs an INSERT … SELECT into
// a distributed table through the coordinator, and its command tag counts
// the rows it sent, inserted or not: a count taken from the tag says a
// row was inserted when a conflict skipped it.
func countProblems(stmts []sqlText) []string {
	var problems []string
	for _, st := range stmts {
		code := stripLiterals(st.sql)
		if insertSelectSkipping.MatchString(code) && !returning.MatchString(code) {
			problems = append(problems, fmt.Sprintf("%s: INSERT … SELECT … ON CONFLICT DO NOTHING without RETURNING: on Citus its command tag counts the rows sent, not those inserted; count the rows RETURNING gives back", st.fn))
		}
	}
	return problems
}
