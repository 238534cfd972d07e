package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestSweepLeftovers: a cluster whose test process is gone (killed by a
// timeout) is stopped and removed by the next start's sweep; one whose
// process runs is left alone.
func TestSweepLeftovers(t *testing.T) {
	Get(t) // skips loudly (fails under CI) without the binaries
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parent is private to root, and the server may
	// run as the postgres user.
	tmp, err := os.MkdirTemp("", "pgtest-sweep-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	os.Chmod(tmp, 0o755)
	start := func(owner int) *Cluster {
		dir := filepath.Join(tmp, "veritrail-pg-"+strconv.Itoa(owner))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(owner)), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := startIn(bin, dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A process that has ended: its pid is free.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	left := start(gone.Process.Pid)
	kept := start(os.Getppid()) // go test itself: running
	t.Cleanup(kept.stop)
	postmaster := func(c *Cluster) int {
		b, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
		return pid
	}
	leftPID, keptPID := postmaster(left), postmaster(kept)

	sweep(bin, tmp)

	for deadline := time.Now().Add(30 * time.Second); alive(leftPID); {
		if time.Now().After(deadline) {
			t.Fatal("the cluster of a gone test process still runs after the sweep")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(left.Dir); !os.IsNotExist(err) {
		t.Errorf("its directory is still there: %v", err)
	}
	if !alive(keptPID) {
		t.Error("the sweep stopped the cluster of a running test process")
	}
}
