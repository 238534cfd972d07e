package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	// Dir holds the spool. Several gateways may share one directory: each
	// writes its own segments, and adopts those of gateways that died.
	Dir string
	// Server is the Veritrail base URL; Token an ingest token (events:write).
	Server string
	Token  string
	Client *http.Client
	// MaxBytes caps the unsent records on disk (default 1 GiB); beyond it
	// Append fails with ErrSpoolFull.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file starts (1 MiB).
	SegmentBytes int64
	// Batch is the most events per request (500).
	Batch int
	// Overflow is how many records are kept in memory while the disk
	// refuses them (10,000); beyond it a record is dropped and counted.
	Overflow int
	// RetryMin and RetryMax bound the backoff between failed sends.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

// ErrSpoolFull is returned by Append when the spool holds MaxBytes.
var ErrSpoolFull = errors.New("the spool is full (--spool-max-bytes): the Veritrail server has been unreachable for long")

// Spool keeps records durably on disk until the Veritrail server has
// acknowledged them, and sends them in order, in batches, retrying with
// backoff while the server is unreachable.
//
// Contract: a record for which Append returned nil is on disk (fsynced) and
// will be sent until the server acknowledges it, across restarts of this
// process or of the server; the server deduplicates resends by event id. A
// record the server refuses as invalid (4xx naming it) is moved to
// rejected.ndjson in the spool directory rather than retried forever.
type Spool struct {
	cfg  SpoolConfig
	log  *slog.Logger
	tag  string
	lock *os.File

	mu       sync.Mutex // the writer, the queue and its bookkeeping
	cur      *os.File
	curPath  string
	seq      int
	queue    []string         // segments to send, oldest first; cur is last when open
	size     map[string]int64 // per queued segment: bytes counted in unsent (for cur: written and fsynced)
	acked    map[string]int64 // per queued segment: bytes the server acknowledged, from its start
	held     map[string]*os.File
	overflow [][]byte // lines the disk refused, oldest first

	unsent   atomic.Int64 // sum over the queue of size - acked
	sent     atomic.Int64
	rejected atomic.Int64
	dropped  atomic.Int64
	failing  atomic.Bool
	wake     chan struct{}
}

// OpenSpool opens (creating) a spool directory and adopts the records of
// gateways that stopped before sending them.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Dir == "" || cfg.Server == "" {
		return nil, errors.New("spool: a directory and a server URL are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 1 << 20
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Overflow <= 0 {
		cfg.Overflow = 10000
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 200 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Spool{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		tag:  fmt.Sprintf("%d-%d", time.Now().UnixNano(), os.Getpid()),
		size: map[string]int64{}, acked: map[string]int64{}, held: map[string]*os.File{}}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, s.tag+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool lock: %w", err)
	}
	s.lock = lock
	s.adopt()
	return s, nil
}

