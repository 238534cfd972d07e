package http

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/internal/canonjson"
	"github.com/veritrail/veritrail/tlog"
)

// Integrity endpoints: the signed checkpoint, the verifier key, inclusion
// and consistency proofs, and the checkpoint history.

func (s *Server) checkpointer() (*checkpoint.Checkpointer, error) {
	if s.cfg.Checkpointer == nil {
		return nil, veritrail.Errorf(veritrail.EUnavailable, "this server signs no checkpoints")
	}
	return s.cfg.Checkpointer, nil
}

func orgOf(p *veritrail.Principal) *veritrail.Org {
	return &veritrail.Org{ID: p.OrgID, Name: p.OrgName}
}

func writeText(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// getCheckpoint answers the latest signed checkpoint, signing one first if
// the log grew since.
func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	c, err := s.checkpointer()
	if err != nil {
		return err
	}
	cp, err := c.Sign(r.Context(), orgOf(p))
	if err != nil {
		return err
	}
	writeText(w, cp.Note)
	return nil
}

func (s *Server) getLogKey(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	c, err := s.checkpointer()
	if err != nil {
		return err
	}
	vkey, err := c.VerifierKey(orgOf(p))
	if err != nil {
		return err
	}
	writeText(w, []byte(vkey+"\n"))
	return nil
}

func b64s(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

// treeSize resolves a tree size parameter: given, it must not exceed the
// log; absent, it is the latest signed checkpoint's (covering min if set).
func (s *Server) treeSize(ctx context.Context, p *veritrail.Principal, v int64, given bool, covering int64) (int64, error) {
	size, _, err := s.store.LogHead(ctx, p.OrgID)
	if err != nil {
		return 0, err
	}
	if given {
		if v > size {
			return 0, veritrail.Errorf(veritrail.EInvalid, "tree size %d is beyond the log (size %d)", v, size)
		}
		return v, nil
	}
	c, err := s.checkpointer()
	if err != nil {
		return 0, err
	}
	cp, err := c.Covering(ctx, orgOf(p), covering)
	if err != nil {
		return 0, err
	}
	return cp.Size, nil
}

func (s *Server) getInclusionProof(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	seq, ok, err := intParam(r, "seq")
	if err == nil && !ok {
		err = veritrail.Errorf(veritrail.EInvalid, "parameter seq is required")
	}
	if err != nil {
		return err
	}
	tsParam, given, err := intParam(r, "tree_size")
	if err != nil {
		return err
	}
	size, err := s.treeSize(r.Context(), p, tsParam, given, seq)
	if err != nil {
		return err
	}
	if seq >= size {
		return veritrail.Errorf(veritrail.EInvalid, "seq %d is not in a tree of size %d", seq, size)
	}
	read := checkpoint.TileReader(s.store, p.OrgID)
	leaf, err := tlog.LeafHash(r.Context(), read, uint64(seq))
	if err != nil {
		return err
	}
	proof, err := tlog.InclusionProof(r.Context(), read, uint64(seq), uint64(size))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Seq      int64    `json:"seq"`
		TreeSize int64    `json:"tree_size"`
		LeafHash string   `json:"leaf_hash"`
		Proof    []string `json:"proof"`
	}{seq, size, base64.StdEncoding.EncodeToString(leaf), b64s(proof)})
	return nil
}

func (s *Server) getConsistencyProof(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	from, ok, err := intParam(r, "from")
	if err == nil && !ok {
		err = veritrail.Errorf(veritrail.EInvalid, "parameter from is required")
	}
	if err != nil {
		return err
	}
	toParam, given, err := intParam(r, "to")
	if err != nil {
		return err
	}
	to, err := s.treeSize(r.Context(), p, toParam, given, from-1)
	if err != nil {
		return err
	}
	if from > to {
		return veritrail.Errorf(veritrail.EInvalid, "from (%d) must not exceed to (%d)", from, to)
	}
	proof, err := tlog.ConsistencyProof(r.Context(), checkpoint.TileReader(s.store, p.OrgID), uint64(from), uint64(to))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		From  int64    `json:"from"`
		To    int64    `json:"to"`
		Proof []string `json:"proof"`
	}{from, to, b64s(proof)})
	return nil
}

// listCheckpoints answers the signed checkpoint history, oldest first.
func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	from, _, err := intParam(r, "from_size")
	if err != nil {
		return err
	}
	limit, given, err := intParam(r, "limit")
	if err != nil {
		return err
	}
	if !given || limit == 0 || limit > 1000 {
		limit = 100
	}
	cps, err := s.store.Checkpoints(r.Context(), p.OrgID, from, int(limit))
	if err != nil {
		return err
	}
	type item struct {
		Size       int64  `json:"size"`
		Root       string `json:"root"`
		SignedAt   string `json:"signed_at"`
		Checkpoint string `json:"checkpoint"`
	}
	out := make([]item, len(cps))
	for i, cp := range cps {
		out[i] = item{cp.Size, base64.StdEncoding.EncodeToString(cp.Root), cp.SignedAt.Format(time.RFC3339Nano), string(cp.Note)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// appendProof adds an event's inclusion proof against a signed checkpoint
// that covers it to the event JSON in buf (which ends with '}'), with the
// envelope's exact bytes (base64): the JSON around them is for reading,
// the bytes are what the leaf hash is computed from.
func (s *Server) appendProof(ctx context.Context, buf []byte, p *veritrail.Principal, seq int64, envelope []byte) ([]byte, error) {
	c, err := s.checkpointer()
	if err != nil {
		return nil, err
	}
	cp, err := c.Covering(ctx, orgOf(p), seq)
	if err != nil {
		return nil, err
	}
	read := checkpoint.TileReader(s.store, p.OrgID)
	leaf, err := tlog.LeafHash(ctx, read, uint64(seq))
	if err != nil {
		return nil, err
	}
	proof, err := tlog.InclusionProof(ctx, read, uint64(seq), uint64(cp.Size))
	if err != nil {
		return nil, err
	}
	buf = buf[:len(buf)-1]
	buf = append(buf, `,"proof":{"tree_size":`...)
	buf = strconv.AppendInt(buf, cp.Size, 10)
	buf = append(buf, `,"leaf_hash":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, leaf)
	buf = append(buf, `","hashes":[`...)
	for i, h := range proof {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, h)
		buf = append(buf, '"')
	}
	buf = append(buf, `],"checkpoint":`...)
	buf = canonjson.AppendString(buf, string(cp.Note))
	buf = append(buf, `,"envelope":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, envelope)
	return append(buf, `"}}`...), nil
}

// listWitnessAttempts answers the latest attempts to hand checkpoints to
// witnesses: whether a copy of the log's state lives outside this server.
func (s *Server) listWitnessAttempts(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	as, err := s.store.WitnessLog(r.Context(), p.OrgID, 100)
	if err != nil {
		return err
	}
	type item struct {
		Witness string `json:"witness"`
		Size    int64  `json:"size"`
		OK      bool   `json:"ok"`
		Detail  string `json:"detail"`
		At      string `json:"at"`
	}
	out := make([]item, len(as))
	for i, a := range as {
		out[i] = item{a.URL, a.Size, a.OK, a.Detail, a.At.Format(time.RFC3339Nano)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}
