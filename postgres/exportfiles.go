package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// exportChunk is the size of one export_files row.
const exportChunk = 1 << 20

// PutExportFile implements veritrail.ExportFileStore: the file's chunks
// are written in one transaction, so a failed put leaves nothing.
func (s *Store) PutExportFile(ctx context.Context, org int64, id string, r io.Reader) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM export_files WHERE org_id = $1 AND id = $2`, org, id); err != nil {
		return 0, err
	}
	buf := make([]byte, exportChunk)
	var size int64
	for chunk := 0; ; chunk++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO export_files (org_id, id, chunk, data) VALUES ($1, $2, $3, $4)`, org, id, chunk, buf[:n]); err != nil {
				return 0, err
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, rerr
		}
	}
	if size == 0 { // an empty file still exists: one empty chunk
		if _, err := tx.Exec(ctx, `INSERT INTO export_files (org_id, id, chunk, data) VALUES ($1, $2, 0, '')`, org, id); err != nil {
			return 0, err
		}
	}
	return size, tx.Commit(ctx)
}

// OpenExportFile implements veritrail.ExportFileStore. The reader fetches
// one chunk at a time, so serving a large file holds 1 MiB of it.
func (s *Store) OpenExportFile(ctx context.Context, org int64, id string) (io.ReadSeekCloser, error) {
	var chunks int
	var size int64
	// octet_length reads the stored size without fetching the chunk.
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(octet_length(data)), 0)::bigint FROM export_files WHERE org_id = $1 AND id = $2`,
		org, id).Scan(&chunks, &size)
	if err != nil {
		return nil, err
	}
	if chunks == 0 {
		return nil, veritrail.Errorf(veritrail.ENotFound, "export file not found")
	}
	return &exportFile{ctx: ctx, s: s, org: org, id: id, size: size}, nil
}

// DeleteExportFile implements veritrail.ExportFileStore.
func (s *Store) DeleteExportFile(ctx context.Context, org int64, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM export_files WHERE org_id = $1 AND id = $2`, org, id)
	return err
}

// exportFile reads a stored export file chunk by chunk.
type exportFile struct {
	ctx     context.Context
	s       *Store
	org     int64
	id      string
	size    int64
	off     int64
	chunk   int // index of buf's chunk, when started
	buf     []byte
	started bool
}

func (f *exportFile) Read(p []byte) (int, error) {
	if f.off >= f.size {
		return 0, io.EOF
	}
	want := int(f.off / exportChunk)
	if !f.started || f.chunk != want {
		var data []byte
		err := f.s.pool.QueryRow(f.ctx, `SELECT data FROM export_files WHERE org_id = $1 AND id = $2 AND chunk = $3`, f.org, f.id, want).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("export file %s: chunk %d is gone (the export expired meanwhile?)", f.id, want)
		}
		if err != nil {
			return 0, err
		}
		f.buf, f.chunk, f.started = data, want, true
	}
	n := copy(p, f.buf[f.off-int64(f.chunk)*exportChunk:])
	f.off += int64(n)
	return n, nil
}

func (f *exportFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, errors.New("export file: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("export file: negative position")
	}
	f.off = offset
	return offset, nil
}

func (f *exportFile) Close() error { f.buf = nil; return nil }

var _ veritrail.ExportFileStore = (*Store)(nil)
