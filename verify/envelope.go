package verify

import (
	"bytes"
	"encoding/json"
	"sync"
	"unsafe"

	veritrail "github.com/veritrail/veritrail"
)

// readEnvelope is the verifier's one reader of stored envelope bytes: every
// check that needs what an envelope says (its seq, content digest, id,
// time, index keys, type) takes it from here, so a faster reader replaces
// this body alone. e is nil when the bytes cannot be read as an event;
// canonical reports whether they are exactly the encoding of what they say.
//
// It is veritrail.CheckEnvelope's test, re-encoding into a reused buffer:
// an allocation per event is most of what verification would otherwise
// spend on it.
//
// into, if not nil, is a reader whose event e is (overwriting the one it
// read before), and says env's bytes do not change for as long as e is
// used (the pipeline's arena, reused only once the caller is done with its
// batch): e's strings then share them instead of a copy, and reading it
// allocates nothing.
func readEnvelope(env []byte, into *veritrail.EnvelopeReader) (e *veritrail.Event, canonical bool) {
	var err error
	if into != nil && len(env) > 0 {
		e, err = into.ParseString(unsafe.String(&env[0], len(env)))
	} else {
		e, err = veritrail.ParseEnvelope(env)
	}
	if err != nil {
		// The envelope reader is strict: it reads the canonical form only.
		// Bytes that say an event in a looser form (spaces between
		// members) are still read, so that the event's other checks run
		// and only its form is reported.
		var compact bytes.Buffer
		if json.Compact(&compact, env) != nil || compact.Len() == len(env) {
			return nil, false
		}
		if e, err = veritrail.ParseEnvelope(compact.Bytes()); err != nil {
			return nil, false
		}
		return e, false
	}
	buf := encodeBuffers.Get().(*[]byte)
	*buf = veritrail.AppendEnvelope((*buf)[:0], e)
	canonical = bytes.Equal(*buf, env)
	encodeBuffers.Put(buf)
	return e, canonical
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