// Append writes events to the spool and returns once they are durable, or
// when ctx ends first (the write then completes in the background). When
// the disk refuses them (full spool, I/O error) they are kept in memory and
// written as soon as it accepts them; Append then returns the error.
func (s *Spool) Append(ctx context.Context, events ...*veritrail.Event) error {
	lines := make([][]byte, 0, len(events))
	for _, e := range events {
		b, err := veritrail.MarshalInput(e)
		if err != nil {
			return err
		}
		lines = append(lines, b)
	}
	done := make(chan error, 1)
	go func() { done <- s.write(lines) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write appends lines to the current segment and fsyncs it.
func (s *Spool) write(lines [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.overflow) > 0 {
		// Keep the order: what waits in memory goes first.
		pending := s.overflow
		s.overflow = nil
		if err := s.writeLocked(pending); err != nil {
			s.keepLocked(append(pending, lines...))
			return err
		}
	}
	if err := s.writeLocked(lines); err != nil {
		s.keepLocked(lines)
		return err
	}
	return nil
}

func (s *Spool) keepLocked(lines [][]byte) {
	for _, l := range lines {
		if len(s.overflow) >= s.cfg.Overflow {
			s.dropped.Add(1)
			s.log.Error("spool: record dropped: the disk refuses records and the memory overflow is full", slog.Int("overflow", s.cfg.Overflow))
			continue
		}
		s.overflow = append(s.overflow, l)
	}
}

func (s *Spool) writeLocked(lines [][]byte) error {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	if s.unsent.Load()+int64(n) > s.cfg.MaxBytes {
		return ErrSpoolFull
	}
	if s.cur == nil || s.size[s.curPath] >= s.cfg.SegmentBytes {
		if err := s.rollLocked(); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(append(buf, l...), '\n')
	}
	_, err := s.cur.Write(buf)
	if err == nil {
		err = s.cur.Sync()
	}
	if err != nil {
		// Cut back what was not made durable: a partial line would corrupt
		// the segment, and the caller keeps these lines to write them again.
		s.cur.Truncate(s.size[s.curPath])
		s.cur.Seek(s.size[s.curPath], io.SeekStart)
		return err
	}
	s.size[s.curPath] += int64(n)
	s.unsent.Add(int64(n))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *Spool) rollLocked() error {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	s.seq++
	path := filepath.Join(s.cfg.Dir, fmt.Sprintf("%s.%08d.ndjson", s.tag, s.seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// The new name must survive a power loss too, not only its data.
	if err := syncDir(s.cfg.Dir); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	s.cur, s.curPath = f, path
	s.queue = append(s.queue, path)
	s.size[path], s.acked[path] = 0, 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dropLocked removes the head segment from the queue and the disk; what
// it still counted in unsent (a torn last line, a file another gateway
// already sent and removed) stops counting.
func (s *Spool) dropLocked(seg string) {
	s.unsent.Add(-(s.size[seg] - s.acked[seg]))
	delete(s.size, seg)
	delete(s.acked, seg)
	s.queue = s.queue[1:]
	os.Remove(seg)
}

// adopt takes over the segments of gateways that stopped, oldest first.
// It runs in OpenSpool and on Run's goroutine. A gateway holds an exclusive flock on <tag>.lock while it runs, and on
// the lock of every tag it adopted until it closes, so each stopped
// gateway's segments are adopted by one gateway, once.
func (s *Spool) adopt() {
	segs, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.ndjson"))
	byTag := map[string][]string{}
	for _, p := range segs {
		base := filepath.Base(p)
		if base == "rejected.ndjson" {
			continue
		}
		tag, _, ok := strings.Cut(base, ".")
		if !ok || tag == s.tag || s.held[tag] != nil {
			continue
		}
		byTag[tag] = append(byTag[tag], p)
	}
	tags := slices.Sorted(maps.Keys(byTag))
	for _, tag := range tags {
		// O_CREATE: a gateway that closed with records unsent may have
		// left no lock file; the flock on a new one still excludes others.
		lf, err := os.OpenFile(filepath.Join(s.cfg.Dir, tag+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			continue
		}
		if syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lf.Close() // its gateway, or the one that adopted it, is running
			continue
		}
		s.held[tag] = lf
		var paths []string
		var size int64
		s.mu.Lock()
		for _, p := range slices.Sorted(slices.Values(byTag[tag])) {
			if fi, err := os.Stat(p); err == nil {
				paths = append(paths, p)
				s.size[p], s.acked[p] = fi.Size(), 0
				size += fi.Size()
			}
		}
		// Adopted segments are older than anything this gateway writes.
		s.queue = append(paths, s.queue...)
		s.mu.Unlock()
		s.unsent.Add(size)
		s.log.Info("spool: adopted unsent records of a stopped gateway", slog.Int("segments", len(paths)), slog.Int64("bytes", size))
	}
	// Stale lock files without segments.
	locks, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.lock"))
	for _, lp := range locks {
		tag := strings.TrimSuffix(filepath.Base(lp), ".lock")
		if tag == s.tag || s.held[tag] != nil || len(byTag[tag]) > 0 {
			continue
		}
		if lf, err := os.OpenFile(lp, os.O_RDWR, 0); err == nil {
			if syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				os.Remove(lp)
			}
			lf.Close()
		}
	}
}

// Run sends spooled records until ctx ends.
func (s *Spool) Run(ctx context.Context) {
	backoff := time.Duration(0)
	adoptTick := time.NewTicker(30 * time.Second)
	defer adoptTick.Stop()
	for {
		s.retryOverflow()
		lines, seg, end, err := s.next()
		if err != nil {
			s.log.Error("spool: reading a segment", slog.Any("err", err))
		}
		if len(lines) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-adoptTick.C:
				s.adopt()
			case <-time.After(time.Second):
			}
			continue
		}
		wait, err := s.send(ctx, lines)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !s.failing.Swap(true) {
				s.log.Warn("spool: the Veritrail server is unreachable; records are kept on disk and sent when it is back",
					slog.Any("err", err), slog.Int64("unsent_bytes", s.unsent.Load()))
			}
			backoff = min(max(backoff*2, s.cfg.RetryMin), s.cfg.RetryMax)
			d := max(wait, backoff/2+rand.N(backoff/2+1))
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		if s.failing.Swap(false) {
			s.log.Info("spool: the Veritrail server is reachable again; sending what was kept")
		}
		backoff = 0
		s.ack(seg, end)
	}
}

func (s *Spool) retryOverflow() {
	s.mu.Lock()
	if len(s.overflow) == 0 {
		s.mu.Unlock()
		return
	}
	pending := s.overflow
	s.overflow = nil
	if err := s.writeLocked(pending); err != nil {
		s.overflow = append(pending, s.overflow...)
	}
	s.mu.Unlock()
}

// next reads the next batch of whole lines after what was acknowledged of
// the head segment, dropping segments read to their end.
func (s *Spool) next() (lines [][]byte, seg string, end int64, err error) {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return nil, "", 0, nil
		}
		head := s.queue[0]
		off := s.acked[head]
		limit := int64(-1) // a closed segment: to its end
		if head == s.curPath && s.cur != nil {
			limit = s.size[head]
		}
		s.mu.Unlock()
		if limit >= 0 && off >= limit {
			return nil, "", 0, nil // caught up with the writer
		}
		lines, end, err = s.readFrom(head, off, limit)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, "", 0, err
		}
		if len(lines) > 0 {
			return lines, head, end, nil
		}
		// A closed segment read to its end (or gone): done with it.
		s.mu.Lock()
		if limit < 0 && len(s.queue) > 0 && s.queue[0] == head {
			s.dropLocked(head)
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		return nil, "", 0, nil
	}
}

