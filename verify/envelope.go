package verify

import veritrail "github.com/veritrail/veritrail"

// readEnvelope is the verifier's one reader of stored envelope bytes: every
// check that needs what an envelope says (its seq, content digest, id,
// time, index keys, type) takes it from here, so a faster reader replaces
// this body alone. e is nil when the bytes cannot be read as an event;
// canonical reports whether they are exactly the encoding of what they say.
func readEnvelope(env []byte) (e *veritrail.Event, canonical bool) {
	if e, err := veritrail.CheckEnvelope(env); err == nil {
		return e, true
	}
	e, err := veritrail.ParseEnvelope(env) // not canonical: what does it say?
	if err != nil {
		return nil, false
	}
	return e, false
}
