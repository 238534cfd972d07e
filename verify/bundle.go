package verify

import (
	"archive/zip"
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// An evidence bundle is a zip file an auditor can check with nothing but
// the log's verifier key:
//
//	README.txt      what it is and how to check it
//	checkpoint.txt  one signed checkpoint (C2SP tlog-checkpoint)
//	key.txt         the log's verifier key (signed-note form)
//	events.ndjson   one event per line:
//	                {"seq", "leaf_hash", "proof": [...], "envelope": {...},
//	                 "content": {...}, "content_salt"}
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
	return &BundleWriter{zw: zw, events: ew}, nil
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
	buf = append(buf, `],"envelope":`...)
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

// BundleResult summarizes a bundle check.
type BundleResult struct {
	Checkpoint    *tlog.Checkpoint
	Events        int
	Contents      int
	KeyFromBundle bool
}

// Bundle checks an evidence bundle. vkey is the verifier key the auditor
// trusts; empty means the key in the bundle (and the result says so).
func Bundle(r io.ReaderAt, size int64, vkey string, rep *Report) (*BundleResult, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an evidence bundle (zip): %w", err)
	}
	files := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		files[f.Name] = f
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != strings.Join(bundleEntries, ",") {
		rep.Add(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: fmt.Sprintf("the bundle holds %s; a bundle holds exactly %s", strings.Join(names, ", "), strings.Join(bundleEntries, ", "))})
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
	res := &BundleResult{}
	readme, err := read("README.txt")
	if err != nil {
		return nil, err
	}
	if string(readme) != bundleReadme {
		rep.Add(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: "README.txt is not the text Veritrail writes: the bundle was changed"})
	}
	keyText, err := read("key.txt")
	if err != nil {
		return nil, err
	}
	if vkey == "" {
		vkey, res.KeyFromBundle = strings.TrimSpace(string(keyText)), true
	} else if strings.TrimSpace(string(keyText)) != strings.TrimSpace(vkey) {
		rep.Add(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: "key.txt is not the key you trust"})
	}
	note, err := read("checkpoint.txt")
	if err != nil {
		return nil, err
	}
	cp, err := tlog.OpenCheckpoint(note, vkey)
	if err != nil {
		rep.Add(Failure{Org: "bundle", Seq: -1, Kind: KindSignature, Detail: fmt.Sprintf("the checkpoint does not verify with the key: %v", err)})
		return res, nil
	}
	res.Checkpoint = cp
	org := cp.Origin
	ef := files["events.ndjson"]
	if ef == nil {
		return nil, errors.New("the bundle has no events.ndjson")
	}
	rc, err := ef.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The archive rebuilt from what is read, compared as it is written.
	cmp := &compareWriter{r: r, mismatch: -1}
	rebuilt, err := newBundleWriter(cmp, string(readme), note, string(keyText))
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var l bundleLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Seq == nil || len(l.Envelope) == 0 {
			rep.Add(Failure{Org: org, Seq: -1, Kind: KindEnvelope, Detail: fmt.Sprintf("events.ndjson line %d is not a bundle event", line)})
			rebuilt.events.Write(append(sc.Bytes(), '\n'))
			continue
		}
		seq := *l.Seq
		res.Events++
		leaf := veritrail.LeafHash(l.Envelope)
		if l.LeafHash != "" && l.LeafHash != base64.StdEncoding.EncodeToString(leaf[:]) {
			rep.Add(Failure{Org: org, Seq: seq, Kind: KindLeaf, Detail: "the envelope's bytes do not hash to the leaf hash beside them: the event was changed"})
		}
		if got, ok := EnvelopeSeq(l.Envelope); !ok {
			rep.Add(Failure{Org: org, Seq: seq, Kind: KindEnvelope, Detail: "the envelope does not start with its id and seq"})
		} else if got != seq {
			rep.Add(Failure{Org: org, Seq: seq, Kind: KindSeq, Detail: fmt.Sprintf("the envelope says seq %d", got)})
		}
		proof := make([][]byte, len(l.Proof))
		var perr error
		for i, p := range l.Proof {
			if proof[i], perr = base64.StdEncoding.DecodeString(p); perr != nil {
				break
			}
		}
		if perr != nil || seq < 0 || uint64(seq) >= cp.Size || tlog.VerifyInclusion(uint64(seq), cp.Size, leaf[:], proof, cp.Root) != nil {
			rep.Add(Failure{Org: org, Seq: seq, Kind: KindInclusion, Detail: fmt.Sprintf("the envelope is not proven in the checkpoint's tree of size %d: it was changed, or is not from this log", cp.Size)})
		}
		ev := &BundleEvent{Seq: seq, Envelope: l.Envelope, Proof: proof}
		if len(l.Content) > 0 {
			res.Contents++
			salt, serr := base64.StdEncoding.DecodeString(l.Salt)
			digest, has := EnvelopeDigest(l.Envelope)
			if serr != nil || !has || veritrail.ContentDigest(salt, l.Content) != digest {
				rep.Add(Failure{Org: org, Seq: seq, Kind: KindContentDigest, Detail: "the content (or its salt) does not match the digest in the envelope: the content was changed"})
			}
			ev.Content, ev.Salt = l.Content, salt
		}
		rebuilt.Add(ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("events.ndjson: %w", err)
	}
	rebuilt.Close()
	if cmp.mismatch < 0 && cmp.off != size {
		cmp.mismatch = min(cmp.off, size)
	}
	if cmp.mismatch >= 0 {
		rep.Add(Failure{Org: "bundle", Seq: -1, Kind: KindArchive, Detail: fmt.Sprintf("the file differs from the canonical bundle of its contents at byte %d: it was changed after it was written", cmp.mismatch)})
	}
	return res, nil
}
