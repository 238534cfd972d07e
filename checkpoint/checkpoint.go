// Package checkpoint signs organizations' logs: at least every second while
// a log grows it checks that the new tree is consistent with the last
// signed checkpoint, signs a C2SP tlog-checkpoint, appends it to the
// store's checkpoint history, and hands it to the configured witnesses so
// that a copy lives outside the operator's reach.
package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/tlog"
)

// Observer receives signing and witnessing outcomes (metrics).
type Observer interface {
	CheckpointSigned(org int64, size int64)
	CheckpointRefused(org int64)
	Witnessed(url string, ok bool)
	// WitnessRefused counts a refusal only a fork or a rollback explains.
	WitnessRefused(url string)
}

type nopObserver struct{}

func (nopObserver) CheckpointSigned(int64, int64) {}
func (nopObserver) CheckpointRefused(int64)       {}
func (nopObserver) Witnessed(string, bool)        {}
func (nopObserver) WitnessRefused(string)         {}

// Config configures a Checkpointer.
type Config struct {
	Store veritrail.Store
	Key   *tlog.Key
	// OriginPrefix names this installation's logs: an organization's log
	// origin is OriginPrefix/<organization name>. It is fixed on first
	// start (kept in the store); empty: veritrail-<random>.
	OriginPrefix string
	// Interval between signing rounds; default one second.
	Interval time.Duration
	// Witnesses are base URLs of C2SP tlog-witness services that receive
	// every organization's checkpoints; their answers are not kept.
	// Organizations name the witnesses whose cosignatures count in their
	// settings (witnessing).
	Witnesses []string
	// WitnessRefresh is how often the latest checkpoint is offered again
	// to witnesses while the log does not grow; default five minutes.
	WitnessRefresh time.Duration
	// Client reaches witnesses; default: one refusing loopback and
	// metadata addresses (netguard).
	Client   *http.Client
	Logger   *slog.Logger
	Observer Observer
	Now      func() time.Time
	// Lead, when set, is asked before each signing round: with several
	// nodes on one store, only the node holding the lease signs (Sign
	// itself stays available to every node, and is safe: the store keeps
	// checkpoints consistent, and Ed25519 signs the same head the same).
	Lead func(ctx context.Context) bool
}

// Checkpointer signs checkpoints. It is safe for concurrent use.
type Checkpointer struct {
	cfg    Config
	store  veritrail.Store
	key    *tlog.Key
	log    *slog.Logger
	obs    Observer
	prefix string

	mu sync.Mutex // one signing at a time

	wit *witnesses
}

// New returns a checkpointer; it fixes the origin prefix in the store.
func New(ctx context.Context, cfg Config) (*Checkpointer, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Client == nil {
		cfg.Client = netguard.Guard{}.Client(10 * time.Second)
	}
	if cfg.WitnessRefresh <= 0 {
		cfg.WitnessRefresh = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := cfg.OriginPrefix
	if def == "" {
		var b [4]byte
		rand.Read(b[:])
		def = "veritrail-" + hex.EncodeToString(b[:])
	}
	if !tlog.ValidOrigin(def + "/x") {
		return nil, fmt.Errorf("log origin prefix %q: use a host-like name without spaces or '+', e.g. audit.example.com", def)
	}
	prefix, err := cfg.Store.Setting(ctx, "log_origin_prefix", def)
	if err != nil {
		return nil, fmt.Errorf("log origin prefix: %w", err)
	}
	if cfg.OriginPrefix != "" && prefix != cfg.OriginPrefix {
		cfg.Logger.Warn("the log origin prefix is fixed when the store is created; keeping it",
			slog.String("stored", prefix), slog.String("configured", cfg.OriginPrefix))
	}
	c := &Checkpointer{cfg: cfg, store: cfg.Store, key: cfg.Key, log: cfg.Logger, obs: cfg.Observer,
		prefix: prefix}
	c.wit = newWitnesses(c, cfg.Witnesses)
	return c, nil
}

// Origin returns the log origin of an organization.
func (c *Checkpointer) Origin(org *veritrail.Org) string { return c.prefix + "/" + org.Name }

// VerifierKey returns the signed-note verifier key of an organization's log.
func (c *Checkpointer) VerifierKey(org *veritrail.Org) (string, error) {
	return c.key.VerifierKey(c.Origin(org))
}

// Run signs every organization's grown logs at least every Interval until
// ctx ends, then waits for witness deliveries in flight.
func (c *Checkpointer) Run(ctx context.Context) {
	c.wit.start(ctx)
	defer c.wit.wait()
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		if c.cfg.Lead == nil || c.cfg.Lead(ctx) {
			c.round(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *Checkpointer) round(ctx context.Context) {
	orgs, err := c.store.ListOrgs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("checkpoint round: list organizations", slog.Any("err", err))
		}
		return
	}
	for _, org := range orgs {
		cp, err := c.Sign(ctx, org)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("checkpoint not signed", slog.String("org", org.Name), slog.Any("err", err))
			}
			continue
		}
		if c.wit.stale(org.ID) {
			c.wit.offer(ctx, org, cp, true)
		}
	}
}

