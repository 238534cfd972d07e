package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// TestSchemaGuards: whatever SQL reaches the database, the log's rows do
// not change outside retention's gate, which opens for its own transaction
// only; checkpoints only grow, each after the latest. These checks read
// nothing but their own row (TestDistributable), so they hold on Citus
// too.
func TestSchemaGuards(t *testing.T) {
	ctx := context.Background()
	s, url, orgs := openOrgs(t, "acme")
	org := orgs[0]
	var evs []*veritrail.Event
	for i := range 300 {
		e := &veritrail.Event{ID: fmt.Sprintf("e%d", i), Type: "auth.login", Time: time.Now().UTC().Add(-time.Hour),
			Actor: veritrail.Actor{Type: "user", ID: "u1"}, Content: []byte(`{"n":1}`)}
		e.Prepare()
		evs = append(evs, e)
	}
	if _, err := s.Append(ctx, org.ID, evs); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{10, 20} {
		if err := s.AddCheckpoint(ctx, org.ID, &veritrail.Checkpoint{Size: size, Root: []byte{byte(size)}, Note: []byte("n"), SignedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	refused := func(sql, want string) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, org.ID)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", sql, err, want)
		}
	}
	for _, sql := range []string{
		`UPDATE events SET envelope = '' WHERE org_id = $1 AND seq = 1`,
		`DELETE FROM events WHERE org_id = $1 AND seq = 1`,
		`UPDATE contents SET body = '' WHERE org_id = $1 AND seq = 1`,
		`DELETE FROM contents WHERE org_id = $1 AND seq = 1`,
		`DELETE FROM event_ids WHERE org_id = $1`,
		`UPDATE checkpoints SET note = 'x' WHERE org_id = $1`,
		`DELETE FROM checkpoints WHERE org_id = $1`,
		`DELETE FROM tiles WHERE org_id = $1`,
		`DELETE FROM log_heads WHERE org_id = $1`,
	} {
		refused(sql, "refused")
	}
	refused(`UPDATE tiles SET hashes = substr(hashes, 2) WHERE org_id = $1 AND level = 0 AND idx = 0`, "only grow")
	refused(`UPDATE log_heads SET size = 1 WHERE org_id = $1`, "never shrinks")

	// Checkpoints: another first, one smaller than the one it follows, one
	// after a checkpoint that already has a successor, one after none.
	insert := `INSERT INTO checkpoints (org_id, size, prev_size, root, note, signed_at) VALUES ($1, $2, $3, '\x00', 'n', 0)`
	for _, c := range []struct {
		size int64
		prev *int64
		want string
	}{
		{30, nil, "checkpoints_one_first"},
		{15, ptr[int64](20), "checkpoints_grow"},
		{30, ptr[int64](10), "checkpoints_one_successor"},
		{30, ptr[int64](25), "checkpoints_follow"},
	} {
		if _, err := conn.Exec(ctx, insert, org.ID, c.size, c.prev); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkpoint %d after %v: %v, want %s", c.size, c.prev, err, c.want)
		}
	}

	// The gate opens for one transaction, the way retention opens it.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`SET LOCAL citus.propagate_set_commands = 'local'`, `SET LOCAL veritrail.removal = 'on'`} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if tag, err := tx.Exec(ctx, `DELETE FROM contents WHERE org_id = $1 AND seq = 1`, org.ID); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("removal through the gate: %v %v", tag, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	refused(`DELETE FROM contents WHERE org_id = $1 AND seq = 2`, "refused")

	// Nodes adding checkpoints at once: every size is added once, and the
	// history stays one chain of growing sizes.
	var wg sync.WaitGroup
	for n := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for size := int64(21); size <= 60; size++ {
				err := s.AddCheckpoint(ctx, org.ID, &veritrail.Checkpoint{Size: size, Root: []byte{byte(size)}, Note: []byte("n"), SignedAt: time.Now()})
				if err != nil && veritrail.ErrorCode(err) != veritrail.EConflict {
					t.Errorf("node %d, checkpoint %d: %v", n, size, err)
				}
			}
		}()
	}
	wg.Wait()
	cps, err := s.Checkpoints(ctx, org.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var prev int64 = -1
	for _, cp := range cps {
		if cp.Size <= prev {
			t.Fatalf("checkpoint %d after %d", cp.Size, prev)
		}
		prev = cp.Size
	}
	if prev != 60 {
		t.Fatalf("latest checkpoint %d, want 60", prev)
	}
	var broken int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM checkpoints c WHERE org_id = $1 AND prev_size IS DISTINCT FROM
		(SELECT max(size) FROM checkpoints p WHERE p.org_id = c.org_id AND p.size < c.size)`, org.ID).Scan(&broken); err != nil || broken != 0 {
		t.Fatalf("%d checkpoints do not follow the one before them (%v)", broken, err)
	}
}

func ptr[T any](v T) *T { return &v }
