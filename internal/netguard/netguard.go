// Package netguard decides which outbound destinations Veritrail may reach
// on an operator's or organization's say-so (witnesses, sinks, alert
// routes, OIDC issuers, monitor alert webhooks): a URL given in settings must not turn the server into a probe
// of its own host or of the cloud metadata service. Loopback, link-local,
// unspecified and metadata addresses are refused unless the operator
// allows them (VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true, for tests and
// single-host setups).
//
// The check runs twice: on the URL when it is configured (a clear error
// for the person typing it) and on every connection, after name
// resolution, so a name that resolves elsewhere later is refused too.
// Through an HTTP proxy (HTTP_PROXY, HTTPS_PROXY), which connects in our
// stead, the destination's URL is checked on every request instead, and
// the proxy itself, which the operator chose, is reached whatever its
// address.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Guard checks destinations. The zero Guard refuses the special
// addresses.
type Guard struct {
	// AllowLoopback lets loopback, link-local and metadata addresses
	// through.
	AllowLoopback bool
	// Proxy chooses the HTTP proxy of a request as http.Transport.Proxy
	// does; nil: http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
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

// metadataNames are host names of cloud metadata services: refused as
// written, since off the cloud they do not resolve and the check at
// connect time would not see them until they do.
var metadataNames = []string{"metadata.google.internal", "metadata.goog", "metadata"}

// CheckURL checks an http(s) URL's host: a name of the local host or of a
// metadata service is refused as written (in any case, with or without
// the trailing dot), and every address the name resolves to must be
// allowed.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if g.AllowLoopback {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%s names the loopback interface; set VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true to allow such destinations", u.Hostname())
	}
	if slices.Contains(metadataNames, host) {
		return fmt.Errorf("%s is a cloud metadata service; set VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true to allow such destinations", u.Hostname())
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

// Dialer returns a dialer that refuses, after name resolution, every
// address the guard does not allow: what every outbound connection that
// does not speak HTTP (syslog, Kafka) dials with.
func (g Guard) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
}

// Client returns an HTTP client whose every destination is checked: at
// connect time, or on its URL when a proxy connects for us.
func (g Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: g.Transport()}
}

// Transport returns an HTTP transport (http.DefaultTransport's settings)
// whose every destination is checked as Client's are; callers may change
// its TLS and connection settings, never its Proxy or DialContext.
func (g Guard) Transport() *http.Transport {
	guarded := g.Dialer()
	direct := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	proxyOf := g.Proxy
	if proxyOf == nil {
		proxyOf = http.ProxyFromEnvironment
	}
	var mu sync.Mutex
	proxies := map[string]bool{} // host:port of the proxies chosen so far
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		p, err := proxyOf(r)
		if err != nil || p == nil {
			return p, err
		}
		if err := g.CheckURL(r.Context(), r.URL.String()); err != nil {
			return nil, err
		}
		mu.Lock()
		proxies[proxyAddr(p)] = true
		mu.Unlock()
		return p, nil
	}
	// The transport asks Proxy before it dials, so a proxy's address is
	// known here by then.
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		viaProxy := proxies[addr]
		mu.Unlock()
		if viaProxy {
			return direct.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
	return t
}

// proxyAddr is the host:port the transport dials for a proxy URL.
func proxyAddr(p *url.URL) string {
	if p.Port() != "" {
		return p.Host
	}
	port := map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[strings.ToLower(p.Scheme)]
	return net.JoinHostPort(p.Hostname(), port)
}