// Sign returns the latest checkpoint of org's log, signing a new one first
// if the log grew (or has none). A new checkpoint is signed only if the
// tree is consistent with the previous checkpoint; a log that shrank, or
// has another root at the signed size, gets an error, not the old
// checkpoint.
func (c *Checkpointer) Sign(ctx context.Context, org *veritrail.Org) (*veritrail.Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size, root, err := c.store.LogHead(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	latest, err := c.store.LatestCheckpoint(ctx, org.ID)
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, err
	}
	if latest != nil {
		if latest.Size == size {
			if !bytes.Equal(latest.Root, root) {
				c.obs.CheckpointRefused(org.ID)
				return nil, fmt.Errorf("log of %s at size %d has another root than its checkpoint at that size: refusing to sign", org.Name, size)
			}
			return latest, nil
		}
		if latest.Size > size {
			c.obs.CheckpointRefused(org.ID)
			return nil, fmt.Errorf("log of %s shrank from %d (signed) to %d: refusing to sign", org.Name, latest.Size, size)
		}
		p, err := tlog.ConsistencyProof(ctx, TileReader(c.store, org.ID), uint64(latest.Size), uint64(size))
		if err == nil {
			err = tlog.VerifyConsistency(uint64(latest.Size), uint64(size), p, latest.Root, root)
		}
		if err != nil {
			c.obs.CheckpointRefused(org.ID)
			return nil, fmt.Errorf("log of %s at size %d is not consistent with its checkpoint at size %d: refusing to sign: %w",
				org.Name, size, latest.Size, err)
		}
	}
	note, err := c.key.SignCheckpoint(c.Origin(org), uint64(size), root)
	if err != nil {
		return nil, err
	}
	cp := &veritrail.Checkpoint{Size: size, Root: root, Note: note, SignedAt: c.cfg.Now().UTC()}
	if err := c.store.AddCheckpoint(ctx, org.ID, cp); err != nil {
		return nil, err
	}
	c.obs.CheckpointSigned(org.ID, size)
	c.wit.offer(ctx, org, cp, false)
	return cp, nil
}

// Covering returns a checkpoint whose size exceeds seq, signing one now if
// the latest does not cover it yet.
func (c *Checkpointer) Covering(ctx context.Context, org *veritrail.Org, seq int64) (*veritrail.Checkpoint, error) {
	cp, err := c.store.LatestCheckpoint(ctx, org.ID)
	if err == nil && cp.Size > seq {
		return cp, nil
	}
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, err
	}
	cp, err = c.Sign(ctx, org)
	if err != nil {
		return nil, err
	}
	if cp.Size <= seq {
		return nil, veritrail.Errorf(veritrail.ENotFound, "event %d is not in the log yet", seq)
	}
	return cp, nil
}

// TileReader adapts a store to tlog's proof functions.
func TileReader(s veritrail.LogStore, org int64) tlog.TileReader {
	return func(ctx context.Context, id tlog.TileID) ([]byte, error) {
		return s.ReadTile(ctx, org, id.Level, id.Index)
	}
}
