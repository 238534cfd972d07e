package verify

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	fproof "github.com/transparency-dev/formats/proof"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/canonjson"
	"github.com/veritrail/veritrail/tlog"
)

// An evidence bundle is a zip file an auditor can check with nothing but
// the log's verifier key:
//
//	README.txt      what it is and how to check it
//	checkpoint.txt  one signed checkpoint (C2SP tlog-checkpoint)
//	key.txt         the log's verifier key (signed-note form)
//	events.ndjson   one event per line:
//	                {"seq", "leaf_hash", "proof": [...], "tlog_proof",
//	                 "envelope": {...}, "content": {...}, "content_salt"}
//
// "tlog_proof" is the same inclusion proof as a c2sp.org/tlog-proof@v1
// text (github.com/transparency-dev/formats/proof): "index <seq>", the
// proof hashes, a blank line and the bundle's signed checkpoint, so that a
// tool that knows that format and not Veritrail checks the event's
// inclusion from the checkpoint and the key alone (bundles written before
// it, with the earlier README, are checked as they were written).
//
// "envelope" holds the event's exact stored envelope bytes, unchanged (they
// are canonical JSON, so they sit in the line as they are); its RFC 6962
// leaf hash with "proof" must lead to the checkpoint's root. "content" and
// its salt are present only when the requester could see content; then
// SHA-256(salt ‖ content bytes) must equal the envelope's content_digest.
//
// The archive is canonical: entries stored uncompressed, in that order,
// with no timestamps, comments or extra fields, and README.txt one of the
// texts Veritrail writes. The checker rebuilds the archive from what it
// read and compares it byte for byte, so a change to any byte of the file
// (data or zip metadata) fails verification. Stored, not deflated: the
// bytes of a bundle must not depend on a compressor's version, or an
// evidence file written today could fail to verify with a later build.

// BundleEvent is one event of a bundle.
type BundleEvent struct {
	Seq      int64
	Envelope []byte
	Content  []byte // nil when not included
	Salt     []byte
	Proof    [][]byte // inclusion proof against the bundle's checkpoint
}

// BundleWriter streams a bundle.
type BundleWriter struct {
	zw     *zip.Writer
	events io.Writer
	buf    []byte
	n      int
	// checkpoint is the bundle's, for each line's tlog_proof; nil in the
	// format before tlog_proof.
	checkpoint []byte
}

const bundleReadme = `Veritrail evidence bundle
=========================

This archive holds audit events of one organization together with what is
needed to prove, offline, that they are exactly the events the log recorded:

  checkpoint.txt  a signed checkpoint of the organization's log (C2SP
                  tlog-checkpoint: origin, tree size, root hash, Ed25519
                  signature)
  key.txt         the log's verifier key. Do not trust this copy: compare it
                  with the key you obtained from the log operator earlier
                  (veritrail key, or GET /api/v1/log/key)
  events.ndjson   one event per line, with its position (seq), the exact
                  envelope bytes the log hashed, the RFC 6962 inclusion
                  proof of that envelope in the checkpoint's tree (also as
                  "tlog_proof", a c2sp.org/tlog-proof@v1 text: index, proof
                  hashes and the signed checkpoint, which any tool following
                  that specification checks), and, when you were allowed to
                  see it, the content and its salt

To check everything:

  veritrail verify --bundle THIS.zip --key "<the verifier key you trust>"

By hand: for each line, leaf = SHA-256(0x00 || envelope bytes); the proof
must rebuild the checkpoint's root from the leaf at index seq in a tree of
the checkpoint's size (RFC 9162 section 2.1.3.2); the envelope's "seq" must
equal the line's seq; and when content is present,
SHA-256(salt || content bytes) must equal the envelope's content_digest.
`

