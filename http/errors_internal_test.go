package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/otlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestErrorTable: every error code has its row, and each dialect answers a
// code with the row's status and codes.
func TestErrorTable(t *testing.T) {
	if len(errorTable) != len(veritrail.ErrorCodes) {
		t.Errorf("the table has %d rows for %d codes", len(errorTable), len(veritrail.ErrorCodes))
	}
	for _, code := range veritrail.ErrorCodes {
		row, ok := errorTable[code]
		if !ok {
			t.Errorf("code %s has no row in the error table", code)
			continue
		}
		if row.status < 400 || row.status > 599 || row.miro == "" || row.grpc == 0 {
			t.Errorf("code %s: incomplete row %+v", code, row)
		}
		err := veritrail.Errorf(code, "message of %s", code)
		if code == veritrail.EInternal {
			err = veritrail.Errorf(code, "internal error; the server log has the details")
		}
		if st := StatusFor(err); st != row.status {
			t.Errorf("StatusFor(%s) = %d, want %d", code, st, row.status)
		}

		rec := httptest.NewRecorder()
		writeNative(rec, httptest.NewRequest("GET", "/", nil), err)
		var native errorBody
		if json.Unmarshal(rec.Body.Bytes(), &native); rec.Code != row.status || native.Error.Code != code || native.Error.Message != err.Message {
			t.Errorf("native %s: %d %s", code, rec.Code, rec.Body)
		}

		rec = httptest.NewRecorder()
		writeMiro(rec, httptest.NewRequest("GET", "/", nil), err)
		var miro map[string]any
		json.Unmarshal(rec.Body.Bytes(), &miro)
		wantMiro := row.miro
		if code == veritrail.EUnauthorized {
			wantMiro = "invalidToken" // the message does not say the token is missing
		}
		if rec.Code != row.status || miro["status"] != float64(row.status) || miro["code"] != wantMiro || miro["type"] != "error" || miro["message"] != err.Message {
			t.Errorf("Miro %s: %d %s", code, rec.Code, rec.Body)
		}

		for _, enc := range []string{otlp.JSON, otlp.Protobuf} {
			rec = httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/v1/logs", nil)
			req.Header.Set("Content-Type", enc)
			writeOTLP(rec, req, err)
			st := decodeStatus(t, rec)
			if rec.Code != row.status || st.Code != int32(row.grpc) || st.Message != err.Message || rec.Header().Get("Content-Type") != enc {
				t.Errorf("OTLP %s (%s): %d %v", code, enc, rec.Code, st)
			}
		}
	}
}

func decodeStatus(t *testing.T, rec *httptest.ResponseRecorder) *spb.Status {
	t.Helper()
	st := &spb.Status{}
	var err error
	if rec.Header().Get("Content-Type") == otlp.Protobuf {
		err = proto.Unmarshal(rec.Body.Bytes(), st)
	} else {
		err = protojson.Unmarshal(rec.Body.Bytes(), st)
	}
	if err != nil {
		t.Fatalf("not a google.rpc.Status: %v: %q", err, rec.Body)
	}
	return st
}

// LogBuffer keeps what a server logs as JSON, for this package's tests
// (exported to the external ones too).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Logger is a logger at debug level writing into l.
func (l *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Take returns the records at level error and the whole log so far, and
// empties the buffer.
func (l *LogBuffer) Take(t testing.TB) ([]map[string]any, string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	all := l.buf.String()
	l.buf.Reset()
	var errs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(all), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "ERROR" {
			errs = append(errs, m)
		}
	}
	return errs, all
}

