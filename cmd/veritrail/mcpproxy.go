package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/veritrail/veritrail/mcp"
)

func runMCPProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c mcpProxyConfig
	command, err := c.settings().Parse(args)
	if err != nil {
		return err
	}
	log := newLogger(stderr, c.logLevel)
	tok := c.client.token
	httpMode := c.listen != ""
	switch {
	case httpMode && len(command) > 0:
		return errors.New("give either a command (stdio) or --listen/--upstream (HTTP), not both")
	case !httpMode && len(command) == 0:
		return errors.New("give the MCP server command after --, or --listen and --upstream")
	}
	actor := c.actor
	if !httpMode {
		if actor.ID == "" && actor.Email == "" {
			if u, err := user.Current(); err == nil {
				actor.ID = u.Username
			}
		}
		if err := mcp.CheckActor(actor); err != nil {
			return fmt.Errorf("the actor (--actor-type, --actor-id, --actor-email, --actor-name): %w", err)
		}
	}
	var policy *mcp.Policy
	if c.policy != "" && c.policy != "server" {
		if policy, err = mcp.LoadPolicy(c.policy); err != nil {
			return err
		}
	}
	spoolDir := c.spool
	if spoolDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no --spool given and no user cache directory: %w", err)
		}
		spoolDir = filepath.Join(cache, "veritrail", "mcp-spool")
	}
	spool, err := mcp.OpenSpool(mcp.SpoolConfig{Dir: spoolDir, Server: c.client.server, Token: tok, MaxBytes: c.spoolMax, Logger: log})
	if err != nil {
		return err
	}
	defer spool.Close()
	sctx, stopSpool := context.WithCancel(context.Background())
	spoolDone := make(chan struct{})
	go func() {
		defer close(spoolDone)
		spool.Run(sctx)
	}()
	defer func() {
		// Give the sender a moment to deliver what is left; the rest stays
		// in the spool for the next run.
		fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := spool.Flush(fctx); err != nil {
			log.Warn("records left in the spool; they are sent by the next mcp-proxy that uses it", slog.String("spool", spoolDir), slog.Int64("bytes", spool.Unsent()))
		}
		cancel()
		stopSpool()
		<-spoolDone
	}()

	cfg := mcp.Config{
		Connector: c.connector, AgentID: c.agentID, Policy: policy, Recorder: spool,
		HoldTimeout: c.hold, FailClosed: c.fail == "closed", KeepAttachmentBytes: c.keepBytes, Logger: log,
	}
	cfg.Transport, cfg.Upstream = "stdio", strings.Join(command, " ")
	if httpMode {
		cfg.Transport, cfg.Upstream = "http", c.upstream
	}
	g := mcp.NewGateway(cfg)
	if c.policy == "server" {
		sp := &serverPolicy{server: c.client.server, token: tok, cache: filepath.Join(spoolDir, "server-policy.json"), log: log}
		g.SetPolicy(sp.initial(ctx, cfg.FailClosed))
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go sp.refresh(pctx, g, c.policyRefresh)
	}
	if httpMode {
		var ids []mcp.Identity
		if c.identities != "" {
			if ids, err = mcp.LoadIdentities(c.identities); err != nil {
				return err
			}
		}
		upHeaders := http.Header{}
		for _, h := range c.headers {
			upHeaders.Add(h.name, h.value)
		}
		proxy, err := mcp.NewHTTPProxy(g, c.upstream, mcp.HTTPOptions{Identities: ids, Header: upHeaders, MaxBody: c.maxBody})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", c.listen)
		if err != nil {
			return err
		}
		pctx, stopProxy := context.WithCancel(context.Background())
		proxyDone := make(chan struct{})
		go func() {
			defer close(proxyDone)
			proxy.Run(pctx)
		}()
		srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		log.Info("mcp-proxy listening", slog.String("addr", ln.Addr().String()), slog.String("upstream", c.upstream))
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err = <-errc:
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			srv.Shutdown(shut)
			cancel()
		}
		stopProxy()
		<-proxyDone
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}

	var rb [8]byte
	rand.Read(rb[:])
	sess := mcp.NewSession("mcp-"+hex.EncodeToString(rb[:]), actor)
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = stderr
	log.Debug("mcp-proxy starting the server", slog.String("command", command[0]))
	if err := g.ServeStdio(ctx, cmd, os.Stdin, stdout, sess, 5*time.Second); err != nil {
		return fmt.Errorf("the MCP server: %w", err)
	}
	return nil
}
