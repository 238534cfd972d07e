// Package mail sends notification e-mail through an SMTP server given as a
// URL: smtp://[user:password@]host[:port] (STARTTLS when the server offers
// it, required before authenticating) or smtps://… (TLS from the start).
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is how to reach the SMTP server.
type Config struct {
	URL  string // smtp:// or smtps://
	From string // the sender address
	// CAFile, when set, is the PEM file of the CA that signs the server's
	// certificate (a private CA); otherwise the system's roots.
	CAFile string
}

// Enabled reports whether e-mail is configured.
func (c *Config) Enabled() bool { return c != nil && c.URL != "" }

// Message is one e-mail.
type Message struct {
	To      string
	Subject string
	Body    string // plain text
}

// Send delivers a message.
func Send(ctx context.Context, c *Config, m *Message) error {
	if !c.Enabled() {
		return errors.New("mail: no SMTP server configured (VERITRAIL_SMTP_URL)")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return fmt.Errorf("mail: VERITRAIL_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"smtp": "25", "smtps": "465"}[u.Scheme]
	}
	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("mail: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("mail: no certificate in %s", c.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	d := net.Dialer{Timeout: 15 * time.Second}
	addr := net.JoinHostPort(host, port)
	var conn net.Conn
	if u.Scheme == "smtps" {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(time.Minute))
	}
	client, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	defer client.Close()
	if err := client.Hello("veritrail"); err != nil {
		return fmt.Errorf("mail: HELO: %w", err)
	}
	if u.Scheme == "smtp" {
		if ok, _ := client.Extension("STARTTLS"); ok {
			if err := client.StartTLS(tlsConfig); err != nil {
				return fmt.Errorf("mail: STARTTLS: %w", err)
			}
		}
	}
	if u.User != nil {
		if _, isTLS := client.TLSConnectionState(); !isTLS {
			return errors.New("mail: the SMTP server offers no STARTTLS; refusing to send the password in the clear")
		}
		pass, _ := u.User.Password()
		if err := client.Auth(smtp.PlainAuth("", u.User.Username(), pass, host)); err != nil {
			return fmt.Errorf("mail: authentication: %w", err)
		}
	}
	from := c.From
	if from == "" {
		from = "veritrail@localhost"
	}
	if err := client.Mail(from); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := client.Rcpt(m.To); err != nil {
		return fmt.Errorf("mail: RCPT TO %s: %w", m.To, err)
	}
	w, err := client.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	msg := "From: " + from + "\r\n" +
		"To: " + m.To + "\r\n" +
		"Subject: " + mime.QEncoding.Encode("utf-8", m.Subject) + "\r\n" +
		"Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(m.Body, "\n", "\r\n")
	if _, err := w.Write([]byte(msg)); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return client.Quit()
}

// ValidAddress reports whether s looks like one e-mail address (no header
// injection).
func ValidAddress(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, "\r\n<>,; \t") {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.Contains(s[at:], ".")
}
