package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"net/http"
	"net/url"
	"strings"
	"time"
)

// Helpers for destinations: TLS from a sink's settings, an HTTP peer that
// posts a batch's body, and the classification of failures into retry and
// give up.

// TLSConfig returns the TLS settings of c: the system roots, or the
// private CA of ca_file; server_name overrides the name verified.
func TLSConfig(c *Config) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := readCAFile(c.CAFile)
		if err != nil {
			return nil, Permanentf("ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, Permanentf("ca_file %s: no certificate could be read", c.CAFile)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// HTTPTransport is the transport of s's HTTP destinations: its TLS
// settings, and every connection checked by s.Outbound.
func HTTPTransport(s *Settings) (*http.Transport, error) {
	t, err := TLSConfig(s.Config)
	if err != nil {
		return nil, err
	}
	tr := s.Outbound.Transport()
	tr.TLSClientConfig = t
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 2
	tr.IdleConnTimeout = 90 * time.Second
	tr.ForceAttemptHTTP2 = true
	return tr, nil
}

// HTTPPeer is what the HTTP destinations (webhook, splunk, datadog) share:
// a client for one URL that POSTs JSON bodies. Embedded, it gives a
// destination its Close.
type HTTPPeer struct {
	url    string
	client *http.Client
}

// NewHTTPPeer returns a peer at url with s's TLS settings, every
// connection checked by s.Outbound, and no redirects (a redirect would
// carry the batch and its credentials elsewhere).
func NewHTTPPeer(s *Settings, url string) (*HTTPPeer, error) {
	tr, err := HTTPTransport(s)
	if err != nil {
		return nil, err
	}
	return &HTTPPeer{url: url, client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}, nil
}

// Post sends body as JSON, with the headers given as name, value pairs
// besides Content-Type and User-Agent, and returns nil once the peer
// acknowledged it (2xx); otherwise an error classified by NetError (no
// answer) or httpResult (the status).
func (p *HTTPPeer) Post(ctx context.Context, body io.Reader, header ...string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, body)
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veritrail-forwarder")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return NetError(err)
	}
	return httpResult(resp)
}

// Close releases the peer's idle connections.
func (p *HTTPPeer) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// httpResult turns a response into nil (2xx), a retryable error (408, 429,
// 5xx) or a Permanent one (other statuses), quoting the start of the body.
// It reads and closes the body.
func httpResult(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	err := fmt.Errorf("HTTP %d from the destination: %s", resp.StatusCode, truncate(msg, 200))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return err
	}
	return Permanent(err)
}

// NetError classifies a transport error: certificate problems are
// Permanent (they do not fix themselves), the rest (refused, reset,
// timeouts) are retried.
func NetError(err error) error {
	// Keep the URL out of the message: its query may carry a token.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
		return Permanent(err)
	}
	return err
}
