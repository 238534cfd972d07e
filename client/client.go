// Package client lets someone outside the operator hold a Veritrail log to
// account, with the log's verifier key and nothing the operator says:
// a sender checks that the acknowledgement it got for an event records
// exactly what it sent, and later that the log's current checkpoint still
// includes it (and extends an earlier checkpoint it kept). Proofs are
// computed from the log's tiles (/tlog/{org}/tile/…) and checked with
// golang.org/x/mod/sumdb/tlog, which also checks every tile it reads
// against the checkpoint's root; checkpoints and witness cosignatures are
// opened with the transparency-dev formats library.
//
// The flow (docs/VERIFY.md, "Holding an acknowledgement to account"):
//
//	POST /api/v1/events?receipt=true      → keep each Receipt with what you sent
//	r.Matches(sent)                       → the envelope says exactly that
//	log.Hold(ctx, r, sent)                → today's checkpoint includes it
//	log.Extends(ctx, kept, cp)            → and extends what you kept before
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
)

// Receipt is what POST /api/v1/events?receipt=true answers per recorded
// event: its position and the exact envelope bytes the log hashed, with
// the salt of its content digest.
type Receipt struct {
	ID          string          `json:"id"`
	Seq         int64           `json:"seq"`
	Envelope    json.RawMessage `json:"envelope"`
	ContentSalt string          `json:"content_salt,omitempty"`
}

// ParseAck returns the receipts of an acknowledgement (events not
// recorded, or duplicates, carry none and are left out).
func ParseAck(body []byte) ([]*Receipt, error) {
	var ack struct {
		Events []*Receipt `json:"events"`
	}
	if err := json.Unmarshal(body, &ack); err != nil {
		return nil, fmt.Errorf("not an acknowledgement: %w", err)
	}
	var out []*Receipt
	for _, r := range ack.Events {
		if len(r.Envelope) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// Leaf is the RFC 6962 leaf hash of the receipt's envelope.
func (r *Receipt) Leaf() []byte {
	h := veritrail.LeafHash(r.Envelope)
	return h[:]
}

// Matches checks that the receipt records exactly the event sent (one
// event's JSON as it was posted): decoded and canonicalized as the server
// does, given the fields the server assigns (seq, received_at, the content
// salt, and id and time when the sender left them out), it must encode to
// the receipt's envelope byte for byte, and the envelope's seq must be
// the receipt's.
func (r *Receipt) Matches(sent []byte) error {
	got, err := veritrail.ParseEnvelope(r.Envelope)
	if err != nil {
		return fmt.Errorf("the receipt's envelope is not an event: %w", err)
	}
	if got.Seq != r.Seq || got.ID != r.ID {
		return fmt.Errorf("the receipt says %s at seq %d, its envelope %s at seq %d", r.ID, r.Seq, got.ID, got.Seq)
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(sent, &given); err != nil {
		return fmt.Errorf("what was sent is not one event's JSON: %w", err)
	}
	e, err := veritrail.NewDecoder(bytes.NewReader(sent), veritrail.DefaultLimits, got.Time).Next()
	if err != nil {
		return fmt.Errorf("what was sent does not decode as the server decodes events: %w", err)
	}
	if _, ok := given["id"]; !ok {
		e.ID = got.ID
	}
	if _, ok := given["time"]; !ok {
		e.Time = got.Time
	}
	e.Seq, e.ReceivedAt = got.Seq, got.ReceivedAt
	if len(e.Content) > 0 {
		salt, err := base64.StdEncoding.DecodeString(r.ContentSalt)
		if err != nil || len(salt) != veritrail.SaltSize {
			return errors.New("the receipt has no valid content_salt for the content sent")
		}
		e.ContentSalt, e.ContentDigest = salt, veritrail.ContentDigest(salt, e.Content)
	}
	want := veritrail.AppendEnvelope(nil, e)
	if !bytes.Equal(want, r.Envelope) {
		return fmt.Errorf("the recorded envelope differs from what was sent:\n  recorded %s\n  sent     %s", r.Envelope, want)
	}
	return nil
}

// Log is a Veritrail log as its tlog-tiles layout serves it.
type Log struct {
	// URL is the log's base: https://host/tlog/{org}.
	URL string
	// Key is the log's verifier key, obtained from the operator once.
	Key string
	// Token reads the log when its checkpoint and tiles are not public.
	Token string
	// Witnesses are the cosignature verifier keys of the witnesses you
	// trust; Quorum of them must have cosigned a checkpoint.
	Witnesses []string
	Quorum    int
	// HTTP is the client used; default: one with a 30 s timeout.
	HTTP *http.Client
}

// Checkpoint is a verified checkpoint of a log.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Note   []byte // the signed note as served, cosignatures included
	// Cosigned names the trusted witnesses that cosigned it.
	Cosigned []string
	// Freshest is the newest of their cosignatures' times.
	Freshest time.Time
}

func (l *Log) http() *http.Client {
	if l.HTTP != nil {
		return l.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Open verifies a signed checkpoint with the log's key and names the
// trusted witnesses whose cosignatures verify (Witnessed checks the
// quorum).
func (l *Log) Open(signed []byte) (*Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(l.Key))
	if err != nil {
		return nil, fmt.Errorf("the log's key: %w", err)
	}
	var ws []note.Verifier
	for i, k := range l.Witnesses {
		w, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("witness key %d: %w", i, err)
		}
		ws = append(ws, w)
	}
	cp, _, n, err := flog.ParseCheckpoint(signed, v.Name(), v, ws...)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint does not verify with the log's key: %w", err)
	}
	c := &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			continue
		}
		c.Cosigned = append(c.Cosigned, s.Name)
		if at, err := fnote.CoSigV1Timestamp(s); err == nil && at.After(c.Freshest) {
			c.Freshest = at
		}
	}
	return c, nil
}

