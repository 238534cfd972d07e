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
	"unicode"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/canonjson"
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

// column is the CSV column of an envelope member: Columns lists the
// members in the envelope's order, with the category after the type.
func column(m veritrail.EnvelopeMember) int {
	if m <= veritrail.MemberType {
		return int(m - veritrail.MemberID)
	}
	return int(m-veritrail.MemberID) + 1
}

func (c *csvWriter) Write(ev *veritrail.StoredEvent) error {
	row := c.row
	for i := range row {
		row[i] = nil
	}
	sc := veritrail.ScanEnvelope(ev.Envelope)
	for sc.Next() {
		v := sc.Raw()
		if sc.Escaped() {
			v = canonjson.AppendUnescaped(nil, v)
		}
		row[column(sc.Member())] = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("export: event %d: %w", ev.Seq, err)
	}
	typ := row[4]
	if i := bytes.IndexByte(typ, '.'); i >= 0 {
		typ = typ[:i]
	}
	row[5] = typ // category
	if c.content {
		row[len(Columns)] = ev.Content
	}
	c.n++
	return c.writeRow(row)
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

func (c *csvWriter) Close() error { return c.bw.Flush() }

func (c *csvWriter) Count() int64 { return c.n }