func (s *Spool) readFrom(path string, off, limit int64) ([][]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, off, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off, err
	}
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit-off)
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var lines [][]byte
	size := 0
	for len(lines) < s.cfg.Batch && size < 4<<20 {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break // EOF, or a torn last line (a crash mid-write): not yet
		}
		off += int64(len(line))
		size += len(line)
		if l := bytes.TrimSpace(line); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	return lines, off, nil
}

// ack records that everything up to end of seg was acknowledged.
func (s *Spool) ack(seg string, end int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, queued := s.size[seg]; queued && end > s.acked[seg] {
		s.unsent.Add(-(end - s.acked[seg]))
		s.acked[seg] = end
	}
}

// send posts lines; on a refusal naming one event it moves that event to
// rejected.ndjson and sends the rest. It returns how long the server asked
// to wait (Retry-After) with an error when the batch must be retried.
func (s *Spool) send(ctx context.Context, lines [][]byte) (time.Duration, error) {
	for len(lines) > 0 {
		body := bytes.Join(lines, []byte("\n"))
		req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(s.cfg.Server, "/")+"/api/v1/events", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
		resp, err := s.cfg.Client.Do(req)
		if err != nil {
			return 0, err
		}
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			s.noteUnrecorded(rb)
			s.sent.Add(int64(len(lines)))
			return 0, nil
		case resp.StatusCode == http.StatusRequestEntityTooLarge && len(lines) > 1:
			half := len(lines) / 2
			if w, err := s.send(ctx, lines[:half]); err != nil {
				return w, err
			}
			lines = lines[half:]
			continue
		case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusRequestEntityTooLarge:
			var eb struct {
				Error struct {
					Message string `json:"message"`
					Index   *int   `json:"index"`
				} `json:"error"`
			}
			json.Unmarshal(rb, &eb)
			i := 0
			if eb.Error.Index != nil && *eb.Error.Index < len(lines) {
				i = *eb.Error.Index
			} else if len(lines) > 1 {
				// Not one event's fault that we can tell: find it one by one.
				for _, l := range lines {
					if w, err := s.send(ctx, [][]byte{l}); err != nil {
						return w, err
					}
				}
				return 0, nil
			}
			s.reject(lines[i], resp.StatusCode, eb.Error.Message)
			lines = slices.Delete(slices.Clone(lines), i, i+1)
			continue
		default:
			// 401/403 (a wrong or revoked token), 429, 5xx: keep the
			// records and retry; an operator can fix the token meanwhile.
			wait := time.Duration(0)
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = time.Duration(ra) * time.Second
			}
			return wait, fmt.Errorf("server answered %d: %s", resp.StatusCode, bytes.TrimSpace(rb[:min(len(rb), 300)]))
		}
	}
	return 0, nil
}

