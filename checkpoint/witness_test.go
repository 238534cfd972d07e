package checkpoint

// Protocol unit tests of the client half of C2SP tlog-witness
// (add-checkpoint): the request's form, the consistency proof it carries,
// the 409 restart from the witness's size, and what a failure leaves
// pending and recorded. The other end is specWitness, an httptest handler
// that checks each request the way the specification says and answers as
// a test scripts it. It is not a witness (no cosignatures, nothing kept
// beyond one test): these tests show that the client speaks the protocol,
// not that it works with any witness in service.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// addRequest is one add-checkpoint request as specWitness saw it, and its
// answer.
type addRequest struct {
	old, size uint64
	proofLen  int
	status    int
}

// specWitness checks add-checkpoint requests for one log as C2SP
// tlog-witness says: the checkpoint signed by the log's key (403), old
// size not above the checkpoint's (400), old size the latest it cosigned
// (409 with that size as text/x.tlog.size), an empty proof from size 0 and
// a valid RFC 6962 consistency proof otherwise (422), the same root at the
// same size (409). Scripted answers go out first, one per request.
type specWitness struct {
	t        *testing.T
	verifier note.Verifier

	mu       sync.Mutex
	size     uint64
	root     []byte
	script   []func(w http.ResponseWriter) // answers to give before checking anything
	requests []addRequest
}

func (sw *specWitness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		sw.t.Errorf("request %s %s, want POST /add-checkpoint", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		sw.t.Error(err)
		return
	}
	req, proofLines, signed, err := parseAddCheckpoint(body)
	if err != nil {
		sw.t.Errorf("malformed add-checkpoint request: %v\n%s", err, body)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n, err := note.Open(signed, note.VerifierList(sw.verifier))
	if err != nil {
		sw.t.Errorf("checkpoint not signed by the log's key: %v", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	lines := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseUint(lines[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(lines[2])
	req.size = size
	answer := func(status int, contentType, text string) {
		req.status = status
		sw.requests = append(sw.requests, req)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, text)
	}
	if len(sw.script) > 0 {
		rec := httptest.NewRecorder()
		sw.script[0](rec)
		sw.script = sw.script[1:]
		answer(rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		return
	}
	switch {
	case req.old > size:
		answer(http.StatusBadRequest, "", "old size above the checkpoint's\n")
	case req.old != sw.size:
		answer(http.StatusConflict, "text/x.tlog.size", fmt.Sprintf("%d\n", sw.size))
	case req.old == 0 && len(proofLines) != 0:
		answer(http.StatusUnprocessableEntity, "", "a proof from size 0 must be empty\n")
	case req.old > 0 && req.old < size && proof.VerifyConsistency(rfc6962.DefaultHasher, req.old, size, proofLines, sw.root, root) != nil:
		answer(http.StatusUnprocessableEntity, "", "consistency proof does not verify\n")
	case req.old == size && !bytes.Equal(root, sw.root):
		answer(http.StatusConflict, "", "same size, another root\n")
	default:
		sw.size, sw.root = size, root
		answer(http.StatusOK, "", "")
	}
}

// parseAddCheckpoint splits a request body: "old <size>", proof lines
// (base64), an empty line, the signed checkpoint.
func parseAddCheckpoint(body []byte) (addRequest, [][]byte, []byte, error) {
	var req addRequest
	rd := bufio.NewReader(bytes.NewReader(body))
	first, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "old ") {
		return req, nil, nil, fmt.Errorf("first line %q is not \"old <size>\"", first)
	}
	if req.old, err = strconv.ParseUint(strings.TrimSuffix(first[4:], "\n"), 10, 64); err != nil {
		return req, nil, nil, fmt.Errorf("old size: %v", err)
	}
	var hashes [][]byte
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return req, nil, nil, fmt.Errorf("no empty line before the checkpoint")
		}
		if line == "\n" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil || len(h) != 32 {
			return req, nil, nil, fmt.Errorf("proof line %q is not a base64 hash", line)
		}
		hashes = append(hashes, h)
	}
	req.proofLen = len(hashes)
	rest, _ := io.ReadAll(rd)
	return req, hashes, rest, nil
}

// learn makes the witness know a checkpoint it got from elsewhere (another
// node of the same log).
func (sw *specWitness) learn(cp *veritrail.Checkpoint) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.size, sw.root = uint64(cp.Size), cp.Root
}

func (sw *specWitness) then(answers ...func(w http.ResponseWriter)) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.script = append(sw.script, answers...)
}

