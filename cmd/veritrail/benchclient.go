package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"syscall"
	"time"
)

// eventSender is one load sender's HTTP/1.1 connection to a server's
// ingest endpoint, kept alive from one request to the next. Real senders
// reuse connections too; what this adds over net/http's client is that
// the request's head is encoded once and each request is one write, with
// no hand-off to the transport's reader and writer goroutines: at one
// event per request those cost the load generator, which shares the
// machine's cores with the server, about as much CPU as the server's own
// HTTP handling.
type eventSender struct {
	addr string
	head []byte // request line and headers up to the Content-Length value
	conn net.Conn
	r    *bufio.Reader
	buf  []byte // the request, then the answer's body
	stop func() bool
}

// newEventSender prepares a sender to rawURL (http:// only; ok is false
// for any other scheme, which net/http's client then serves).
func newEventSender(rawURL, tok string, gz bool) (s *eventSender, ok bool) {
	u, err := neturl.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := fmt.Appendf(nil, "POST %s/api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\n", u.EscapedPath(), u.Host, tok)
	if gz {
		head = append(head, "Content-Encoding: gzip\r\n"...)
	}
	head = append(head, "Content-Length: "...)
	return &eventSender{addr: addr, head: head}, true
}

// post sends body and returns the answer's status and body (valid until
// the next call). On any fault the connection is closed, and the next
// call opens another.
func (s *eventSender) post(ctx context.Context, body []byte) (int, []byte, error) {
	reused := s.conn != nil
	status, b, err := s.postOnce(ctx, body)
	// The server closes a connection idle for long (120 s; a sender of a
	// low --rate waits that long): a request on it fails before any answer.
	// net/http's client sends it again on a new connection; so does this.
	if err != nil && reused && ctx.Err() == nil && closedBeforeAnswer(err) {
		status, b, err = s.postOnce(ctx, body)
	}
	return status, b, err
}

// closedBeforeAnswer is whether err says the server had closed the
// connection before it answered.
func closedBeforeAnswer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *eventSender) postOnce(ctx context.Context, body []byte) (int, []byte, error) {
	if s.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return 0, nil, err
		}
		s.conn = c
		if s.r == nil {
			s.r = bufio.NewReaderSize(c, 4096)
		} else {
			s.r.Reset(c)
		}
		// A cancelled run unblocks a sender waiting for its answer.
		s.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	}
	status, b, err := s.roundTrip(body)
	if err != nil {
		s.close()
	}
	return status, b, err
}

func (s *eventSender) roundTrip(body []byte) (int, []byte, error) {
	s.buf = append(s.buf[:0], s.head...)
	s.buf = strconv.AppendInt(s.buf, int64(len(body)), 10)
	s.buf = append(s.buf, "\r\n\r\n"...)
	s.buf = append(s.buf, body...)
	if _, err := s.conn.Write(s.buf); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil {
		return 0, nil, err
	}
	s.buf = s.buf[:0]
	if resp.ContentLength >= 0 {
		s.buf = append(s.buf, make([]byte, resp.ContentLength)...)
		_, err = io.ReadFull(resp.Body, s.buf)
	} else {
		var bb bytes.Buffer
		_, err = bb.ReadFrom(resp.Body)
		s.buf = append(s.buf, bb.Bytes()...)
	}
	resp.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	if resp.Close {
		s.close()
	}
	return resp.StatusCode, s.buf, nil
}

func (s *eventSender) close() {
	if s.conn != nil {
		s.stop()
		s.conn.Close()
		s.conn = nil
	}
}

// send posts one request and returns how many of its events the server
// acknowledged without storing them (recorded:false).
func (s *eventSender) send(ctx context.Context, body []byte) (int, error) {
	status, b, err := s.post(ctx, body)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("%d %s: %s", status, http.StatusText(status), bytes.TrimSpace(b))
	}
	return bytes.Count(b, []byte(`"recorded":false`)), nil
}