// TestAdapter runs handlers through the adapter in each dialect: an
// internal error is logged exactly once, with the route and never the
// query string, and answered generically; coded errors are answered as
// they are and not logged as errors.
func TestAdapter(t *testing.T) {
	const secret = "disk-on-fire-7f3a"
	dialects := map[string]dialect{"native": writeNative, "miro": writeMiro, "otlp": writeOTLP}
	for _, tc := range []struct {
		name      string
		h         publicHandler
		status    int
		logged    string // the error record's err; "" for none
		shown     string // in the body
		notShown  string // never in the body
		keepsBody string // what a handler wrote before failing
	}{
		{name: "internal", h: func(w http.ResponseWriter, r *http.Request) error { return errors.New(secret) },
			status: 500, logged: secret, shown: "internal error", notShown: secret},
		{name: "wrapped internal", h: func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("reading: %w", errors.New(secret))
		},
			status: 500, logged: "reading: " + secret, shown: "internal error", notShown: secret},
		{name: "panic", h: func(w http.ResponseWriter, r *http.Request) error { panic(secret) },
			status: 500, logged: "handler panic: " + secret, shown: "internal error", notShown: secret},
		{name: "hidden cause", h: func(w http.ResponseWriter, r *http.Request) error {
			return withCause(errors.New(secret), veritrail.Errorf(veritrail.EUnavailable, "not recorded; retry"))
		}, status: 503, logged: secret, shown: "not recorded; retry", notShown: secret},
		{name: "coded", h: func(w http.ResponseWriter, r *http.Request) error {
			return veritrail.Errorf(veritrail.EInvalid, "parameter limit: must be 1 to 1000")
		}, status: 400, shown: "parameter limit"},
		{name: "after the answer started", h: func(w http.ResponseWriter, r *http.Request) error {
			w.Write([]byte("id,seq\n"))
			return errors.New(secret)
		}, status: 200, logged: secret, notShown: "error", keepsBody: "id,seq\n"},
		{name: "coded after the answer started", h: func(w http.ResponseWriter, r *http.Request) error {
			w.Write([]byte("id,seq\n"))
			return veritrail.Errorf(veritrail.EUnavailable, "%s", secret)
		}, status: 200, logged: secret, notShown: "error", keepsBody: "id,seq\n"},
	} {
		for name, d := range dialects {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				logs := &LogBuffer{}
				s := New(Config{Logger: logs.Logger()})
				defer s.Shutdown(t.Context())
				s.mux.Handle("POST /test/fail", s.serve("test.fail", d, tc.h))
				req := httptest.NewRequest("POST", "/test/fail?q=alice%40acme.example", nil)
				req.Header.Set("Content-Type", otlp.JSON)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)

				body := rec.Body.String()
				if rec.Code != tc.status || !strings.Contains(body, tc.shown) || (tc.notShown != "" && strings.Contains(body, tc.notShown)) {
					t.Errorf("answer %d %q, want %d showing %q", rec.Code, body, tc.status, tc.shown)
				}
				if tc.keepsBody != "" && body != tc.keepsBody {
					t.Errorf("body %q, want only what the handler wrote", body)
				}
				errs, all := logs.Take(t)
				if strings.Contains(all, "alice") || strings.Contains(all, "q=") {
					t.Errorf("the query string was logged: %s", all)
				}
				if tc.logged == "" {
					if len(errs) != 0 || strings.Contains(all, `"err"`) {
						t.Errorf("a %d was logged as an error: %s", tc.status, all)
					}
					return
				}
				if n := strings.Count(all, secret); len(errs) != 1 || n != 1 {
					t.Fatalf("%d error records, the error %d times, want 1 and 1: %s", len(errs), n, all)
				}
				e := errs[0]
				if e["err"] != tc.logged || e["route"] != "test.fail" || e["method"] != "POST" || e["path"] != "/test/fail" || e["status"] != float64(tc.status) {
					t.Errorf("error record %v", e)
				}
			})
		}
	}
}

// TestUnroutedAnswers: 404 and 405 are answered through the adapter, with
// the codes of the table.
func TestUnroutedAnswers(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	defer s.Shutdown(t.Context())
	for _, tc := range []struct {
		method, path string
		code         string
		allow        string
	}{
		{"DELETE", "/api/v1/events", veritrail.EMethodNotAllowed, "GET, POST"},
		{"PUT", "/api/v1/sinks/snk_1", veritrail.EMethodNotAllowed, "GET, PATCH, DELETE"},
		{"GET", "/api/v2/nothing", veritrail.ENotFound, ""},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var b errorBody
		json.Unmarshal(rec.Body.Bytes(), &b)
		if rec.Code != errorTable[tc.code].status || b.Error.Code != tc.code || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %v %s", tc.method, tc.path, rec.Code, rec.Header(), rec.Body)
		}
	}
	if !slices.Contains(veritrail.ErrorCodes, veritrail.EExpired) || errorTable[veritrail.EExpired].status != http.StatusGone {
		t.Errorf("expired is not 410 in the table")
	}
}

// TestClientGone: a request whose client went away (its context canceled)
// is neither answered 500 nor logged as an error, however the handler
// passes the cancellation on; a canceled context of the server's own
// making stays an internal error.
func TestClientGone(t *testing.T) {
	canceled := fmt.Errorf("reading the stats: %w", context.Canceled)
	broken := fmt.Errorf("streaming the export: %w", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)})
	reset := fmt.Errorf("streaming the export: %w", os.NewSyscallError("write", syscall.ECONNRESET))
	for _, tc := range []struct {
		name     string
		gone     bool  // the request's context is canceled
		started  bool  // the handler wrote its answer's head first
		err      error // what the handler returns
		status   int
		errorLog bool
	}{
		{"client gone", true, false, canceled, statusClientClosedRequest, false},
		{"server's own cancellation", false, false, canceled, 500, true},
		// A stream the client stopped reading (an export, a live tail):
		// the write fails with a broken pipe or a reset, which is the
		// client's doing, not the server's error.
		{"stream cut by the client (broken pipe)", false, true, broken, 200, false},
		{"stream cut by the client (reset)", false, true, reset, 200, false},
		{"stream failed on the server", false, true, errors.New("reading the next page: disk I/O error"), 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &LogBuffer{}
			s := New(Config{Logger: logs.Logger()})
			defer s.Shutdown(t.Context())
			s.mux.Handle("GET /test/gone", s.serve("test.gone", writeNative, func(w http.ResponseWriter, r *http.Request) error {
				if tc.started {
					w.WriteHeader(http.StatusOK)
				}
				return tc.err
			}))
			ctx, cancel := context.WithCancel(context.Background())
			if tc.gone {
				cancel()
			} else {
				defer cancel()
			}
			req := httptest.NewRequest("GET", "/test/gone", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			errs, all := logs.Take(t)
			if (len(errs) != 0) != tc.errorLog {
				t.Errorf("error records %d, want any: %v: %s", len(errs), tc.errorLog, all)
			}
			if !strings.Contains(all, fmt.Sprintf(`"status":%d`, tc.status)) {
				t.Errorf("the request line does not say %d: %s", tc.status, all)
			}
		})
	}
}
