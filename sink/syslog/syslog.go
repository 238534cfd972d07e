// Package syslog delivers events as RFC 5424 syslog messages over TCP or
// TLS (RFC 5425), framed by octet counting (RFC 6587 §3.4.1, the default)
// or by a newline, with a JSON (native or OCSF) or CEF message.
//
// Syslog has no acknowledgment: a write succeeds once the kernel took the
// bytes. After each batch the sender checks that the receiver did not
// close the connection (a closed or reset connection sends the batch
// again on a new one), which catches a receiver that went away between
// batches but not one that crashes holding bytes it had not written out.
// Receivers deduplicate by the id and seq in each message's structured
// data. For acknowledged delivery use the webhook, Splunk, Datadog or
// Kafka sinks.
package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
)

// SDID is the structured-data element of every message. 32473 is the
// private enterprise number RFC 5612 reserves for examples and
// documentation; Veritrail has none of its own.
const SDID = "veritrail@32473"

type dest struct {
	cfg      *sink.Config
	tls      *tls.Config
	hostname string
	outbound netguard.Guard
	conn     net.Conn
	w        *bufio.Writer
}

// New is the syslog sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	d := &dest{cfg: s.Config, hostname: s.Config.Hostname, outbound: s.Outbound}
	if d.hostname == "" {
		d.hostname, _ = os.Hostname()
		d.hostname = sanitize(d.hostname, 255)
	}
	if s.Config.Protocol == "tls" {
		t, err := sink.TLSConfig(s.Config)
		if err != nil {
			return nil, err
		}
		if t.ServerName == "" {
			t.ServerName, _, _ = net.SplitHostPort(s.Config.Address)
		}
		d.tls = t
	}
	return d, nil
}

// sanitize keeps a header field to printable US-ASCII without spaces, as
// RFC 5424 requires ("-" when empty).
func sanitize(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

var sdEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// severity: warning (4) for failures and blocks, informational (6) else.
func severity(e *veritrail.Event) int {
	if e.Outcome == veritrail.OutcomeFailure || (e.Decision != nil && e.Decision.Action == veritrail.DecisionBlocked) {
		return 4
	}
	return 6
}

// AppendMessage appends r as an RFC 5424 message (without framing).
func AppendMessage(dst []byte, c *sink.Config, hostname, org string, r *sink.Record) []byte {
	facility := 13
	if c.Facility != nil {
		facility = *c.Facility
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(facility*8+severity(r.Event)), 10)
	dst = append(dst, ">1 "...)
	// TIME-SECFRAC allows at most 6 digits.
	dst = r.Event.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	dst = append(dst, ' ')
	dst = append(dst, hostname...)
	dst = append(dst, ' ')
	dst = append(dst, sanitize(c.AppName, 48)...)
	dst = append(dst, " - "...)
	dst = append(dst, sanitize(r.Event.Type, 32)...)
	dst = append(dst, " ["+SDID+` org="`...)
	dst = append(dst, sdEscape.Replace(org)...)
	dst = append(dst, `" id="`...)
	dst = append(dst, sdEscape.Replace(r.ID)...)
	dst = append(dst, `" seq="`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `"] `...)
	return append(dst, r.Body...)
}

// AppendFrame appends a message framed as c says.
func AppendFrame(dst []byte, c *sink.Config, msg []byte) []byte {
	if c.Framing == "newline" {
		dst = append(dst, msg...)
		return append(dst, '\n')
	}
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

func (d *dest) connect(ctx context.Context) error {
	conn, err := d.outbound.Dialer().DialContext(ctx, "tcp", d.cfg.Address)
	if err != nil {
		return err
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return sink.NetError(err)
		}
		conn = tc
	}
	d.conn, d.w = conn, bufio.NewWriterSize(conn, 64<<10)
	return nil
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	if d.conn == nil {
		if err := d.connect(ctx); err != nil {
			return fmt.Errorf("connect to %s: %w", d.cfg.Address, err)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		d.conn.SetWriteDeadline(dl)
	}
	var msg, frame []byte
	for i := range b.Records {
		msg = AppendMessage(msg[:0], d.cfg, d.hostname, b.Org, &b.Records[i])
		frame = AppendFrame(frame[:0], d.cfg, msg)
		if _, err := d.w.Write(frame); err != nil {
			d.Close()
			return err
		}
	}
	if err := d.w.Flush(); err != nil {
		d.Close()
		return err
	}
	// Did the receiver close the connection? A read that times out at once
	// says it is still open; EOF or a reset says the batch may be lost.
	d.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var one [1]byte
	_, err := d.conn.Read(one[:])
	d.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		d.Close()
		if errors.Is(err, io.EOF) {
			return errors.New("the receiver closed the connection; sending the batch again")
		}
		return fmt.Errorf("the connection failed after the batch; sending it again: %w", err)
	}
	return nil
}

func (d *dest) Close() error {
	if d.conn == nil {
		return nil
	}
	err := d.conn.Close()
	d.conn, d.w = nil, nil
	return err
}
