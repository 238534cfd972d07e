package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Rules, the evaluator's position, alerts, their delivery queue and their
// records (veritrail.RuleStore, veritrail.AlertStore).

const ruleColumns = `id, org_id, name, spec, author, since_seq, created_at, updated_at`

func scanRule(row interface{ Scan(...any) error }) (*veritrail.Rule, error) {
	var r veritrail.Rule
	var created, updated int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Name, &r.Spec, &r.Author, &r.SinceSeq, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "rule not found")
		}
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &r, nil
}

// CreateRule implements veritrail.RuleStore.
func (s *Store) CreateRule(ctx context.Context, r *veritrail.Rule) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO rules (`+ruleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.OrgID, r.Name, r.Spec, r.Author, r.SinceSeq, r.CreatedAt.UnixNano(), r.UpdatedAt.UnixNano())
	switch {
	case isUniqueViolation(err):
		return veritrail.Errorf(veritrail.EConflict, "a rule named %q already exists", r.Name)
	case isForeignKeyViolation(err):
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// RuleByID implements veritrail.RuleStore.
func (s *Store) RuleByID(ctx context.Context, org int64, id string) (*veritrail.Rule, error) {
	return scanRule(s.rdb.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE org_id = ? AND id = ?`, org, id))
}

// ListRules implements veritrail.RuleStore.
func (s *Store) ListRules(ctx context.Context, org int64) ([]*veritrail.Rule, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE org_id = ? ORDER BY created_at, id`, org)
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

// UpdateRule implements veritrail.RuleStore.
func (s *Store) UpdateRule(ctx context.Context, r *veritrail.Rule) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE rules SET name = ?, spec = ?, author = ?, since_seq = ?, updated_at = ?
		WHERE org_id = ? AND id = ?`, r.Name, r.Spec, r.Author, r.SinceSeq, r.UpdatedAt.UnixNano(), r.OrgID, r.ID)
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a rule named %q already exists", r.Name)
	}
	return oneRow("rule")(res, err)
}

// DeleteRule implements veritrail.RuleStore.
func (s *Store) DeleteRule(ctx context.Context, org int64, id string) error {
	return oneRow("rule")(s.wdb.ExecContext(ctx, `DELETE FROM rules WHERE org_id = ? AND id = ?`, org, id))
}

// oneRow checks that a statement changed a row: ENotFound (of what)
// otherwise.
func oneRow(what string) func(sql.Result, error) error {
	return func(res sql.Result, err error) error {
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return veritrail.Errorf(veritrail.ENotFound, "%s not found", what)
		}
		return nil
	}
}

// RuleState implements veritrail.RuleStore.
func (s *Store) RuleState(ctx context.Context, org int64) (*veritrail.RuleState, error) {
	st := &veritrail.RuleState{Cursor: -1, SnapshotSeq: -1}
	err := s.rdb.QueryRowContext(ctx, `SELECT cursor, snapshot_seq, snapshot FROM rule_state WHERE org_id = ?`, org).
		Scan(&st.Cursor, &st.SnapshotSeq, &st.Snapshot)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	return st, err
}

