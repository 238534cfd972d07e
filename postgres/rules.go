package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	veritrail "github.com/veritrail/veritrail"
)

// Rules, the evaluator's position, alerts, their delivery queue and their
// records (veritrail.RuleStore, veritrail.AlertStore).

const ruleColumns = `id, org_id, name, spec, author, since_seq, created_at, updated_at`

func scanRule(row pgx.Row) (*veritrail.Rule, error) {
	var r veritrail.Rule
	var created, updated int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Name, &r.Spec, &r.Author, &r.SinceSeq, &created, &updated); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "rule not found")
		}
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &r, nil
}

// missingOrg turns a foreign key violation (every foreign key names an
// organization) into ENotFound.
func missingOrg(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// CreateRule implements veritrail.RuleStore.
func (s *Store) CreateRule(ctx context.Context, r *veritrail.Rule) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO rules (`+ruleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.OrgID, r.Name, r.Spec, r.Author, r.SinceSeq, r.CreatedAt.UnixNano(), r.UpdatedAt.UnixNano())
	return missingOrg(pgErr(err, fmt.Sprintf("a rule named %q already exists", r.Name)))
}

// RuleByID implements veritrail.RuleStore.
func (s *Store) RuleByID(ctx context.Context, org int64, id string) (*veritrail.Rule, error) {
	return scanRule(s.pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM rules WHERE org_id = $1 AND id = $2`, org, id))
}

// ListRules implements veritrail.RuleStore.
func (s *Store) ListRules(ctx context.Context, org int64) ([]*veritrail.Rule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ruleColumns+` FROM rules WHERE org_id = $1 ORDER BY created_at, id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// oneRow turns a statement that changed no row into ENotFound.
func oneRow(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "%s not found", what)
	}
	return nil
}

// UpdateRule implements veritrail.RuleStore.
func (s *Store) UpdateRule(ctx context.Context, r *veritrail.Rule) error {
	tag, err := s.pool.Exec(ctx, `UPDATE rules SET name = $1, spec = $2, author = $3, since_seq = $4, updated_at = $5
		WHERE org_id = $6 AND id = $7`, r.Name, r.Spec, r.Author, r.SinceSeq, r.UpdatedAt.UnixNano(), r.OrgID, r.ID)
	return oneRow(tag, pgErr(err, fmt.Sprintf("a rule named %q already exists", r.Name)), "rule")
}

// DeleteRule implements veritrail.RuleStore.
func (s *Store) DeleteRule(ctx context.Context, org int64, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM rules WHERE org_id = $1 AND id = $2`, org, id)
	return oneRow(tag, err, "rule")
}

// RuleState implements veritrail.RuleStore.
func (s *Store) RuleState(ctx context.Context, org int64) (*veritrail.RuleState, error) {
	st := &veritrail.RuleState{Cursor: -1, SnapshotSeq: -1}
	err := s.pool.QueryRow(ctx, `SELECT cursor, snapshot_seq, snapshot FROM rule_state WHERE org_id = $1`, org).
		Scan(&st.Cursor, &st.SnapshotSeq, &st.Snapshot)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	return st, err
}