// seen returns the requests since the last call.
func (sw *specWitness) seen() []addRequest {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	r := sw.requests
	sw.requests = nil
	return r
}

func status(code int, contentType, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// witnessRig is an installation handing its checkpoints to one
// specWitness, with delivery rounds run by the test (deliverAll), not by a
// timer.
type witnessRig struct {
	*installation
	w   *specWitness
	url string
}

func newWitnessRig(t *testing.T) *witnessRig {
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sw := &specWitness{t: t}
	srv := httptest.NewServer(sw)
	t.Cleanup(srv.Close)
	// The trailing slash is trimmed: requests go to <url>/add-checkpoint.
	in := newInstallation(t, key, " "+srv.URL+"/ ")
	vkey, err := in.cp.VerifierKey(in.org)
	if err != nil {
		t.Fatal(err)
	}
	if sw.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	return &witnessRig{installation: in, w: sw, url: srv.URL}
}

// grow appends n events and signs, which offers the checkpoint to the
// witness.
func (r *witnessRig) grow(n int) *veritrail.Checkpoint {
	r.t.Helper()
	r.installation.grow("e", n)
	return r.sign()
}

func (r *witnessRig) deliver() { r.cp.wit.deliverAll(context.Background()) }

// pending returns the size of the checkpoint waiting for the witness, or
// -1 if none waits.
func (r *witnessRig) pending() int64 {
	r.cp.wit.mu.Lock()
	defer r.cp.wit.mu.Unlock()
	if d := r.cp.wit.pending[wkey{r.org.ID, r.url}]; d != nil {
		return d.cp.Size
	}
	return -1
}

// lastRecord returns the newest witness_log row.
func (r *witnessRig) lastRecord() veritrail.WitnessAttempt {
	r.t.Helper()
	ws, err := r.store.WitnessLog(context.Background(), r.org.ID, 1)
	if err != nil || len(ws) != 1 {
		r.t.Fatalf("witness log: %v %v", ws, err)
	}
	return ws[0]
}

func (r *witnessRig) expect(step string, want ...addRequest) {
	r.t.Helper()
	got := r.w.seen()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		r.t.Errorf("%s: requests (old, size, proof hashes, answer)\n got %v\nwant %v", step, got, want)
	}
}

func TestWitnessProtocolAddCheckpoint(t *testing.T) {
	r := newWitnessRig(t)
	r.grow(5)
	if p := r.pending(); p != 5 {
		t.Fatalf("pending %d, want the signed checkpoint, 5", p)
	}
	r.deliver()
	// First contact: old 0 and no proof.
	r.expect("first checkpoint", addRequest{0, 5, 0, 200})
	if p := r.pending(); p != -1 {
		t.Errorf("checkpoint %d still pending after the witness took it", p)
	}
	if rec := r.lastRecord(); !rec.OK || rec.Size != 5 || rec.URL != r.url || rec.Detail != "cosigned" {
		t.Errorf("witness log: %+v", rec)
	}
	// Then from the size the witness took, with a consistency proof it
	// verified (across the first tile's edge).
	r.grow(300)
	r.deliver()
	r.expect("next checkpoint", addRequest{5, 305, len(mustProof(t, r, 5, 305)), 200})
	// Nothing pending, nothing sent.
	r.deliver()
	r.expect("no new checkpoint")
	if ok, failed := r.obs.witnessed(); ok != 2 || failed != 0 {
		t.Errorf("observer: %d ok, %d failed; want 2 and 0", ok, failed)
	}
}

