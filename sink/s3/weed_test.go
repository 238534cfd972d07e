package s3_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/veritrail/veritrail/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The S3-compatible server the tests write to: SeaweedFS's weed, built
// from the Go module proxy at this version into a cache directory
// (VERITRAIL_BIN_CACHE, or <user cache>/veritrail/bin) once per machine.
// .ci/run builds it before the tests; a test that finds it missing builds
// it (minutes), and skips loudly if it cannot (fails under CI).
const (
	weedModule  = "github.com/seaweedfs/seaweedfs"
	WeedVersion = "v0.0.0-20261109003541-7506e5f91cd6"
)

func binCache() string { return testenv.CacheDir("VERITRAIL_BIN_CACHE", "bin") }

// weedBinary returns the weed binary, building it first if needed
// (concurrent test processes wait for each other).
func weedBinary(t testing.TB) string {
	t.Helper()
	dir := binCache()
	bin := filepath.Join(dir, "weed-"+WeedVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.SkipOrFail(t, "no S3-compatible test server: weed is not built and go is not on PATH (see .ci/run)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".weed.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	fmt.Fprintf(os.Stderr, "building SeaweedFS weed %s into %s (once; minutes)\n", WeedVersion, dir)
	// The module's go.mod has a replace directive, so `go install
	// module@version` refuses it: build inside the downloaded module.
	out, err := exec.Command(goBin, "mod", "download", "-json", weedModule+"@"+WeedVersion).Output()
	var mod struct{ Dir string }
	if err != nil || json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		testenv.SkipOrFail(t, fmt.Sprintf("no S3-compatible test server: go mod download %s@%s: %v %s", weedModule, WeedVersion, err, out))
	}
	build := exec.Command(goBin, "build", "-o", bin+".tmp", "./weed")
	build.Dir = mod.Dir
	if out, err := build.CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("no S3-compatible test server: building weed failed: %v\n%s", err, out))
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// weed is a running SeaweedFS (`weed mini`: master, volume, filer and S3
// gateway in one process) on loopback ports, with one identity and one
// bucket. Stop and Start restart it on the same ports and data.
type weed struct {
	t                    testing.TB
	bin, dir             string
	Endpoint             string
	AccessKey, SecretKey string
	Bucket               string
	args                 []string
	cmd                  *exec.Cmd
	exited               chan struct{}
	log                  *os.File
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func startWeed(t testing.TB, bucket string) *weed {
	t.Helper()
	w := &weed{t: t, bin: weedBinary(t), dir: t.TempDir(), AccessKey: "veritrail-test", SecretKey: "s3cret-" + strconv.Itoa(os.Getpid()), Bucket: bucket}
	conf := map[string]any{"identities": []any{map[string]any{
		"name":        "veritrail",
		"credentials": []any{map[string]any{"accessKey": w.AccessKey, "secretKey": w.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Write", "Tagging"},
	}}}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(w.dir, "s3.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(w.dir, "data")
	os.Mkdir(data, 0o755)
	p := freePorts(t, 8)
	w.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", p[6])
	w.args = []string{"mini", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]), "-master.telemetry=false",
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
		"-s3.config=" + filepath.Join(w.dir, "s3.json"), "-s3.autoCreateBucket=false", "-bucket=" + bucket}
	var err error
	if w.log, err = os.Create(filepath.Join(w.dir, "weed.log")); err != nil {
		t.Fatal(err)
	}
	w.Start()
	t.Cleanup(func() {
		w.Stop()
		w.log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(w.log.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("weed log (end):\n%s", b)
		}
	})
	return w
}

// Client is an S3 client of the test's identity, for reading back.
func (w *weed) Client() *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(w.AccessKey, w.SecretKey, "")})
}

// Start runs weed and waits until the bucket answers.
func (w *weed) Start() {
	w.t.Helper()
	w.cmd = exec.Command(w.bin, w.args...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	w.cmd.Dir = w.dir
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(w.cmd, w.exited)
	cl := w.Client()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(w.Bucket), MaxKeys: aws.Int32(1)})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-w.exited:
			b, _ := os.ReadFile(w.log.Name())
			w.t.Fatalf("weed exited: %s", tail(string(b), 3000))
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("weed's S3 gateway did not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends weed (SIGTERM, then SIGKILL) and waits for it.
func (w *weed) Stop() {
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
	}
	w.cmd = nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
