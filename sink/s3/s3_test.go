package s3_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/s3"
	"github.com/veritrail/veritrail/sink/sinktest"
	"github.com/veritrail/veritrail/sqlite"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

// server is Veritrail's side: a SQLite store and the forwarding engine,
// which a test can stop and start again on the same data.
type server struct {
	t     *testing.T
	dir   string
	key   *seal.Key
	store *sqlite.Store
	eng   *sink.Engine
	org   *veritrail.Org
	stop  func()
}

func newServer(t *testing.T) *server {
	s := &server{t: t, dir: t.TempDir()}
	s.key, _ = seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	s.start()
	var err error
	if s.org, err = s.store.CreateOrg(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.shutdown)
	return s
}

func (s *server) start() {
	var err error
	if s.store, err = sqlite.Open(context.Background(), s.dir, sqlite.Options{}); err != nil {
		s.t.Fatal(err)
	}
	if s.eng, err = sink.New(sink.Options{Outbound: loopbackOK, Store: s.store, Key: s.key, Types: map[string]sink.Factory{sink.S3: s3.New},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 5 * time.Millisecond, RefreshInterval: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, SendTimeout: 2 * time.Minute}); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.eng.Run(ctx) }()
	s.stop = func() { cancel(); <-done }
}

func (s *server) shutdown() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
		s.store.Close()
	}
}

func (s *server) createSink(body string) *veritrail.Sink {
	s.t.Helper()
	k, err := s.eng.Create(context.Background(), s.org.ID, []byte(body), true)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.store.CreateSink(context.Background(), k); err != nil {
		s.t.Fatal(err)
	}
	s.eng.Wake()
	return k
}

var types = []string{"auth.login", "agent.tool_call", "user.created", "team.member_added", "role.granted", "audit.token_created", "ai.interaction"}

