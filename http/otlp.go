package http

import (
	"errors"
	"io"
	"net/http"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/otlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP/HTTP receivers (POST /v1/logs, POST /v1/traces) on the main
// listener, authenticated like the API (Authorization: Bearer, scope
// events:write). They answer as OTLP/HTTP requires, not with the native
// error body: 200 with an Export*ServiceResponse (partial_success when
// records were not recorded) in the request's encoding; failures carry a
// google.rpc.Status; 400, 401, 403, 413 and 415 are not retryable; 429 and
// 503 are, with Retry-After.

const (
	signalLogs   = "logs"
	signalTraces = "traces"
)

func (s *Server) otlpLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	s.otlpExport(w, r, p, signalLogs)
}

func (s *Server) otlpTraces(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	s.otlpExport(w, r, p, signalTraces)
}

// grpcCode maps HTTP statuses to google.rpc.Code values for Status bodies.
func grpcCode(status int) int32 {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	}
	return 13 // INTERNAL
}

// writeOTLPStatus answers a failure with a google.rpc.Status in the given
// encoding (JSON when the request's is unknown), with err's HTTP status.
func writeOTLPStatus(w http.ResponseWriter, encoding string, err error) {
	status := StatusFor(err)
	st := &spb.Status{Code: grpcCode(status), Message: veritrail.ErrorMessage(err)}
	var b []byte
	if encoding == otlp.Protobuf {
		b, _ = proto.Marshal(st)
	} else {
		encoding = otlp.JSON
		b, _ = protojson.Marshal(st)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="veritrail"`)
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", encoding)
	w.WriteHeader(status)
	w.Write(b)
}

// writeOTLPError answers authentication and rate-limit failures.
func writeOTLPError(w http.ResponseWriter, err error) { writeOTLPStatus(w, otlp.JSON, err) }

// readOTLPBody reads the body, gunzipping it, within the body limit (after
// decompression).
func (s *Server) readOTLPBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := s.requestBody(w, r)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	limit := s.cfg.Limits.MaxBodyBytes
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(b)) > limit {
		return nil, veritrail.Errorf(veritrail.ETooLarge, "the body is over %d bytes after decompression; send smaller batches", limit)
	}
	return b, nil
}

func (s *Server) otlpExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal, signal string) {
	encoding, err := otlp.Encoding(r.Header.Get("Content-Type"))
	if err != nil {
		writeOTLPStatus(w, otlp.JSON, veritrail.Errorf(veritrail.EUnsupported, "%v", err))
		return
	}
	body, err := s.readOTLPBody(w, r)
	if err != nil {
		writeOTLPStatus(w, encoding, err)
		return
	}
	st, err := s.orgSettings(r.Context(), p.OrgID)
	if err != nil {
		s.internal(r, err)
		writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.EUnavailable, "settings could not be read; retry"))
		return
	}
	opts := otlp.Options{Now: s.now().UTC(), Limits: s.cfg.Limits, KeepAttachmentBytes: st.KeepAttachmentBytes, Fallback: actorOf(p)}
	var res *otlp.Result
	switch signal {
	case signalLogs:
		req, err := otlp.DecodeLogs(body, encoding)
		if err != nil {
			writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.EInvalid, "%v", err))
			return
		}
		res = otlp.MapLogs(req, opts)
	default:
		req, err := otlp.DecodeTraces(body, encoding)
		if err != nil {
			writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.EInvalid, "%v", err))
			return
		}
		res = otlp.MapTraces(req, opts)
	}
	if len(res.Events) > s.cfg.Limits.MaxBatchEvents {
		writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.ETooLarge, "more than %d records in one request; send smaller batches", s.cfg.Limits.MaxBatchEvents))
		return
	}
	rejected := int64(res.Skipped + res.Invalid)
	reasons := res.Reasons
	kept := res.Events[:0:0]
	for _, e := range res.Events {
		if ok, why := st.Admits(e); !ok {
			rejected++
			reasons = appendOnce(reasons, why)
			continue
		}
		e.Prepare()
		kept = append(kept, e)
	}
	if err := applyDLP(st, kept); err != nil {
		s.internal(r, err)
		writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.EUnavailable, "internal error; retry"))
		return
	}
	// A record whose id is already stored with different content (an
	// exporter resending after a settings change) is refused alone.
	for len(kept) > 0 {
		_, err = s.store.Append(r.Context(), p.OrgID, kept)
		var ve *veritrail.Error
		if err != nil && errors.As(err, &ve) && ve.Code == veritrail.EConflict && ve.Index >= 0 && ve.Index < len(kept) {
			kept = append(kept[:ve.Index:ve.Index], kept[ve.Index+1:]...)
			rejected++
			reasons = appendOnce(reasons, "a record with the same id was stored before with different content")
			continue
		}
		break
	}
	if err != nil {
		s.internal(r, err)
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(len(kept)))
		writeOTLPStatus(w, encoding, veritrail.Errorf(veritrail.EUnavailable, "the records could not be stored; retry: %s", veritrail.ErrorMessage(err)))
		return
	}
	s.metrics.IngestEvents.WithLabelValues("stored").Add(float64(len(kept)))
	if rejected > 0 {
		s.metrics.IngestEvents.WithLabelValues("not_recorded").Add(float64(rejected))
	}
	s.metrics.IngestRequests.WithLabelValues("200").Inc()
	msg := strings.Join(reasons, "; ")
	var out []byte
	if signal == signalLogs {
		out = otlp.EncodeLogsResponse(encoding, rejected, msg)
	} else {
		out = otlp.EncodeTracesResponse(encoding, rejected, msg)
	}
	w.Header().Set("Content-Type", encoding)
	w.Write(out)
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
