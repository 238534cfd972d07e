// Package pgtest starts a throwaway PostgreSQL for tests from the installed
// server binaries (initdb and pg_ctl, as the postgres user when running as
// root), on a private port and socket directory, and removes it afterwards.
// No Docker, no mocks: the tests talk to a real server.
//
// A test package's TestMain calls Main, which stops the cluster after the
// tests; tests call New for a fresh database of their own.
package pgtest

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running PostgreSQL server.
type Cluster struct {
	Dir  string // data directory (also the socket directory)
	Port int
	bin  string
	cred *syscall.Credential
	opts string // the server's settings (pg_ctl -o)
	n    atomic.Int64
}

var (
	mu      sync.Mutex
	cluster *Cluster
	failed  error
)

// Durable makes the clusters started from now on sync to disk like a
// production server (for benchmarks). Tests run with fsync off: they kill
// Veritrail nodes, never the database, so its durability is not under test.
var Durable = os.Getenv("VERITRAIL_PG_DURABLE") != ""

// errNoBinaries is BinDir's error when PostgreSQL is not installed.
var errNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install -y postgresql, or set VERITRAIL_PG_BIN to their directory")

// BinDir finds the PostgreSQL server binaries: $VERITRAIL_PG_BIN, else the
// newest /usr/lib/postgresql/*/bin, else the PATH.
func BinDir() (string, error) {
	if d := os.Getenv("VERITRAIL_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNoBinaries
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Get returns the package's cluster, starting it on first use. Without
// the binaries the test is skipped with a banner on stderr and the reason
// (go test -v shows both), and fails under CI, which installs them.
func Get(t testing.TB) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if cluster == nil && failed == nil {
		cluster, failed = start()
	}
	if errors.Is(failed, errNoBinaries) {
		msg := "SKIPPING the PostgreSQL tests: " + failed.Error()
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if failed != nil {
		t.Fatalf("start PostgreSQL: %v", failed)
	}
	return cluster
}

// New returns the URL of a new, empty database on the package's cluster.
func New(t testing.TB) string {
	t.Helper()
	c := Get(t)
	name := fmt.Sprintf("vt_%d_%d", os.Getpid(), c.n.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return c.URL(name)
}

// URL is the connection URL of a database on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Main runs a test package's tests and stops the cluster afterwards:
// func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil {
		cluster.stop()
		cluster = nil
	}
	return code
}

// start starts a cluster; extra settings (-c name=value) come last, so
// they override the defaults.
func start(extra ...string) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweep(bin, os.TempDir()) })
	dir, err := os.MkdirTemp("", "veritrail-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return startIn(bin, dir, extra...)
}

// ownerFile, in a cluster's directory, holds the pid of the test process
// that started it.
const ownerFile = "owner.pid"

var sweepOnce sync.Once

// sweep stops and removes the clusters under tmp whose test process is
// gone: one killed by go test's timeout (or by hand) cannot stop its
// cluster, which would otherwise run on, holding memory and a port, until
// the machine restarts. Clusters of running test processes are left alone.
func sweep(bin, tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "veritrail-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours to judge (an older layout, or starting)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		c := &Cluster{Dir: dir, bin: bin}
		if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
				c.cred = &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
			}
		}
		fmt.Fprintf(os.Stderr, "pgtest: stopping the PostgreSQL left in %s by test process %d, which is gone\n", dir, pid)
		c.stop()
	}
}

// startIn starts a cluster in dir, whose data directory dir/data is made
// by initdb unless it exists; on failure a new one is removed.
func startIn(bin, dir string, extra ...string) (*Cluster, error) {
	c := &Cluster{Dir: dir, bin: bin}
	// initdb refuses to run as root: run the server as postgres then.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user (created by the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("initdb: %v\n%s", err, out)
		}
	}
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=200 -c shared_buffers=256MB", c.Port, dir)
	if !Durable {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	c.opts = strings.Join(append([]string{opts}, extra...), " ")
	if err := c.serve(); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// serve starts the server on the cluster's data directory and waits until
// it takes connections.
func (c *Cluster) serve() error {
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-o", c.opts, "-l", filepath.Join(c.Dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), c.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL did not take connections: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Own starts a cluster for the calling test alone, which it may stop,
// kill and start again (fault tests); it is removed when the test ends.
// Its commits are acknowledged once their WAL is written
// (synchronous_commit on), so that killing the server loses no
// acknowledged transaction; fsync stays off unless Durable, as only an
// operating system crash would show it. Like Get, it skips loudly without
// the binaries and fails under CI.
func Own(t testing.TB) *Cluster {
	t.Helper()
	Get(t)
	c, err := start("-c synchronous_commit=on")
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

// At starts a cluster on the data directory dir/data (made by initdb
// when absent) for the calling test or benchmark alone, and stops it
// cleanly, keeping its files, when the test ends: benchmarks keep a large
// database there between runs. The server (run as the postgres user when
// the test runs as root) must be able to reach dir. Like Get, it skips
// loudly without the binaries and fails under CI.
func At(t testing.TB, dir string) *Cluster {
	t.Helper()
	Get(t)
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := startIn(bin, dir)
	if err != nil {
		t.Fatalf("start PostgreSQL in %s: %v", dir, err)
	}
	t.Cleanup(func() { c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop") })
	return c
}

// Stop stops the server the way an operator's restart does: "fast"
// (sessions are ended with an error, a shutdown checkpoint is written) or
// "immediate" (no checkpoint: recovery at the next start).
func (c *Cluster) Stop(t testing.TB, mode string) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", mode, "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

// Kill sends SIGKILL to the postmaster and every server process, as the
// OOM killer or a crash would, and waits until they are gone.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	// Freeze the postmaster, so it starts no process meanwhile; kill its
	// children (found by their parent), then it.
	syscall.Kill(pid, syscall.SIGSTOP)
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output()
	pids := []int{}
	for _, f := range strings.Fields(string(out)) {
		if child, err := strconv.Atoi(f); err == nil {
			syscall.Kill(child, syscall.SIGKILL)
			pids = append(pids, child)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	pids = append(pids, pid)
	for _, p := range pids {
		for deadline := time.Now().Add(30 * time.Second); alive(p); {
			if time.Now().After(deadline) {
				t.Fatalf("PostgreSQL process %d still runs after SIGKILL", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A dead postmaster not reaped yet (a zombie, on a loaded machine or
	// under an init that reaps late) still answers kill(pid, 0), and
	// PostgreSQL would take its lock files (the data directory's and the
	// socket's) for a running server's.
	os.Remove(filepath.Join(c.Dir, "data", "postmaster.pid"))
	os.Remove(filepath.Join(c.Dir, fmt.Sprintf(".s.PGSQL.%d.lock", c.Port)))
	os.Remove(filepath.Join(c.Dir, fmt.Sprintf(".s.PGSQL.%d", c.Port)))
}

// alive reports whether process pid runs (a zombie waiting for a parent
// that does not reap it does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// Start starts a stopped or killed server again, on the same port.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.serve(); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

func (c *Cluster) stop() {
	c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.Dir)
}

// Load runs the SQL of a file (gzip-compressed when its name ends in .gz)
// on the database at url, as one simple-protocol script: a pg_dump
// --inserts dump, for instance.
func Load(t testing.TB, url, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(file, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	sql, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.PgConn().Exec(ctx, string(sql)).ReadAll(); err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
}
