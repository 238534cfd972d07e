package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// runKey prints the verifier key of an organization's log: what an auditor
// needs to check its checkpoints offline.
func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c keyConfig
	if err := c.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	store, err := c.store.openAdmin(ctx, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	key, err := signingKey(ctx, store, c.store.data, c.keys, false)
	if err != nil {
		return err
	}
	org, err := store.OrgByName(ctx, c.org)
	if err != nil {
		return fmt.Errorf("%w (list them with `veritrail org list`)", err)
	}
	prefix, err := store.Setting(ctx, "log_origin_prefix", "")
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return errors.New("this store has signed no checkpoint yet: start `veritrail serve` once")
	}
	if err != nil {
		return err
	}
	vkey, err := key.VerifierKey(prefix + "/" + org.Name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, vkey)
	return nil
}

// signingKey returns the log signing key of the store: the one every node
// of a shared store uses, else the data directory's (created when create is
// set and there is none).
func signingKey(ctx context.Context, store veritrail.Store, dataDir string, keys keyFiles, create bool) (*tlog.Key, error) {
	if sharedStore(store) {
		return clusterSigningKey(ctx, store, dataDir, keys)
	}
	return loadSigningKeyFile(dataDir, keys.signing, create)
}

// loadSigningKeyFile returns the log signing key: the file path names
// (VERITRAIL_SIGNING_KEY_FILE), or <data>/signing-key, created (0600) on
// first start when create is set.
func loadSigningKeyFile(dataDir, path string, create bool) (*tlog.Key, error) {
	given := path != ""
	if !given {
		path = filepath.Join(dataDir, "signing-key")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !given && create {
		key, err := tlog.GenerateKey()
		if err != nil {
			return nil, err
		}
		if err := createSecretFile(path, key.Encode()+"\n"); err != nil {
			return nil, fmt.Errorf("create the signing key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		if given {
			return nil, fmt.Errorf("VERITRAIL_SIGNING_KEY_FILE: %w", err)
		}
		return nil, fmt.Errorf("no signing key at %s (it is created by the first `veritrail serve`): %w", path, err)
	}
	key, err := tlog.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
