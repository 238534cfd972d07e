package tlog

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// WitnessVerifier returns the verifier of a witness's cosignatures from
// its verifier key (C2SP signed-note; Ed25519 cosignature/v1, type 0x04).
func WitnessVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("not a witness's cosignature verifier key (name+hash+base64 of 0x04 and an Ed25519 key): %w", err)
	}
	return v, nil
}

// VerifyCosignature checks a cosignature line ("— name base64\n") against
// a signed checkpoint with a witness's verifier, and returns the time the
// witness signed at.
func VerifyCosignature(signed, line []byte, v note.Verifier) (time.Time, bool) {
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return time.Time{}, false
	}
	msg := append(append(append([]byte{}, text...), "\n\n"...), line...)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil || len(n.Sigs) != 1 {
		return time.Time{}, false
	}
	at, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		return time.Time{}, false
	}
	return at, true
}
