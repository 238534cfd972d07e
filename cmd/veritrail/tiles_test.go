package main

import (
	"bytes"
	"context"
	binenc "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	fproof "github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/veritrail/veritrail/client"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/internal/tlogpeers"
	"github.com/veritrail/veritrail/monitor"
	"github.com/veritrail/veritrail/tlog"
)

// These tests check Veritrail's logs with verifiers that are not ours:
// tessera's fsck over the served tiles, golang.org/x/mod/sumdb/tlog for
// proofs, litewitness as witness, the formats library for tlog-proof.

// get fetches url (with a token if given) and fails the test on anything
// but 200.
func get(t *testing.T, url, token string) []byte {
	t.Helper()
	b, err := client.Get(context.Background(), http.DefaultClient, url, token)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openCheckpoint parses a served checkpoint with the formats library, the
// log's key and the given witness keys, and returns it with the names of
// the witnesses whose cosignatures verified.
func openCheckpoint(t *testing.T, signed []byte, vkey string, witnesses ...string) (*flog.Checkpoint, []string) {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	var wv []note.Verifier
	for _, w := range witnesses {
		x, err := fnote.NewVerifierForCosignatureV1(w)
		if err != nil {
			t.Fatal(err)
		}
		wv = append(wv, x)
	}
	cp, _, n, err := flog.ParseCheckpoint(signed, v.Name(), v, wv...)
	if err != nil {
		t.Fatalf("checkpoint: %v\n%s", err, signed)
	}
	var cosigned []string
	for _, s := range n.Sigs {
		if s.Name != v.Name() {
			cosigned = append(cosigned, s.Name)
		}
	}
	return cp, cosigned
}

// entries splits an entry bundle (C2SP tlog-tiles) into its entries.
func entries(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(binenc.BigEndian.Uint16(b)) {
			t.Fatalf("malformed entry bundle")
		}
		n := int(binenc.BigEndian.Uint16(b))
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// sumdbInclusion checks, with golang.org/x/mod/sumdb/tlog alone over the
// served tiles, that every entry of the first bundles is in the tree of
// the checkpoint; it returns the first failure.
func sumdbInclusion(t *testing.T, base, token string, cp *flog.Checkpoint, bundles int) error {
	t.Helper()
	tiles := &client.TileReader{Ctx: context.Background(), Base: base, Token: token, Client: http.DefaultClient}
	tree := sumtlog.Tree{N: int64(cp.Size), Hash: sumtlog.Hash(cp.Hash)}
	hr := sumtlog.TileHashReader(tree, tiles)
	for i := 0; i < bundles; i++ {
		w := min(256, int(cp.Size)-256*i)
		for j, e := range entries(t, get(t, base+"/"+tlog.TilePath(tlog.EntriesLevel, uint64(i), w), token)) {
			seq := int64(256*i + j)
			p, err := sumtlog.ProveRecord(int64(cp.Size), seq, hr)
			if err != nil {
				return fmt.Errorf("seq %d: proof: %w", seq, err)
			}
			if err := sumtlog.CheckRecord(p, int64(cp.Size), sumtlog.Hash(cp.Hash), seq, sumtlog.RecordHash(e)); err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
		}
	}
	return nil
}

// TestOutsideVerifiers: tessera's fsck passes over the served tiles of an
// honest log and fails after tampering; golang.org/x/mod/sumdb/tlog checks
// inclusion of the entries and consistency between checkpoints, and fails
// on the tampered log too.
func TestOutsideVerifiers(t *testing.T) {
	data, vkey := signedLog(t, 600) // 601 events
	const tok = "vt_integrity-test-token-0123456789"
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_LOG_ORIGIN=test.example/log", "VERITRAIL_RETENTION_INTERVAL=0"}
	tampered := copyDir(t, data)
	tileChanged := copyDir(t, data)

	srv := startServer(t, data, env)
	base := srv.url + "/tlog/default"
	if ok, out := tlogpeers.RunFsck(t, base+"/", vkey, tok); !ok {
		t.Fatalf("fsck fails on the honest log:\n%s", out)
	}
	cp, _ := openCheckpoint(t, get(t, base+"/checkpoint", tok), vkey)
	if cp.Size < 601 {
		t.Fatalf("checkpoint of size %d", cp.Size)
	}
	if err := sumdbInclusion(t, base, tok, cp, 3); err != nil {
		t.Fatalf("x/mod/sumdb/tlog inclusion on the honest log: %v", err)
	}
	postDemoIDs(t, srv, tok, 300, "later-")
	var later *flog.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if later, _ = openCheckpoint(t, get(t, base+"/checkpoint", tok), vkey); later.Size > cp.Size+300 || time.Now().After(deadline) {
			break
		}
	}
	tiles := &client.TileReader{Ctx: context.Background(), Base: base, Token: tok, Client: http.DefaultClient}
	if err := client.ProveConsistency(tiles, cp.Size, cp.Hash, later.Size, later.Hash); err != nil {
		t.Fatalf("x/mod/sumdb/tlog consistency %d→%d: %v", cp.Size, later.Size, err)
	}
	srv.stop()

	for _, tc := range []struct {
		name, dir, stmt string
	}{
		{"one byte of an envelope", tampered, fmt.Sprintf(
			`UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '"outcome":"success"', '"outcome":"failure"') AS BLOB) WHERE rid = %d`, rid(117))},
		{"a leaf hash in a tile", tileChanged,
			`UPDATE tiles SET hashes = zeroblob(32) || substr(hashes, 33) WHERE org_id = 1 AND level = 0 AND idx = 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tamper(t, tc.dir, tc.stmt)
			srv := startServer(t, tc.dir, env)
			base := srv.url + "/tlog/default"
			if ok, out := tlogpeers.RunFsck(t, base+"/", vkey, tok); ok || !strings.Contains(out, "fsck failed") {
				t.Errorf("fsck passes on a tampered log:\n%s", out)
			}
			cp, _ := openCheckpoint(t, get(t, base+"/checkpoint", tok), vkey)
			if err := sumdbInclusion(t, base, tok, cp, 3); err == nil {
				t.Error("x/mod/sumdb/tlog finds every entry included in a tampered log")
			}
		})
	}
}

// logsFile writes a monitor configuration of one log.
func logsFile(t *testing.T, url, vkey, token string, quorum int, witnesses ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"logs": []monitor.Log{{URL: url, Key: vkey, Token: token, Witnesses: witnesses, Quorum: quorum}}})
	p := filepath.Join(t.TempDir(), "logs.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// setWitnessing puts a witness policy (and public tiles) in the settings
// of the token's organization.
func setWitnessing(t *testing.T, s *server, tok string, quorum int, ws ...*tlogpeers.Witness) {
	t.Helper()
	code, b := s.do("GET", "/api/v1/settings", tok, "")
	var st map[string]any
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("settings: %d %s", code, b)
	}
	var list []map[string]string
	for _, w := range ws {
		list = append(list, map[string]string{"url": w.URL, "key": w.VKey})
	}
	st["witnessing"] = map[string]any{"witnesses": list, "quorum": quorum}
	st["tlog_public"] = true
	body, _ := json.Marshal(st)
	if code, b := s.do("PUT", "/api/v1/settings", tok, string(body)); code != 200 {
		t.Fatalf("put settings: %d %s", code, b)
	}
}

// waitCosigned waits until the log's checkpoint of record is at least
// size and cosigned by every witness given.
func waitCosigned(t *testing.T, base, vkey string, size uint64, ws ...*tlogpeers.Witness) []byte {
	t.Helper()
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.VKey)
	}
	var last []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, err := client.Get(context.Background(), http.DefaultClient, base+"/checkpoint", "")
		if err != nil {
			last = []byte(err.Error())
			continue
		}
		last = b
		if cp, cosigned := openCheckpoint(t, b, vkey, keys...); cp.Size >= size && len(cosigned) == len(ws) {
			return b
		}
	}
	t.Fatalf("no checkpoint of size %d cosigned by %d witnesses; last:\n%s", size, len(ws), last)
	return nil
}

// hook records the JSON bodies POSTed to it.
type hook struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	h.mu.Lock()
	h.bodies = append(h.bodies, m)
	h.mu.Unlock()
}

func (h *hook) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		out = append(out, fmt.Sprint(b["kind"]))
	}
	return out
}

// TestWitnessesAndMonitor: real witnesses (litewitness) cosign the log's
// checkpoints, the cosignatures are served as signature lines of the
// checkpoint of record, and `veritrail monitor` follows the log. When the
// log is forked (another tree under the same key), the witnesses refuse
// it, the forked server records the refusal in its log and metrics, and
// the monitor reports the fork; a rolled-back view is reported too.
func TestWitnessesAndMonitor(t *testing.T) {
	w1 := tlogpeers.StartWitness(t, "witness-one.test")
	w2 := tlogpeers.StartWitness(t, "witness-two.test")
	const tok = "vt_witness-test-token-0123456789abc"
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_LOG_ORIGIN=witnessed.test", "VERITRAIL_RETENTION_INTERVAL=0",
		"VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"}
	dataA := filepath.Join(t.TempDir(), "a")
	a := startServer(t, dataA, env)
	key, _ := cli(t, "key", "--data", dataA)
	vkey := strings.TrimSpace(key)
	const origin = "witnessed.test/default"
	w1.AddLog(t, origin, vkey)
	w2.AddLog(t, origin, vkey)
	setWitnessing(t, a, tok, 2, w1, w2)
	postDemoIDs(t, a, tok, 300, "a-")
	baseA := a.url + "/tlog/default"
	first := waitCosigned(t, baseA, vkey, 301, w1, w2)

	// The monitor adopts the witnessed checkpoint.
	state := t.TempDir()
	h := &hook{}
	hookSrv := httptest.NewServer(h)
	defer hookSrv.Close()
	smtp := smtptest.Start(t)
	monitorRun := func(logs string) (string, string, int) {
		return runBinEnv(t, []string{"VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true", "VERITRAIL_SMTP_URL=" + smtp.URL(), "VERITRAIL_SMTP_CA_FILE=" + smtp.CAFile},
			"monitor", "--logs", logs, "--state", state, "--once", "--webhook", hookSrv.URL, "--email-to", "auditor@example.com")
	}
	witnessedA := logsFile(t, baseA, vkey, "", 2, w1.VKey, w2.VKey)
	if out, errOut, code := monitorRun(witnessedA); code != 0 {
		t.Fatalf("monitor on the honest log: %s%s", out, errOut)
	}
	postDemoIDs(t, a, tok, 100, "a2-")
	waitCosigned(t, baseA, vkey, 402, w1, w2)
	if out, errOut, code := monitorRun(witnessedA); code != 0 {
		t.Fatalf("monitor on the grown log: %s%s", out, errOut)
	}

	// A rolled-back view: the checkpoint of before, served with the tiles.
	rollback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/checkpoint") {
			w.Write(first)
			return
		}
		b, err := client.Get(r.Context(), http.DefaultClient, a.url+r.URL.Path, "")
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		w.Write(b)
	}))
	defer rollback.Close()
	if out, errOut, code := monitorRun(logsFile(t, rollback.URL+"/tlog/default", vkey, "", 2, w1.VKey, w2.VKey)); code == 0 || !strings.Contains(out, `"kind":"rollback"`) {
		t.Fatalf("monitor on a rolled-back view: %d %s%s", code, out, errOut)
	}

	// The fork: another server signs another tree with the same key and
	// origin, and hands it to the same witnesses.
	dataB := filepath.Join(t.TempDir(), "b")
	b := startServer(t, dataB, append(env, "VERITRAIL_SIGNING_KEY_FILE="+filepath.Join(dataA, "signing-key")))
	setWitnessing(t, b, tok, 0, w1, w2)
	postDemoIDs(t, b, tok, 500, "b-")
	var refusal []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := b.do("GET", "/api/v1/events?type=integrity.witness_refused", tok, "")
		if bytes.Contains(body, []byte(`"integrity.witness_refused"`)) {
			refusal = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal recorded in the forked log: %s\n%s", body, b.stderr)
		}
	}
	if !bytes.Contains(refusal, []byte(w1.URL)) && !bytes.Contains(refusal, []byte(w2.URL)) {
		t.Errorf("the refusal does not name the witness: %s", refusal)
	}
	if _, m := b.do("GET", "/metrics", "", ""); !bytes.Contains(m, []byte("veritrail_witness_refusals_total{witness=")) {
		t.Error("no refusal counted in the metrics")
	}
	// The witnesses still hold the honest log: A goes on being cosigned.
	postDemoIDs(t, a, tok, 10, "a3-")
	waitCosigned(t, baseA, vkey, 412, w1, w2)

	baseB := b.url + "/tlog/default"
	// An auditor who requires the witnesses sees an unwitnessed checkpoint;
	// one who does not sees the fork itself.
	if out, errOut, code := monitorRun(logsFile(t, baseB, vkey, "", 2, w1.VKey, w2.VKey)); code == 0 || !strings.Contains(out, `"kind":"unwitnessed"`) {
		t.Fatalf("monitor (witnesses required) on the fork: %d %s%s", code, out, errOut)
	}
	if out, errOut, code := monitorRun(logsFile(t, baseB, vkey, "", 0)); code == 0 || !strings.Contains(out, `"kind":"fork"`) {
		t.Fatalf("monitor on the fork: %d %s%s", code, out, errOut)
	}
	if k := h.kinds(); !strings.Contains(strings.Join(k, ","), "fork") || !strings.Contains(strings.Join(k, ","), "rollback") {
		t.Errorf("webhook got %v", k)
	}
	msgs := smtp.Wait(t, 3, 10*time.Second)
	if !strings.Contains(strings.Join(msgs, "\n"), "fork of "+origin) {
		t.Errorf("no e-mail about the fork among %d messages", len(msgs))
	}
}

// runBinEnv runs the binary with extra environment variables.
func runBinEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Run()
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// checkTLogProofAlone checks a bundle line's tlog_proof with nothing of
// Veritrail's: the formats library parses the c2sp.org/tlog-proof@v1 text
// and opens its checkpoint with the log's key; golang.org/x/mod/sumdb/tlog
// checks the inclusion of the envelope's leaf (formats has no Merkle
// checker).
func checkTLogProofAlone(line []byte, vkey string) error {
	var l struct {
		Envelope  json.RawMessage `json:"envelope"`
		TLogProof string          `json:"tlog_proof"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return err
	}
	var p fproof.TLogProof
	if err := p.Unmarshal([]byte(l.TLogProof)); err != nil {
		return err
	}
	v, err := fnote.NewVerifier(vkey)
	if err != nil {
		return err
	}
	cp, _, _, err := flog.ParseCheckpoint(p.Checkpoint, v.Name(), v)
	if err != nil {
		return err
	}
	proof := make(sumtlog.RecordProof, len(p.Hashes))
	for i, h := range p.Hashes {
		proof[i] = sumtlog.Hash(h)
	}
	return sumtlog.CheckRecord(proof, int64(cp.Size), sumtlog.Hash(cp.Hash), int64(p.Index), sumtlog.RecordHash(l.Envelope))
}

// TestOneEventAndTLogProof: one event checks offline with `veritrail
// verify --event`, as the API gives it with its proof and as a bundle line;
// a bundle line's tlog_proof checks with the formats library alone; a
// changed byte fails both.
func TestOneEventAndTLogProof(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_event-test-token-0123456789abcdef"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_RETENTION_INTERVAL=0"})
	postDemo(t, srv, tok, 300)
	key, _ := cli(t, "key", "--data", data)
	vkey := strings.TrimSpace(key)

	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "event.json")
		os.WriteFile(p, b, 0o600)
		return p
	}
	code, b := srv.do("GET", "/api/v1/events/demo-000123?proof=true", tok, "")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	out, errOut, code := runBin(t, "verify", "--event", write(b), "--key", vkey)
	if code != 0 || !strings.Contains(out, "verified") || !strings.Contains(out, "content matches") {
		t.Fatalf("verify --event (API): %d %s%s", code, out, errOut)
	}
	bundle := buildBundle(t, srv, tok, vkey, []int{0, 5, 150, 299})
	lines := strings.Split(strings.TrimSpace(readZipEntry(t, bundle, "events.ndjson")), "\n")
	for _, line := range lines {
		if err := checkTLogProofAlone([]byte(line), vkey); err != nil {
			t.Fatalf("tlog_proof does not check with the formats library: %v\n%s", err, line)
		}
	}
	if out, errOut, code := runBin(t, "verify", "--event", write([]byte(lines[2])), "--key", vkey); code != 0 || !strings.Contains(out, "at position 150") {
		t.Fatalf("verify --event (bundle line): %d %s%s", code, out, errOut)
	}
	for name, edit := range map[string]func(string) string{
		"envelope": func(s string) string { return strings.Replace(s, `"type":"`, `"type":"x`, 1) },
		"seq":      func(s string) string { return strings.Replace(s, `"seq":150`, `"seq":151`, 1) },
	} {
		if err := checkTLogProofAlone([]byte(edit(lines[2])), vkey); err == nil && name == "envelope" {
			t.Errorf("a changed %s passes the formats library's check", name)
		}
		if out, _, code := runBin(t, "verify", "--event", write([]byte(edit(lines[2]))), "--key", vkey); code == 0 {
			t.Errorf("verify --event passes a bundle line with a changed %s: %s", name, out)
		}
	}
	if out, _, code := runBin(t, "verify", "--event", write(bytes.Replace(b, []byte(`"type":"`), []byte(`"type":"x`), 1)), "--key", vkey); code == 0 {
		t.Errorf("verify --event passes a changed API event: %s", out)
	}
	srv.stop()
}

