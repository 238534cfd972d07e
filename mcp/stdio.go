package mcp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ServeStdio runs cmd as the MCP server and relays newline-delimited
// JSON-RPC between the client (in, out) and the command's stdin and
// stdout, inspecting every message. The command's stderr is left to the
// caller. It returns when the command exits; when the client closes in, the
// command's stdin is closed (MCP's stdio shutdown) and, if it does not exit
// within grace, it gets SIGTERM, then SIGKILL.
func (g *Gateway) ServeStdio(ctx context.Context, cmd *exec.Cmd, in io.Reader, out io.Writer, s *Session, grace time.Duration) error {
	if grace <= 0 {
		grace = 5 * time.Second
	}
	childIn, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	childOut, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var outMu sync.Mutex
	toClient := func(b []byte) error {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
		return nil
	}

	// Server to client.
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		br := bufio.NewReaderSize(childOut, 256<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				msg := trimEOL(line)
				if len(msg) > 0 {
					if toClient(g.FromServer(s, msg, 0)) != nil {
						io.Copy(io.Discard, br) // the client is gone: let the server finish
						return
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()

	// Client to server.
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		defer childIn.Close()
		br := bufio.NewReaderSize(in, 256<<10)
		for {
			line, err := br.ReadBytes('\n')
			if msg := trimEOL(line); len(msg) > 0 {
				fwd, reply := g.FromClient(s, msg)
				if reply != nil {
					toClient(reply)
				}
				if fwd != nil {
					if _, werr := childIn.Write(append(fwd, '\n')); werr != nil {
						return
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()

	exited := make(chan error, 1)
	go func() {
		<-relayed // all of its output first
		exited <- cmd.Wait()
	}()
	stop := func() {
		childIn.Close()
		select {
		case <-relayed:
			return
		case <-time.After(grace):
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-relayed:
		case <-time.After(grace):
			cmd.Process.Kill()
		}
	}
	var werr error
	select {
	case werr = <-exited:
	case <-clientDone:
		stop()
		werr = <-exited
	case <-ctx.Done():
		stop()
		werr = <-exited
	}
	g.End(s, "the MCP server exited")
	var ee *exec.ExitError
	if errors.As(werr, &ee) && (ctx.Err() != nil || isClosedClient(clientDone)) {
		return nil // stopped by us
	}
	return werr
}

func isClosedClient(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
