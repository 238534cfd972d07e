package http

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// streams lets the server end its live tails when it shuts down: a stream
// never finishes on its own, and http.Server.Shutdown waits for handlers.
type streams struct {
	once sync.Once
	mu   sync.Mutex
	done chan struct{}
}

func (st *streams) closed() chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done == nil {
		st.done = make(chan struct{})
	}
	return st.done
}

func (st *streams) end() {
	ch := st.closed()
	st.once.Do(func() { close(ch) })
}

const streamHeartbeat = 15 * time.Second

// eventStream answers GET /api/v1/events/stream: server-sent events that
// follow the log as it grows (the console's live tail). It takes the list
// filters (since and until aside: it starts at the log's end) and sends,
// every time new matching events are committed, one message:
//
//	id: <cursor>
//	event: events
//	data: {"data": [<event>, …], "next_cursor": "<cursor>"}
//
// The id is a polling (order=seq) cursor: a client that reconnects with
// Last-Event-ID (EventSource does so by itself), or passes it as cursor,
// resumes after the last event it got. Opening a stream is recorded once,
// as audit.query with "follow": true; what it then sends is part of that
// read.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	vals := r.URL.Query()
	for _, k := range []string{"since", "until", "order", "limit"} {
		if vals.Has(k) {
			return veritrail.Errorf(veritrail.EInvalid, "parameter %s: a stream follows the log from its end in seq order; leave it out", k)
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		vals.Set("cursor", id)
	}
	vals.Set("order", "seq")
	q, err := veritrail.ParseQuery(vals, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return veritrail.Errorf(veritrail.EUnsupported, "this connection cannot stream")
	}
	details := queryDetails(r, 0)
	details["follow"] = true
	if err := s.audit(r.Context(), r, p, "audit.query", nil, details); err != nil {
		return err
	}
	if q.After == nil {
		// From the end, past the record of this very read.
		size, _, err := s.store.LogHead(r.Context(), p.OrgID)
		if err != nil {
			return err
		}
		q.After = &veritrail.Cursor{Order: veritrail.OrderSeq, Seq: size - 1, Fingerprint: q.Fingerprint()}
	}
	q.Limit = veritrail.MaxLimit
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: following from seq %d\n\n", q.After.Seq+1)
	flusher.Flush()

	poll := s.cfg.StreamPoll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	lastSent := time.Now()
	var buf []byte
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.streams.closed():
			return nil
		case <-tick.C:
		}
		for {
			page, err := s.store.Query(r.Context(), p.OrgID, q)
			if err != nil {
				return err // logged; the client reconnects
			}
			if len(page.Events) == 0 {
				break
			}
			next := page.Next.Encode()
			buf = append(buf[:0], "id: "...)
			buf = append(buf, next...)
			buf = append(buf, "\nevent: events\ndata: "...)
			buf = appendPage(buf, page, next, false)
			// appendPage ends with a newline; a blank line ends the message.
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return nil
			}
			flusher.Flush()
			lastSent = time.Now()
			q.After = page.Next
			if len(page.Events) < q.Limit {
				break
			}
		}
		if time.Since(lastSent) >= streamHeartbeat {
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			flusher.Flush()
			lastSent = time.Now()
		}
	}
}
