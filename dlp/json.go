package dlp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Finding counts one detector's findings at one place of a JSON document.
type Finding struct {
	Detector string `json:"detector"`
	// Path is where: object members by name, array elements by index,
	// e.g. arguments.body or prompt[0].parts[1].content.
	Path  string `json:"path"`
	Count int    `json:"count"`
}

// Decode parses a JSON document keeping numbers exactly as written.
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// Encode writes v as JSON without HTML escaping (object members sorted).
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MayMatchJSON is a fast, conservative test on a raw JSON document: false
// means no string or number in it has a finding. A document with escapes
// always answers true (an escape can hide a finding from the raw text), as
// does a set with patterns of its own (a policy's ^…$ matches a value, not
// the document around it).
func (s *Set) MayMatchJSON(doc []byte) bool {
	if s.Empty() {
		return false
	}
	if len(s.extra) > 0 || bytes.IndexByte(doc, '\\') >= 0 {
		return true
	}
	return len(s.Find(string(doc))) > 0
}

// RedactValue masks every finding in the strings of a decoded JSON value
// (and numbers that are findings, which become the mask string). It
// returns the new value (v itself is not modified) and the findings,
// sorted by path and detector. Object keys are not scanned: they are
// names, not data.
func (s *Set) RedactValue(v any, path string) (any, []Finding) {
	var acc findings
	out := s.walk(v, path, &acc, true)
	return out, acc.list()
}

// ScanValue reports the findings in a decoded JSON value without changing it.
func (s *Set) ScanValue(v any, path string) []Finding {
	var acc findings
	s.walk(v, path, &acc, false)
	return acc.list()
}

// RedactJSON masks the findings of a JSON document. When there are none it
// returns doc itself; otherwise the document re-encoded (members sorted).
func (s *Set) RedactJSON(doc []byte) ([]byte, []Finding, error) {
	if !s.MayMatchJSON(doc) {
		return doc, nil, nil
	}
	v, err := Decode(doc)
	if err != nil {
		return nil, nil, err
	}
	nv, fs := s.RedactValue(v, "")
	if len(fs) == 0 {
		return doc, nil, nil
	}
	out, err := Encode(nv)
	return out, fs, err
}

// ScanJSON reports the findings of a JSON document.
func (s *Set) ScanJSON(doc []byte) ([]Finding, error) {
	if !s.MayMatchJSON(doc) {
		return nil, nil
	}
	v, err := Decode(doc)
	if err != nil {
		return nil, err
	}
	return s.ScanValue(v, ""), nil
}

type findings map[[2]string]int

func (f *findings) add(det, path string) {
	if *f == nil {
		*f = findings{}
	}
	(*f)[[2]string{path, det}]++
}

func (f findings) list() []Finding {
	if len(f) == 0 {
		return nil
	}
	out := make([]Finding, 0, len(f))
	for k, n := range f {
		out = append(out, Finding{Detector: k[1], Path: k[0], Count: n})
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Detector, b.Detector)
	})
	return out
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// text finds (and, redacting, masks) the findings of one string or number.
func (s *Set) text(t, path string, acc *findings, redact bool) (string, bool) {
	var ms []Match
	if redact {
		t, ms = s.Redact(t)
	} else {
		ms = s.Find(t)
	}
	for _, m := range ms {
		acc.add(m.Detector, path)
	}
	return t, len(ms) > 0
}

func (s *Set) walk(v any, path string, acc *findings, redact bool) any {
	switch x := v.(type) {
	case string:
		red, _ := s.text(x, path, acc, redact)
		return red
	case json.Number:
		// A number that is a finding becomes the mask string.
		if red, found := s.text(string(x), path, acc, redact); found && redact {
			return red
		}
		return x
	case map[string]any:
		var out map[string]any
		if redact {
			out = make(map[string]any, len(x))
		}
		for k, e := range x {
			ne := s.walk(e, join(path, k), acc, redact)
			if redact {
				out[k] = ne
			}
		}
		if redact {
			return out
		}
		return x
	case []any:
		var out []any
		if redact {
			out = make([]any, len(x))
		}
		for i, e := range x {
			ne := s.walk(e, path+"["+strconv.Itoa(i)+"]", acc, redact)
			if redact {
				out[i] = ne
			}
		}
		if redact {
			return out
		}
		return x
	}
	return v
}

// Attachment describes inline binary content found in a JSON value.
type Attachment struct {
	Path   string `json:"path"`
	Mime   string `json:"mime,omitempty"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// DigestAttachments finds inline binary parts in a decoded JSON value —
// MCP content ({"type": "image"|"audio", "data", "mimeType"}), MCP embedded
// resources ({"blob", "mimeType"}) and GenAI message parts ({"type":
// "blob", "content", "mime_type"}) — and adds to each its size and SHA-256
// ("bytes", "sha256"). Unless keep is set, the base64 payload is removed.
// It returns the new value (v is not modified) and the attachments.
func DigestAttachments(v any, path string, keep bool) (any, []Attachment) {
	var out []Attachment
	nv := digest(v, path, keep, &out)
	return nv, out
}

// binaryPart reports the member that holds base64 data and the mime type,
// if m is an inline binary part.
func binaryPart(m map[string]any) (field, mime string, ok bool) {
	str := func(k string) string { s, _ := m[k].(string); return s }
	switch typ := str("type"); {
	case (typ == "image" || typ == "audio") && str("data") != "":
		return "data", str("mimeType"), true
	case typ == "blob" && str("content") != "":
		mime := str("mime_type")
		if mime == "" {
			mime = str("mimeType")
		}
		return "content", mime, true
	case str("blob") != "" && (str("uri") != "" || str("mimeType") != ""):
		return "blob", str("mimeType"), true
	}
	return "", "", false
}

func digest(v any, path string, keep bool, out *[]Attachment) any {
	switch x := v.(type) {
	case map[string]any:
		n := make(map[string]any, len(x)+2)
		field, mime, isPart := binaryPart(x)
		for _, k := range slices.Sorted(maps.Keys(x)) { // attachments in a stable order
			if isPart && k == field {
				continue
			}
			n[k] = digest(x[k], join(path, k), keep, out)
		}
		if isPart {
			b64 := x[field].(string)
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
			}
			if err != nil {
				n[field] = b64 // not base64 after all: leave it
				return n
			}
			sum := sha256.Sum256(raw)
			a := Attachment{Path: path, Mime: mime, Bytes: len(raw), SHA256: hex.EncodeToString(sum[:])}
			*out = append(*out, a)
			n["bytes"] = json.Number(strconv.Itoa(a.Bytes))
			n["sha256"] = a.SHA256
			if keep {
				n[field] = b64
			}
		}
		return n
	case []any:
		n := make([]any, len(x))
		for i, e := range x {
			n[i] = digest(e, path+"["+strconv.Itoa(i)+"]", keep, out)
		}
		return n
	}
	return v
}
