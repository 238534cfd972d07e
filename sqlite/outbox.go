package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Enqueue implements veritrail.EventStore.
func (s *Store) Enqueue(ctx context.Context, org int64, e *veritrail.Event) error {
	if e.ID == "" {
		return errors.New("sqlite: an enqueued event needs an id")
	}
	b, err := veritrail.MarshalInput(e)
	if err != nil {
		return err
	}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO outbox (id, org_id, event, created_at) VALUES (?, ?, ?, ?)`,
		e.ID, org, b, s.now().UnixNano())
	return err
}

// outboxLoop appends enqueued events every second.
func (s *Store) outboxLoop() {
	defer close(s.outboxDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := s.drainOutbox(context.Background()); err != nil {
			s.log.Error("appending events from the outbox; will retry", slog.Any("err", err))
		}
		select {
		case <-s.closing:
			return
		case <-tick.C:
		}
	}
}

func (s *Store) drainOutbox(ctx context.Context) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, org_id, event, created_at FROM outbox ORDER BY created_at, id LIMIT 1000`)
	if err != nil {
		return err
	}
	type item struct {
		id    string
		org   int64
		event []byte
		at    int64
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.id, &it.org, &it.event, &it.at); err != nil {
			rows.Close()
			return err
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, it := range items {
		// The time limit on future events is the receive time: an
		// enqueued event's time is when it was enqueued.
		dec := veritrail.NewDecoder(bytes.NewReader(it.event), veritrail.DefaultLimits, time.Unix(0, it.at))
		e, err := dec.Next()
		if err == nil {
			_, err = dec.Next()
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		if err == nil {
			_, err = s.Append(ctx, it.org, []*veritrail.Event{e})
		}
		switch veritrail.ErrorCode(err) {
		case "":
		case veritrail.EInvalidEvent, veritrail.EInvalidJSON, veritrail.ETooLarge, veritrail.EConflict, veritrail.ENotFound:
			// It can never be appended (or its organization is gone).
			s.log.Error("dropping an unusable event from the outbox", slog.String("id", it.id), slog.Any("err", err))
		default:
			return err // e.g. the store is closing: keep it for next time
		}
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, it.id); err != nil {
			return err
		}
	}
	return nil
}