// CommitRules implements veritrail.RuleStore.
func (s *Store) CommitRules(ctx context.Context, org int64, c *veritrail.RuleCommit) error {
	if c.To < c.From {
		return veritrail.Errorf(veritrail.EInvalid, "the rules' cursor only moves forward (%d to %d)", c.From, c.To)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur := int64(-1)
	if err := tx.QueryRowContext(ctx, `SELECT cursor FROM rule_state WHERE org_id = ?`, org).Scan(&cur); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if cur != c.From {
		return veritrail.Errorf(veritrail.EConflict, "the rules' cursor is at %d, not %d", cur, c.From)
	}
	if c.Snapshot != nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO rule_state (org_id, cursor, snapshot_seq, snapshot) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET cursor = excluded.cursor, snapshot_seq = excluded.snapshot_seq, snapshot = excluded.snapshot`,
			org, c.To, c.To, c.Snapshot)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO rule_state (org_id, cursor) VALUES (?, ?)
			ON CONFLICT (org_id) DO UPDATE SET cursor = excluded.cursor`, org, c.To)
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	if err != nil {
		return err
	}
	for _, a := range c.NewAlerts {
		ids, _ := json.Marshal(nonNil(a.EventIDs))
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (org_id, id, rule_id, rule, severity, dedup_key, grp, state, count,
			suppressed, event_ids, first_seen, last_seen, last_seq, opened_at, updated_at, snoozed_until, state_by, state_at, note, recorded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			org, a.ID, a.RuleID, a.Rule, a.Severity, a.DedupKey, a.Group, a.State, a.Count, a.Suppressed, string(ids),
			a.FirstSeen.UnixNano(), a.LastSeen.UnixNano(), a.LastSeq, a.OpenedAt.UnixNano(), a.UpdatedAt.UnixNano(),
			nsOrNil(a.SnoozedUntil), a.StateBy, a.StateAt.UnixNano(), a.Note, a.RecordedAt.UnixNano()); err != nil {
			return err
		}
	}
	for _, a := range c.Merged {
		ids, _ := json.Marshal(nonNil(a.EventIDs))
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET count = ?, suppressed = ?, event_ids = ?, first_seen = ?, last_seen = ?,
			last_seq = ?, updated_at = ?, recorded_at = ? WHERE org_id = ? AND id = ?`,
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
	return tx.Commit()
}

func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// insertDeliveries queues ds; beyond MaxPendingDeliveries pending in the
// organization they are stored as dropped.
func insertDeliveries(ctx context.Context, tx *sql.Tx, org int64, ds []*veritrail.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM alert_deliveries WHERE org_id = ? AND state = 'pending'`, org).Scan(&pending); err != nil {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_deliveries (org_id, id, alert_id, rule_id, route_index, destination, route,
			event, escalation, state, attempts, due_at, last_error, result, created_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			org, d.ID, d.AlertID, d.RuleID, d.RouteIndex, d.Destination, d.Route, d.Event, d.Escalation, d.State, d.Attempts,
			d.DueAt.UnixNano(), d.LastError, d.Result, d.CreatedAt.UnixNano(), nsOrNil(d.FinishedAt)); err != nil {
			return err
		}
	}
	return nil
}

func insertRecord(ctx context.Context, tx *sql.Tx, org int64, ev *veritrail.Event) error {
	b, err := veritrail.MarshalInput(ev)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO alert_records (org_id, id, event, created_at) VALUES (?, ?, ?, ?)`,
		org, ev.ID, b, time.Now().UnixNano())
	return err
}

const alertColumns = `org_id, id, rule_id, rule, severity, dedup_key, grp, state, count, suppressed, event_ids, first_seen,
	last_seen, last_seq, opened_at, updated_at, snoozed_until, state_by, state_at, note, recorded_at`

func scanAlert(row interface{ Scan(...any) error }) (*veritrail.Alert, error) {
	var a veritrail.Alert
	var ids string
	var first, last, opened, updated, stateAt, recorded int64
	var snoozed sql.NullInt64
	if err := row.Scan(&a.OrgID, &a.ID, &a.RuleID, &a.Rule, &a.Severity, &a.DedupKey, &a.Group, &a.State, &a.Count, &a.Suppressed,
		&ids, &first, &last, &a.LastSeq, &opened, &updated, &snoozed, &a.StateBy, &stateAt, &a.Note, &recorded); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := s.rdb.QueryContext(ctx, query, args...)
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
	return scanAlert(s.rdb.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE org_id = ? AND id = ?`, org, id))
}

