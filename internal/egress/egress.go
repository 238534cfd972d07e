// Package egress decides which addresses the server may connect to on
// behalf of an organization: alert routes, sinks, witnesses, OIDC issuers.
// A URL an administrator typed must not reach the server's own loopback
// services, link-local addresses or a cloud provider's metadata endpoint
// (169.254.169.254, fd00:ec2::254, …), which would hand out the host's
// credentials. The check runs twice: on the URL when it is configured (a
// clear error for the administrator) and on every address actually dialled
// (a name that resolves, or later re-resolves, to a refused address is
// refused too).
//
// Tests and single-machine setups allow loopback destinations with
// VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true (Policy.AllowLoopback).
package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// EnvAllowLoopback is the variable that allows loopback, link-local and
// metadata destinations.
const EnvAllowLoopback = "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS"

// Policy says which destinations are allowed.
type Policy struct {
	// AllowLoopback allows every address (tests, one-machine setups).
	AllowLoopback bool
}

// FromEnv is the policy VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS sets.
func FromEnv() Policy {
	return Policy{AllowLoopback: strings.EqualFold(strings.TrimSpace(os.Getenv(EnvAllowLoopback)), "true")}
}

// metadata are cloud metadata addresses that are not link-local.
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// metadataNames are host names of metadata services.
var metadataNames = []string{"metadata.google.internal", "metadata.goog", "metadata"}

// CheckAddr refuses a loopback, link-local, unspecified or metadata
// address unless the policy allows them.
func (p Policy) CheckAddr(a netip.Addr) error {
	if p.AllowLoopback {
		return nil
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%s is a link-local address (cloud metadata lives there)", a)
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", a)
	}
	for _, m := range metadata {
		if a == m {
			return fmt.Errorf("%s is a cloud metadata address", a)
		}
	}
	return nil
}

// CheckHost checks a host name or address literal as written: a literal is
// checked as CheckAddr does, and names of the local host or of metadata
// services are refused. Other names are checked when dialled (Dialer).
func (p Policy) CheckHost(host string) error {
	if p.AllowLoopback {
		return nil
	}
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return p.CheckAddr(a)
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%s is the local host", host)
	}
	for _, m := range metadataNames {
		if h == m {
			return fmt.Errorf("%s is a cloud metadata service", host)
		}
	}
	return nil
}

// CheckURL checks an http(s) URL's scheme and host. The error says what
// is wrong and how to allow it where that is possible.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("the scheme must be https or http, not %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("the URL has no host")
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not accepted; use the destination's secret setting")
	}
	if err := p.CheckHost(u.Hostname()); err != nil {
		return refused(err)
	}
	return nil
}

func refused(err error) error {
	return fmt.Errorf("refused destination: %v (set %s=true to allow it)", err, EnvAllowLoopback)
}

// Control is a net.Dialer Control function that refuses connections to
// addresses the policy refuses: it sees the address actually dialled,
// after name resolution.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	if p.AllowLoopback {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused(fmt.Errorf("%s is not an address", address))
	}
	if err := p.CheckAddr(ap.Addr()); err != nil {
		return refused(err)
	}
	return nil
}

// Dialer returns a dialer that enforces the policy on every connection.
func (p Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.Control}
}

// HTTPClient returns a client for outbound requests under the policy:
// every dialled address checked, no proxy (a proxy would dial for us,
// unchecked), no redirects (they would carry the request and its
// credentials elsewhere), and timeout as the whole request's limit.
func (p Policy) HTTPClient(timeout time.Duration) *http.Client {
	d := p.Dialer(10 * time.Second)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
