package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/monitor"
)

// runMonitor follows logs from outside the operator's control (package
// monitor) and delivers alerts to a webhook and by e-mail.
func runMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c monitorConfig
	if err := c.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	var file struct {
		Logs []monitor.Log `json:"logs"`
	}
	b, err := os.ReadFile(c.logs)
	if err != nil {
		return fmt.Errorf("--logs: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("--logs %s: %w (expected {\"logs\": [{\"url\", \"key\", \"token\", \"witnesses\", \"quorum\"}, …]})", c.logs, err)
	}
	guard := netguard.Guard{AllowLoopback: c.allowLoopback}
	if c.webhook != "" {
		if err := guard.CheckURL(ctx, c.webhook); err != nil {
			return fmt.Errorf("--webhook: %w", err)
		}
	}
	log := newLogger(stderr, c.logLevel)
	hooks := guard.Client(15 * time.Second)
	smtp := &mail.Config{URL: c.smtpURL, From: c.emailFrom, CAFile: c.smtpCA}
	alert := func(ctx context.Context, a *monitor.Alert) error {
		body, _ := json.Marshal(a)
		fmt.Fprintf(stdout, "%s\n", body)
		var errs []error
		if c.webhook != "" {
			errs = append(errs, postAlert(ctx, hooks, c.webhook, body))
		}
		if smtp.Enabled() && c.emailTo != "" {
			errs = append(errs, mail.Send(ctx, smtp, &mail.Message{To: c.emailTo,
				Subject: fmt.Sprintf("Veritrail monitor: %s of %s", a.Kind, a.Log),
				Body: fmt.Sprintf("%s\n\nLog: %s (%s)\nAt: %s\n\nKept checkpoint:\n%s\nSeen checkpoint:\n%s\n",
					a.Detail, a.Log, a.URL, a.At.Format(time.RFC3339), a.Kept, a.Seen)}))
		}
		return errors.Join(errs...)
	}
	m, err := monitor.New(monitor.Config{Logs: file.Logs, State: c.state, Interval: c.interval, StallAfter: c.stallAfter,
		Alert: alert, Logger: log, Client: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		return err
	}
	if c.once {
		if alerts := m.Round(ctx); len(alerts) > 0 {
			kinds := make([]string, len(alerts))
			for i, a := range alerts {
				kinds[i] = a.Kind + " (" + a.Log + ")"
			}
			return fmt.Errorf("%d alert(s): %s", len(alerts), strings.Join(kinds, ", "))
		}
		return nil
	}
	m.Run(ctx)
	return nil
}

func postAlert(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