// TestHoldAcknowledgement: a sender keeps the receipts of what it sent
// (POST ?receipt=true) and later, with package client and the log's key
// alone, checks that they record exactly what it sent and that the log's
// checkpoint of today includes them and extends the one it kept.
func TestHoldAcknowledgement(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_receipt-test-token-0123456789abc"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_RETENTION_INTERVAL=0"})
	setWitnessing(t, srv, tok, 0) // public tiles, no witnesses
	ingest, _ := cli(t, "token", "create", "--org", "default", "--role", "ingest", "--data", data)
	key, _ := cli(t, "key", "--data", data)
	log := &client.Log{URL: srv.url + "/tlog/default", Key: strings.TrimSpace(key)}
	ctx := context.Background()

	sent := [][]byte{
		[]byte(`{"id":"ack-1","time":"2026-03-01T10:00:00Z","type":"Auth.Login","actor":{"type":"user","id":"u1","email":"A@Example.com"},"content":{"b":2,"a":1}}`),
		[]byte(`{"type":"board.board_opened","actor":{"type":"user","id":"u2"},"context":{"ip":"::ffff:10.0.0.1"}}`),
	}
	code, ack := srv.do("POST", "/api/v1/events?receipt=true", lastLine(ingest), string(bytes.Join(sent, []byte("\n"))))
	if code != 200 {
		t.Fatalf("%d %s", code, ack)
	}
	receipts, err := client.ParseAck(ack)
	if err != nil || len(receipts) != 2 {
		t.Fatalf("receipts: %v %s", err, ack)
	}
	for i, r := range receipts {
		if err := r.Matches(sent[i]); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	if err := receipts[0].Matches(bytes.Replace(sent[0], []byte(`"u1"`), []byte(`"u9"`), 1)); err == nil {
		t.Error("a receipt matches an event that was not sent")
	}
	var kept *client.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		kept, err = log.Hold(ctx, receipts[1], sent[1])
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	postDemoIDs(t, srv, tok, 300, "after-")
	var now *client.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if now, err = log.Hold(ctx, receipts[0], sent[0]); err != nil || now.Size > kept.Size+300 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("hold later: %v", err)
	}
	if err := log.Extends(ctx, kept, now); err != nil {
		t.Fatalf("the checkpoint of today does not extend the one kept: %v", err)
	}
	// A receipt the log did not record: its leaf is not where it says.
	forged := *receipts[0]
	forged.Envelope = bytes.Replace(forged.Envelope, []byte(`"u1"`), []byte(`"u9"`), 1)
	if err := log.Includes(ctx, now, uint64(forged.Seq), forged.Leaf()); err == nil {
		t.Error("a forged receipt is included")
	}
	srv.stop()
}
