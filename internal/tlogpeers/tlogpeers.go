// Package tlogpeers gives tests the transparency-log ecosystem's own
// tools, built from the Go module proxy at pinned versions into a cache
// directory (VERITRAIL_GO_TOOLS, or <user cache>/veritrail/gotools):
// tessera's fsck, which checks a C2SP tlog-tiles log against its
// checkpoint, and litewitness, a C2SP tlog-witness. They are what an
// auditor would run; none of their code is Veritrail's. Building them the
// first time takes minutes (.ci/run builds them before the tests); a test
// skips loudly when they cannot be built, and fails under CI=true.
package tlogpeers

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"github.com/veritrail/veritrail/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Pinned versions: both build with Go 1.26.
const (
	Tessera   = "github.com/transparency-dev/tessera@v1.0.4"
	Torchwood = "filippo.io/torchwood@v0.6.1"
)

// Dir is the cache directory of the built tools.
func Dir() string { return testenv.CacheDir("VERITRAIL_GO_TOOLS", "gotools") }

// install builds cmd (a package path below module@version) into
// Dir()/module@version/ once per machine, and returns the binary's path.
func install(t testing.TB, moduleAtVersion, cmd string) string {
	t.Helper()
	module, version, _ := strings.Cut(moduleAtVersion, "@")
	bin := filepath.Join(Dir(), strings.ReplaceAll(module, "/", "_")+"@"+version)
	path := filepath.Join(bin, filepath.Base(cmd))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.SkipOrFail(t, "cannot build "+cmd+": no go command")
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(bin, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	c := exec.Command(gobin, "install", module+"/"+cmd+"@"+version)
	c.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	fmt.Fprintf(os.Stderr, "building %s/%s@%s into %s (once per machine; minutes)\n", module, cmd, version, bin)
	if out, err := c.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("go install %s/%s@%s failed: %v\n%s", module, cmd, version, err, out))
	}
	return path
}

// Fsck returns tessera's fsck.
func Fsck(t testing.TB) string { return install(t, Tessera, "cmd/fsck") }

// RunFsck runs fsck over a log's tlog-tiles URL (ending in /) with the
// log's verifier key and a bearer token (for the entry bundles). It
// reports fsck's verdict: fsck prints it and exits 0 either way.
func RunFsck(t testing.TB, url, vkey, token string) (ok bool, output string) {
	t.Helper()
	bin := Fsck(t)
	keyFile := filepath.Join(t.TempDir(), "log.pub")
	if err := os.WriteFile(keyFile, []byte(vkey), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--storage_url", url, "--public_key", keyFile, "--ui=false", "--N", "2"}
	if token != "" {
		args = append(args, "--bearer_token", token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("%v\n%s", err, out)
	}
	s := string(out)
	return strings.Contains(s, "Successfully fsck'd log") && !strings.Contains(s, "fsck failed"), s
}

// Witness is a running litewitness.
type Witness struct {
	URL  string // base URL: add-checkpoint is URL/add-checkpoint
	VKey string // its cosignature verifier key
	ctl  string
	db   string
}

// StartWitness runs litewitness under name on a free loopback port, its
// key held by an in-process ssh-agent (the way litewitness takes keys),
// until the test ends.
func StartWitness(t testing.TB, name string) *Witness {
	t.Helper()
	lw := install(t, Torchwood, "cmd/litewitness")
	ctl := install(t, Torchwood, "cmd/witnessctl")
	dir := t.TempDir()

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w := &Witness{URL: "http://" + addr, ctl: ctl, db: filepath.Join(dir, "witness.db")}
	cmd := exec.Command(lw, "-name", name, "-db", w.db, "-ssh-agent", sock, "-key", ssh.FingerprintSHA256(sshPub), "-listen", addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	vkeyLine := regexp.MustCompile(`vkey=(\S+)`)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads past the start
			}
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	var log []string
	for w.VKey == "" || !listening(addr) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("litewitness exited:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, line)
			if m := vkeyLine.FindStringSubmatch(line); m != nil {
				w.VKey = strings.Trim(m[1], `"`)
			}
		case <-deadline:
			t.Fatalf("litewitness did not start:\n%s", strings.Join(log, "\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return w
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// AddLog makes the witness accept checkpoints of a log (origin, verifier
// key), as its operator does with witnessctl.
func (w *Witness) AddLog(t testing.TB, origin, vkey string) {
	t.Helper()
	for _, args := range [][]string{
		{"add-log", "-db", w.db, "-origin", origin},
		{"add-key", "-db", w.db, "-origin", origin, "-key", vkey},
	} {
		if out, err := exec.Command(w.ctl, args...).CombinedOutput(); err != nil {
			t.Fatalf("witnessctl %v: %v\n%s", args, err, out)
		}
	}
}
