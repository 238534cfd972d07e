package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/notify"
)

// Rule kinds.
const (
	KindMatch     = "match"     // every matching event
	KindThreshold = "threshold" // at least N matching events within a window, per group
	KindDistinct  = "distinct"  // at least N distinct values of a field within a window, per group
	KindNewValue  = "new_value" // a value not seen for its group within a lookback
	KindSequence  = "sequence"  // steps in order, by the same group, within a window
)

// Kinds lists the rule kinds.
var Kinds = []string{KindMatch, KindThreshold, KindDistinct, KindNewValue, KindSequence}

// PackBuiltin marks the rules of the built-in pack.
const PackBuiltin = "builtin"

// MaxRules is the most rules an organization may have.
const MaxRules = 200

// Limits on a rule.
const (
	maxName        = 128
	maxExpr        = 4096
	maxGroupBy     = 5
	maxSteps       = 5
	maxTags        = 20
	maxRoutes      = 10
	maxText        = 8192
	maxThreshold   = 10000
	maxWindow      = 30 * 24 * time.Hour
	maxLookback    = 365 * 24 * time.Hour
	defaultLookbak = 30 * 24 * time.Hour
)

// Spec is a rule as written: the body of POST /api/v1/rules, one entry of
// a rules file, and (with route secrets sealed) what the store keeps.
// Fields that do not apply to a rule's kind are refused.
type Spec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Kind        string `json:"kind"`
	// Enabled is true unless set to false.
	Enabled *bool `json:"enabled,omitempty"`
	// Condition is a CEL expression over the event's JSON fields; the
	// events it is true for are the rule's matches. Required but for
	// sequence rules, where it is an optional filter every step shares.
	Condition string `json:"condition,omitempty"`
	// Steps are a sequence rule's conditions, in order (2 to 5).
	Steps []string `json:"steps,omitempty"`
	// GroupBy are the fields (CEL expressions, usually a field name such
	// as actor.id) whose values keep apart the windows and the alerts.
	GroupBy []string `json:"group_by,omitempty"`
	// Threshold is N: matching events (threshold) or distinct values
	// (distinct) within Window.
	Threshold int `json:"threshold,omitempty"`
	// Field is the value counted (distinct) or watched (new_value).
	Field    string             `json:"field,omitempty"`
	Window   veritrail.Duration `json:"window,omitempty"`
	Lookback veritrail.Duration `json:"lookback,omitempty"`
	Severity string             `json:"severity"`
	Owner    string             `json:"owner,omitempty"`
	Runbook  string             `json:"runbook,omitempty"`
	Tags     []string           `json:"tags,omitempty"`
	// DedupKey is a CEL expression (a string) naming the alert a match
	// belongs to; default: the group_by values (and, for new_value, the
	// value). Matches of one key go to one alert while it is not
	// resolved.
	DedupKey string `json:"dedup_key,omitempty"`
	// Suppress is how long after an alert is resolved further matches of
	// its key are counted on it (as suppressed) instead of opening a new
	// alert.
	Suppress veritrail.Duration `json:"suppress,omitempty"`
	Routes   []notify.Route     `json:"routes,omitempty"`
	// Pack is set by the server on the built-in pack's rules.
	Pack string `json:"pack,omitempty"`
}

// IsEnabled reports whether the rule runs.
func (s *Spec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// invalid is a rule's invalid field, named by its JSON path.
func invalid(field, format string, args ...any) *veritrail.Error {
	msg := fmt.Sprintf(format, args...)
	return &veritrail.Error{Code: veritrail.EInvalid, Index: -1, Field: field, Message: fmt.Sprintf("field %q: %s", field, msg)}
}

// DecodeSpec reads one rule from a JSON object. Unknown fields are
// refused, and every error names the field it is about (routes[1].url).
func DecodeSpec(b []byte) (*Spec, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, veritrail.Errorf(veritrail.EInvalidJSON, "malformed JSON at byte %d: %v", se.Offset, err)
		}
		return nil, veritrail.Errorf(veritrail.EInvalidJSON, "a rule is a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, veritrail.Errorf(veritrail.EInvalidJSON, "the body holds more than one JSON value")
	}
	var s Spec
	if err := decodeFields(raw, reflect.ValueOf(&s).Elem(), ""); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeFields sets the fields of struct v (by their JSON names) from
// raw, refusing unknown names; prefix is v's path in the rule.
func decodeFields(raw map[string]json.RawMessage, v reflect.Value, prefix string) error {
	fields := map[string]reflect.Value{}
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = v.Field(i)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		f, ok := fields[k]
		if !ok {
			return invalid(prefix+k, "unknown field")
		}
		if f.Type() == reflect.TypeFor[[]notify.Route]() {
			var items []map[string]json.RawMessage
			if err := json.Unmarshal(raw[k], &items); err != nil {
				return invalid(prefix+k, "must be a list of objects")
			}
			routes := make([]notify.Route, len(items))
			for i, it := range items {
				if it == nil {
					return invalid(fmt.Sprintf("%s%s[%d]", prefix, k, i), "must be an object")
				}
				if err := decodeFields(it, reflect.ValueOf(&routes[i]).Elem(), fmt.Sprintf("%s%s[%d].", prefix, k, i)); err != nil {
					return err
				}
			}
			f.Set(reflect.ValueOf(routes))
			continue
		}
		if err := json.Unmarshal(raw[k], f.Addr().Interface()); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return invalid(prefix+k, "must be %s", jsonKind(f.Type()))
			}
			return invalid(prefix+k, "%v", err)
		}
	}
	return nil
}

