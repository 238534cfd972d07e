// Package netguard decides which outbound destinations Veritrail may reach
// on an operator's or organization's say-so (witnesses, monitor alert
// webhooks): a URL given in settings must not turn the server into a probe
// of its own host or of the cloud metadata service. Loopback, link-local,
// unspecified and metadata addresses are refused unless the operator
// allows them (VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true, for tests and
// single-host setups).
//
// The check runs twice: on the URL when it is configured (a clear error
// for the person typing it) and on every connection, after name
// resolution, so a name that resolves elsewhere later is refused too.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Guard checks destinations. The zero Guard refuses the special
// addresses.
type Guard struct {
	// AllowLoopback lets loopback, link-local and metadata addresses
	// through.
	AllowLoopback bool
}

// metadata are cloud metadata service addresses that are not link-local.
var metadata = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// CheckAddr refuses an address the guard does not allow.
func (g Guard) CheckAddr(a netip.Addr) error {
	if g.AllowLoopback {
		return nil
	}
	a = a.Unmap()
	what := ""
	switch {
	case a.IsLoopback():
		what = "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		what = "a link-local address (the cloud metadata service lives there)"
	case a.IsUnspecified():
		what = "the unspecified address"
	}
	for _, m := range metadata {
		if a == m {
			what = "a cloud metadata address"
		}
	}
	if what != "" {
		return fmt.Errorf("%s is %s; set VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true to allow such destinations", a, what)
	}
	return nil
}

// CheckURL checks an http(s) URL's host: every address it resolves to
// must be allowed.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if g.AllowLoopback {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" || len(host) > 10 && host[len(host)-10:] == ".localhost" {
		return fmt.Errorf("%s names the loopback interface; set VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true to allow such destinations", host)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // unresolvable now: the connection-time check decides
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("%s resolves to %w", host, err)
		}
	}
	return nil
}

// Control is a net.Dialer Control function: it refuses a connection to an
// address the guard does not allow, after name resolution.
func (g Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: %q: %w", address, err)
	}
	return g.CheckAddr(ap.Addr())
}

// Client returns an HTTP client whose every connection is checked.
func (g Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	return &http.Client{Timeout: timeout, Transport: t}
}
