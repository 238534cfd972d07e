package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	fproof "github.com/transparency-dev/formats/proof"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// EventProof is what CheckEvent proved of one event.
type EventProof struct {
	ID       string
	Seq      int64
	Leaf     []byte // the RFC 6962 leaf hash of the envelope
	Origin   string // the log whose checkpoint includes it
	TreeSize uint64
	Root     []byte
	// Content: "matches" its digest, "absent" from the file, or
	// "removed" (the envelope's content_digest is empty).
	Content string
	// Cosignatures counts the checkpoint's further signature lines
	// (witnesses' cosignatures; not checked here).
	Cosignatures int
}

// CheckEvent checks one event offline, as a file holds it: the event as
// the API answers it with ?proof=true ({…, "proof": {"tree_size",
// "leaf_hash", "hashes", "checkpoint"}}), or a line of an evidence bundle
// with its tlog_proof. The envelope must be canonical, its seq the proof's
// index, its leaf included in the checkpoint's tree, the checkpoint signed
// with vkey, and content (when present) must match its digest. Any failure
// is an error saying what failed.
func CheckEvent(raw []byte, vkey string) (*EventProof, error) {
	raw = bytes.TrimSpace(raw)
	env, content, salt, index, hashes, checkpoint, err := splitEventFile(raw)
	if err != nil {
		return nil, err
	}
	e, canonical := readEnvelope(env, nil)
	if e == nil {
		return nil, fmt.Errorf("%s: the envelope is not an event", KindEnvelope)
	}
	if !canonical {
		return nil, fmt.Errorf("%s: the envelope of %s is not the canonical encoding of what it says: it was changed", KindEnvelope, e.ID)
	}
	if e.Seq != index {
		return nil, fmt.Errorf("%s: the envelope says seq %d, the proof is for position %d", KindSeq, e.Seq, index)
	}
	cp, err := tlog.OpenCheckpoint(checkpoint, vkey)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", KindSignature, err)
	}
	leaf := veritrail.LeafHash(env)
	if err := tlog.VerifyInclusion(uint64(index), cp.Size, leaf[:], hashes, cp.Root); err != nil {
		return nil, fmt.Errorf("%s: the envelope of %s is not at position %d of the tree of size %d the checkpoint signs (it was changed, or the proof is another's): %v",
			KindInclusion, e.ID, index, cp.Size, err)
	}
	p := &EventProof{ID: e.ID, Seq: e.Seq, Leaf: leaf[:], Origin: cp.Origin, TreeSize: cp.Size, Root: cp.Root, Content: "absent"}
	switch {
	case content != nil:
		if veritrail.ContentDigest(salt, content) != e.ContentDigest {
			return nil, fmt.Errorf("%s: the content of %s does not match the envelope's content_digest: it was changed", KindContentDigest, e.ID)
		}
		p.Content = "matches"
	case e.ContentDigest == "":
		p.Content = "none"
	}
	_, sigs, _ := bytes.Cut(checkpoint, []byte("\n\n"))
	for _, l := range strings.Split(string(sigs), "\n") {
		if strings.HasPrefix(l, "— ") {
			p.Cosignatures++
		}
	}
	p.Cosignatures = max(0, p.Cosignatures-1) // the log's own
	return p, nil
}

