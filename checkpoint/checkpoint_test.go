package checkpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
)

const prefix = "audit.acme.example"

var signedAt = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// recorder records the checkpointer's outcomes (its metrics).
type recorder struct {
	mu                        sync.Mutex
	signed, refused           int
	witnessedOK, witnessedBad int
	witnessRefused            int
}

func (r *recorder) CheckpointSigned(int64, int64) { r.mu.Lock(); r.signed++; r.mu.Unlock() }
func (r *recorder) CheckpointRefused(int64)       { r.mu.Lock(); r.refused++; r.mu.Unlock() }
func (r *recorder) WitnessRefused(string)         { r.mu.Lock(); r.witnessRefused++; r.mu.Unlock() }
func (r *recorder) Witnessed(_ string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.witnessedOK++
	} else {
		r.witnessedBad++
	}
}

func (r *recorder) signs() (signed, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.signed, r.refused
}

func (r *recorder) witnessed() (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.witnessedOK, r.witnessedBad
}

// installation is a SQLite store with one organization and a
// checkpointer on it.
type installation struct {
	t     *testing.T
	store *sqlite.Store
	org   *veritrail.Org
	cp    *Checkpointer
	obs   *recorder
	n     int // events appended
}

func newInstallation(t *testing.T, key *tlog.Key, witnesses ...string) *installation {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	org, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	obs := &recorder{}
	c, err := New(ctx, Config{Store: s, Key: key, OriginPrefix: prefix, Observer: obs, Witnesses: witnesses,
		Client: netguard.Guard{AllowLoopback: true}.Client(10 * time.Second), Now: func() time.Time { return signedAt }})
	if err != nil {
		t.Fatal(err)
	}
	return &installation{t: t, store: s, org: org, cp: c, obs: obs}
}

// grow appends n events (ids from idPrefix, so that two installations
// hold different logs).
func (in *installation) grow(idPrefix string, n int) {
	in.t.Helper()
	evs := make([]*veritrail.Event, n)
	for i := range evs {
		evs[i] = &veritrail.Event{ID: fmt.Sprintf("%s-%d", idPrefix, in.n), Type: "auth.login",
			Time: signedAt.Add(time.Duration(in.n) * time.Second), Actor: veritrail.Actor{Type: "user", ID: "u1"}}
		in.n++
	}
	if _, err := in.store.Append(context.Background(), in.org.ID, evs); err != nil {
		in.t.Fatal(err)
	}
}

func (in *installation) sign() *veritrail.Checkpoint {
	in.t.Helper()
	cp, err := in.cp.Sign(context.Background(), in.org)
	if err != nil {
		in.t.Fatalf("Sign: %v", err)
	}
	return cp
}

func (in *installation) history() []int64 {
	in.t.Helper()
	cps, err := in.store.Checkpoints(context.Background(), in.org.ID, 0, 100)
	if err != nil {
		in.t.Fatal(err)
	}
	sizes := make([]int64, len(cps))
	for i, cp := range cps {
		sizes[i] = cp.Size
	}
	return sizes
}