func mustProof(t *testing.T, r *witnessRig, a, b uint64) [][]byte {
	t.Helper()
	p, err := tlog.ConsistencyProof(context.Background(), TileReader(r.store, r.org.ID), a, b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A witness that knows a checkpoint this node did not hand it (another
// node did) answers 409 with its size; the client restarts from there.
func TestWitnessProtocolConflictRestartsFromWitnessSize(t *testing.T) {
	r := newWitnessRig(t)
	r.grow(5)
	r.deliver()
	r.expect("first checkpoint", addRequest{0, 5, 0, 200})
	r.w.learn(r.grow(95)) // size 100, witnessed through another node
	r.grow(200)           // size 300: only the newest checkpoint is pending
	if p := r.pending(); p != 300 {
		t.Fatalf("pending %d, want the newest checkpoint, 300", p)
	}
	r.deliver()
	r.expect("witness ahead of what this node knows",
		addRequest{5, 300, len(mustProof(t, r, 5, 300)), 409},
		addRequest{100, 300, len(mustProof(t, r, 100, 300)), 200})
	if p := r.pending(); p != -1 {
		t.Errorf("checkpoint %d still pending", p)
	}
	// The client remembers the size: the next request starts from 300.
	r.grow(1)
	r.deliver()
	r.expect("after the restart", addRequest{300, 301, len(mustProof(t, r, 300, 301)), 200})
}

// A failed delivery stays pending and is recorded; the next round sends
// the newest checkpoint again.
func TestWitnessProtocolFailureStaysPending(t *testing.T) {
	for _, tc := range []struct {
		name              string
		code              int
		contentType, body string
		detail            string // what the witness log must say
	}{
		{"unavailable", http.StatusServiceUnavailable, "", "maintenance", "503 Service Unavailable: maintenance"},
		{"conflict without a size", http.StatusConflict, "", "same size, another root\n", "409 without a size"},
		{"proof refused", http.StatusUnprocessableEntity, "", "bad proof", "inconsistent with the tree of size 0 it cosigned (bad proof)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newWitnessRig(t)
			r.grow(5)
			r.w.then(status(tc.code, tc.contentType, tc.body))
			r.deliver()
			r.expect("failed delivery", addRequest{0, 5, 0, tc.code})
			if p := r.pending(); p != 5 {
				t.Fatalf("pending %d, want the checkpoint the witness did not take, 5", p)
			}
			if rec := r.lastRecord(); rec.OK || rec.Size != 5 || !strings.Contains(rec.Detail, tc.detail) {
				t.Errorf("witness log after the failure: %+v, want a failure saying %q", rec, tc.detail)
			}
			// A refusal (422: the witness holds another tree) is an alarm:
			// a record in the log, which grows it by one.
			size, alarms := uint64(8), 0
			if tc.code == http.StatusUnprocessableEntity {
				size, alarms = 9, 1
			}
			if r.obs.witnessRefused != alarms {
				t.Errorf("%d refusals counted, want %d", r.obs.witnessRefused, alarms)
			}
			r.grow(3) // the log grew meanwhile: the newest is sent
			r.deliver()
			r.expect("next round", addRequest{0, size, 0, 200})
			if p := r.pending(); p != -1 {
				t.Errorf("checkpoint %d still pending", p)
			}
			if rec := r.lastRecord(); !rec.OK || rec.Size != int64(size) {
				t.Errorf("witness log after the success: %+v", rec)
			}
			if ok, failed := r.obs.witnessed(); ok != 1 || failed != 1 {
				t.Errorf("observer: %d ok, %d failed; want 1 and 1", ok, failed)
			}
		})
	}
}

// A witness that knows a larger size than the checkpoint has seen another
// history of the log, or a later one: the client does not send the
// checkpoint again, reports it, and keeps it pending.
func TestWitnessProtocolWitnessBeyondCheckpoint(t *testing.T) {
	r := newWitnessRig(t)
	r.grow(5)
	r.w.then(status(http.StatusConflict, "text/x.tlog.size", "900\n"))
	r.deliver()
	r.expect("witness beyond", addRequest{0, 5, 0, 409})
	if rec := r.lastRecord(); rec.OK || !strings.Contains(rec.Detail, "the witness cosigned a tree of size 900, larger than this checkpoint's 5") {
		t.Errorf("witness log: %+v", rec)
	}
	if p := r.pending(); p == -1 {
		t.Error("the checkpoint is no longer pending")
	}
}

// A witness that answers 409 to the restarted request as well is given up
// on for this round (no loop), and the checkpoint stays pending.
func TestWitnessProtocolConflictTwice(t *testing.T) {
	r := newWitnessRig(t)
	r.grow(300)
	r.w.then(status(http.StatusConflict, "text/x.tlog.size", "7\n"), status(http.StatusConflict, "text/x.tlog.size", "9\n"))
	r.deliver()
	r.expect("two conflicts", addRequest{0, 300, 0, 409}, addRequest{7, 300, len(mustProof(t, r, 7, 300)), 409})
	if rec := r.lastRecord(); rec.OK || !strings.Contains(rec.Detail, "kept answering 409") {
		t.Errorf("witness log: %+v", rec)
	}
	if p := r.pending(); p == -1 {
		t.Error("the checkpoint is no longer pending")
	}
}
