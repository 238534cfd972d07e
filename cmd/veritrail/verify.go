package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// runVerify checks a log offline (a data directory or an evidence bundle)
// or through a server's API, trusting only the verifier key.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	data := fs.String("data", "", "verify the stored files of this data directory (offline; stop the server or use a copy for a consistent view)")
	server := fs.String("server", "", "verify through this server's API")
	token := fs.String("token", "", "token for --server with auditlogs:read (content:read to check content too; default env VERITRAIL_TOKEN)")
	bundle := fs.String("bundle", "", "verify this evidence bundle (offline)")
	key := fs.String("key", "", "the log's verifier key, or a file holding it: the key you trust (default: the one found beside the data, with a warning)")
	trusted := fs.String("trusted", "", "a checkpoint you kept earlier (file): the log must still extend it")
	orgName := fs.String("org", "", "only this organization (--data; default all)")
	quiet := fs.Bool("quiet", false, "no progress line")
	checkIndex := fs.Bool("index", true, "with --data, also check the search and id indexes against the envelopes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (for benchmarking)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	modes := 0
	for _, m := range []string{*data, *server, *bundle} {
		if m != "" {
			modes++
		}
	}
	if modes != 1 {
		return errors.New("give exactly one of --data DIR, --server URL or --bundle FILE")
	}
	if *trusted != "" && *bundle != "" {
		return errors.New("--trusted needs --data or --server: a bundle holds one checkpoint and no consistency proof; verify the log itself against the checkpoint you kept")
	}
	if *orgName != "" && *data == "" {
		return errors.New("--org goes with --data; with --server the token's organization is verified")
	}
	vkey, err := readKeyArg(*key)
	if err != nil {
		return err
	}
	if vkey != "" {
		if _, err := tlog.VerifierKeyOrigin(vkey); err != nil {
			return fmt.Errorf("--key %q is neither a verifier key (origin+hash+key, as `veritrail key` and GET /api/v1/log/key print it) nor a file holding one: %v", *key, err)
		}
	}
	var trustedNote []byte
	if *trusted != "" {
		if trustedNote, err = os.ReadFile(*trusted); err != nil {
			return fmt.Errorf("--trusted: %w", err)
		}
	}
	rep := &verify.Report{}
	prog := &progress{w: stderr, quiet: *quiet}
	switch {
	case *data != "":
		err = verifyData(ctx, *data, *orgName, vkey, trustedNote, *checkIndex, rep, prog, stdout, stderr)
	case *server != "":
		tok := *token
		if tok == "" {
			if tok, err = secret("VERITRAIL_TOKEN"); err != nil {
				return err
			}
		}
		if tok == "" {
			return errors.New("--server needs --token or VERITRAIL_TOKEN")
		}
		err = verifyServer(ctx, strings.TrimRight(*server, "/"), tok, vkey, trustedNote, rep, prog, stdout, stderr)
	default:
		err = verifyBundle(*bundle, vkey, rep, stdout, stderr)
	}
	prog.done()
	if err != nil {
		return err
	}
	if !rep.OK() {
		for _, f := range rep.Failures {
			fmt.Fprintf(stdout, "FAIL %s\n", f)
		}
		if rep.Total > len(rep.Failures) {
			fmt.Fprintf(stdout, "… and %d more\n", rep.Total-len(rep.Failures))
		}
		first := rep.Failures[0]
		where := "seq " + fmt.Sprint(first.Seq)
		if first.Seq < 0 {
			where = "the log as a whole"
		}
		return fmt.Errorf("verification FAILED: %d problem(s); the first in org %s at %s: %s", rep.Total, first.Org, where, first.Kind)
	}
	fmt.Fprintln(stdout, "verification passed")
	return nil
}

