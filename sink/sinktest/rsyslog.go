package sinktest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Rsyslog is a real rsyslogd (Debian's rsyslog, with rsyslog-gnutls for
// TLS) receiving syslog over TCP into a file, one line per message:
// PRI|TIMESTAMP|HOSTNAME|APP-NAME|MSGID|STRUCTURED-DATA|MSG — the fields
// as rsyslog's RFC 5424 parser understood them.
type Rsyslog struct {
	Addr   string // 127.0.0.1:port
	CAFile string // the CA of the server's certificate (TLS)
	Out    string // the file messages are written to
	t      testing.TB
	dir    string
	tls    bool
	cmd    *exec.Cmd
}

// rsyslogd returns the binary's path, skipping the test loudly when it is
// missing (failing under CI, which installs it: see .ci/run).
func rsyslogd(t testing.TB) string {
	for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	msg := "rsyslogd is not installed: this test needs a real syslog receiver (apt-get install rsyslog rsyslog-gnutls)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED LOUDLY: " + msg)
	return ""
}

// StartRsyslog starts rsyslogd on a free loopback port, over TLS when
// withTLS, and stops it when the test ends.
func StartRsyslog(t testing.TB, withTLS bool) *Rsyslog {
	t.Helper()
	bin := rsyslogd(t)
	if withTLS {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
			if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
				msg := "rsyslog's TLS driver is not installed (apt-get install rsyslog-gnutls)"
				if os.Getenv("CI") != "" {
					t.Fatal(msg)
				}
				t.Skip("SKIPPED LOUDLY: " + msg)
			}
		}
	}
	r := &Rsyslog{t: t, dir: t.TempDir(), tls: withTLS}
	r.Out = filepath.Join(r.dir, "messages.log")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = l.Addr().String()
	l.Close()
	if withTLS {
		r.CAFile = writeTestPKI(t, r.dir)
	}
	r.start(bin)
	t.Cleanup(r.Stop)
	return r
}

func (r *Rsyslog) config() string {
	_, port, _ := net.SplitHostPort(r.Addr)
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"1m\"", r.dir)
	if r.tls {
		fmt.Fprintf(&b, " defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			filepath.Join(r.dir, "ca.pem"), filepath.Join(r.dir, "server.pem"), filepath.Join(r.dir, "server-key.pem"))
	}
	b.WriteString(")\n")
	if r.tls {
		b.WriteString(`module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")` + "\n")
	} else {
		b.WriteString(`module(load="imtcp")` + "\n")
	}
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q)\n", port)
	b.WriteString(`template(name="fields" type="string" string="%pri%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%msgid%|%structured-data%|%msg%\n")` + "\n")
	fmt.Fprintf(&b, "action(type=\"omfile\" file=%q template=\"fields\" flushOnTXEnd=\"on\")\n", r.Out)
	return b.String()
}

func (r *Rsyslog) start(bin string) {
	t := r.t
	conf := filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(r.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	r.cmd = exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = &stderr, &stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { r.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited:\n%s\nconfig:\n%s", stderr.String(), r.config())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not listen on %s:\n%s", r.Addr, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops rsyslogd (SIGTERM; it writes out what it received).
func (r *Rsyslog) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
	}
	r.cmd = nil
}

// Restart starts rsyslogd again on the same port and file.
func (r *Rsyslog) Restart() { r.start(rsyslogd(r.t)) }

// Lines waits until the file holds at least n lines and returns them.
func (r *Rsyslog) Lines(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var lines []string
		if f, err := os.Open(r.Out); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 4<<20)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			f.Close()
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rsyslog wrote %d of %d messages", len(lines), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeTestPKI makes a throwaway CA and a server certificate for
// 127.0.0.1 and localhost in dir; it returns the CA's file.
func writeTestPKI(t testing.TB, dir string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "veritrail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", der)
	write("server-key.pem", "EC PRIVATE KEY", keyDER)
	return filepath.Join(dir, "ca.pem")
}
