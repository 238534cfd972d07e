package http_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/tlog"
)

// logEnv is a server with a checkpointer, as `veritrail serve` runs it.
type logEnv struct {
	*env
	cpr  *checkpoint.Checkpointer
	vkey string
	m    *metrics.Metrics
}

func newLogEnv(t *testing.T, witnesses ...string) *logEnv {
	t.Helper()
	ctx := context.Background()
	m := metrics.New()
	store := openStore(t, t.TempDir(), storeOptions{Observer: m})
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example", Witnesses: witnesses,
		Interval: 50 * time.Millisecond, Observer: m, Client: netguard.Guard{AllowLoopback: true}.Client(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cpr.Run(cctx) }()
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m, Checkpointer: cpr})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		api.Shutdown(ctx)
		store.Close()
	})
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	vkey, _ := cpr.VerifierKey(e.org)
	return &logEnv{env: e, cpr: cpr, vkey: vkey, m: m}
}

func (e *logEnv) checkpoint() *tlog.Checkpoint {
	e.t.Helper()
	r := e.do("GET", "/api/v1/log/checkpoint", e.owner, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		e.t.Fatalf("checkpoint: %d %s", r.status, r.body)
	}
	cp, err := tlog.OpenCheckpoint(r.body, e.vkey)
	if err != nil {
		e.t.Fatalf("checkpoint does not verify: %v\n%s", err, r.body)
	}
	return cp
}