// jsonKind names what a field of type t is written as.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		if t == reflect.TypeFor[veritrail.Duration]() {
			return "a duration such as 5m"
		}
		return "a whole number"
	case reflect.Slice:
		return "a list of strings"
	case reflect.Pointer, reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// Check validates a spec's fields that need no compiling: kinds, limits
// and which fields apply. Compile does the rest (CEL, routes).
func (s *Spec) Check() error {
	if s.Name == "" || len(s.Name) > maxName || !utf8.ValidString(s.Name) || strings.TrimSpace(s.Name) != s.Name ||
		strings.ContainsAny(s.Name, "\x00\n\r\t") {
		return invalid("name", "required: 1 to %d characters, no surrounding space or control characters", maxName)
	}
	if !slices.Contains(Kinds, s.Kind) {
		return invalid("kind", "must be one of %s, got %q", strings.Join(Kinds, ", "), s.Kind)
	}
	if veritrail.SeverityRank(s.Severity) < 0 {
		return invalid("severity", "must be one of %s, got %q", strings.Join(veritrail.Severities, ", "), s.Severity)
	}
	if len(s.Description) > maxText {
		return invalid("description", "at most %d bytes", maxText)
	}
	if len(s.Runbook) > maxText {
		return invalid("runbook", "at most %d bytes", maxText)
	}
	if len(s.Owner) > 256 {
		return invalid("owner", "at most 256 bytes")
	}
	if len(s.Tags) > maxTags {
		return invalid("tags", "at most %d tags", maxTags)
	}
	for i, t := range s.Tags {
		if t == "" || len(t) > 64 {
			return invalid(fmt.Sprintf("tags[%d]", i), "1 to 64 bytes")
		}
	}
	if len(s.Routes) > maxRoutes {
		return invalid("routes", "at most %d routes", maxRoutes)
	}
	if s.Pack != "" && s.Pack != PackBuiltin {
		return invalid("pack", "is set by the server")
	}
	// Which fields each kind takes.
	uses := map[string]bool{"condition": true, "group_by": true}
	switch s.Kind {
	case KindThreshold:
		uses["threshold"], uses["window"] = true, true
	case KindDistinct:
		uses["threshold"], uses["window"], uses["field"] = true, true, true
	case KindNewValue:
		uses["field"], uses["lookback"] = true, true
	case KindSequence:
		uses["steps"], uses["window"] = true, true
	}
	given := map[string]bool{"threshold": s.Threshold != 0, "window": s.Window != 0, "field": s.Field != "",
		"lookback": s.Lookback != 0, "steps": len(s.Steps) > 0}
	for _, f := range []string{"threshold", "window", "field", "lookback", "steps"} {
		if given[f] && !uses[f] {
			return invalid(f, "does not apply to %s rules", s.Kind)
		}
		if !given[f] && uses[f] && f != "lookback" {
			return invalid(f, "required for %s rules", s.Kind)
		}
	}
	if s.Kind != KindSequence && strings.TrimSpace(s.Condition) == "" {
		return invalid("condition", "required: a CEL expression over the event's fields, such as type == \"auth.login\" && outcome == \"failure\"")
	}
	if len(s.Condition) > maxExpr {
		return invalid("condition", "at most %d bytes", maxExpr)
	}
	if s.Kind == KindSequence && (len(s.Steps) < 2 || len(s.Steps) > maxSteps) {
		return invalid("steps", "a sequence has 2 to %d steps", maxSteps)
	}
	for i, st := range s.Steps {
		if strings.TrimSpace(st) == "" || len(st) > maxExpr {
			return invalid(fmt.Sprintf("steps[%d]", i), "a CEL expression of 1 to %d bytes", maxExpr)
		}
	}
	if uses["threshold"] && (s.Threshold < 2 || s.Threshold > maxThreshold) {
		return invalid("threshold", "2 to %d (a threshold of 1 is a match rule)", maxThreshold)
	}
	if uses["window"] && (s.Window < veritrail.Duration(time.Second) || s.Window > veritrail.Duration(maxWindow)) {
		return invalid("window", "1s to 30d")
	}
	if s.Lookback != 0 && (s.Lookback < veritrail.Duration(time.Minute) || s.Lookback > veritrail.Duration(maxLookback)) {
		return invalid("lookback", "1m to 365d")
	}
	if len(s.Field) > maxExpr {
		return invalid("field", "at most %d bytes", maxExpr)
	}
	if len(s.GroupBy) > maxGroupBy {
		return invalid("group_by", "at most %d fields", maxGroupBy)
	}
	for i, g := range s.GroupBy {
		if strings.TrimSpace(g) == "" || len(g) > 256 {
			return invalid(fmt.Sprintf("group_by[%d]", i), "a field such as actor.id")
		}
		if slices.Contains(s.GroupBy[:i], g) {
			return invalid(fmt.Sprintf("group_by[%d]", i), "%q is listed twice", g)
		}
	}
	if len(s.DedupKey) > maxExpr {
		return invalid("dedup_key", "at most %d bytes", maxExpr)
	}
	if s.Suppress < 0 || s.Suppress > veritrail.Duration(maxLookback) {
		return invalid("suppress", "0 to 365d")
	}
	return nil
}

// lookback is a new_value rule's lookback (default 30 days).
func (s *Spec) lookback() time.Duration {
	if s.Lookback == 0 {
		return defaultLookbak
	}
	return time.Duration(s.Lookback)
}