// CommitRules implements veritrail.RuleStore.
func (s *Store) CommitRules(ctx context.Context, org int64, c *veritrail.RuleCommit) error {
	if c.To < c.From {
		return veritrail.Errorf(veritrail.EInvalid, "the rules' cursor only moves forward (%d to %d)", c.From, c.To)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// The cursor's compare-and-set: the first commit inserts the row
	// (From -1), later ones update it from where it is.
	snapSeq := int64(-1)
	if c.Snapshot != nil {
		snapSeq = c.To
	}
	var tag pgconn.CommandTag
	if c.From == -1 {
		tag, err = tx.Exec(ctx, `INSERT INTO rule_state (org_id, cursor, snapshot_seq, snapshot) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id) DO UPDATE SET cursor = excluded.cursor, snapshot_seq = excluded.snapshot_seq,
				snapshot = excluded.snapshot WHERE rule_state.cursor = -1`, org, c.To, snapSeq, c.Snapshot)
	} else {
		tag, err = tx.Exec(ctx, `UPDATE rule_state SET cursor = $1,
			snapshot_seq = CASE WHEN $2::bytea IS NULL THEN snapshot_seq ELSE $1 END, snapshot = COALESCE($2::bytea, snapshot)
			WHERE org_id = $3 AND cursor = $4`, c.To, c.Snapshot, org, c.From)
	}
	if err != nil {
		return missingOrg(err)
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.EConflict, "the rules' cursor is no longer at %d", c.From)
	}
	for _, a := range c.NewAlerts {
		ids, _ := json.Marshal(nonNil(a.EventIDs))
		if _, err := tx.Exec(ctx, `INSERT INTO alerts (org_id, id, rule_id, rule, severity, dedup_key, grp, state, count,
			suppressed, event_ids, first_seen, last_seen, last_seq, opened_at, updated_at, snoozed_until, state_by, state_at, note, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
			org, a.ID, a.RuleID, a.Rule, a.Severity, a.DedupKey, a.Group, a.State, a.Count, a.Suppressed, string(ids),
			a.FirstSeen.UnixNano(), a.LastSeen.UnixNano(), a.LastSeq, a.OpenedAt.UnixNano(), a.UpdatedAt.UnixNano(),
			nsOrNil(a.SnoozedUntil), a.StateBy, a.StateAt.UnixNano(), a.Note, a.RecordedAt.UnixNano()); err != nil {
			return err
		}
	}
	for _, a := range c.Merged {
		ids, _ := json.Marshal(nonNil(a.EventIDs))
		if _, err := tx.Exec(ctx, `UPDATE alerts SET count = $1, suppressed = $2, event_ids = $3, first_seen = $4, last_seen = $5,
			last_seq = $6, updated_at = $7, recorded_at = $8 WHERE org_id = $9 AND id = $10`,
			a.Count, a.Suppressed, string(ids), a.FirstSeen.UnixNano(), a.LastSeen.UnixNano(), a.LastSeq, a.UpdatedAt.UnixNano(),
			a.RecordedAt.UnixNano(), org, a.ID); err != nil {
			return err
		}
	}
	if err := insertDeliveries(ctx, tx, org, c.Deliveries); err != nil {
		return err
	}
	for _, ev := range c.Records {
		if err := insertRecord(ctx, tx, org, ev); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// insertDeliveries queues ds; beyond MaxPendingDeliveries pending in the
// organization they are stored as dropped.
func insertDeliveries(ctx context.Context, tx pgx.Tx, org int64, ds []*veritrail.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	var pending int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM alert_deliveries WHERE org_id = $1 AND state = 'pending'`, org).Scan(&pending); err != nil {
		return err
	}
	for _, d := range ds {
		if d.State == veritrail.DeliveryPending {
			if pending >= veritrail.MaxPendingDeliveries {
				d.State, d.LastError = veritrail.DeliveryDropped, "the organization's delivery queue is full"
				d.FinishedAt = &d.CreatedAt
			} else {
				pending++
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_deliveries (org_id, id, alert_id, rule_id, route_index, destination, route,
			event, escalation, state, attempts, due_at, last_error, result, created_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			org, d.ID, d.AlertID, d.RuleID, d.RouteIndex, d.Destination, d.Route, d.Event, d.Escalation, d.State, d.Attempts,
			d.DueAt.UnixNano(), d.LastError, d.Result, d.CreatedAt.UnixNano(), nsOrNil(d.FinishedAt)); err != nil {
			return err
		}
	}
	return nil
}

func insertRecord(ctx context.Context, tx pgx.Tx, org int64, ev *veritrail.Event) error {
	b, err := veritrail.MarshalInput(ev)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO alert_records (org_id, id, event, created_at) VALUES ($1, $2, $3, $4)`,
		org, ev.ID, b, time.Now().UnixNano())
	return err
}

const alertColumns = `org_id, id, rule_id, rule, severity, dedup_key, grp, state, count, suppressed, event_ids, first_seen,
	last_seen, last_seq, opened_at, updated_at, snoozed_until, state_by, state_at, note, recorded_at`

func scanAlert(row pgx.Row) (*veritrail.Alert, error) {
	var a veritrail.Alert
	var ids string
	var first, last, opened, updated, stateAt, recorded int64
	var snoozed *int64
	if err := row.Scan(&a.OrgID, &a.ID, &a.RuleID, &a.Rule, &a.Severity, &a.DedupKey, &a.Group, &a.State, &a.Count, &a.Suppressed,
		&ids, &first, &last, &a.LastSeq, &opened, &updated, &snoozed, &a.StateBy, &stateAt, &a.Note, &recorded); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "alert not found")
		}
		return nil, err
	}
	if err := json.Unmarshal([]byte(ids), &a.EventIDs); err != nil {
		return nil, err
	}
	ut := func(ns int64) time.Time { return time.Unix(0, ns).UTC() }
	a.FirstSeen, a.LastSeen, a.OpenedAt, a.UpdatedAt, a.StateAt, a.RecordedAt = ut(first), ut(last), ut(opened), ut(updated), ut(stateAt), ut(recorded)
	a.SnoozedUntil = timePtr(snoozed)
	return &a, nil
}

func (s *Store) alerts(ctx context.Context, query string, args ...any) ([]*veritrail.Alert, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertByID implements veritrail.AlertStore.
func (s *Store) AlertByID(ctx context.Context, org int64, id string) (*veritrail.Alert, error) {
	return scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE org_id = $1 AND id = $2`, org, id))
}

// LatestAlerts implements veritrail.AlertStore: one query over the keys
// as two arrays, each key's newest alert found on alerts_by_key.
func (s *Store) LatestAlerts(ctx context.Context, org int64, keys []veritrail.AlertKey) ([]*veritrail.Alert, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if len(keys) > veritrail.MaxAlertKeys {
		return nil, veritrail.Errorf(veritrail.EInvalid, "at most %d alert keys at a time, not %d", veritrail.MaxAlertKeys, len(keys))
	}
	rules, dedup := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		rules[i], dedup[i] = k.RuleID, k.DedupKey
	}
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE org_id = $1 AND id IN (
		SELECT (SELECT a.id FROM alerts a WHERE a.org_id = $1 AND a.rule_id = k.r AND a.dedup_key = k.d ORDER BY a.id DESC LIMIT 1)
		FROM unnest($2::text[], $3::text[]) AS k(r, d))`, org, rules, dedup)
}

// ListAlerts implements veritrail.AlertStore.
func (s *Store) ListAlerts(ctx context.Context, org int64, f veritrail.AlertFilter) ([]*veritrail.Alert, error) {
	var where strings.Builder
	args := []any{org}
	where.WriteString(`org_id = $1`)
	for _, c := range []struct{ col, v string }{{"state", f.State}, {"rule_id", f.RuleID}, {"severity", f.Severity}} {
		if c.v != "" {
			args = append(args, c.v)
			fmt.Fprintf(&where, " AND %s = $%d", c.col, len(args))
		}
	}
	if f.Before != "" {
		args = append(args, f.Before)
		fmt.Fprintf(&where, " AND id < $%d", len(args))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	return s.alerts(ctx, fmt.Sprintf(`SELECT `+alertColumns+` FROM alerts WHERE %s ORDER BY id DESC LIMIT $%d`, where.String(), len(args)), args...)
}

// ChangeAlert implements veritrail.AlertStore.
func (s *Store) ChangeAlert(ctx context.Context, org int64, c *veritrail.AlertChange) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE alerts SET state = $1, snoozed_until = $2, state_by = $3, state_at = $4, note = $5,
		updated_at = $4, recorded_at = $4 WHERE org_id = $6 AND id = $7 AND state = $8`,
		c.To, nsOrNil(c.SnoozedUntil), c.By, c.At.UnixNano(), c.Note, org, c.AlertID, c.From)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM alerts WHERE org_id = $1 AND id = $2`, org, c.AlertID).Scan(&state); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return veritrail.Errorf(veritrail.ENotFound, "alert not found")
			}
			return err
		}
		return veritrail.Errorf(veritrail.EConflict, "the alert is %s now, not %s; reload it and try again", state, c.From)
	}
	if err := insertDeliveries(ctx, tx, org, c.Deliveries); err != nil {
		return err
	}
	if c.Record != nil {
		if err := insertRecord(ctx, tx, org, c.Record); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// SnoozesDue implements veritrail.AlertStore.
func (s *Store) SnoozesDue(ctx context.Context, t time.Time, limit int) ([]*veritrail.Alert, error) {
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE state = 'snoozed' AND snoozed_until <= $1
		ORDER BY snoozed_until LIMIT $2`, t.UnixNano(), limit)
}

