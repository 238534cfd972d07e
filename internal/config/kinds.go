package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is a kind of value: how it is parsed and checked, and how it is
// described to users.
type Kind[T any] struct {
	// Want is the form expected, completing "want …" in errors: "a
	// whole number, like 6000".
	Want string
	// Meta is the value's placeholder in help: N, DURATION, URL.
	Meta string
	// Parse parses and checks a value. It returns ErrMalformed (or an
	// error wrapping it) when Want says it all, else an error saying why.
	Parse func(string) (T, error)
	// Format shows a default; fmt.Sprint when nil.
	Format func(T) string

	bool bool
}

// ErrMalformed is the error of a value not in the form wanted, when the
// Want of its kind says all there is to say.
var ErrMalformed = errors.New("malformed")

// Named returns the kind with another placeholder in help: Text().Named("ROLE").
func (k Kind[T]) Named(meta string) Kind[T] { k.Meta = meta; return k }

func (k Kind[T]) format(v T) string {
	if k.Format != nil {
		return k.Format(v)
	}
	return fmt.Sprint(v)
}

func isZero(x any) bool {
	v := reflect.ValueOf(x)
	return !v.IsValid() || v.IsZero()
}

// Text is any text.
func Text() Kind[string] {
	return Kind[string]{Want: "text", Meta: "TEXT", Parse: func(s string) (string, error) { return s, nil }}
}

// Path is the path of a file or directory, which need not exist yet; it
// may not be empty.
func Path() Kind[string] {
	return Kind[string]{Want: "a path", Meta: "PATH", Parse: func(s string) (string, error) {
		if strings.TrimSpace(s) == "" {
			return "", ErrMalformed
		}
		return s, nil
	}}
}

// Int is a whole number from min to max.
func Int[T ~int | ~int64](min, max T) Kind[T] {
	want := fmt.Sprintf("a whole number from %d to %d", min, max)
	switch {
	case int64(max) == math.MaxInt64 || int64(max) == math.MaxInt:
		want = fmt.Sprintf("a whole number, %d or more", min)
	}
	return Kind[T]{Want: want, Meta: "N", Parse: func(s string) (T, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < int64(min) || n > int64(max) {
			return 0, ErrMalformed
		}
		return T(n), nil
	}}
}

// Duration is a Go duration (1h30m, 500ms, 0) of at least min.
func Duration(min time.Duration) Kind[time.Duration] {
	want := "a duration like 1h30m, 30s or 500ms"
	if min > 0 {
		want += ", at least " + FormatDuration(min)
	} else {
		want += ", or 0"
	}
	return Kind[time.Duration]{Want: want, Meta: "DURATION", Format: FormatDuration, Parse: func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < min {
			return 0, ErrMalformed
		}
		return d, nil
	}}
}

// FormatDuration writes d as people do: 24h, 5m, 1h30m, 200ms.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Bool is true or false (also 1 and 0); as a flag, giving it alone means
// true.
func Bool() Kind[bool] {
	return Kind[bool]{Want: "true or false", Meta: "BOOL", bool: true, Parse: func(s string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return false, ErrMalformed
		}
		return b, nil
	}}
}

// OneOf is one of the values given.
func OneOf(values ...string) Kind[string] {
	return Kind[string]{Want: "one of " + orList(values), Meta: strings.Join(values, "|"), Parse: func(s string) (string, error) {
		if !slices.Contains(values, s) {
			return "", ErrMalformed
		}
		return s, nil
	}}
}

// URL is an absolute URL with a host and one of the schemes given, e.g.
// URL("http", "https"); empty means none.
func URL(schemes ...string) Kind[string] {
	return Kind[string]{Want: urlWant(schemes), Meta: "URL", Parse: func(s string) (string, error) {
		if s == "" {
			return "", nil
		}
		return s, checkURL(s, schemes)
	}}
}

// URLList is a comma-separated list of URLs as URL describes them.
func URLList(schemes ...string) Kind[[]string] {
	return Kind[[]string]{Want: "a comma-separated list of " + strings.TrimPrefix(urlWant(schemes), "a "),
		Meta: "URL,…", Format: func(v []string) string { return strings.Join(v, ",") },
		Parse: func(s string) ([]string, error) {
			var out []string
			for _, u := range strings.Split(s, ",") {
				if u = strings.TrimSpace(u); u == "" {
					continue
				}
				if err := checkURL(u, schemes); err != nil {
					return nil, fmt.Errorf("%q: %w", u, err)
				}
				out = append(out, u)
			}
			return out, nil
		}}
}

func urlWant(schemes []string) string {
	ex := make([]string, len(schemes))
	for i, s := range schemes {
		ex[i] = s + "://"
	}
	return "a URL starting with " + orList(ex) + " and naming a host"
}

func checkURL(s string, schemes []string) error {
	u, err := url.Parse(s)
	switch {
	case !strings.Contains(s, "://"):
		return errors.New("no scheme")
	case err != nil:
		return ErrMalformed
	case !slices.Contains(schemes, strings.ToLower(u.Scheme)):
		return fmt.Errorf("scheme %s", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	}
	return nil
}

// File is the path of an existing, readable file; empty means none.
func File() Kind[string] {
	return Kind[string]{Want: "the path of a readable file", Meta: "FILE", Parse: func(s string) (string, error) {
		if s == "" {
			return "", nil
		}
		f, err := os.Open(s)
		if err != nil {
			return "", unwrapPathError(err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", unwrapPathError(err)
		}
		if fi.IsDir() {
			return "", errors.New("a directory")
		}
		return s, nil
	}}
}

// Addr is a TCP listen address, host:port (host may be empty: every
// interface; port 0: any free port).
func Addr() Kind[string] {
	return Kind[string]{Want: "host:port, like 127.0.0.1:8080 or :8080", Meta: "HOST:PORT", Parse: func(s string) (string, error) {
		_, port, err := net.SplitHostPort(s)
		if err != nil {
			return "", ErrMalformed
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", errors.New("the port is not a number from 0 to 65535")
		}
		return s, nil
	}}
}

// Time is a time in RFC 3339 form.
func Time() Kind[time.Time] {
	return Kind[time.Time]{Want: "a time like 2026-06-01T12:00:00Z (RFC 3339)", Meta: "TIME",
		Format: func(t time.Time) string { return t.Format(time.RFC3339) },
		Parse: func(s string) (time.Time, error) {
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
			if err != nil {
				return time.Time{}, ErrMalformed
			}
			return t, nil
		}}
}

// orList writes "a, b or c".
func orList(vs []string) string {
	if len(vs) < 2 {
		return strings.Join(vs, "")
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}