// readKeyArg accepts a verifier key, or the name of a file holding one.
func readKeyArg(k string) (string, error) {
	if k == "" {
		return "", nil
	}
	if _, err := os.Stat(k); err != nil {
		return k, nil
	}
	b, err := os.ReadFile(k)
	if err != nil {
		return "", fmt.Errorf("--key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// progress prints a progress line at most twice a second.
type progress struct {
	w     io.Writer
	quiet bool
	last  time.Time
	start time.Time
	shown bool
}

func (p *progress) update(format string, args ...any) {
	if p.quiet {
		return
	}
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	if now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last = now
	p.shown = true
	fmt.Fprintf(p.w, "\r"+format+"   ", args...)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

// verifyData checks the stored files: every event, leaf, content digest,
// checkpoint signature and root, and the search and id indexes.
func verifyData(ctx context.Context, dir, only, vkeyArg string, trustedNote []byte, checkIndex bool, rep *verify.Report, prog *progress, stdout, stderr io.Writer) error {
	store, err := sqlite.Open(ctx, dir, sqlite.Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer store.Close()
	orgs, err := store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	prefix, err := store.Setting(ctx, "log_origin_prefix", "")
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return err
	}
	if vkeyArg != "" && only == "" {
		// A verifier key names one organization's log: check that one.
		origin, _ := tlog.VerifierKeyOrigin(vkeyArg)
		if name, ok := strings.CutPrefix(origin, prefix+"/"); ok {
			only = name
		}
	}
	var localKey *tlog.Key
	if vkeyArg == "" {
		if localKey, err = loadSigningKey(dir, false); err != nil {
			return fmt.Errorf("no --key given and %w", err)
		}
		fmt.Fprintln(stderr, "warning: checking signatures with the key found in the data directory; pass --key with the verifier key you obtained earlier, or a replaced key would go unnoticed")
	}
	found := false
	for _, org := range orgs {
		if only != "" && org.Name != only {
			continue
		}
		found = true
		vkey := vkeyArg
		if vkey == "" {
			if vkey, err = localKey.VerifierKey(prefix + "/" + org.Name); err != nil {
				return err
			}
		}
		if err := verifyDataOrg(ctx, store, org, vkey, trustedNote, checkIndex, rep, prog, stdout); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("no organization %q in %s (list them with `veritrail org list --data %s`)", only, dir, dir)
	}
	return nil
}

func verifyDataOrg(ctx context.Context, store *sqlite.Store, org *veritrail.Org, vkey string, trustedNote []byte, checkIndex bool, rep *verify.Report, prog *progress, stdout io.Writer) error {
	size, _, err := store.LogHead(ctx, org.ID)
	if err != nil {
		return err
	}
	var notes [][]byte
	for from := int64(0); ; {
		cps, err := store.Checkpoints(ctx, org.ID, from, 1000)
		if err != nil {
			return err
		}
		for _, cp := range cps {
			notes = append(notes, cp.Note)
		}
		if len(cps) < 1000 {
			break
		}
		from = cps[len(cps)-1].Size + 1
	}
	cps := verify.OpenCheckpoints(org.Name, notes, vkey, rep)
	l := verify.NewLog(org.Name, cps, rep)
	if trustedNote != nil {
		t, err := tlog.OpenCheckpoint(trustedNote, vkey)
		if err != nil {
			rep.Add(verify.Failure{Org: org.Name, Seq: -1, Kind: verify.KindSignature, Detail: fmt.Sprintf("the checkpoint you kept does not verify with the key: %v", err)})
		} else {
			l.Trust(t)
		}
	}
	// Stored leaf hashes, a level-0 tile at a time.
	var tile []byte
	tileIdx := int64(-1)
	leafAt := func(seq int64) []byte {
		if seq/256 != tileIdx {
			tileIdx = seq / 256
			tile, _ = store.ReadTile(ctx, org.ID, 0, uint64(tileIdx))
		}
		off := int(seq%256) * 32
		if off+32 > len(tile) {
			return nil
		}
		return tile[off : off+32]
	}
	fail := func(seq int64, kind, detail string) {
		rep.Add(verify.Failure{Org: org.Name, Seq: seq, Kind: kind, Detail: detail})
	}
	removals, err := store.Removals(ctx, org.ID, 0, 1<<30)
	if err != nil {
		return err
	}
	rm := verify.NewRemovals(removals)
	absent := func(seq int64) {
		env, _ := rm.At(seq)
		if env {
			rm.Expired++
		}
		l.Absent(seq, leafAt(seq), env)
	}
	var ix *sqlite.IndexChecker
	if checkIndex {
		ix = store.NewIndexChecker(ctx, org.ID, fail)
	}
	start := time.Now()
	// Three readers feed this goroutine: envelopes (hashed as they are
	// read), contents (digested as they are read), and the index checker's
	// own reads of the stored index. The two cores stay busy.
	type envRow struct {
		env []byte
		h   verify.Hashed
	}
	type contentRow struct {
		seq    int64
		digest string
		size   int
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	envs := make(chan []envRow, 8)
	contents := make(chan []contentRow, 8)
	errs := make(chan error, 2)
	go func() {
		defer close(envs)
		batch := make([]envRow, 0, 256)
		var arena []byte
		err := store.ScanEvents(sctx, org.ID, func(seq int64, env []byte) error {
			if cap(arena)-len(arena) < len(env) {
				arena = make([]byte, 0, max(1<<20, len(env)))
			}
			arena = append(arena, env...)
			kept := arena[len(arena)-len(env) : len(arena) : len(arena)]
			batch = append(batch, envRow{kept, verify.HashEnvelope(seq, env)})
			if len(batch) == cap(batch) {
				select {
				case envs <- batch:
				case <-sctx.Done():
					return sctx.Err()
				}
				batch = make([]envRow, 0, 256)
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			select {
			case envs <- batch:
			case <-sctx.Done():
			}
		}
		errs <- err
	}()
	go func() {
		defer close(contents)
		batch := make([]contentRow, 0, 256)
		err := store.ScanContents(sctx, org.ID, func(seq int64, content, salt []byte) error {
			batch = append(batch, contentRow{seq, veritrail.ContentDigest(salt, content), len(content)})
			if len(batch) == cap(batch) {
				select {
				case contents <- batch:
				case <-sctx.Done():
					return sctx.Err()
				}
				batch = make([]contentRow, 0, 256)
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			select {
			case contents <- batch:
			case <-sctx.Done():
			}
		}
		errs <- err
	}()
	var cbatch []contentRow
	nextContent := func() (contentRow, bool) {
		for len(cbatch) == 0 {
			b, ok := <-contents
			if !ok {
				return contentRow{seq: 1 << 62}, false
			}
			cbatch = b
		}
		return cbatch[0], true
	}
	for batch := range envs {
		for i := range batch {
			r := &batch[i]
			seq := r.h.Seq
			// Contents without an event (deleted rows) are skipped: the
			// missing event is what is reported.
			for c, ok := nextContent(); ok && c.seq <= seq; c, ok = nextContent() {
				cbatch = cbatch[1:]
				if c.seq == seq {
					r.h.AddContent(c.digest, c.size)
				}
			}
			if seq >= size {
				fail(seq, verify.KindExtra, fmt.Sprintf("an event is stored beyond the log's size (%d): it was inserted", size))
				continue
			}
			for l.Size() < seq {
				absent(l.Size())
			}
			_, contentGone := rm.At(seq)
			if contentGone && !r.h.HasContent {
				rm.Erased++
			}
			l.Hashed(&r.h, leafAt(seq), contentGone)
			if ix != nil {
				if err := ix.Event(seq, r.env); err != nil {
					cancel()
					return err
				}
			}
		}
		prog.update("org %s: %d / %d events, %.0f MB/s", org.Name, l.Size(), size, mbps(l.Bytes(), time.Since(start)))
	}
	for range contents {
	}
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
	}
	for l.Size() < size {
		absent(l.Size())
	}
	l.Finish(size)
	checkRemovalRecords(ctx, store, org, removals, fail)
	if ix != nil {
		if err := ix.Finish(); err != nil {
			return err
		}
	}
	prog.done()
	took := time.Since(start)
	latest := int64(0)
	if len(cps) > 0 {
		latest = int64(cps[len(cps)-1].Size)
	}
	fmt.Fprintf(stdout, "org %s: %d events, %.1f MB checked in %s (%.0f MB/s); %d signed checkpoints, the latest at size %d",
		org.Name, l.Size(), float64(l.Bytes())/1e6, took.Round(time.Millisecond), mbps(l.Bytes(), took), len(cps), latest)
	if size > latest {
		fmt.Fprintf(stdout, "; %d events after it are not signed yet (the server signs them within a second of running)", size-latest)
	}
	if rm.Expired+rm.Erased > 0 {
		fmt.Fprintf(stdout, "; %d envelopes expired by policy and %d contents removed by retention or erasure, their leaves checked", rm.Expired, rm.Erased)
	}
	fmt.Fprintln(stdout)
	return nil
}

// checkRemovalRecords checks that every removal is recorded by a retention
// or erasure event in the log itself (signed like every event), which
// lists the removed range while its content is kept: a removals row alone,
// written by someone with the files, justifies nothing.
func checkRemovalRecords(ctx context.Context, store *sqlite.Store, org *veritrail.Org, rs []*veritrail.Removal, fail func(seq int64, kind, detail string)) {
	type rec struct {
		ok     bool
		ranges map[[2]int64]bool
	}
	recs := map[string]*rec{}
	for _, r := range rs {
		rc, seen := recs[r.Record]
		if !seen {
			rc = &rec{}
			recs[r.Record] = rc
			ev, err := store.EventByID(ctx, org.ID, r.Record, true)
			if err == nil {
				e, perr := veritrail.ParseEnvelope(ev.Envelope)
				rc.ok = perr == nil && (e.Type == "retention.run" || e.Type == "privacy.erasure")
				if rc.ok && ev.Content != nil {
					var body struct {
						Content  [][2]int64 `json:"content_ranges"`
						Envelope [][2]int64 `json:"envelope_ranges"`
					}
					if json.Unmarshal(ev.Content, &body) == nil {
						rc.ranges = map[[2]int64]bool{}
						for _, x := range append(body.Content, body.Envelope...) {
							rc.ranges[x] = true
						}
					}
				}
			}
		}
		switch {
		case !rc.ok:
			fail(r.From, verify.KindUnrecorded, fmt.Sprintf("seqs %d–%d were removed under %q, which is not a retention or erasure record in this log", r.From, r.To, r.Record))
		case rc.ranges != nil && !rc.ranges[[2]int64{r.From, r.To}]:
			fail(r.From, verify.KindUnrecorded, fmt.Sprintf("seqs %d–%d are not among the ranges its record %s lists", r.From, r.To, r.Record))
		}
	}
}

// verifyServer checks a log through the API: the signed checkpoint (and its
// history), every event in seq order up to it, and content where the
// token may read it.
func verifyServer(ctx context.Context, base, tok, vkey string, trustedNote []byte, rep *verify.Report, prog *progress, stdout, stderr io.Writer) error {
	client := &http.Client{Timeout: 60 * time.Second}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("is the server running at %s? %w", base, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
		}
		return b, nil
	}
	var me struct {
		Org struct {
			Name string `json:"name"`
		} `json:"organization"`
		Scopes []string `json:"scopes"`
	}
	b, err := get("/api/v1/me")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &me); err != nil {
		return fmt.Errorf("GET /api/v1/me: %w (is %s a Veritrail server?)", err, base)
	}
	org := me.Org.Name
	seesContent := slices.Contains(me.Scopes, veritrail.ScopeContentRead)
	if vkey == "" {
		k, err := get("/api/v1/log/key")
		if err != nil {
			return err
		}
		vkey = strings.TrimSpace(string(k))
		fmt.Fprintln(stderr, "warning: checking signatures with the key the server serves; pass --key with the verifier key you obtained earlier, or a replaced key would go unnoticed")
	}
	latestNote, err := get("/api/v1/log/checkpoint")
	if err != nil {
		return err
	}
	latest, err := tlog.OpenCheckpoint(latestNote, vkey)
	if err != nil {
		rep.Add(verify.Failure{Org: org, Seq: -1, Kind: verify.KindSignature, Detail: fmt.Sprintf("the server's checkpoint does not verify with the key: %v", err)})
		return nil
	}
	// The checkpoint history up to the latest.
	var notes [][]byte
	haveLatest := false
	for from := int64(0); ; {
		b, err := get(fmt.Sprintf("/api/v1/log/checkpoints?from_size=%d&limit=1000", from))
		if err != nil {
			return err
		}
		var page struct {
			Data []struct {
				Size       int64  `json:"size"`
				Checkpoint string `json:"checkpoint"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		for _, c := range page.Data {
			if uint64(c.Size) <= latest.Size {
				notes = append(notes, []byte(c.Checkpoint))
				haveLatest = haveLatest || uint64(c.Size) == latest.Size
			}
		}
		if len(page.Data) < 1000 {
			break
		}
		from = page.Data[len(page.Data)-1].Size + 1
	}
	if !haveLatest {
		// The events are checked up to the latest checkpoint: its root must
		// be compared too, whatever the history holds.
		notes = append(notes, latestNote)
	}
	cps := verify.OpenCheckpoints(org, notes, vkey, rep)
	l := verify.NewLog(org, cps, rep)
	if trustedNote != nil {
		t, err := tlog.OpenCheckpoint(trustedNote, vkey)
		if err != nil {
			rep.Add(verify.Failure{Org: org, Seq: -1, Kind: verify.KindSignature, Detail: fmt.Sprintf("the checkpoint you kept does not verify with the key: %v", err)})
		} else {
			l.Trust(t)
		}
	}
	var removals []*veritrail.Removal
	if b, err := get("/api/v1/log/removals"); err != nil {
		return err
	} else {
		var page struct {
			Data []struct {
				From, To     int64
				What, Reason string
				Record       string
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		for _, r := range page.Data {
			removals = append(removals, &veritrail.Removal{From: r.From, To: r.To, What: r.What, Reason: r.Reason, Record: r.Record})
		}
	}
	rm := verify.NewRemovals(removals)
	// Leaf hashes of removed envelopes come from the tiles.
	var tile []byte
	tileIdx := int64(-1)
	leafAt := func(seq int64) []byte {
		if seq/256 != tileIdx {
			tileIdx = seq / 256
			tile, _ = get(fmt.Sprintf("/api/v1/log/tile/0/%d", tileIdx))
		}
		off := int(seq%256) * 32
		if off+32 > len(tile) {
			return nil
		}
		return tile[off : off+32]
	}
	absentUntil := func(seq int64) {
		for l.Size() < seq {
			gone, _ := rm.At(l.Size())
			if gone {
				rm.Expired++
				l.Absent(l.Size(), leafAt(l.Size()), true)
			} else {
				l.Absent(l.Size(), nil, false)
			}
		}
	}
	start := time.Now()
	cursor := ""
	for uint64(l.Size()) < latest.Size {
		path := "/api/v1/events?order=seq&limit=1000"
		if cursor != "" {
			path += "&cursor=" + neturl.QueryEscape(cursor)
		}
		b, err := get(path)
		if err != nil {
			return err
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
			Next string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return err
		}
		if len(page.Data) == 0 {
			break
		}
		past := false
		for _, raw := range page.Data {
			env, content, salt, err := splitEvent(raw)
			if err != nil {
				rep.Add(verify.Failure{Org: org, Seq: -1, Kind: verify.KindEnvelope, Detail: err.Error()})
				continue
			}
			seq, ok := verify.EnvelopeSeq(env)
			if !ok {
				rep.Add(verify.Failure{Org: org, Seq: l.Size(), Kind: verify.KindEnvelope, Detail: "an event without id and seq"})
				continue
			}
			if uint64(seq) >= latest.Size {
				past = true
				break
			}
			absentUntil(seq)
			// Without content access the API shows no content: only the
			// envelope can be checked then.
			_, gone := rm.At(seq)
			if gone && content == nil {
				rm.Erased++
			}
			l.Event(seq, env, content, salt, nil, gone || !seesContent)
		}
		prog.update("org %s: %d / %d events, %.0f MB/s", org, l.Size(), latest.Size, mbps(l.Bytes(), time.Since(start)))
		if past || page.Next == "" {
			break // the rest is missing, and reported so below
		}
		cursor = page.Next
	}
	absentUntil(int64(latest.Size))
	l.Finish(int64(latest.Size))
	prog.done()
	fmt.Fprintf(stdout, "org %s: %d events checked through %s against the checkpoint at size %d (%d checkpoints in its history verified)",
		org, l.Size(), base, latest.Size, len(cps))
	if rm.Expired > 0 {
		fmt.Fprintf(stdout, "; %d envelopes expired by policy, their leaves checked from the tiles", rm.Expired)
	}
	fmt.Fprintln(stdout)
	return nil
}

// splitEvent takes an event as the API shows it apart: the exact envelope
// bytes, and the content and salt the server spliced in before its end.
func splitEvent(raw []byte) (env, content, salt []byte, err error) {
	i := bytes.Index(raw, []byte(`,"content":`))
	if i < 0 {
		return raw, nil, nil, nil
	}
	env = append(append([]byte(nil), raw[:i]...), '}')
	dec := json.NewDecoder(bytes.NewReader(raw[i+len(`,"content":`):]))
	var c json.RawMessage
	if err := dec.Decode(&c); err != nil {
		return nil, nil, nil, fmt.Errorf("an event's content is unreadable: %w", err)
	}
	rest := raw[i+len(`,"content":`)+int(dec.InputOffset()):]
	const sk = `,"content_salt":"`
	if !bytes.HasPrefix(rest, []byte(sk)) {
		return nil, nil, nil, errors.New("an event has content but no content_salt")
	}
	rest = rest[len(sk):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, nil, nil, errors.New("an event's content_salt is unterminated")
	}
	if salt, err = base64.StdEncoding.DecodeString(string(rest[:end])); err != nil {
		return nil, nil, nil, fmt.Errorf("an event's content_salt: %w", err)
	}
	return env, c, salt, nil
}

func verifyBundle(path, vkey string, rep *verify.Report, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	res, err := verify.Bundle(f, fi.Size(), vkey, rep)
	if err != nil {
		return err
	}
	if res.KeyFromBundle {
		fmt.Fprintln(stderr, "warning: checking the signature with the key inside the bundle; pass --key with the verifier key you obtained from the log operator")
	}
	if res.Checkpoint != nil {
		fmt.Fprintf(stdout, "bundle of %s: %d events (%d with content) proven against the checkpoint at size %d\n",
			res.Checkpoint.Origin, res.Events, res.Contents, res.Checkpoint.Size)
	}
	return nil
}