// LatestAlerts implements veritrail.AlertStore: one query, the keys
// passed as a JSON array of [rule id, dedup key] pairs, each key's newest
// alert found on alerts_by_key.
func (s *Store) LatestAlerts(ctx context.Context, org int64, keys []veritrail.AlertKey) ([]*veritrail.Alert, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if len(keys) > veritrail.MaxAlertKeys {
		return nil, veritrail.Errorf(veritrail.EInvalid, "at most %d alert keys at a time, not %d", veritrail.MaxAlertKeys, len(keys))
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.RuleID, k.DedupKey}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE org_id = ? AND id IN (
		SELECT (SELECT a.id FROM alerts AS a WHERE a.org_id = ? AND a.rule_id = json_extract(k.value, '$[0]')
			AND a.dedup_key = json_extract(k.value, '$[1]') ORDER BY a.id DESC LIMIT 1)
		FROM json_each(?) AS k)`, org, org, string(b))
}

// ListAlerts implements veritrail.AlertStore.
func (s *Store) ListAlerts(ctx context.Context, org int64, f veritrail.AlertFilter) ([]*veritrail.Alert, error) {
	var where strings.Builder
	args := []any{org}
	where.WriteString(`org_id = ?`)
	for _, c := range []struct{ col, v string }{{"state", f.State}, {"rule_id", f.RuleID}, {"severity", f.Severity}} {
		if c.v != "" {
			where.WriteString(" AND " + c.col + " = ?")
			args = append(args, c.v)
		}
	}
	if f.Before != "" {
		where.WriteString(" AND id < ?")
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+where.String()+` ORDER BY id DESC LIMIT ?`, args...)
}

// ChangeAlert implements veritrail.AlertStore.
func (s *Store) ChangeAlert(ctx context.Context, org int64, c *veritrail.AlertChange) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE alerts SET state = ?, snoozed_until = ?, state_by = ?, state_at = ?, note = ?,
		updated_at = ?, recorded_at = ? WHERE org_id = ? AND id = ? AND state = ?`,
		c.To, nsOrNil(c.SnoozedUntil), c.By, c.At.UnixNano(), c.Note, c.At.UnixNano(), c.At.UnixNano(), org, c.AlertID, c.From)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM alerts WHERE org_id = ? AND id = ?`, org, c.AlertID).Scan(&state); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
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
	return tx.Commit()
}

// SnoozesDue implements veritrail.AlertStore.
func (s *Store) SnoozesDue(ctx context.Context, t time.Time, limit int) ([]*veritrail.Alert, error) {
	return s.alerts(ctx, `SELECT `+alertColumns+` FROM alerts WHERE state = 'snoozed' AND snoozed_until <= ?
		ORDER BY snoozed_until LIMIT ?`, t.UnixNano(), limit)
}

const deliveryColumns = `org_id, id, alert_id, rule_id, route_index, destination, route, event, escalation, state, attempts,
	due_at, last_error, result, created_at, finished_at`

func scanDelivery(row interface{ Scan(...any) error }) (*veritrail.Delivery, error) {
	var d veritrail.Delivery
	var due, created int64
	var finished sql.NullInt64
	if err := row.Scan(&d.OrgID, &d.ID, &d.AlertID, &d.RuleID, &d.RouteIndex, &d.Destination, &d.Route, &d.Event, &d.Escalation,
		&d.State, &d.Attempts, &due, &d.LastError, &d.Result, &created, &finished); err != nil {
		return nil, err
	}
	d.DueAt, d.CreatedAt, d.FinishedAt = time.Unix(0, due).UTC(), time.Unix(0, created).UTC(), timePtr(finished)
	return &d, nil
}

// ClaimDeliveries implements veritrail.AlertStore. A delivery waits while
// an earlier one of its alert and route is pending (one already tried, or
// not an escalation step still waiting for its time), so that a
// destination hears of an alert's changes in order.
func (s *Store) ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]*veritrail.Delivery, error) {
	rows, err := s.wdb.QueryContext(ctx, `UPDATE alert_deliveries SET claimed_until = ? WHERE rowid IN (
		SELECT d.rowid FROM alert_deliveries d
		WHERE d.state = 'pending' AND d.due_at <= ? AND (d.claimed_until IS NULL OR d.claimed_until < ?)
		AND NOT EXISTS (SELECT 1 FROM alert_deliveries p WHERE p.org_id = d.org_id AND p.alert_id = d.alert_id
			AND p.route_index = d.route_index AND p.state = 'pending' AND (p.escalation = 0 OR p.attempts > 0)
			AND (p.created_at < d.created_at OR (p.created_at = d.created_at AND p.id < d.id)))
		ORDER BY d.due_at LIMIT ?) RETURNING `+deliveryColumns, until.UnixNano(), now.UnixNano(), now.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// FinishDelivery implements veritrail.AlertStore.
func (s *Store) FinishDelivery(ctx context.Context, d *veritrail.Delivery) error {
	return oneRow("delivery")(s.wdb.ExecContext(ctx, `UPDATE alert_deliveries SET state = ?, attempts = ?, due_at = ?, last_error = ?, result = ?,
		finished_at = ?, claimed_until = NULL WHERE org_id = ? AND id = ?`,
		d.State, d.Attempts, d.DueAt.UnixNano(), d.LastError, d.Result, nsOrNil(d.FinishedAt), d.OrgID, d.ID))
}

// ListDeliveries implements veritrail.AlertStore.
func (s *Store) ListDeliveries(ctx context.Context, org int64, alertID string) ([]*veritrail.Delivery, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM alert_deliveries WHERE org_id = ? AND alert_id = ?
		ORDER BY created_at, id`, org, alertID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// AlertRecords implements veritrail.AlertStore.
func (s *Store) AlertRecords(ctx context.Context, limit int) ([]*veritrail.AlertRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT org_id, id, event FROM alert_records ORDER BY created_at, id LIMIT ?`, limit)
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
	args := []any{org}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM alert_records WHERE org_id = ? AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	return err
}
