package egress

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	strict := Policy{}
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.slack.com/services/T/B/x", true},
		{"https://10.1.2.3/in", true}, // private networks are where on-premises tools live
		{"http://192.168.1.10:8080/alerts", true},
		{"https://127.0.0.1/x", false},
		{"http://[::1]:8080/", false},
		{"http://localhost/x", false},
		{"http://LOCALHOST./x", false},
		{"http://api.localhost/x", false},
		{"http://169.254.169.254/latest/meta-data/", false},
		{"http://[fe80::1]/", false},
		{"http://[fd00:ec2::254]/", false},
		{"http://100.100.100.200/", false},
		{"http://metadata.google.internal/computeMetadata/v1/", false},
		{"http://0.0.0.0/", false},
		{"http://[::ffff:127.0.0.1]/", false},
		{"ftp://example.com/", false},
		{"https://user:pw@example.com/", false},
		{"https:///nohost", false},
	} {
		err := strict.CheckURL(c.url)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", c.url, err, c.ok)
		}
		if err != nil && c.ok == false && strings.Contains(c.url, "127.0.0.1") && !strings.Contains(err.Error(), EnvAllowLoopback) {
			t.Errorf("the refusal does not say how to allow it: %v", err)
		}
	}
	if err := (Policy{AllowLoopback: true}).CheckURL("http://127.0.0.1:9/x"); err != nil {
		t.Errorf("allowed loopback refused: %v", err)
	}
}

// TestDialRefused: a name that resolves to a refused address is refused
// when dialled, whatever the URL said.
func TestDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	u := "http://localtest.invalid:" + port + "/"
	c := Policy{}.HTTPClient(5 * time.Second)
	tr := c.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		// The name "resolves" to loopback.
		return dial(ctx, network, "127.0.0.1:"+port)
	}
	if _, err := c.Get(u); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dialling loopback: %v", err)
	}
	allowed := Policy{AllowLoopback: true}.HTTPClient(5 * time.Second)
	resp, err := allowed.Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed: %v", err)
	}
	resp.Body.Close()
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvAllowLoopback, "true")
	if !FromEnv().AllowLoopback {
		t.Fatal("true not read")
	}
	t.Setenv(EnvAllowLoopback, "")
	if FromEnv().AllowLoopback {
		t.Fatal("empty read as true")
	}
}
