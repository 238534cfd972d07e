package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TCPSwitch stands in front of a real peer (an SMTP server, a witness) so
// that a test can take it down and bring it back: while up it forwards
// each connection to the peer; while down it closes each connection it
// accepts at once, as a host whose service is gone does.
type TCPSwitch struct {
	ln      net.Listener
	target  string
	down    atomic.Bool
	refused atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool // open, to cut when going down
}

// StartTCPSwitch listens on a loopback port, forwarding to target
// (host:port), until the test ends.
func StartTCPSwitch(t testing.TB, target string) *TCPSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &TCPSwitch{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); s.SetDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if s.down.Load() {
				s.refused.Add(1)
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			go s.forward(c)
		}
	}()
	return s
}

func (s *TCPSwitch) forward(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", s.target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}

// Addr is the switch's host:port, where clients connect.
func (s *TCPSwitch) Addr() string { return s.ln.Addr().String() }

// Refused is how many connections were closed while down.
func (s *TCPSwitch) Refused() int64 { return s.refused.Load() }

// SetDown takes the peer down (also cutting the connections open, which
// clients keep alive) or brings it back.
func (s *TCPSwitch) SetDown(down bool) {
	s.down.Store(down)
	if down {
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	}
}