func newKey(t *testing.T) *tlog.Key {
	k, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignGrowingLog(t *testing.T) {
	ctx := context.Background()
	in := newInstallation(t, newKey(t))
	if cp := in.sign(); cp.Size != 0 || !bytes.Equal(cp.Root, tlog.EmptyRoot()) {
		t.Fatalf("checkpoint of the empty log: size %d root %x", cp.Size, cp.Root)
	}
	// Sizes across the first tile's edge (256 leaves) and beyond.
	for _, grow := range []int{5, 251, 1, 300} {
		in.grow("a", grow)
		cp := in.sign()
		size, root, err := in.store.LogHead(ctx, in.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != size || !bytes.Equal(cp.Root, root) || !cp.SignedAt.Equal(signedAt) {
			t.Fatalf("signed size %d root %x at %v, log head is %d %x", cp.Size, cp.Root, cp.SignedAt, size, root)
		}
		latest, err := in.store.LatestCheckpoint(ctx, in.org.ID)
		if err != nil || latest.Size != size || !bytes.Equal(latest.Note, cp.Note) {
			t.Fatalf("the store's latest checkpoint is not the one signed: %+v %v", latest, err)
		}
	}
	// A log that did not grow gets its latest checkpoint again, unsigned anew.
	again := in.sign()
	if again.Size != 557 {
		t.Fatalf("size %d after no growth, want 557", again.Size)
	}
	if got := fmt.Sprint(in.history()); got != "[0 5 256 257 557]" {
		t.Errorf("checkpoint history %s, want [0 5 256 257 557]", got)
	}
	if signed, refused := in.obs.signs(); signed != 5 || refused != 0 {
		t.Errorf("observer saw %d signed, %d refused; want 5 and 0", signed, refused)
	}

	// Covering signs when the latest checkpoint does not hold the event yet.
	if cp, err := in.cp.Covering(ctx, in.org, 556); err != nil || cp.Size != 557 {
		t.Fatalf("Covering(556): %+v %v", cp, err)
	}
	if _, err := in.cp.Covering(ctx, in.org, 557); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("Covering an event not in the log: %v, want not_found", err)
	}
	in.grow("a", 1)
	if cp, err := in.cp.Covering(ctx, in.org, 557); err != nil || cp.Size != 558 {
		t.Fatalf("Covering(557) after it was appended: %+v %v", cp, err)
	}
}

// TestSignedNoteForm checks a checkpoint against C2SP tlog-checkpoint and
// signed-note with x/mod's note package, not the code that signed it.
func TestSignedNoteForm(t *testing.T) {
	key := newKey(t)
	in := newInstallation(t, key)
	in.grow("a", 300)
	cp := in.sign()

	origin := in.cp.Origin(in.org)
	if origin != prefix+"/acme" {
		t.Fatalf("origin %q, want %s/acme", origin, prefix)
	}
	vkey, err := in.cp.VerifierKey(in.org)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("verifier key %q: %v", vkey, err)
	}
	if v.Name() != origin {
		t.Errorf("verifier key named %q, want the origin %q", v.Name(), origin)
	}
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil {
		t.Fatalf("the note does not verify with the organization's verifier key: %v\n%s", err, cp.Note)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != origin {
		t.Errorf("signatures %+v, want one by %s", n.Sigs, origin)
	}
	// The body: origin, decimal size, base64 root, each on its own line,
	// nothing else (no extension lines).
	want := fmt.Sprintf("%s\n%d\n%s\n", origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root))
	if n.Text != want {
		t.Errorf("checkpoint body\n%q\nwant\n%q", n.Text, want)
	}
	lines := strings.Split(n.Text, "\n")
	if size, err := strconv.ParseUint(lines[1], 10, 64); err != nil || size != 300 || len(cp.Root) != 32 {
		t.Errorf("size line %q, root of %d bytes", lines[1], len(cp.Root))
	}

	// The same key under another organization's origin does not verify it,
	// nor does the right key once the body changed.
	other, err := key.VerifierKey(prefix + "/globex")
	if err != nil {
		t.Fatal(err)
	}
	ov, _ := note.NewVerifier(other)
	if _, err := note.Open(cp.Note, note.VerifierList(ov)); err == nil {
		t.Error("another organization's verifier key verified the note")
	}
	forged := bytes.Replace(cp.Note, []byte("\n300\n"), []byte("\n299\n"), 1)
	if _, err := note.Open(forged, note.VerifierList(v)); err == nil {
		t.Error("a note with its size changed still verifies")
	}
}

// TestSignRefuses plants in an honest store's checkpoint history a genuine
// checkpoint (same key, same origin) of another log: the state a rolled
// back or rewritten log leaves behind. The checkpointer must refuse to sign
// whatever the log does next, and must add nothing to the history.
func TestSignRefuses(t *testing.T) {
	key := newKey(t)
	for _, tc := range []struct {
		name          string
		honest, other int    // events of the log, and of the log the planted checkpoint signed
		grow          int    // events appended after planting, before signing again
		want          string // what the refusal must say
	}{
		{"log shrank", 3, 5, 0, "shrank from 5 (signed) to 3"},
		{"log shrank, grew again but not to the signed size", 3, 5, 1, "shrank from 5 (signed) to 4"},
		{"same size, another root", 5, 5, 0, "at size 5 has another root than its checkpoint"},
		{"larger tree that does not extend the signed one", 5, 3, 0, "at size 5 is not consistent with its checkpoint at size 3"},
		{"grown past the signed size on another history", 3, 5, 300, "at size 303 is not consistent with its checkpoint at size 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			other := newInstallation(t, key)
			other.grow("other", tc.other)
			planted := other.sign()

			in := newInstallation(t, key)
			in.grow("honest", tc.honest)
			if err := in.store.AddCheckpoint(ctx, in.org.ID, planted); err != nil {
				t.Fatal(err)
			}
			in.grow("honest", tc.grow)
			for round := range 2 { // and again: a refusal is not a one-off
				cp, err := in.cp.Sign(ctx, in.org)
				if err == nil {
					t.Fatalf("round %d: signed size %d over a checkpoint of another log at size %d", round, cp.Size, planted.Size)
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refusing to sign") {
					t.Errorf("round %d: refusal %q does not say %q", round, err, tc.want)
				}
			}
			if got := fmt.Sprint(in.history()); got != fmt.Sprint([]int64{planted.Size}) {
				t.Errorf("history after refusals: %s, want only the planted %d", got, planted.Size)
			}
			if signed, refused := in.obs.signs(); signed != 0 || refused != 2 {
				t.Errorf("observer saw %d signed, %d refused; want 0 and 2", signed, refused)
			}
			if int64(in.n) > planted.Size {
				if cp, err := in.cp.Covering(ctx, in.org, int64(in.n-1)); err == nil {
					t.Errorf("Covering(%d) answered a checkpoint of size %d", in.n-1, cp.Size)
				}
			}
		})
	}
}