// Witnessed reports whether cp carries the cosignatures of Quorum trusted
// witnesses.
func (l *Log) Witnessed(cp *Checkpoint) error {
	if len(cp.Cosigned) < l.Quorum {
		return fmt.Errorf("the checkpoint of size %d carries %d of the %d witness cosignatures required", cp.Size, len(cp.Cosigned), l.Quorum)
	}
	return nil
}

// Checkpoint fetches and opens the log's checkpoint of record, and
// checks it is witnessed as required.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	b, err := Get(ctx, l.http(), strings.TrimRight(l.URL, "/")+"/checkpoint", l.Token)
	if err != nil {
		return nil, err
	}
	cp, err := l.Open(b)
	if err != nil {
		return nil, err
	}
	return cp, l.Witnessed(cp)
}

// Tiles returns a reader of the log's tiles.
func (l *Log) Tiles(ctx context.Context) *TileReader {
	return &TileReader{Ctx: ctx, Base: l.URL, Token: l.Token, Client: l.http()}
}

// Includes checks that leaf is at index in cp's tree.
func (l *Log) Includes(ctx context.Context, cp *Checkpoint, index uint64, leaf []byte) error {
	if index >= cp.Size {
		return fmt.Errorf("position %d is not in the tree of size %d yet", index, cp.Size)
	}
	return ProveInclusion(l.Tiles(ctx), index, leaf, cp.Size, cp.Root)
}

// Extends checks that newer's tree extends older's (a checkpoint kept
// earlier): nothing recorded by then was changed or removed from the
// tree.
func (l *Log) Extends(ctx context.Context, older, newer *Checkpoint) error {
	if newer.Size < older.Size {
		return fmt.Errorf("the log shows a tree of size %d, smaller than the %d it showed before: rolled back", newer.Size, older.Size)
	}
	if newer.Size == older.Size && !bytes.Equal(newer.Root, older.Root) {
		return fmt.Errorf("two trees of size %d under the log's key: forked", newer.Size)
	}
	return ProveConsistency(l.Tiles(ctx), older.Size, older.Root, newer.Size, newer.Root)
}

// Hold checks a receipt against what was sent and against the log's
// checkpoint of record today, and returns that checkpoint (keep it: the
// next Hold's Extends starts from it).
func (l *Log) Hold(ctx context.Context, r *Receipt, sent []byte) (*Checkpoint, error) {
	if err := r.Matches(sent); err != nil {
		return nil, err
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.Includes(ctx, cp, uint64(r.Seq), r.Leaf()); err != nil {
		return nil, fmt.Errorf("%s (seq %d) is not included in the checkpoint of size %d: %w", r.ID, r.Seq, cp.Size, err)
	}
	return cp, nil
}
