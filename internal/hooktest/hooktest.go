// Package hooktest is a webhook receiver for tests of signed webhooks
// (alert routes, webhook sinks' shape): it checks each request's
// X-Veritrail-Signature with the secret and keeps the JSON bodies that
// carry a good one; the others are answered 401 and counted.
package hooktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/veritrail/veritrail/sink/webhook"
)

// Receiver is a running receiver, closed when the test ends.
type Receiver struct {
	URL    string
	Secret string
	mu     sync.Mutex
	bodies []map[string]any
	bad    int
}

// Start runs a receiver that checks signatures made with secret.
func Start(t testing.TB, secret string) *Receiver {
	r := &Receiver{Secret: secret}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var m map[string]any
	ok := webhook.Verify([]byte(r.Secret), b, req.Header.Get(webhook.SignatureHeader)) && json.Unmarshal(b, &m) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.bodies = append(r.bodies, m)
}

// Bodies are the signed bodies received so far, in order.
func (r *Receiver) Bodies() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// Bad counts the requests refused (bad signature or not JSON).
func (r *Receiver) Bad() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}
