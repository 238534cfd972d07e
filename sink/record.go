package sink

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
)

// Record is one event as a destination sends it.
type Record struct {
	Seq int64
	ID  string
	// Event is the parsed envelope, Content set when the sink forwards
	// content. For the native format it holds only what destinations
	// read beside Body (ID, Seq, Time, Type, Outcome, Decision.Action,
	// Content): the body is the envelope's bytes, so the full parse is
	// skipped.
	Event *veritrail.Event
	// Body is the formatted record: the API's event JSON (native), OCSF
	// JSON, or a CEF line, as the sink's format says.
	Body []byte
}

// Batch is what one delivery carries: consecutive records of one
// organization's log, in seq order.
type Batch struct {
	Org     string // the organization's name
	SinkID  string
	Records []Record
}

// Bytes is the size of the records' bodies.
func (b *Batch) Bytes() int {
	n := 0
	for i := range b.Records {
		n += len(b.Records[i].Body)
	}
	return n
}

// Destination delivers batches to one sink's peer.
type Destination interface {
	// Send delivers b and returns nil only once the peer acknowledged all
	// of it (as far as its protocol can say). An error wrapped by
	// Permanent says retrying as is will not help (refused credentials,
	// a bad request); others are retried with backoff.
	Send(ctx context.Context, b *Batch) error
	// Close releases connections.
	Close() error
}

// SavesBeforeNext is implemented by destinations whose next batch MUST
// wait until the previous one's cursor is saved, so that what a crash
// sends again is exactly the batch that was in flight, from the same
// first seq (s3: objects are named after their first record, and a
// range sent again in other batches would leave copies beside them).
// Other destinations get their next batch while the cursor is saved, up
// to MaxUnsavedBatches ahead of it.
type SavesBeforeNext interface {
	SavesBeforeNext()
}

// Settings is what a Factory builds a destination from.
type Settings struct {
	SinkID string
	Name   string
	Type   string
	Org    string
	Config *Config
	Secret []byte // nil when the sink has none
	Log    *slog.Logger
	// Outbound checks every address the destination connects to, after
	// name resolution (Options.Outbound): a destination MUST dial
	// through Outbound.Dialer or Outbound.Transport.
	Outbound netguard.Guard
}

// Factory builds a destination for one sink.
type Factory func(s *Settings) (Destination, error)

// permanentError marks failures that retrying will not fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying as is: the sink pauses after
// a few such failures, for an administrator to fix its settings.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Permanentf is Permanent(fmt.Errorf(…)).
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// FormatRecord formats one stored event for a sink: the parsed event, the
// formatted body. Content is included only when withContent and present.
func FormatRecord(format, org string, ev *veritrail.StoredEvent, withContent bool) (Record, error) {
	var e *veritrail.Event
	var err error
	if format != FormatOCSF && format != FormatCEF {
		if e, err = nativeFields(ev.Envelope); err != nil { // native records need a few members only
			return Record{}, fmt.Errorf("seq %d: %w", ev.Seq, err)
		}
		return nativeRecord(ev.Envelope, e, ev.Content, ev.Salt, withContent), nil
	}
	if e, err = veritrail.ParseEnvelope(ev.Envelope); err != nil {
		return Record{}, fmt.Errorf("seq %d: %w", ev.Seq, err)
	}
	if withContent && len(ev.Content) > 0 {
		e.Content, e.ContentSalt = ev.Content, ev.Salt
	}
	r := Record{Seq: e.Seq, ID: e.ID, Event: e}
	// Sized for the usual record at once: growing from nil was a fifth of
	// an OCSF record's CPU (BenchmarkFreshRecord).
	if format == FormatOCSF {
		r.Body = AppendOCSF(make([]byte, 0, 512+len(ev.Envelope)*3/2+len(e.Content)), org, e)
	} else {
		r.Body = AppendCEF(make([]byte, 0, 256+len(ev.Envelope)+2*len(e.Content)), org, e)
	}
	return r, nil
}

// nativeRecord is the native record of the event whose envelope is env,
// e holding the members nativeFields reads (e is the record's Event).
func nativeRecord(env []byte, e *veritrail.Event, content, salt []byte, withContent bool) Record {
	if withContent && len(content) > 0 {
		e.Content, e.ContentSalt = content, salt
	}
	r := Record{Seq: e.Seq, ID: e.ID, Event: e}
	if e.Content == nil {
		// Without content: the envelope itself (not shared with its
		// writer), the leaf of the Merkle tree, so a receiver can
		// verify it.
		r.Body = env
	} else {
		// With content spliced in, in one exact allocation.
		r.Body = veritrail.AppendEventJSON(make([]byte, 0, len(env)+len(e.Content)+base64.StdEncoding.EncodedLen(len(e.ContentSalt))+32),
			env, e.Content, e.ContentSalt)
	}
	return r
}

// nativeFields reads from envelope bytes the members native records need
// besides the bytes themselves (what destinations read from Record.Event:
// id, seq, time, type, outcome, decision), without the full parse.
func nativeFields(env []byte) (*veritrail.Event, error) {
	e := &veritrail.Event{}
	sc := veritrail.ScanEnvelope(env)
	for sc.Next() {
		switch sc.Member() {
		case veritrail.MemberID:
			e.ID = sc.Text()
		case veritrail.MemberSeq:
			e.Seq = sc.Int()
		case veritrail.MemberTime:
			t, ok := sc.Time()
			if !ok {
				return nil, fmt.Errorf("envelope: time %q is not an RFC 3339 UTC time", sc.Raw())
			}
			e.Time = t
		case veritrail.MemberType:
			e.Type = sc.Text()
		case veritrail.MemberOutcome:
			e.Outcome = sc.Text()
		case veritrail.MemberDecisionAction:
			e.Decision = &veritrail.Decision{Action: sc.Text()}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return e, nil
}