func decodeHashes(t *testing.T, in []string) [][]byte {
	out := make([][]byte, len(in))
	for i, s := range in {
		var err error
		if out[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestCheckpointsAndProofs(t *testing.T) {
	e := newLogEnv(t)
	// The empty log has a signed checkpoint too.
	if cp := e.checkpoint(); cp.Size != 0 || cp.Origin != "test.example/acme" || string(cp.Root) != string(tlog.EmptyRoot()) {
		t.Fatalf("empty checkpoint %+v", cp)
	}
	if r := e.do("GET", "/api/v1/log/key", e.owner, nil); strings.TrimSpace(string(r.body)) != e.vkey {
		t.Fatalf("key endpoint: %s", r.body)
	}
	var cps []*tlog.Checkpoint
	total := 0
	for _, n := range []int{1, 2, 5, 64, 200, 300} {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"id":"p%d","type":"auth.login","actor":{"type":"user","id":"u%d"},"content":{"i":%d}}`+"\n", total+i, i, i)
		}
		total += n
		if r := e.post(b.String()); r.status != 200 {
			t.Fatal(string(r.body))
		}
		cp := e.checkpoint()
		if cp.Size != uint64(total) {
			t.Fatalf("checkpoint size %d after %d events", cp.Size, total)
		}
		cps = append(cps, cp)
	}
	// Every event's inclusion proof, at every checkpoint that holds it.
	for _, cp := range cps {
		for seq := 0; seq < int(cp.Size); seq += 1 + seq/16 {
			r := e.do("GET", fmt.Sprintf("/api/v1/log/proof/inclusion?seq=%d&tree_size=%d", seq, cp.Size), e.owner, nil)
			var p struct {
				Seq      int64    `json:"seq"`
				TreeSize int64    `json:"tree_size"`
				LeafHash string   `json:"leaf_hash"`
				Proof    []string `json:"proof"`
			}
			if r.status != 200 || json.Unmarshal(r.body, &p) != nil || p.Seq != int64(seq) || p.TreeSize != int64(cp.Size) {
				t.Fatalf("inclusion %d/%d: %d %s", seq, cp.Size, r.status, r.body)
			}
			leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
			// The leaf is the hash of the event's envelope as served.
			ev := e.do("GET", fmt.Sprintf("/api/v1/events/p%d", seq), e.owner, nil)
			env := ev.body[:strings.Index(string(ev.body), `,"content":`)]
			if want := veritrail.LeafHash(append(env, '}')); string(want[:]) != string(leaf) {
				t.Fatalf("seq %d: leaf hash is not the envelope's", seq)
			}
			if err := tlog.VerifyInclusion(uint64(seq), cp.Size, leaf, decodeHashes(t, p.Proof), cp.Root); err != nil {
				t.Fatalf("inclusion %d/%d does not verify: %v", seq, cp.Size, err)
			}
		}
	}
	// Consistency between every pair of checkpoints.
	for i, a := range cps {
		for _, b := range cps[i:] {
			r := e.do("GET", fmt.Sprintf("/api/v1/log/proof/consistency?from=%d&to=%d", a.Size, b.Size), e.owner, nil)
			var p struct {
				From, To int64
				Proof    []string `json:"proof"`
			}
			if r.status != 200 || json.Unmarshal(r.body, &p) != nil {
				t.Fatalf("consistency %d→%d: %d %s", a.Size, b.Size, r.status, r.body)
			}
			if err := tlog.VerifyConsistency(a.Size, b.Size, decodeHashes(t, p.Proof), a.Root, b.Root); err != nil {
				t.Fatalf("consistency %d→%d does not verify: %v", a.Size, b.Size, err)
			}
		}
	}
	// An event with its proof, against a checkpoint in the answer.
	r := e.do("GET", "/api/v1/events/p100?proof=true", e.owner, nil)
	var ev struct {
		Seq   int64 `json:"seq"`
		Proof struct {
			TreeSize   uint64   `json:"tree_size"`
			LeafHash   string   `json:"leaf_hash"`
			Hashes     []string `json:"hashes"`
			Checkpoint string   `json:"checkpoint"`
		} `json:"proof"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &ev) != nil {
		t.Fatalf("event with proof: %d %s", r.status, r.body)
	}
	cp, err := tlog.OpenCheckpoint([]byte(ev.Proof.Checkpoint), e.vkey)
	if err != nil || cp.Size != ev.Proof.TreeSize {
		t.Fatalf("proof's checkpoint: %v", err)
	}
	leaf, _ := base64.StdEncoding.DecodeString(ev.Proof.LeafHash)
	if err := tlog.VerifyInclusion(uint64(ev.Seq), cp.Size, leaf, decodeHashes(t, ev.Proof.Hashes), cp.Root); err != nil {
		t.Fatalf("event proof does not verify: %v", err)
	}
	// The history holds every checkpoint, in order.
	r = e.do("GET", "/api/v1/log/checkpoints", e.owner, nil)
	var hist struct {
		Data []struct {
			Size       int64  `json:"size"`
			Checkpoint string `json:"checkpoint"`
		} `json:"data"`
	}
	json.Unmarshal(r.body, &hist)
	if len(hist.Data) < len(cps)+1 || hist.Data[0].Size != 0 {
		t.Fatalf("history: %s", r.body)
	}
	for _, bad := range []string{
		"/api/v1/log/proof/inclusion",
		"/api/v1/log/proof/inclusion?seq=-1",
		fmt.Sprintf("/api/v1/log/proof/inclusion?seq=1&tree_size=%d", total+100000),
		"/api/v1/log/proof/inclusion?seq=5&tree_size=5",
		"/api/v1/log/proof/consistency?from=10&to=5",
		"/api/v1/log/proof/consistency",
		"/api/v1/events/p1?proof=maybe",
	} {
		if r := e.do("GET", bad, e.owner, nil); r.status != 400 {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.do("GET", fmt.Sprintf("/api/v1/log/proof/inclusion?seq=%d", total+100000), e.owner, nil); r.status != 404 {
		t.Errorf("proof of an event not in the log: %d %s", r.status, r.body)
	}
	// An ingest-only token may not read the log.
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	if r := e.do("GET", "/api/v1/log/checkpoint", ingest, nil); r.status != 403 {
		t.Errorf("ingest token reads checkpoints: %d", r.status)
	}
}

// testWitness is a minimal C2SP tlog-witness: it checks the checkpoint's
// signature and the consistency proof from the size it cosigned last.
type testWitness struct {
	t    *testing.T
	vkey string
	mu   sync.Mutex
	size uint64
	root []byte
	down bool
	n    int
}

func (w *testWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.URL.Path != "/add-checkpoint" || r.Method != http.MethodPost {
		http.NotFound(rw, r)
		return
	}
	if w.down {
		http.Error(rw, "witness down", http.StatusServiceUnavailable)
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Scan()
	old, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "old "), 10, 64)
	if err != nil {
		http.Error(rw, "bad old line", http.StatusBadRequest)
		return
	}
	var proof [][]byte
	for sc.Scan() && sc.Text() != "" {
		h, _ := base64.StdEncoding.DecodeString(sc.Text())
		proof = append(proof, h)
	}
	var note strings.Builder
	for sc.Scan() {
		note.WriteString(sc.Text() + "\n")
	}
	cp, err := tlog.OpenCheckpoint([]byte(note.String()), w.vkey)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	if old != w.size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", w.size)
		return
	}
	if w.root != nil {
		if err := tlog.VerifyConsistency(old, cp.Size, proof, w.root, cp.Root); err != nil {
			http.Error(rw, "inconsistent: "+err.Error(), http.StatusUnprocessableEntity)
			return
		}
	}
	w.size, w.root = cp.Size, cp.Root
	w.n++
	fmt.Fprintf(rw, "— witness.test %s\n", base64.StdEncoding.EncodeToString([]byte("cosignature")))
}

func TestWitnessing(t *testing.T) {
	w := &testWitness{t: t}
	ws := httptest.NewServer(w)
	defer ws.Close()
	e := newLogEnv(t, ws.URL)
	w.mu.Lock()
	w.vkey = e.vkey
	w.mu.Unlock()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	witnessed := func() uint64 { w.mu.Lock(); defer w.mu.Unlock(); return w.size }
	e.post(`{"type":"auth.login","actor":{"type":"user","id":"u"}}`)
	waitFor("the first checkpoint at the witness", func() bool { return witnessed() == 1 })

	// The witness goes down: failures are recorded, nothing is lost.
	w.mu.Lock()
	w.down = true
	w.mu.Unlock()
	for i := 0; i < 3; i++ {
		e.post(fmt.Sprintf(`{"type":"auth.login","actor":{"type":"user","id":"u%d"}}`, i))
		time.Sleep(80 * time.Millisecond)
	}
	waitFor("a recorded witness failure", func() bool {
		as, _ := e.store.WitnessLog(context.Background(), e.org.ID, 10)
		return len(as) > 0 && !as[0].OK && strings.Contains(as[0].Detail, "503")
	})
	r := e.do("GET", "/api/v1/log/witnesses", e.owner, nil)
	if !strings.Contains(string(r.body), `"ok":false`) {
		t.Fatalf("witness failures not shown: %s", r.body)
	}
	// Back up: the witness catches up to the latest checkpoint, through a
	// consistency proof from what it saw last.
	w.mu.Lock()
	w.down = false
	w.mu.Unlock()
	waitFor("the witness to catch up", func() bool { return witnessed() == 4 })
	waitFor("a recorded success", func() bool {
		as, _ := e.store.WitnessLog(context.Background(), e.org.ID, 1)
		return len(as) == 1 && as[0].OK
	})
	// A witness that lost its state (409 with its size) is brought back
	// from there.
	w.mu.Lock()
	w.size, w.root = 0, nil
	w.mu.Unlock()
	e.post(`{"type":"auth.logout","actor":{"type":"user","id":"u"}}`)
	waitFor("the witness to resync", func() bool { return witnessed() == 5 })
	if got := metricLine(e.do("GET", "/metrics", "", nil).body, `veritrail_witness_requests_total{result="failed"`); got == "" {
		t.Fatal("no failed witness requests in the metrics")
	}
}

func metricLine(body []byte, prefix string) string {
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, strings.TrimPrefix(prefix, "veritrail_witness_requests_total")) && strings.HasPrefix(l, "veritrail_witness_requests_total") {
			return l
		}
	}
	return ""
}
