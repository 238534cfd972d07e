package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Detection under load (veritrail bench --rules N, --alert-latency):
// rules of every kind over the load's event types, and marker events
// whose alerts come back to a webhook in this process, timed from the
// marker's acknowledgement.

// benchRules returns n rules of the five kinds in turn, over the types the
// load generator sends, each a little different so none is a copy.
func benchRules(n int) []string {
	kinds := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf(`{"name":"bench-match-%d","kind":"match","condition":"type == \"board.board_deleted\" && actor.id != \"nobody-%d\"","severity":"low"}`, i, i)
		},
		func(i int) string {
			return fmt.Sprintf(`{"name":"bench-threshold-%d","kind":"threshold","condition":"(type.startsWith(\"authentication.\") || type.startsWith(\"auth.\")) && outcome == \"failure\"",
				"group_by":["actor.id"],"threshold":%d,"window":"1m","severity":"medium"}`, i, 20+i)
		},
		func(i int) string {
			return fmt.Sprintf(`{"name":"bench-distinct-%d","kind":"distinct","condition":"type.startsWith(\"board.\")","group_by":["actor.id"],
				"field":"target.id","threshold":%d,"window":"5m","severity":"medium"}`, i, 50+i)
		},
		func(i int) string {
			return fmt.Sprintf(`{"name":"bench-new-value-%d","kind":"new_value","condition":"type == \"agent.tool_call\"","group_by":["agent_id"],
				"field":"tool","lookback":"%dh","severity":"low"}`, i, 24+i)
		},
		func(i int) string {
			return fmt.Sprintf(`{"name":"bench-sequence-%d","kind":"sequence","steps":["type == \"team.member_role_changed\"","type == \"board.board_deleted\""],
				"group_by":["actor.id"],"window":"%dm","severity":"high"}`, i, 10+i)
		},
	}
	out := make([]string, n)
	for i := range out {
		out[i] = kinds[i%len(kinds)](i)
	}
	return out
}

// installRules creates rules through the API.
func installRules(ctx context.Context, url, tok string, bodies []string) error {
	c := &apiClient{base: url, token: tok}
	for _, b := range bodies {
		if err := c.call(ctx, "POST", "/api/v1/rules", []byte(b), nil); err != nil {
			return fmt.Errorf("installing a benchmark rule: %w", err)
		}
	}
	return nil
}

// alertProbe sends marker events and times the alerts they raise: from
// the marker's acknowledgement to the alert's opening (opened_at) and to
// its webhook arriving here.
type alertProbe struct {
	srv    *http.Server
	url    string
	tok    string
	client *http.Client

	mu        sync.Mutex
	acked     map[string]time.Time // marker actor id → acknowledged
	opened    []time.Duration
	delivered []time.Duration
	sent      int
}

const probeSecret = "veritrail-bench-probe-secret"

// startAlertProbe starts the webhook receiver and installs the marker
// rule (one alert per marker). The server must allow loopback
// destinations (bench's own server does).
func startAlertProbe(ctx context.Context, url, tok string) (*alertProbe, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &alertProbe{url: url, tok: tok, acked: map[string]time.Time{}, client: &http.Client{Timeout: 30 * time.Second}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.receive)}
	go p.srv.Serve(l)
	rule := fmt.Sprintf(`{"name":"bench-marker","kind":"match","condition":"type == \"bench.marker\"","dedup_key":"actor.id","severity":"low",
		"routes":[{"type":"webhook","url":"http://%s/alerts","secret":%q}]}`, l.Addr(), probeSecret)
	if err := installRules(ctx, url, tok, []string{rule}); err != nil {
		p.srv.Close()
		return nil, fmt.Errorf("%w (a server of your own must allow loopback destinations: VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true)", err)
	}
	return p, nil
}

func (p *alertProbe) receive(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var b struct {
		Event    string    `json:"event"`
		DedupKey string    `json:"dedup_key"`
		OpenedAt time.Time `json:"opened_at"`
	}
	body, _ := io.ReadAll(r.Body)
	if json.Unmarshal(body, &b) != nil || b.Event != "opened" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.acked[b.DedupKey]; ok {
		delete(p.acked, b.DedupKey)
		p.opened = append(p.opened, max(0, b.OpenedAt.Sub(t)))
		p.delivered = append(p.delivered, max(0, at.Sub(t)))
	}
}

// run sends a marker every interval until ctx ends.
func (p *alertProbe) run(ctx context.Context, runID string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		actor := fmt.Sprintf("marker-%s-%d", runID, n)
		body := fmt.Sprintf(`{"id":"m-%s-%d","type":"bench.marker","actor":{"type":"service","id":%q}}`, runID, n, actor)
		req, _ := http.NewRequestWithContext(ctx, "POST", p.url+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+p.tok)
		resp, err := p.client.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			p.mu.Lock()
			p.acked[actor] = time.Now()
			p.sent++
			p.mu.Unlock()
		}
	}
}

// report waits up to wait for the last alerts and prints the latencies.
func (p *alertProbe) report(stdout io.Writer, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		left := len(p.acked)
		p.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.srv.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(stdout, "  alert latency %d markers, %d alerts: opened p50 %s  p99 %s  max %s; webhook received p50 %s  p99 %s  max %s (from the marker's acknowledgement)\n",
		p.sent, len(p.opened), pct(p.opened, 50), pct(p.opened, 99), pct(p.opened, 100),
		pct(p.delivered, 50), pct(p.delivered, 99), pct(p.delivered, 100))
	if missing := len(p.acked); missing > 0 {
		fmt.Fprintf(stdout, "  alert latency %d markers raised no alert within %s\n", missing, wait)
	}
}
