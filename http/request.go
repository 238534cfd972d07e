package http

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// What handlers read from a request (bodies, parameters) and the URLs they
// build from it. Errors name the body or parameter and are coded.

// decodeBody reads a small JSON request body strictly.
func decodeBody(r *http.Request, v any) error {
	const max = 64 << 10
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return bodyError(err)
	}
	if len(b) > max {
		return veritrail.Errorf(veritrail.ETooLarge, "request body: larger than %d bytes", max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if dec.More() {
			return veritrail.Errorf(veritrail.EInvalidJSON, "request body: one JSON object expected, more follows at byte %d", dec.InputOffset())
		}
		return nil
	case errors.Is(err, io.EOF):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: the JSON ends early, at byte %d", len(b))
	case errors.As(err, &syntax):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: not valid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		return veritrail.Errorf(veritrail.EInvalid, "request body: field %s: %s expected, got %s (byte %d)", typ.Field, typ.Type, typ.Value, typ.Offset)
	}
	return veritrail.Errorf(veritrail.EInvalid, "request body: %v", strings.TrimPrefix(err.Error(), "json: "))
}

// requestBody is r's body, gunzipped when its Content-Encoding says so. The
// raw body may not exceed the decompressed limit (Limits.MaxBodyBytes, the
// reader's to enforce) by much either.
func (s *Server) requestBody(w http.ResponseWriter, r *http.Request) (io.ReadCloser, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes+1<<20)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			// Not even a gzip header (io.ErrUnexpectedEOF when shorter).
			return nil, veritrail.Errorf(veritrail.EInvalid, "the gzip body is corrupt: %v", err)
		}
		return zr, nil
	default:
		return nil, veritrail.Errorf(veritrail.EUnsupported, "Content-Encoding %q is not supported; send identity or gzip", enc)
	}
}

// bodyError classifies an error met while reading a request body.
func bodyError(err error) error {
	var ve *veritrail.Error
	if errors.As(err, &ve) {
		return ve
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return veritrail.Errorf(veritrail.ERequestTimeout, "the request body did not arrive in time; send it faster, or in smaller requests")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return veritrail.Errorf(veritrail.ETooLarge, "the request body is over %d bytes; split it into smaller requests", mbe.Limit)
	}
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || strings.Contains(err.Error(), "flate") {
		return veritrail.Errorf(veritrail.EInvalid, "the gzip body is corrupt: %v", err)
	}
	return veritrail.Errorf(veritrail.EInvalid, "the request body could not be read: %v", err)
}

// intParam parses a non-negative integer parameter; present reports
// whether it was given.
func intParam(r *http.Request, name string) (v int64, present bool, err error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, true, veritrail.Errorf(veritrail.EInvalid, "parameter %s: must be a non-negative integer, got %q", name, s)
	}
	return v, true, nil
}

// linkWith is the request's absolute URL with one parameter replaced (the
// cursor of the next page, or an offset).
func (s *Server) linkWith(r *http.Request, name, value string) string {
	vals := r.URL.Query()
	vals.Set(name, value)
	return s.baseURL(r) + r.URL.Path + "?" + vals.Encode()
}

// baseURL is the server's URL as its clients reach it: the configured
// public URL, else the scheme and host of the request.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
