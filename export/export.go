// Package export writes events as files: CSV (the envelope flattened into
// documented columns, content as one JSON column when the reader may see
// it), a JSON array, NDJSON, or an evidence bundle. Writers stream: memory
// stays flat however many events go through.
//
// It also runs export jobs (Jobs: claim, write the file, keep it until it
// expires, record and e-mail the signed download link, Links). The HTTP
// API only queues jobs, shows them and serves their files.
package export

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
)

// Formats.
const (
	CSV    = "csv"
	JSON   = "json"
	NDJSON = "ndjson"
	Bundle = "bundle"
)

// ValidFormat reports whether f is a file format of the streaming export
// (bundles are made by export jobs only).
func ValidFormat(f string) bool { return f == CSV || f == JSON || f == NDJSON }

// ContentType is the media type of a format.
func ContentType(f string) string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case NDJSON:
		return "application/x-ndjson"
	case Bundle:
		return "application/zip"
	}
	return "application/json"
}

// Extension is the file name extension of a format.
func Extension(f string) string {
	if f == Bundle {
		return "zip"
	}
	return f
}

// Columns are the CSV columns, in order: the envelope flattened, then the
// content as a JSON object (only when the reader may see content).
var Columns = []string{
	"id", "seq", "time", "received_at", "type", "category",
	"actor_type", "actor_id", "actor_email", "actor_name",
	"agent_id", "task_id", "session_id", "connector", "tool",
	"target_type", "target_id", "target_name",
	"team_id", "ip", "user_agent", "request_id",
	"outcome", "status", "duration_ms",
	"decision", "decision_policy", "decision_reason",
	"content_digest",
}

// Writer writes events.
type Writer interface {
	// Write adds one event.
	Write(ev *veritrail.StoredEvent) error
	// Close finishes the file (closing brackets, flushing); it does not
	// close the underlying writer.
	Close() error
	// Count is the number of events written.
	Count() int64
}

// NewWriter returns a writer of a format. withContent adds content (and,
// for JSON formats, its salt, so the digest can be checked).
func NewWriter(w io.Writer, format string, withContent bool) (Writer, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	switch format {
	case CSV:
		header := Columns
		if withContent {
			header = append(append([]string(nil), Columns...), "content")
		}
		c := &csvWriter{bw: bw, content: withContent, row: make([][]byte, len(header))}
		for i, h := range header {
			c.row[i] = []byte(h)
		}
		return c, c.writeRow(c.row)
	case JSON, NDJSON:
		jw := &jsonWriter{bw: bw, array: format == JSON, content: withContent}
		if jw.array {
			bw.WriteString("[")
		}
		return jw, nil
	}
	return nil, fmt.Errorf("export: unknown format %q", format)
}

type jsonWriter struct {
	bw      *bufio.Writer
	array   bool
	content bool
	n       int64
	buf     []byte
}

func (j *jsonWriter) Write(ev *veritrail.StoredEvent) error {
	j.buf = j.buf[:0]
	if j.array {
		if j.n > 0 {
			j.buf = append(j.buf, ',')
		}
		j.buf = append(j.buf, '\n')
	}
	if j.content {
		j.buf = veritrail.AppendEventJSON(j.buf, ev.Envelope, ev.Content, ev.Salt)
	} else {
		j.buf = append(j.buf, ev.Envelope...)
	}
	if !j.array {
		j.buf = append(j.buf, '\n')
	}
	j.n++
	_, err := j.bw.Write(j.buf)
	return err
}

func (j *jsonWriter) Close() error {
	if j.array {
		if j.n > 0 {
			j.bw.WriteString("\n")
		}
		j.bw.WriteString("]\n")
	}
	return j.bw.Flush()
}

func (j *jsonWriter) Count() int64 { return j.n }

// csvWriter writes RFC 4180 rows as encoding/csv would (quoting a field
// that holds a comma, a quote, a line break or starts with a space), from
// the envelope's bytes without parsing them into strings: exports are
// bound by this loop.
type csvWriter struct {
	bw      *bufio.Writer
	content bool
	row     [][]byte
	line    []byte
	n       int64
}

