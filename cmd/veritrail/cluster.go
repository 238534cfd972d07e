package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/tlog"
)

// Several nodes on one PostgreSQL database share one log identity and run
// background work once: the signing key and the link key are kept in the
// database sealed with the master key (the same VERITRAIL_MASTER_KEY_FILE
// on every node), and leases in the database pick the node that signs
// checkpoints, applies retention or delivers a sink.

// nodeID names this process in leases.
var nodeID = func() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}()

// leaseTTL is how long a lease lasts without renewal: a dead node's work
// moves to another within this.
const leaseTTL = 10 * time.Second

// leader returns a function that reports whether this node may run the
// background work called name now: always with a single-node store.
func leader(store veritrail.Store, name string, ttl time.Duration, log *slog.Logger) func(context.Context) bool {
	l, ok := store.(veritrail.Leaser)
	if !ok {
		return func(context.Context) bool { return true }
	}
	held := false
	return func(ctx context.Context) bool {
		ok, err := l.Lease(ctx, name, nodeID, ttl)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("lease not renewed; leaving the work to other nodes", slog.String("lease", name), slog.Any("err", err))
			}
			ok = false
		}
		if ok != held {
			held = ok
			log.Info("lease", slog.String("lease", name), slog.Bool("held", ok))
		}
		return ok
	}
}

// leases returns the "may this node do it now" decision of work split in
// many named leases (a sink, an organization's rules) on a store shared by
// several nodes, and nil on a store one process owns. A held lease is
// renewed at a third of its life, not at every call, to spare the
// database; what names the work is in log lines.
func leases(store veritrail.Store, what string, log *slog.Logger) func(ctx context.Context, name string) bool {
	l, ok := store.(veritrail.Leaser)
	if !ok {
		return nil
	}
	var mu sync.Mutex
	renewed := map[string]time.Time{} // lease → when last renewed, while held
	return func(ctx context.Context, name string) bool {
		mu.Lock()
		at, held := renewed[name]
		mu.Unlock()
		if held && time.Since(at) < leaseTTL/3 {
			return true
		}
		ok, err := l.Lease(ctx, name, nodeID, leaseTTL)
		if err != nil && ctx.Err() == nil {
			log.Warn(what+" lease not renewed; leaving the work to other nodes", slog.String("lease", name), slog.Any("err", err))
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !ok {
			delete(renewed, name)
			return false
		}
		renewed[name] = time.Now()
		return true
	}
}

// masterKey loads the master key: the file VERITRAIL_MASTER_KEY_FILE
// names, else <data>/master-key (created on first start).
func masterKey(dataDir string, keys keyFiles) (*seal.Key, error) {
	if keys.master != "" {
		return seal.Load(keys.master)
	}
	return seal.LoadOrCreate(filepath.Join(dataDir, "master-key"))
}

// sharedSecret returns the secret called name that every node of the
// store shares, creating it (with generate) if no node has yet. The first
// node's value wins; it is kept sealed, so the database alone does not
// give it away.
func sharedSecret(ctx context.Context, store veritrail.Store, master *seal.Key, name string, generate func() ([]byte, error)) ([]byte, error) {
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	sctx := "veritrail/shared/" + name
	stored, err := store.Setting(ctx, "sealed_"+name, master.Seal(fresh, sctx))
	if err != nil {
		return nil, err
	}
	b, err := master.Open(stored, sctx)
	if err != nil {
		return nil, fmt.Errorf("the %s another node stored cannot be opened with this node's master key: give every node the same VERITRAIL_MASTER_KEY_FILE (%w)", name, err)
	}
	return b, nil
}

// sharedStore reports whether the store may be shared by several nodes.
func sharedStore(store veritrail.Store) bool {
	_, ok := store.(veritrail.Leaser)
	return ok
}

// clusterSigningKey returns the log's signing key for a shared store: the
// key file if VERITRAIL_SIGNING_KEY_FILE names one (give it to every
// node), else the key kept sealed in the database.
func clusterSigningKey(ctx context.Context, store veritrail.Store, dataDir string, keys keyFiles) (*tlog.Key, error) {
	if keys.signing != "" {
		return loadSigningKeyFile(dataDir, keys.signing, false)
	}
	master, err := masterKey(dataDir, keys)
	if err != nil {
		return nil, err
	}
	b, err := sharedSecret(ctx, store, master, "signing_key", func() ([]byte, error) {
		k, err := tlog.GenerateKey()
		if err != nil {
			return nil, err
		}
		return []byte(k.Encode()), nil
	})
	if err != nil {
		return nil, err
	}
	return tlog.ParseKey(string(b))
}

// clusterLinkKey returns the key of export download links for a shared
// store, so a link made by one node works on every node: the key given
// (VERITRAIL_LINK_KEY, the same on every node), else one kept sealed in the
// database.
func clusterLinkKey(ctx context.Context, store veritrail.Store, dataDir string, keys keyFiles, given string) ([]byte, error) {
	if given != "" {
		return []byte(given), nil
	}
	master, err := masterKey(dataDir, keys)
	if err != nil {
		return nil, err
	}
	b, err := sharedSecret(ctx, store, master, "link_key", func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return []byte(hex.EncodeToString(k)), err
	})
	return b, err
}
