package http

import (
	"fmt"
	"net/http"
	"strconv"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// The C2SP tlog-tiles read layout of each organization's log, under
// /tlog/{org}/, for the transparency-log ecosystem's own tools (tessera's
// fsck, golang.org/x/mod/sumdb/tlog clients, monitors):
//
//	/tlog/{org}/checkpoint                the checkpoint of record, with the
//	                                      witnesses' cosignature lines
//	/tlog/{org}/tile/{L}/{N}[.p/{W}]      hash tiles
//	/tlog/{org}/tile/entries/{N}[.p/{W}]  entry bundles: the envelopes, each
//	                                      a big-endian uint16 length and the
//	                                      bytes the leaf hash is taken of
//
// Checkpoints and hash tiles hold hashes only: an organization may make
// them public (settings tlog_public); otherwise, like entry bundles always,
// they need a token of the organization with auditlogs:read. A tile never
// changes once it exists under its name (a partial tile's name carries its
// width), so tiles are served as immutable.
//
// An envelope that retention removed cannot be in an entry bundle: the
// spec has no tombstone, and nothing but the removed bytes hashes to its
// leaf. A bundle covering one answers 410 and names the removed range; its
// leaf hash stays in the level-0 hash tile.

const immutable = "max-age=31536000, immutable"

// tlogCaller resolves the organization of a /tlog route and the caller: nil
// principal for a public read.
func (s *Server) tlogCaller(w http.ResponseWriter, r *http.Request, entries bool) (*veritrail.Org, *veritrail.Principal, error) {
	ctx := r.Context()
	org, err := s.store.OrgByName(ctx, r.PathValue("org"))
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, nil, err
	}
	if org != nil && !entries {
		st, err := s.orgSettings(ctx, org.ID)
		if err != nil {
			return nil, nil, err
		}
		if st.TlogPublic {
			return org, nil, nil
		}
	}
	// Unknown and private logs answer alike to a caller without a token.
	p, err := s.authenticate(r)
	if err != nil {
		return nil, nil, err
	}
	if !s.limiter.allow(w, p.TokenID) {
		return nil, nil, veritrail.Errorf(veritrail.ERateLimited, "this token made too many requests; retry after the number of seconds in Retry-After")
	}
	if !p.Can(veritrail.ScopeAuditLogsRead) {
		return nil, nil, veritrail.Errorf(veritrail.EForbidden, "this token (role %s) lacks the %s scope", p.Role, veritrail.ScopeAuditLogsRead)
	}
	if org == nil || org.ID != p.OrgID {
		return nil, nil, veritrail.Errorf(veritrail.ENotFound, "no log %q for this token: a token reads its own organization's log", r.PathValue("org"))
	}
	return org, p, nil
}

// getTlogCheckpoint answers the checkpoint of record.
func (s *Server) getTlogCheckpoint(w http.ResponseWriter, r *http.Request) error {
	c, err := s.checkpointer()
	if err != nil {
		return err
	}
	org, p, err := s.tlogCaller(w, r, false)
	if err != nil {
		return err
	}
	rec, err := c.OfRecord(r.Context(), org)
	if err != nil {
		return err
	}
	cacheFor(w, p, "no-cache")
	writeText(w, rec.Note)
	return nil
}

// getTlogTile answers a hash tile or an entry bundle.
func (s *Server) getTlogTile(w http.ResponseWriter, r *http.Request) error {
	level, index, width, err := tlog.ParseTilePath(r.PathValue("path"))
	if err != nil {
		return veritrail.Errorf(veritrail.ENotFound, "%v", err)
	}
	org, p, err := s.tlogCaller(w, r, level == tlog.EntriesLevel)
	if err != nil {
		return err
	}
	if level == tlog.EntriesLevel {
		return s.writeEntryBundle(w, r, org, p, index, width)
	}
	hashes, err := s.store.ReadTile(r.Context(), org.ID, uint8(level), index)
	if err != nil {
		return err
	}
	if len(hashes) < width*tlog.HashSize {
		return veritrail.Errorf(veritrail.ENotFound, "tile %s: the log has %d of its hashes yet", tlog.TilePath(level, index, width), len(hashes)/tlog.HashSize)
	}
	cacheFor(w, p, immutable)
	writeOctets(w, hashes[:width*tlog.HashSize])
	return nil
}

// writeEntryBundle answers the envelopes of positions 256·index to
// 256·index+width-1, read in seq order through the store's polling query.
func (s *Server) writeEntryBundle(w http.ResponseWriter, r *http.Request, org *veritrail.Org, p *veritrail.Principal, index uint64, width int) error {
	ctx := r.Context()
	first := int64(index) * tlog.TileWidth
	size, _, err := s.store.LogHead(ctx, org.ID)
	if err != nil {
		return err
	}
	if first+int64(width) > size {
		return veritrail.Errorf(veritrail.ENotFound, "entry bundle %s: the log holds %d entries", tlog.TilePath(tlog.EntriesLevel, index, width), size)
	}
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: width}
	if first > 0 {
		q.After = &veritrail.Cursor{Order: veritrail.OrderSeq, Seq: first - 1, Fingerprint: q.Fingerprint()}
	}
	page, err := s.store.Query(ctx, org.ID, q)
	if err != nil {
		return err
	}
	bundle := make([]byte, 0, width*512)
	next := first
	for _, e := range page.Events {
		if e.Seq >= first+int64(width) {
			break
		}
		if e.Seq != next {
			return s.removedEntries(next, e.Seq-1)
		}
		if bundle, err = tlog.AppendEntry(bundle, e.Envelope); err != nil {
			return fmt.Errorf("entry bundle of %s, seq %d: %w", org.Name, e.Seq, err)
		}
		next++
	}
	if next != first+int64(width) {
		return s.removedEntries(next, first+int64(width)-1)
	}
	if err := s.audit(ctx, r, p, "audit.entries_read", &veritrail.Target{Type: "log", ID: org.Name},
		map[string]any{"tile": tlog.TilePath(tlog.EntriesLevel, index, width), "first_seq": first, "entries": width}); err != nil {
		return err
	}
	cacheFor(w, p, immutable)
	writeOctets(w, bundle)
	return nil
}

func (s *Server) removedEntries(from, to int64) error {
	return veritrail.Errorf(veritrail.EExpired,
		"entries %d to %d of this bundle were removed by retention (GET /api/v1/log/removals lists them): a bundle cannot hold them, since nothing but the removed bytes hashes to their leaves; their leaf hashes remain in the level-0 hash tile", from, to)
}

// cacheFor sets Cache-Control: shared caches may keep what anyone may read.
func cacheFor(w http.ResponseWriter, p *veritrail.Principal, directive string) {
	scope := "public, "
	if p != nil {
		scope = "private, "
	}
	w.Header().Set("Cache-Control", scope+directive)
}

func writeOctets(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