func (s *Spool) noteUnrecorded(body []byte) {
	if !bytes.Contains(body, []byte(`"recorded":false`)) {
		return
	}
	var res struct {
		Events []struct {
			ID       string `json:"id"`
			Recorded *bool  `json:"recorded"`
			Reason   string `json:"reason"`
		} `json:"events"`
	}
	json.Unmarshal(body, &res)
	for _, e := range res.Events {
		if e.Recorded != nil && !*e.Recorded {
			s.log.Warn("spool: the server did not record an event", slog.String("id", e.ID), slog.String("reason", e.Reason))
		}
	}
}

func (s *Spool) reject(line []byte, status int, msg string) {
	s.rejected.Add(1)
	s.log.Error("spool: the server refused a record; kept in rejected.ndjson", slog.Int("status", status), slog.String("error", msg))
	entry, _ := json.Marshal(map[string]any{"status": status, "error": msg, "event": json.RawMessage(line), "at": time.Now().UTC()})
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, "rejected.ndjson"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.log.Error("spool: cannot keep a refused record", slog.Any("err", err))
		return
	}
	f.Write(append(entry, '\n'))
	f.Sync()
	f.Close()
}

// Unsent is how many bytes of records wait on disk, plus those in memory.
func (s *Spool) Unsent() int64 {
	s.mu.Lock()
	n := 0
	for _, l := range s.overflow {
		n += len(l) + 1
	}
	s.mu.Unlock()
	return s.unsent.Load() + int64(n)
}

// Stats reports what was sent, refused (rejected.ndjson) and dropped.
func (s *Spool) Stats() (sent, rejected, dropped int64) {
	return s.sent.Load(), s.rejected.Load(), s.dropped.Load()
}

// Flush waits until every record is acknowledged (Run must be running) or
// ctx ends.
func (s *Spool) Flush(ctx context.Context) error {
	for s.Unsent() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d bytes of records not yet sent: %w", s.Unsent(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Close closes the spool. Unsent records stay on disk for the next gateway
// that opens the directory.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.overflow) > 0 {
		s.log.Error("spool: records held in memory are lost at close: the disk refused them", slog.Int("records", len(s.overflow)))
		s.dropped.Add(int64(len(s.overflow)))
	}
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	for _, lf := range s.held {
		lf.Close() // what is left of adopted segments goes to the next gateway
	}
	s.held = nil
	if s.unsent.Load() == 0 && len(s.overflow) == 0 {
		for _, p := range s.queue { // all sent: not needed any more
			os.Remove(p)
		}
		s.queue = nil
		// Only now: removing the lock file of a spool with segments left
		// would let two gateways lock two files of one name and both adopt.
		os.Remove(s.lock.Name())
	}
	return s.lock.Close()
}
