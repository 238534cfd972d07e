package http

import (
	"errors"
	"io"
	"net/http"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/otlp"
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

func (s *Server) otlpLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	return s.otlpExport(w, r, p, signalLogs)
}

func (s *Server) otlpTraces(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	return s.otlpExport(w, r, p, signalTraces)
}

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

// otlpExport answers an export request of a signal; its errors are
// answered as google.rpc.Status in the request's encoding (writeOTLP).
func (s *Server) otlpExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal, signal string) error {
	encoding, err := otlp.Encoding(r.Header.Get("Content-Type"))
	if err != nil {
		return veritrail.Errorf(veritrail.EUnsupported, "%v", err)
	}
	body, err := s.readOTLPBody(w, r)
	if err != nil {
		return err
	}
	st, err := s.orgSettings(r.Context(), p.OrgID)
	if err != nil {
		return withCause(err, veritrail.Errorf(veritrail.EUnavailable, "settings could not be read; retry"))
	}
	opts := otlp.Options{Now: s.now().UTC(), Limits: s.cfg.Limits, KeepAttachmentBytes: st.KeepAttachmentBytes, Fallback: actorOf(p)}
	var res *otlp.Result
	switch signal {
	case signalLogs:
		req, err := otlp.DecodeLogs(body, encoding)
		if err != nil {
			return veritrail.Errorf(veritrail.EInvalid, "%v", err)
		}
		res = otlp.MapLogs(req, opts)
	default:
		req, err := otlp.DecodeTraces(body, encoding)
		if err != nil {
			return veritrail.Errorf(veritrail.EInvalid, "%v", err)
		}
		res = otlp.MapTraces(req, opts)
	}
	if len(res.Events) > s.cfg.Limits.MaxBatchEvents {
		return veritrail.Errorf(veritrail.ETooLarge, "more than %d records in one request; send smaller batches", s.cfg.Limits.MaxBatchEvents)
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
		return withCause(err, veritrail.Errorf(veritrail.EUnavailable, "internal error; retry"))
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
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(len(kept)))
		return withCause(err, veritrail.Errorf(veritrail.EUnavailable, "the records could not be stored; retry: %s", veritrail.ErrorMessage(err)))
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
	return nil
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
