// Package smtptest starts a real SMTP server for tests: Debian's aiosmtpd
// (python3-aiosmtpd), with STARTTLS on a certificate from a throwaway CA
// and required authentication. Received messages are saved as files.
package smtptest

import (
	"bufio"
	"bytes"
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
	"sort"
	"strings"
	"testing"
	"time"
)

// Server is a running SMTP server.
type Server struct {
	Addr     string // host:port
	User     string
	Password string
	CAFile   string // PEM of the CA that signed the server's certificate
	dir      string
}

// URL is the smtp:// URL with credentials.
func (s *Server) URL() string { return fmt.Sprintf("smtp://%s:%s@%s", s.User, s.Password, s.Addr) }

const script = `
import asyncio, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, cert, key, user, password = sys.argv[1:6]

class Save:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Save.n += 1
        tmp = os.path.join(out, "%04d.tmp" % Save.n)
        with open(tmp, "wb") as f:
            f.write(("X-Rcpt-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(out, "%04d.eml" % Save.n))
        return "250 OK"

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
import socket
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
c = Controller(Save(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=auth, auth_required=True, auth_require_tls=True)
c.start()
print("ready %d" % port, flush=True)
try:
    sys.stdin.read()
finally:
    c.stop()
`

// python finds an interpreter with aiosmtpd: Debian's package installs it
// for /usr/bin/python3, which a pyenv or venv python3 on PATH may hide.
func python() (string, bool) {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p, true
		}
	}
	return "", false
}

// Start starts a server for the test and stops it at cleanup. Without
// aiosmtpd the test is skipped loudly (CI installs python3-aiosmtpd).
func Start(t testing.TB) *Server {
	t.Helper()
	py, ok := python()
	if !ok {
		msg := "SKIPPING: no SMTP server: aiosmtpd is not installed for python3 (apt-get install -y python3-aiosmtpd)"
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCerts(t, dir)
	mailDir := filepath.Join(dir, "mail")
	os.Mkdir(mailDir, 0o700)
	scriptFile := filepath.Join(dir, "smtpd.py")
	os.WriteFile(scriptFile, []byte(script), 0o600)
	s := &Server{User: "veritrail", Password: "s3cret-pw", CAFile: caFile, dir: mailDir}
	cmd := exec.Command(py, scriptFile, mailDir, certFile, keyFile, s.User, s.Password)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // aiosmtpd logs refused handshakes loudly; shown on failure only
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the script stops when its input ends
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("aiosmtpd output:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- port
				return
			}
		}
		close(ready) // the script ended without starting
	}()
	select {
	case port, ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("aiosmtpd did not start:\n%s", stderr.String())
		}
		s.Addr = net.JoinHostPort("127.0.0.1", port)
	case <-time.After(30 * time.Second):
		t.Fatal("aiosmtpd did not start")
	}
	return s
}

// Messages returns the raw messages received so far, oldest first.
func (s *Server) Messages() []string {
	names, _ := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	sort.Strings(names)
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// Wait waits up to d for n messages.
func (s *Server) Wait(t testing.TB, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := s.Messages()
		if len(m) >= n || time.Now().After(deadline) {
			if len(m) < n {
				t.Fatalf("%d of %d e-mails arrived within %v", len(m), n, d)
			}
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCerts makes a CA and a server certificate for 127.0.0.1.
func writeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "veritrail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}