// column numbers of envelope members, by (outer, key).
func column(outer, key []byte) int {
	switch string(outer) {
	case "":
		switch string(key) {
		case "id":
			return 0
		case "seq":
			return 1
		case "time":
			return 2
		case "received_at":
			return 3
		case "type":
			return 4
		case "agent_id":
			return 10
		case "task_id":
			return 11
		case "session_id":
			return 12
		case "connector":
			return 13
		case "tool":
			return 14
		case "outcome":
			return 22
		case "status":
			return 23
		case "duration_ms":
			return 24
		case "content_digest":
			return 28
		}
	case "actor":
		switch string(key) {
		case "type":
			return 6
		case "id":
			return 7
		case "email":
			return 8
		case "name":
			return 9
		}
	case "target":
		switch string(key) {
		case "type":
			return 15
		case "id":
			return 16
		case "name":
			return 17
		}
	case "context":
		switch string(key) {
		case "team_id":
			return 18
		case "ip":
			return 19
		case "user_agent":
			return 20
		case "request_id":
			return 21
		}
	case "decision":
		switch string(key) {
		case "action":
			return 25
		case "policy":
			return 26
		case "reason":
			return 27
		}
	}
	return -1
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (c *csvWriter) Write(ev *veritrail.StoredEvent) error {
	row := c.row
	for i := range row {
		row[i] = nil
	}
	ok := veritrail.ScanEnvelopeMembers(ev.Envelope, func(outer, key, raw []byte) {
		if i := column(outer, key); i >= 0 {
			row[i] = raw
		}
	})
	if !ok {
		if err := c.parsedRow(ev); err != nil {
			return err
		}
	} else {
		typ := row[4]
		if i := bytes.IndexByte(typ, '.'); i >= 0 {
			typ = typ[:i]
		}
		row[5] = typ // category
	}
	if c.content {
		row[len(Columns)] = ev.Content
	}
	c.n++
	return c.writeRow(row)
}

// parsedRow fills the row through the full parser (envelopes with escaped
// strings).
func (c *csvWriter) parsedRow(ev *veritrail.StoredEvent) error {
	e, err := veritrail.ParseEnvelope(ev.Envelope)
	if err != nil {
		return fmt.Errorf("export: event %d: %w", ev.Seq, err)
	}
	var tg veritrail.Target
	if e.Target != nil {
		tg = *e.Target
	}
	var cx veritrail.Context
	if e.Context != nil {
		cx = *e.Context
	}
	var d veritrail.Decision
	if e.Decision != nil {
		d = *e.Decision
	}
	for i, v := range []string{e.ID, strconv.FormatInt(e.Seq, 10), timeString(e.Time), timeString(e.ReceivedAt), e.Type, e.Category(),
		e.Actor.Type, e.Actor.ID, e.Actor.Email, e.Actor.Name,
		e.AgentID, e.TaskID, e.SessionID, e.Connector, e.Tool,
		tg.Type, tg.ID, tg.Name, cx.TeamID, cx.IP, cx.UserAgent, cx.RequestID, e.Outcome,
		optInt(e.Status), optInt(e.DurationMS), d.Action, d.Policy, d.Reason, e.ContentDigest} {
		c.row[i] = []byte(v)
	}
	return nil
}

func (c *csvWriter) writeRow(row [][]byte) error {
	l := c.line[:0]
	for i, f := range row {
		if i > 0 {
			l = append(l, ',')
		}
		if !needsQuotes(f) {
			l = append(l, f...)
			continue
		}
		l = append(l, '"')
		for {
			j := bytes.IndexByte(f, '"')
			if j < 0 {
				l = append(l, f...)
				break
			}
			l = append(l, f[:j+1]...)
			l = append(l, '"')
			f = f[j+1:]
		}
		l = append(l, '"')
	}
	l = append(l, '\n')
	c.line = l
	_, err := c.bw.Write(l)
	return err
}

// needsQuotes is encoding/csv's rule.
func needsQuotes(f []byte) bool {
	if len(f) == 0 {
		return false
	}
	if len(f) == 2 && f[0] == '\\' && f[1] == '.' {
		return true
	}
	for _, c := range f {
		if c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	r, _ := utf8.DecodeRune(f)
	return unicode.IsSpace(r)
}

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func (c *csvWriter) Close() error { return c.bw.Flush() }

func (c *csvWriter) Count() int64 { return c.n }