const deliveryColumns = `org_id, id, alert_id, rule_id, route_index, destination, route, event, escalation, state, attempts,
	due_at, last_error, result, created_at, finished_at`

func scanDeliveries(rows pgx.Rows) ([]*veritrail.Delivery, error) {
	defer rows.Close()
	var out []*veritrail.Delivery
	for rows.Next() {
		var d veritrail.Delivery
		var due, created int64
		var finished *int64
		if err := rows.Scan(&d.OrgID, &d.ID, &d.AlertID, &d.RuleID, &d.RouteIndex, &d.Destination, &d.Route, &d.Event, &d.Escalation,
			&d.State, &d.Attempts, &due, &d.LastError, &d.Result, &created, &finished); err != nil {
			return nil, err
		}
		d.DueAt, d.CreatedAt, d.FinishedAt = time.Unix(0, due).UTC(), time.Unix(0, created).UTC(), timePtr(finished)
		out = append(out, &d)
	}
	return out, rows.Err()
}

// ClaimDeliveries implements veritrail.AlertStore. Candidates are read
// across organizations without locks, then each is claimed by a
// conditional update of its own row (which names its organization, so on
// Citus it runs on one worker): a row another node claimed first no
// longer matches and is passed over, so nodes claim apart. A delivery
// waits while an earlier one of its alert and route is pending (one
// already tried, or not an escalation step still waiting for its time),
// so that a destination hears of an alert's changes in order.
func (s *Store) ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]*veritrail.Delivery, error) {
	const inOrder = `d.state = 'pending' AND d.due_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until < $1)
		AND NOT EXISTS (SELECT 1 FROM alert_deliveries p WHERE p.org_id = d.org_id AND p.alert_id = d.alert_id
			AND p.route_index = d.route_index AND p.state = 'pending' AND (NOT p.escalation OR p.attempts > 0)
			AND (p.created_at < d.created_at OR (p.created_at = d.created_at AND p.id < d.id)))`
	rows, err := s.pool.Query(ctx, `SELECT d.org_id, d.id FROM alert_deliveries d WHERE `+inOrder+`
		ORDER BY d.due_at, d.org_id, d.id LIMIT $2`, now.UnixNano(), 2*limit)
	if err != nil {
		return nil, err
	}
	type key struct {
		org int64
		id  string
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (k key, err error) {
		err = r.Scan(&k.org, &k.id)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	var out []*veritrail.Delivery
	for _, k := range keys {
		if len(out) == limit {
			break
		}
		rows, err := s.pool.Query(ctx, `UPDATE alert_deliveries d SET claimed_until = $2 WHERE d.org_id = $3 AND d.id = $4 AND `+inOrder+`
			RETURNING `+deliveryColumns, now.UnixNano(), until.UnixNano(), k.org, k.id)
		if err != nil {
			return nil, err
		}
		ds, err := scanDeliveries(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...) // none: another node claimed it first
	}
	return out, nil
}

// FinishDelivery implements veritrail.AlertStore.
func (s *Store) FinishDelivery(ctx context.Context, d *veritrail.Delivery) error {
	tag, err := s.pool.Exec(ctx, `UPDATE alert_deliveries SET state = $1, attempts = $2, due_at = $3, last_error = $4, result = $5,
		finished_at = $6, claimed_until = NULL WHERE org_id = $7 AND id = $8`,
		d.State, d.Attempts, d.DueAt.UnixNano(), d.LastError, d.Result, nsOrNil(d.FinishedAt), d.OrgID, d.ID)
	return oneRow(tag, err, "delivery")
}

// ListDeliveries implements veritrail.AlertStore.
func (s *Store) ListDeliveries(ctx context.Context, org int64, alertID string) ([]*veritrail.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM alert_deliveries WHERE org_id = $1 AND alert_id = $2
		ORDER BY created_at, id`, org, alertID)
	if err != nil {
		return nil, err
	}
	return scanDeliveries(rows)
}

// AlertRecords implements veritrail.AlertStore.
func (s *Store) AlertRecords(ctx context.Context, limit int) ([]*veritrail.AlertRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT org_id, id, event FROM alert_records ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.AlertRecord
	for rows.Next() {
		var r veritrail.AlertRecord
		if err := rows.Scan(&r.OrgID, &r.ID, &r.Event); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// AlertRecorded implements veritrail.AlertStore.
func (s *Store) AlertRecorded(ctx context.Context, org int64, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM alert_records WHERE org_id = $1 AND id = ANY($2)`, org, ids)
	return err
}