// bundleReadmeV1 is the README of bundles written before lines carried
// tlog_proof; such bundles are read and checked as they were written.
const bundleReadmeV1 = `Veritrail evidence bundle
=========================

This archive holds audit events of one organization together with what is
needed to prove, offline, that they are exactly the events the log recorded:

  checkpoint.txt  a signed checkpoint of the organization's log (C2SP
                  tlog-checkpoint: origin, tree size, root hash, Ed25519
                  signature)
  key.txt         the log's verifier key. Do not trust this copy: compare it
                  with the key you obtained from the log operator earlier
                  (veritrail key, or GET /api/v1/log/key)
  events.ndjson   one event per line, with its position (seq), the exact
                  envelope bytes the log hashed, the RFC 6962 inclusion
                  proof of that envelope in the checkpoint's tree, and, when
                  you were allowed to see it, the content and its salt

To check everything:

  veritrail verify --bundle THIS.zip --key "<the verifier key you trust>"

By hand: for each line, leaf = SHA-256(0x00 || envelope bytes); the proof
must rebuild the checkpoint's root from the leaf at index seq in a tree of
the checkpoint's size (RFC 9162 section 2.1.3.2); the envelope's "seq" must
equal the line's seq; and when content is present,
SHA-256(salt || content bytes) must equal the envelope's content_digest.
`

// NewBundleWriter starts a bundle on w with its checkpoint and key.
func NewBundleWriter(w io.Writer, checkpoint []byte, vkey string) (*BundleWriter, error) {
	return newBundleWriter(w, bundleReadme, checkpoint, strings.TrimSpace(vkey)+"\n")
}

func newBundleWriter(w io.Writer, readme string, checkpoint []byte, keyText string) (*BundleWriter, error) {
	zw := zip.NewWriter(w)
	for _, f := range []struct{ name, body string }{
		{"README.txt", readme},
		{"checkpoint.txt", string(checkpoint)},
		{"key.txt", keyText},
	} {
		fw, err := createStored(zw, f.name)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(fw, f.body); err != nil {
			return nil, err
		}
	}
	ew, err := createStored(zw, "events.ndjson")
	if err != nil {
		return nil, err
	}
	bw := &BundleWriter{zw: zw, events: ew}
	if readme != bundleReadmeV1 {
		bw.checkpoint = checkpoint
	}
	return bw, nil
}

// bundleEntries are a bundle's files, in their order.
var bundleEntries = []string{"README.txt", "checkpoint.txt", "key.txt", "events.ndjson"}

func createStored(zw *zip.Writer, name string) (io.Writer, error) {
	return zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
}

// CreateStored adds an entry the way bundles store theirs (for tools and
// tests that assemble a bundle's parts).
func CreateStored(zw *zip.Writer, name string) (io.Writer, error) { return createStored(zw, name) }

// compareWriter checks that what is written equals r's bytes from 0 on.
type compareWriter struct {
	r        io.ReaderAt
	off      int64
	mismatch int64 // first differing offset, -1 while equal
	buf      []byte
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.mismatch < 0 {
		if len(c.buf) < len(p) {
			c.buf = make([]byte, len(p))
		}
		n, _ := c.r.ReadAt(c.buf[:len(p)], c.off)
		for i := 0; i < len(p); i++ {
			if i >= n || c.buf[i] != p[i] {
				c.mismatch = c.off + int64(i)
				break
			}
		}
	}
	c.off += int64(len(p))
	return len(p), nil
}

