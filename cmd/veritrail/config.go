package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/sqlite"
)

// Configuration comes from flags, with defaults from VERITRAIL_* variables.
// Secrets also come from a file named by VERITRAIL_*_FILE.

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

// secret reads NAME, or the file named by NAME_FILE.
func secret(name string) (string, error) {
	if v := os.Getenv(name); v != "" {
		return v, nil
	}
	if path := os.Getenv(name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// storeFlags are the flags that select a store.
type storeFlags struct {
	data string
	db   string
}

func (sf *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.data, "data", env("VERITRAIL_DATA", "./veritrail-data"), "data directory of the embedded SQLite store (env VERITRAIL_DATA)")
	fs.StringVar(&sf.db, "db", env("VERITRAIL_DB", ""), "PostgreSQL URL, postgres://… (env VERITRAIL_DB); overrides --data")
}

// open opens the selected store. Admin commands pass workers=false: they
// run beside a server and must not append or index.
func (sf *storeFlags) open(ctx context.Context, log *slog.Logger, workers bool, obs veritrail.Observer) (veritrail.Store, error) {
	if sf.db != "" {
		// The data directory still holds this node's local files (export
		// files, a master key if no file is given).
		if err := os.MkdirAll(sf.data, 0o700); err != nil {
			return nil, err
		}
		return postgres.Open(ctx, sf.db, postgres.Options{Logger: log, Observer: obs})
	}
	return sqlite.Open(ctx, sf.data, sqlite.Options{Logger: log, NoWorkers: !workers, Observer: obs})
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	return fs.Parse(args)
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (veritrail org create acme --data d), and returns
// the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// openAdmin opens the store for an admin command run beside a server: no
// background workers, warnings to stderr.
func (sf *storeFlags) openAdmin(ctx context.Context, stderr io.Writer) (veritrail.Store, error) {
	return sf.open(ctx, slog.New(slog.NewTextHandler(stderr, nil)), false, nil)
}

// createSecretFile writes a new secret file (0600, synced); it fails if the
// file exists, so two processes starting at once cannot overwrite each
// other's key.
func createSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
