package verify

import (
	"bytes"
	"sync"

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
func readEnvelope(env []byte) (e *veritrail.Event, canonical bool) {
	e, err := veritrail.ParseEnvelope(env)
	if err != nil {
		return nil, false
	}
	buf := encodeBuffers.Get().(*[]byte)
	*buf = veritrail.AppendEnvelope((*buf)[:0], e)
	canonical = bytes.Equal(*buf, env)
	encodeBuffers.Put(buf)
	return e, canonical
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