// Add appends one event.
func (b *BundleWriter) Add(e *BundleEvent) error {
	leaf := veritrail.LeafHash(e.Envelope)
	buf := b.buf[:0]
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendInt(buf, e.Seq, 10)
	buf = append(buf, `,"leaf_hash":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, leaf[:])
	buf = append(buf, `","proof":[`...)
	for i, h := range e.Proof {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, h)
		buf = append(buf, '"')
	}
	buf = append(buf, ']')
	if b.checkpoint != nil {
		buf = append(buf, `,"tlog_proof":`...)
		buf = canonjson.AppendString(buf, string(TLogProof(e.Seq, e.Proof, b.checkpoint)))
	}
	buf = append(buf, `,"envelope":`...)
	buf = append(buf, e.Envelope...)
	if e.Content != nil {
		buf = append(buf, `,"content":`...)
		buf = append(buf, e.Content...)
		buf = append(buf, `,"content_salt":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, e.Salt)
		buf = append(buf, '"')
	}
	buf = append(buf, "}\n"...)
	b.buf = buf
	b.n++
	_, err := b.events.Write(buf)
	return err
}

// Count is the number of events added.
func (b *BundleWriter) Count() int { return b.n }

// Close finishes the archive.
func (b *BundleWriter) Close() error { return b.zw.Close() }

type bundleLine struct {
	Seq      *int64          `json:"seq"`
	LeafHash string          `json:"leaf_hash"`
	Proof    []string        `json:"proof"`
	Envelope json.RawMessage `json:"envelope"`
	Content  json.RawMessage `json:"content"`
	Salt     string          `json:"content_salt"`
}

// BundleSource reads an evidence bundle as a Source of one sparse log: its
// checkpoint, and its events with their proofs. As the events are read,
// the archive is rebuilt from them and compared with the file byte for
// byte; the bundle's format failures are reported by Check.
type BundleSource struct {
	r      io.ReaderAt
	size   int64
	events *zip.File
	readme []byte
	key    []byte // key.txt
	note   []byte // checkpoint.txt
	origin string // the checkpoint's, unverified ("" if unreadable)
	claim  int64  // the checkpoint's size, unverified
	// format lists what is wrong with the archive's layout and fixed
	// texts, found on opening; mismatch is the first byte at which the
	// file differs from the archive rebuilt from what was read (-1: none).
	format   []Failure
	mismatch int64
}

// OpenBundle opens an evidence bundle; an error means it is not one.
func OpenBundle(r io.ReaderAt, size int64) (*BundleSource, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an evidence bundle (zip): %w", err)
	}
	b := &BundleSource{r: r, size: size, mismatch: -1}
	files := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		files[f.Name] = f
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != strings.Join(bundleEntries, ",") {
		b.format = append(b.format, Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: fmt.Sprintf("the bundle holds %s; a bundle holds exactly %s", strings.Join(names, ", "), strings.Join(bundleEntries, ", "))})
	}
	read := func(name string) ([]byte, error) {
		f := files[name]
		if f == nil {
			return nil, fmt.Errorf("the bundle has no %s", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 1<<20))
	}
	if b.readme, err = read("README.txt"); err != nil {
		return nil, err
	}
	if string(b.readme) != bundleReadme && string(b.readme) != bundleReadmeV1 {
		b.format = append(b.format, Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: "README.txt is not the text Veritrail writes: the bundle was changed"})
	}
	if b.key, err = read("key.txt"); err != nil {
		return nil, err
	}
	if b.note, err = read("checkpoint.txt"); err != nil {
		return nil, err
	}
	if cp, err := tlog.ParseUnverified(b.note); err == nil {
		b.origin, b.claim = cp.Origin, int64(cp.Size)
	}
	if b.events = files["events.ndjson"]; b.events == nil {
		return nil, errors.New("the bundle has no events.ndjson")
	}
	return b, nil
}

// Key returns the verifier key the bundle carries (key.txt): to be
// compared with the one obtained from the log's operator, not trusted.
func (b *BundleSource) Key() string { return strings.TrimSpace(string(b.key)) }

// Logs implements Source: the one log of the bundle's checkpoint.
func (b *BundleSource) Logs(context.Context) ([]LogRef, error) {
	name := b.origin
	if name == "" {
		name = "bundle"
	}
	return []LogRef{{Org: name, Origin: b.origin}}, nil
}

// Open implements Source.
func (b *BundleSource) Open(context.Context, LogRef) (LogReader, error) { return b, nil }

// Info implements LogReader.
func (b *BundleSource) Info(context.Context) (*Info, error) {
	return &Info{Size: b.claim, Checkpoints: [][]byte{b.note}, Sparse: true, ContentHidden: true, Where: "bundle"}, nil
}

// Removals implements LogReader: a bundle records none.
func (b *BundleSource) Removals(context.Context) ([]*veritrail.Removal, error) { return nil, nil }

// LeafTile implements LogReader: a bundle holds proofs, not tiles.
func (b *BundleSource) LeafTile(context.Context, int64) ([]byte, error) {
	return nil, veritrail.Errorf(veritrail.ENotFound, "a bundle holds no tiles")
}

func (b *BundleSource) checkBefore(key string, fail func(Failure)) {
	for _, f := range b.format {
		fail(f)
	}
	if key != "" && strings.TrimSpace(key) != b.Key() {
		fail(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: "key.txt is not the key you trust"})
	}
}

func (b *BundleSource) checkAfter(fail func(Failure)) {
	if b.mismatch >= 0 {
		fail(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: fmt.Sprintf("the file differs from the canonical bundle of its contents at byte %d: it was changed after it was written", b.mismatch)})
	}
}

// Events implements LogReader: every line of events.ndjson, in the file's
// order (the range is ignored), while the archive is rebuilt from them.
func (b *BundleSource) Events(ctx context.Context, _, _ int64, fn func(*Event) error) error {
	rc, err := b.events.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	cmp := &compareWriter{r: b.r, mismatch: -1}
	rebuilt, err := newBundleWriter(cmp, string(b.readme), b.note, string(b.key))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var l bundleLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Seq == nil || len(l.Envelope) == 0 {
			rebuilt.events.Write(append(sc.Bytes(), '\n'))
			if err := fn(&Event{Seq: -1, Unreadable: fmt.Sprintf("events.ndjson line %d is not a bundle event", line)}); err != nil {
				return err
			}
			continue
		}
		ev := &Event{Seq: *l.Seq, Envelope: l.Envelope, Proof: make([][]byte, len(l.Proof))}
		if l.LeafHash != "" {
			if ev.Leaf, err = base64.StdEncoding.DecodeString(l.LeafHash); err != nil {
				ev.Leaf = []byte(l.LeafHash) // not a hash: it cannot match
			}
		}
		for i, p := range l.Proof {
			if ev.Proof[i], err = base64.StdEncoding.DecodeString(p); err != nil {
				ev.Proof = nil
				break
			}
		}
		if len(l.Content) > 0 {
			ev.Content = l.Content
			ev.Salt, _ = base64.StdEncoding.DecodeString(l.Salt) // a bad salt fails the digest
		}
		rebuilt.Add(&BundleEvent{Seq: ev.Seq, Envelope: ev.Envelope, Content: ev.Content, Salt: ev.Salt, Proof: ev.Proof})
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("events.ndjson: %w", err)
	}
	rebuilt.Close()
	if cmp.mismatch < 0 && cmp.off != b.size {
		cmp.mismatch = min(cmp.off, b.size)
	}
	b.mismatch = cmp.mismatch
	return nil
}

// TLogProof returns the c2sp.org/tlog-proof@v1 text of an inclusion proof
// of the entry at index against a signed checkpoint. Hashes that are not
// 32 bytes (a damaged proof) are left out: the proof then fails.
func TLogProof(index int64, proof [][]byte, checkpoint []byte) []byte {
	p := fproof.TLogProof{Index: uint64(index), Checkpoint: checkpoint, Hashes: make([][sha256.Size]byte, 0, len(proof))}
	for _, h := range proof {
		if len(h) == sha256.Size {
			p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
		}
	}
	return p.Marshal()
}

// BundleResult summarizes a bundle check.
type BundleResult struct {
	Checkpoint    *tlog.Checkpoint // nil if its signature failed
	Events        int
	Contents      int
	KeyFromBundle bool
}

// Bundle checks an evidence bundle with Check. vkey is the verifier key the
// auditor trusts; empty means the key in the bundle (and the result says
// so).
func Bundle(r io.ReaderAt, size int64, vkey string, rep *Report) (*BundleResult, error) {
	src, err := OpenBundle(r, size)
	if err != nil {
		return nil, err
	}
	opts := Options{KeyBeside: func(context.Context, LogRef) (string, error) { return src.Key(), nil }}
	if vkey != "" {
		opts.Keys = []string{vkey}
	}
	sums, err := Check(context.Background(), src, opts, rep)
	if err != nil {
		return nil, err
	}
	s := sums[0]
	return &BundleResult{Checkpoint: s.Latest, Events: int(s.Events), Contents: int(s.Contents), KeyFromBundle: s.KeyBeside}, nil
}