// splitEventFile reads either form CheckEvent takes.
func splitEventFile(raw []byte) (env, content, salt []byte, index int64, hashes [][]byte, checkpoint []byte, err error) {
	var line struct {
		Seq       *int64          `json:"seq"`
		Envelope  json.RawMessage `json:"envelope"`
		Content   json.RawMessage `json:"content"`
		Salt      string          `json:"content_salt"`
		TLogProof string          `json:"tlog_proof"`
	}
	if json.Unmarshal(raw, &line) == nil && len(line.Envelope) > 0 {
		// A bundle line: its tlog_proof holds index, hashes and checkpoint.
		if line.TLogProof == "" {
			return nil, nil, nil, 0, nil, nil, errors.New("this bundle line has no tlog_proof (a bundle written before them): check the whole bundle with --bundle")
		}
		var p fproof.TLogProof
		if err := p.Unmarshal([]byte(line.TLogProof)); err != nil {
			return nil, nil, nil, 0, nil, nil, fmt.Errorf("%s: tlog_proof: %v", KindInclusion, err)
		}
		if line.Seq != nil && *line.Seq != int64(p.Index) {
			return nil, nil, nil, 0, nil, nil, fmt.Errorf("%s: the line says seq %d, its tlog_proof index %d", KindSeq, *line.Seq, p.Index)
		}
		for _, h := range p.Hashes {
			hashes = append(hashes, bytes.Clone(h[:]))
		}
		if len(line.Content) > 0 {
			content = line.Content
			if salt, err = base64.StdEncoding.DecodeString(line.Salt); err != nil {
				return nil, nil, nil, 0, nil, nil, fmt.Errorf("content_salt: %v", err)
			}
		}
		return line.Envelope, content, salt, int64(p.Index), hashes, p.Checkpoint, nil
	}
	// The API's event: the proof object was appended last.
	const marker = `,"proof":{"tree_size":`
	i := bytes.LastIndex(raw, []byte(marker))
	if i < 0 || !bytes.HasSuffix(raw, []byte("}")) {
		return nil, nil, nil, 0, nil, nil, errors.New("not an event with its proof: give the event as GET /api/v1/events/{id}?proof=true answers it, or a line of an evidence bundle")
	}
	var proof struct {
		TreeSize   int64    `json:"tree_size"`
		Hashes     []string `json:"hashes"`
		Checkpoint string   `json:"checkpoint"`
	}
	if err := json.Unmarshal(raw[i+len(`,"proof":`):len(raw)-1], &proof); err != nil {
		return nil, nil, nil, 0, nil, nil, fmt.Errorf("the event's proof: %v", err)
	}
	for _, h := range proof.Hashes {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			return nil, nil, nil, 0, nil, nil, fmt.Errorf("%s: a proof hash is not base64", KindInclusion)
		}
		hashes = append(hashes, b)
	}
	env, content, salt, err = SplitEvent(append(bytes.Clone(raw[:i]), '}'))
	if err != nil {
		return nil, nil, nil, 0, nil, nil, err
	}
	// The index is the seq the envelope claims; the inclusion proof
	// checks the claim.
	var seq struct {
		Seq *int64 `json:"seq"`
	}
	if json.Unmarshal(env, &seq) != nil || seq.Seq == nil {
		return nil, nil, nil, 0, nil, nil, fmt.Errorf("%s: the event has no seq", KindEnvelope)
	}
	return env, content, salt, *seq.Seq, hashes, []byte(proof.Checkpoint), nil
}

// String says what was proved, in words.
func (p *EventProof) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "event %s (seq %d): verified\n", p.ID, p.Seq)
	fmt.Fprintf(&b, "  its envelope is canonical and hashes to leaf %s\n", base64.StdEncoding.EncodeToString(p.Leaf))
	fmt.Fprintf(&b, "  that leaf is at position %d of the tree of size %d, root %s,\n", p.Seq, p.TreeSize, base64.StdEncoding.EncodeToString(p.Root))
	fmt.Fprintf(&b, "  whose checkpoint the log %s signed with the key given", p.Origin)
	if p.Cosignatures > 0 {
		fmt.Fprintf(&b, " (%d further signature line(s), witnesses' cosignatures, not checked here)", p.Cosignatures)
	}
	b.WriteString("\n")
	switch p.Content {
	case "matches":
		b.WriteString("  its content matches the envelope's content_digest\n")
	case "none":
		b.WriteString("  it has no content (none sent, or removed by retention or erasure)\n")
	default:
		b.WriteString("  its content is not in the file (only the envelope is proved)\n")
	}
	fmt.Fprintf(&b, "This proves the log %s recorded exactly this envelope at position %d, and that any later checkpoint consistent with this one still holds it.\n", p.Origin, p.Seq)
	return b.String()
}
