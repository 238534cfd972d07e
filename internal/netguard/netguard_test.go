package netguard

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, c := range []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"169.254.169.254", true},
		{"fe80::1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"100.100.100.200", true},
		{"fd00:ec2::254", true},
		{"10.1.2.3", false},
		{"192.168.1.1", false},
		{"93.184.216.34", false},
		{"2001:db8::1", false},
	} {
		err := Guard{}.CheckAddr(netip.MustParseAddr(c.addr))
		if (err != nil) != c.refused {
			t.Errorf("%s: refused %v, want %v (%v)", c.addr, err != nil, c.refused, err)
		}
		if err := (Guard{AllowLoopback: true}).CheckAddr(netip.MustParseAddr(c.addr)); err != nil {
			t.Errorf("%s with loopback allowed: %v", c.addr, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		url     string
		refused string
	}{
		{"http://127.0.0.1:8080/x", "loopback"},
		{"http://localhost/", "loopback"},
		{"http://[::1]/", "loopback"},
		{"http://169.254.169.254/latest/meta-data", "link-local"},
		{"ftp://example.com/", "not an http(s) URL"},
		{"https://witness.example.com/", ""},
		{"https://10.0.0.5/", ""},
		{"http://192.168.1.10:8080/alerts", ""},
		{"http://LOCALHOST./x", "loopback"},
		{"http://api.localhost/x", "loopback"},
		{"http://[fe80::1]/", "link-local"},
		{"http://[fd00:ec2::254]/", "metadata"},
		{"http://100.100.100.200/", "metadata"},
		{"http://metadata.google.internal/computeMetadata/v1/", "metadata"},
		{"http://Metadata.Google.Internal./computeMetadata/v1/", "metadata"},
		{"http://0.0.0.0/", "unspecified"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"https:///nohost", "not an http(s) URL"},
	} {
		err := Guard{}.CheckURL(ctx, c.url)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: %v", c.url, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: %v, want an error about %q", c.url, err, c.refused)
		case c.refused != "" && c.refused != "not an http(s) URL" && !strings.Contains(err.Error(), "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"):
			t.Errorf("%s: the refusal does not say how to allow it: %v", c.url, err)
		}
		if c.refused != "not an http(s) URL" {
			if err := (Guard{AllowLoopback: true}).CheckURL(ctx, c.url); err != nil {
				t.Errorf("%s with loopback allowed: %v", c.url, err)
			}
		}
	}
}

// TestClientRefusesAtConnect: the check holds after name resolution, so a
// name resolving to loopback is refused when connecting.
func TestClientRefusesAtConnect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	_, err := Guard{}.Client(5 * time.Second).Get("http://localhost" + port)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("connecting to localhost: %v", err)
	}
	resp, err := Guard{AllowLoopback: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestClientThroughProxy: a proxy the operator chose is reached even on
// loopback, and the destinations sent through it are checked by URL.
func TestClientThroughProxy(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "proxied "+r.URL.String())
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	c := Guard{Proxy: http.ProxyURL(pu)}.Client(5 * time.Second)
	resp, err := c.Get("http://203.0.113.7/hook")
	if err != nil {
		t.Fatalf("through a loopback proxy: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "proxied http://203.0.113.7/hook" {
		t.Fatalf("the proxy answered %q", b)
	}
	for _, dest := range []string{"http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data", "http://localhost/"} {
		if _, err := c.Get(dest); err == nil || !strings.Contains(err.Error(), "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS") {
			t.Errorf("%s through the proxy: %v", dest, err)
		}
	}
	if _, err := (Guard{AllowLoopback: true, Proxy: http.ProxyURL(pu)}).Client(5 * time.Second).Get("http://127.0.0.1:9/x"); err != nil {
		t.Errorf("loopback through the proxy when allowed: %v", err)
	}
}

// TestDialerRefusesAtConnect: a name that resolves to loopback
// ("localhost") is refused by the dialer after resolution, and reached
// when the operator allows it.
func TestDialerRefusesAtConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := net.JoinHostPort("localhost", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	if c, err := (Guard{}).Dialer().DialContext(context.Background(), "tcp4", addr); err == nil || !strings.Contains(err.Error(), "loopback") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dialing %s: %v, want a refusal naming loopback", addr, err)
	}
	c, err := (Guard{AllowLoopback: true}).Dialer().DialContext(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatalf("dialing %s while allowed: %v", addr, err)
	}
	c.Close()
}
