package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/sqlite"
)

// TestRevocationReachesEveryNode: servers cache tokens, yet a token
// revoked elsewhere is refused at once: on PostgreSQL through another
// node's API (two servers on one database), on SQLite by another process
// (veritrail token revoke beside a running server, which opens the store
// without workers). Senders keep using the token while it is revoked, on
// both servers on PostgreSQL: every request that started after the
// revocation returned is refused, reads and writes alike, for tokens that
// name their organization and for tokens of the older form.
func TestRevocationReachesEveryNode(t *testing.T) {
	ctx := context.Background()
	var node, other veritrail.Store
	if onPostgres {
		url := pgtest.New(t)
		var err error
		if node, err = postgres.Open(ctx, url, postgres.Options{}); err != nil {
			t.Fatal(err)
		}
		if other, err = postgres.Open(ctx, url, postgres.Options{}); err != nil {
			t.Fatal(err)
		}
	} else {
		dir := t.TempDir()
		var err error
		if node, err = sqlite.Open(ctx, dir, sqlite.Options{}); err != nil {
			t.Fatal(err)
		}
		if other, err = sqlite.Open(ctx, dir, sqlite.Options{NoWorkers: true}); err != nil {
			t.Fatal(err)
		}
	}
	api := vhttp.New(vhttp.Config{Store: node})
	srv := httptest.NewServer(api)
	otherAPI := vhttp.New(vhttp.Config{Store: other})
	otherSrv := httptest.NewServer(otherAPI)
	t.Cleanup(func() {
		srv.Close()
		otherSrv.Close()
		api.Shutdown(ctx)
		otherAPI.Shutdown(ctx)
		other.Close()
		node.Close()
	})
	org, err := node.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	newToken := func(role string, named bool) (id, secret string) {
		secret = veritrail.NewTokenSecret()
		if named {
			secret = veritrail.NewOrgTokenSecret(org.ID)
		}
		lookup, hash := veritrail.HashToken(secret)
		id = veritrail.NewTokenID()
		if err := node.CreateToken(ctx, &veritrail.Token{ID: id, OrgID: org.ID, Role: role, Lookup: lookup, Hash: hash}); err != nil {
			t.Fatal(err)
		}
		return id, secret
	}
	_, owner := newToken(veritrail.RoleOwner, true)
	request := func(base, method, path, token, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const event = `{"type":"auth.login","actor":{"type":"user","id":"u1"}}`
	senders := []string{srv.URL}
	if onPostgres {
		senders = append(senders, otherSrv.URL)
	}
	for round, kind := range []string{"write", "read", "write (older token form)", "read (older token form)"} {
		id, secret := newToken(veritrail.RoleOwner, !strings.HasSuffix(kind, "form)"))
		method, path, body := "POST", "/api/v1/events", event
		if strings.HasPrefix(kind, "read") {
			method, path, body = "GET", "/api/v1/events?limit=1", ""
		}
		for _, base := range senders { // each server caches the token
			if got := request(base, method, path, secret, body); got != http.StatusOK {
				t.Fatalf("%s before the revocation: %d", kind, got)
			}
		}
		var revoked atomic.Int64 // unix ns when the revocation returned
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var after, refused atomic.Int64
		for i := range 4 {
			base := senders[i%len(senders)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					started := time.Now().UnixNano()
					code := request(base, method, path, secret, body)
					if r := revoked.Load(); r != 0 && started > r {
						after.Add(1)
						if code != http.StatusUnauthorized {
							t.Errorf("%s to %s started %s after the revocation returned: %d, want 401", kind, base, time.Duration(started-r), code)
						} else {
							refused.Add(1)
						}
					}
				}
			}()
		}
		time.Sleep(100 * time.Millisecond)
		if onPostgres {
			if got := request(otherSrv.URL, "DELETE", "/api/v1/tokens/"+id, owner, ""); got != http.StatusNoContent {
				t.Fatalf("revoke through the other node: %d", got)
			}
		} else if err := other.RevokeToken(ctx, org.ID, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		revoked.Store(time.Now().UnixNano())
		for deadline := time.Now().Add(10 * time.Second); after.Load() < 8 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if after.Load() == 0 {
			t.Fatalf("round %d: no request was sent after the revocation", round)
		}
		t.Logf("%s: %d requests after the revocation, all refused", kind, refused.Load())
	}
}