// appendEvents appends n events of every OCSF class, some a day apart so
// that they land in other partitions.
func (s *server) appendEvents(n int) {
	s.t.Helper()
	now := time.Now().UTC()
	var batch []*veritrail.Event
	for i := range n {
		at := now.Add(-time.Duration(i%3) * 24 * time.Hour)
		batch = append(batch, &veritrail.Event{ID: veritrail.NewEventID(now), Time: at, Type: types[i%len(types)],
			Actor: veritrail.Actor{Type: "user", ID: fmt.Sprintf("u%d", i%5), Email: "dana@acme.example"}, Outcome: "success",
			Content: []byte(fmt.Sprintf(`{"n":%d,"prompt":"<b>é</b>"}`, i))})
	}
	if _, err := s.store.Append(context.Background(), s.org.ID, batch); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) head() int64 {
	h, _, err := s.store.LogHead(context.Background(), s.org.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	return h
}

func (s *server) sink(id string) *veritrail.Sink {
	k, err := s.store.SinkByID(context.Background(), s.org.ID, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

// waitFor polls cond until it holds (a generous bound: a batch here is up
// to 18 objects, slow to encode under the race detector; nothing is timed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// object is one data object read back with its manifest.
type object struct {
	key      string
	body     []byte
	manifest s3.Manifest
}

// readBack lists every object under prefix and pairs it with its
// manifest, checking the digest and the count.
func readBack(t *testing.T, cl *awss3.Client, bucket, prefix string) []object {
	t.Helper()
	ctx := context.Background()
	get := func(key string) []byte {
		out, err := cl.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	var keys []string
	p := awss3.NewListObjectsV2Paginator(cl, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	var objs []object
	manifests := 0
	for _, k := range keys {
		if strings.HasSuffix(k, ".manifest.json") {
			manifests++
			continue
		}
		o := object{key: k, body: get(k)}
		if err := json.Unmarshal(get(s3.ManifestKey(k)), &o.manifest); err != nil {
			t.Fatalf("manifest of %s: %v", k, err)
		}
		sum := sha256.Sum256(o.body)
		if m := o.manifest; m.Object != k || m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != len(o.body) || m.Organization != "acme" {
			t.Fatalf("%s: manifest %+v does not describe it", k, m)
		}
		objs = append(objs, o)
	}
	if manifests != len(objs) {
		t.Fatalf("%d manifests for %d objects", manifests, len(objs))
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].manifest.FirstSeq < objs[j].manifest.FirstSeq })
	return objs
}

// seqsOf checks that the objects' records are in seq order within each
// object, match their manifests, and returns every seq delivered (a seq
// sent twice, in a batch re-sent with other boundaries, counted once).
func seqsOf(t *testing.T, objs []object, records func(o object) []int64) []int64 {
	t.Helper()
	seen := map[int64]bool{}
	for _, o := range objs {
		seqs := records(o)
		if len(seqs) != o.manifest.Count || seqs[0] != o.manifest.FirstSeq || seqs[len(seqs)-1] != o.manifest.LastSeq {
			t.Fatalf("%s: seqs %v… do not match its manifest %+v", o.key, seqs[:min(5, len(seqs))], o.manifest)
		}
		if !slices.IsSorted(seqs) {
			t.Fatalf("%s: records out of seq order", o.key)
		}
		for _, s := range seqs {
			seen[s] = true
		}
	}
	var all []int64
	for s := range seen {
		all = append(all, s)
	}
	slices.Sort(all)
	return all
}

func nativeSeqs(t *testing.T) func(o object) []int64 {
	return func(o object) []int64 {
		zr, err := gzip.NewReader(bytes.NewReader(o.body))
		if err != nil {
			t.Fatalf("%s: %v", o.key, err)
		}
		var seqs []int64
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				Seq     int64           `json:"seq"`
				Content json.RawMessage `json:"content"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev.Content) == 0 {
				t.Fatalf("%s: line %q: %v", o.key, sc.Text(), err)
			}
			seqs = append(seqs, ev.Seq)
		}
		return seqs
	}
}

func lakeSeqs(t *testing.T) func(o object) []int64 {
	return func(o object) []int64 {
		rows, _ := readParquet(t, o.body)
		var seqs []int64
		for _, r := range rows {
			if c := jsonValue(t, r["class_uid"]).(json.Number).String(); c != fmt.Sprint(o.manifest.OCSFClassUID) {
				t.Fatalf("%s: a row of class %s in an object of class %d", o.key, c, o.manifest.OCSFClassUID)
			}
			n, _ := jsonValue(t, r["metadata"].(map[string]any)["sequence"]).(json.Number).Int64()
			seqs = append(seqs, n)
		}
		return seqs
	}
}

// TestCompleteAfterOutageAndRestart delivers to a real S3-compatible
// server through an outage of it and a restart of Veritrail, and reads
// every object back: nothing missing, each object in seq order and as its
// manifest says.
func TestCompleteAfterOutageAndRestart(t *testing.T) {
	w := startWeed(t, "veritrail-lake")
	s := newServer(t)
	common := fmt.Sprintf(`"bucket":%q,"endpoint":%q,"access_key_id":%q,"secret":%q,"content":true,"batch":{"max_events":40,"max_wait":"20ms"}`,
		w.Bucket, w.Endpoint, w.AccessKey, w.SecretKey)
	hive := s.createSink(`{"type":"s3","name":"archive","prefix":"audit/",` + common + `}`)
	lake := s.createSink(`{"type":"s3","name":"lake","format":"ocsf","layout":"security_lake","region":"eu-west-1","account_id":"123456789012",` + common + `}`)
	for _, k := range []*veritrail.Sink{hive, lake} {
		if bytes.Contains(k.Config, []byte(w.SecretKey)) {
			t.Fatal("the secret access key is stored in the clear")
		}
	}
	caughtUp := func() bool {
		h := s.head()
		return s.sink(hive.ID).Delivered == h-1 && s.sink(lake.ID).Delivered == h-1
	}

	s.appendEvents(150)
	waitFor(t, "the first events delivered", caughtUp)

	// The destination goes away; events keep coming.
	w.Stop()
	s.appendEvents(130)
	waitFor(t, "the sinks to see the outage", func() bool {
		return s.sink(hive.ID).Failures > 0 && s.sink(lake.ID).Failures > 0
	})
	// Veritrail restarts during the outage, and more events arrive.
	s.shutdown()
	s.start()
	s.appendEvents(60)
	// The destination comes back: the sinks catch up from their cursors.
	w.Start()
	waitFor(t, "the sinks to catch up", caughtUp)
	for _, k := range []*veritrail.Sink{hive, lake} {
		if got := s.sink(k.ID); got.Paused {
			t.Fatalf("%s paused: %s", k.Name, got.PausedReason)
		}
	}
	// Veritrail restarts again, with nothing pending: nothing changes.
	s.shutdown()
	s.start()

	head := s.head()
	want := make([]int64, head)
	for i := range want {
		want[i] = int64(i)
	}
	cl := w.Client()
	nat := readBack(t, cl, w.Bucket, "audit/")
	if got := seqsOf(t, nat, nativeSeqs(t)); !slices.Equal(got, want) {
		t.Fatalf("NDJSON objects hold %d of the %d events", len(got), head)
	}
	for _, o := range nat {
		if !strings.HasPrefix(o.key, "audit/org=acme/date=") || !strings.Contains(o.key, "/hour=") || o.manifest.Encoding != "ndjson.gz" {
			t.Fatalf("NDJSON object %s (%+v)", o.key, o.manifest)
		}
	}
	sl := readBack(t, cl, w.Bucket, "ext/")
	if got := seqsOf(t, sl, lakeSeqs(t)); !slices.Equal(got, want) {
		t.Fatalf("Security Lake objects hold %d of the %d events", len(got), head)
	}
	days := map[string]bool{}
	for _, o := range sl {
		m := o.manifest
		prefix := fmt.Sprintf("ext/veritrail-%d/region=eu-west-1/accountId=123456789012/eventDay=", m.OCSFClassUID)
		if !strings.HasPrefix(o.key, prefix) || !strings.HasSuffix(o.key, ".parquet") {
			t.Fatalf("Security Lake object %s (class %d)", o.key, m.OCSFClassUID)
		}
		days[strings.Split(strings.TrimPrefix(o.key, prefix), "/")[0]] = true
	}
	if len(days) != 3 {
		t.Fatalf("event days %v, want 3 partitions", days)
	}
	t.Logf("%d events: %d NDJSON.gz objects, %d Parquet objects", head, len(nat), len(sl))
}

// TestRefusalsArePermanent: a wrong secret or a missing bucket is not
// retried as is (the sink pauses for an administrator); an unreachable
// server is.
func TestRefusalsArePermanent(t *testing.T) {
	w := startWeed(t, "veritrail-refusals")
	b := sinktest.Batch(t, sink.FormatNative, false)
	send := func(c *sink.Config, secret string) error {
		d, err := s3.New(&sink.Settings{Outbound: loopbackOK, SinkID: "snk_t", Config: c, Secret: []byte(secret)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return d.Send(ctx, b)
	}
	cfg := func(bucket, endpoint string) *sink.Config {
		return &sink.Config{Format: sink.FormatNative, Layout: sink.LayoutHive, Bucket: bucket, Endpoint: endpoint, Region: "us-east-1", AccessKeyID: w.AccessKey}
	}
	if err := send(cfg(w.Bucket, w.Endpoint), w.SecretKey); err != nil {
		t.Fatal(err)
	}
	if err := send(cfg(w.Bucket, w.Endpoint), "wrong"); err == nil || !sink.IsPermanent(err) {
		t.Fatalf("wrong secret: %v, want a permanent error", err)
	}
	if err := send(cfg("no-such-bucket", w.Endpoint), w.SecretKey); err == nil || !sink.IsPermanent(err) {
		t.Fatalf("missing bucket: %v, want a permanent error", err)
	}
	w.Stop()
	if err := send(cfg(w.Bucket, w.Endpoint), w.SecretKey); err == nil || sink.IsPermanent(err) {
		t.Fatalf("server down: %v, want an error to retry", err)
	}
}
