package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
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

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/mcp"
)

type headerFlags http.Header

func (h headerFlags) String() string { return "" }
func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(val))
	return nil
}

func runMCPProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcp-proxy", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage:
  veritrail mcp-proxy --server URL --token T [flags] -- COMMAND [ARGS...]   (stdio: wraps an MCP server command)
  veritrail mcp-proxy --server URL --token T --listen ADDR --upstream URL [flags]   (Streamable HTTP)

Every tools/call, resources/read and prompts/get becomes an agent.tool_call
event; --policy can allow, block or redact them. Records are spooled to disk
and sent to the Veritrail server, also after it was unreachable.

Flags:
`)
		fs.PrintDefaults()
	}
	serverURL := fs.String("server", env("VERITRAIL_SERVER", ""), "Veritrail base URL, e.g. http://127.0.0.1:8080 (env VERITRAIL_SERVER)")
	tokenFlag := fs.String("token", "", "ingest token (events:write); better: env VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE")
	connector := fs.String("connector", env("VERITRAIL_CONNECTOR", ""), "connector name in records (env VERITRAIL_CONNECTOR; default: the server's own name)")
	agentID := fs.String("agent-id", env("VERITRAIL_AGENT_ID", ""), "agent_id in records (env VERITRAIL_AGENT_ID; default: the client's name)")
	actorType := fs.String("actor-type", env("VERITRAIL_ACTOR_TYPE", "user"), "stdio: the actor's type (env VERITRAIL_ACTOR_TYPE)")
	actorID := fs.String("actor-id", env("VERITRAIL_ACTOR_ID", ""), "stdio: who the agent acts for (env VERITRAIL_ACTOR_ID; default: the OS user)")
	actorEmail := fs.String("actor-email", env("VERITRAIL_ACTOR_EMAIL", ""), "stdio: the actor's e-mail (env VERITRAIL_ACTOR_EMAIL)")
	actorName := fs.String("actor-name", env("VERITRAIL_ACTOR_NAME", ""), "stdio: the actor's name (env VERITRAIL_ACTOR_NAME)")
	policyFile := fs.String("policy", env("VERITRAIL_MCP_POLICY", ""), "policy file (JSON rules: allow, block, redact), or \"server\": the organization's policy held by the Veritrail server (env VERITRAIL_MCP_POLICY)")
	policyRefresh := fs.Duration("policy-refresh", envDuration("VERITRAIL_MCP_POLICY_REFRESH", 30*time.Second), "with --policy server: how often the policy is fetched again (env VERITRAIL_MCP_POLICY_REFRESH)")
	spoolDir := fs.String("spool", env("VERITRAIL_SPOOL", ""), "spool directory for records not yet acknowledged (env VERITRAIL_SPOOL; default: <user cache>/veritrail/mcp-spool)")
	spoolMax := fs.Int64("spool-max-bytes", envInt("VERITRAIL_SPOOL_MAX_BYTES", 1<<30), "most bytes of unsent records kept on disk (env VERITRAIL_SPOOL_MAX_BYTES)")
	hold := fs.Duration("hold-timeout", envDuration("VERITRAIL_HOLD_TIMEOUT", 2*time.Second), "longest a call waits for its record to be durable (env VERITRAIL_HOLD_TIMEOUT)")
	fail := fs.String("fail", env("VERITRAIL_FAIL", "open"), "when a record is not durable in time: open (answer anyway) or closed (withhold the answer) (env VERITRAIL_FAIL)")
	keepBytes := fs.Bool("keep-attachment-bytes", envBool("VERITRAIL_KEEP_ATTACHMENT_BYTES"), "keep image, audio and blob bytes in records (default: mime, size and SHA-256 only)")
	listen := fs.String("listen", env("VERITRAIL_MCP_LISTEN", ""), "HTTP mode: listen address, e.g. 127.0.0.1:8931 (env VERITRAIL_MCP_LISTEN)")
	upstream := fs.String("upstream", env("VERITRAIL_MCP_UPSTREAM", ""), "HTTP mode: the MCP server's endpoint URL (env VERITRAIL_MCP_UPSTREAM)")
	identities := fs.String("identities", env("VERITRAIL_MCP_IDENTITIES", ""), "HTTP mode: JSON file mapping token SHA-256 to actors; unknown tokens get 401 (env VERITRAIL_MCP_IDENTITIES)")
	upHeaders := headerFlags{}
	fs.Var(upHeaders, "upstream-header", "HTTP mode: \"Name: value\" added to upstream requests (repeatable)")
	maxBody := fs.Int64("max-body-bytes", envInt("VERITRAIL_MCP_MAX_BODY_BYTES", 16<<20), "HTTP mode: largest request body")
	logLevel := fs.String("log-level", env("VERITRAIL_LOG_LEVEL", "info"), "debug, info, warn or error (logs go to stderr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	command := fs.Args()
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	tok := *tokenFlag
	if tok == "" {
		if tok, err = secret("VERITRAIL_TOKEN"); err != nil {
			return err
		}
	}
	httpMode := *listen != "" || *upstream != ""
	switch {
	case *serverURL == "" || tok == "":
		return errors.New("--server and a token (--token, VERITRAIL_TOKEN or VERITRAIL_TOKEN_FILE) are required")
	case httpMode && (*listen == "" || *upstream == ""):
		return errors.New("HTTP mode needs both --listen and --upstream")
	case httpMode && len(command) > 0:
		return errors.New("give either a command (stdio) or --listen/--upstream (HTTP), not both")
	case !httpMode && len(command) == 0:
		return errors.New("give the MCP server command after --, or --listen and --upstream")
	case *fail != "open" && *fail != "closed":
		return fmt.Errorf("--fail: open or closed, got %q", *fail)
	}
	actor := veritrail.Actor{Type: *actorType, ID: *actorID, Email: *actorEmail, Name: *actorName}
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
	if *policyFile != "" && *policyFile != "server" {
		if policy, err = mcp.LoadPolicy(*policyFile); err != nil {
			return err
		}
	}
	if *spoolDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no --spool given and no user cache directory: %w", err)
		}
		*spoolDir = filepath.Join(cache, "veritrail", "mcp-spool")
	}
	spool, err := mcp.OpenSpool(mcp.SpoolConfig{Dir: *spoolDir, Server: *serverURL, Token: tok, MaxBytes: *spoolMax, Logger: log})
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
			log.Warn("records left in the spool; they are sent by the next mcp-proxy that uses it", slog.String("spool", *spoolDir), slog.Int64("bytes", spool.Unsent()))
		}
		cancel()
		stopSpool()
		<-spoolDone
	}()

	cfg := mcp.Config{
		Connector: *connector, AgentID: *agentID, Policy: policy, Recorder: spool,
		HoldTimeout: *hold, FailClosed: *fail == "closed", KeepAttachmentBytes: *keepBytes, Logger: log,
	}
	cfg.Transport, cfg.Upstream = "stdio", strings.Join(command, " ")
	if httpMode {
		cfg.Transport, cfg.Upstream = "http", *upstream
	}
	g := mcp.NewGateway(cfg)
	if *policyFile == "server" {
		sp := &serverPolicy{server: *serverURL, token: tok, cache: filepath.Join(*spoolDir, "server-policy.json"), log: log}
		g.SetPolicy(sp.initial(ctx, cfg.FailClosed))
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go sp.refresh(pctx, g, *policyRefresh)
	}
	if httpMode {
		var ids []mcp.Identity
		if *identities != "" {
			if ids, err = mcp.LoadIdentities(*identities); err != nil {
				return err
			}
		}
		proxy, err := mcp.NewHTTPProxy(g, *upstream, mcp.HTTPOptions{Identities: ids, Header: http.Header(upHeaders), MaxBody: *maxBody})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *listen)
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
		log.Info("mcp-proxy listening", slog.String("addr", ln.Addr().String()), slog.String("upstream", *upstream))
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
