package config

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns a LookupEnv reading vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// parseOne declares one setting of kind k with flag --x and variable
// VERITRAIL_X, and parses args with vars.
func parseOne[T any](t *testing.T, k Kind[T], def T, args []string, vars map[string]string) (T, error) {
	t.Helper()
	s := NewSet("test")
	s.SetOutput(&bytes.Buffer{})
	s.LookupEnv = env(vars)
	var v T
	Add(s, &v, "x", "VERITRAIL_X", def, k, "a setting")
	_, err := s.Parse(args)
	return v, err
}

// kindCase is one value given through the flag and through the variable:
// both must parse to want, or both be refused with an error containing
// errHas (after the source's name and the value).
type kindCase[T any] struct {
	in     string
	want   T
	errHas string
}

func checkKind[T comparable](t *testing.T, k Kind[T], def T, cases []kindCase[T]) {
	t.Helper()
	for _, c := range cases {
		for _, src := range []string{"flag", "env"} {
			var args []string
			vars := map[string]string{}
			name := "--x"
			if src == "flag" {
				args = []string{"--x=" + c.in} // the one form a bool flag takes a value in
			} else {
				vars["VERITRAIL_X"] = c.in
				name = "VERITRAIL_X"
			}
			got, err := parseOne(t, k, def, args, vars)
			if c.errHas == "" {
				if err != nil || got != c.want {
					t.Errorf("%s %q: got %v, %v; want %v", src, c.in, got, err, c.want)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s %q: accepted as %v; want refused", src, c.in, got)
				continue
			}
			prefix := name + "=" + quote(c.in) + ": want "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%s %q: error %q; want it to start %q and contain %q", src, c.in, err, prefix, c.errHas)
			}
			if got != def {
				t.Errorf("%s %q: refused but stored %v", src, c.in, got)
			}
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func TestInt(t *testing.T) {
	checkKind(t, Int[int64](0, math.MaxInt64), 6000, []kindCase[int64]{
		{in: "0", want: 0},
		{in: "120", want: 120},
		{in: " 7 ", want: 7},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "abc", errHas: "a whole number, 0 or more"},
		{in: "-1", errHas: "a whole number, 0 or more"},
		{in: "1.5", errHas: "whole number"},
		{in: "6e3", errHas: "whole number"},
		{in: "9223372036854775808", errHas: "whole number"},
	})
	checkKind(t, Int(1, 1000), 100, []kindCase[int]{
		{in: "1", want: 1},
		{in: "1000", want: 1000},
		{in: "0", errHas: "a whole number from 1 to 1000"},
		{in: "1001", errHas: "a whole number from 1 to 1000"},
	})
}

func TestDuration(t *testing.T) {
	checkKind(t, Duration(0), time.Hour, []kindCase[time.Duration]{
		{in: "0", want: 0},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "-1s", errHas: "a duration like 1h30m, 30s or 500ms, or 0"},
		{in: "10", errHas: "a duration"}, // no unit
		{in: "1d", errHas: "a duration"},
		{in: "soon", errHas: "a duration"},
	})
	checkKind(t, Duration(time.Millisecond), time.Second, []kindCase[time.Duration]{
		{in: "1ms", want: time.Millisecond},
		{in: "0", errHas: "at least 1ms"},
		{in: "0s", errHas: "at least 1ms"},
	})
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 5 * time.Minute: "5m", 90 * time.Minute: "1h30m", 200 * time.Millisecond: "200ms",
		30 * time.Second: "30s", time.Hour + time.Second: "1h0m1s", 0: "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBool(t *testing.T) {
	checkKind(t, Bool(), false, []kindCase[bool]{
		{in: "true", want: true},
		{in: "1", want: true},
		{in: "false", want: false},
		{in: "0", want: false},
		{in: "yes", errHas: "true or false"},
		{in: "on", errHas: "true or false"},
	})
	// Alone, a bool flag means true.
	if v, err := parseOne(t, Bool(), false, []string{"--x"}, nil); err != nil || !v {
		t.Errorf("--x alone: %v, %v", v, err)
	}
	// --x=false overrides a variable's true.
	if v, err := parseOne(t, Bool(), false, []string{"--x=false"}, map[string]string{"VERITRAIL_X": "true"}); err != nil || v {
		t.Errorf("--x=false over VERITRAIL_X=true: %v, %v", v, err)
	}
}

func TestURL(t *testing.T) {
	checkKind(t, URL("http", "https"), "", []kindCase[string]{
		{in: "https://audit.example.com", want: "https://audit.example.com"},
		{in: "http://127.0.0.1:8080/base", want: "http://127.0.0.1:8080/base"},
		{in: "", want: ""},
		{in: "audit.example.com", errHas: "a URL starting with http:// or https:// and naming a host: no scheme"},
		{in: "ftp://x", errHas: ": scheme ftp"},
		{in: "http://", errHas: ": no host"},
		{in: "http://:80", errHas: ": no host"},
		{in: "http://[::1", errHas: "a URL starting with http://"},
	})
	checkKind(t, URL("postgres", "postgresql"), "", []kindCase[string]{
		{in: "postgres://u:p@db:5432/veritrail", want: "postgres://u:p@db:5432/veritrail"},
		{in: "host=db user=u", errHas: "postgres:// or postgresql://"},
	})
}

func TestURLList(t *testing.T) {
	s := NewSet("test")
	var v []string
	k := URLList("http", "https")
	Add(s, &v, "w", "VERITRAIL_W", nil, k, "witnesses")
	s.LookupEnv = env(map[string]string{"VERITRAIL_W": " https://a.example , ,http://b.example/x"})
	if _, err := s.Parse(nil); err != nil || strings.Join(v, " ") != "https://a.example http://b.example/x" {
		t.Fatalf("got %q, %v", v, err)
	}
	_, err := k.Parse("https://a.example,b.example")
	if err == nil || !strings.Contains(err.Error(), `"b.example": no scheme`) {
		t.Fatalf("a list with a bad URL: %v", err)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "ca.pem")
	os.WriteFile(f, []byte("x"), 0o600)
	checkKind(t, File(), "", []kindCase[string]{
		{in: f, want: f},
		{in: "", want: ""},
		{in: filepath.Join(dir, "missing.pem"), errHas: "the path of a readable file: no such file or directory"},
		{in: dir, errHas: "the path of a readable file: a directory"},
	})
}

func TestAddr(t *testing.T) {
	checkKind(t, Addr(), "127.0.0.1:8080", []kindCase[string]{
		{in: "127.0.0.1:9090", want: "127.0.0.1:9090"},
		{in: ":8080", want: ":8080"},
		{in: "[::1]:0", want: "[::1]:0"},
		{in: "localhost:8080", want: "localhost:8080"},
		{in: "8080", errHas: "host:port, like 127.0.0.1:8080 or :8080"},
		{in: "127.0.0.1:http", errHas: "the port is not a number"},
		{in: "127.0.0.1:70000", errHas: "the port is not a number from 0 to 65535"},
	})
	// An empty variable is unset; an empty flag is not an address.
	if _, err := parseOne(t, Addr(), "127.0.0.1:8080", []string{"--x="}, nil); err == nil || err.Error() != `--x="": want host:port, like 127.0.0.1:8080 or :8080` {
		t.Errorf("--x=: %v", err)
	}
}

func TestOneOfAndTime(t *testing.T) {
	checkKind(t, OneOf("open", "closed"), "open", []kindCase[string]{
		{in: "closed", want: "closed"},
		{in: "shut", errHas: "one of open or closed"},
	})
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	checkKind(t, Time(), time.Time{}, []kindCase[time.Time]{
		{in: "2026-06-01T12:00:00Z", want: at},
		{in: "2026-06-01", errHas: "a time like 2026-06-01T12:00:00Z (RFC 3339)"},
	})
}

// TestPrecedence: a flag overrides its variable, a variable the default;
// an empty variable is unset; a secret comes from NAME or the file
// NAME_FILE names, never both.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	os.WriteFile(secretFile, []byte("  vt_from-file\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, []byte("\n \n"), 0o600)
	missing := filepath.Join(dir, "missing")

	cases := []struct {
		name   string
		secret bool
		args   []string
		vars   map[string]string
		want   string
		errHas string
	}{
		{name: "default", want: "def"},
		{name: "variable over default", vars: map[string]string{"VERITRAIL_X": "env"}, want: "env"},
		{name: "empty variable is unset", vars: map[string]string{"VERITRAIL_X": ""}, want: "def"},
		{name: "flag over variable", args: []string{"--x", "flag"}, vars: map[string]string{"VERITRAIL_X": "env"}, want: "flag"},
		{name: "flag over default", args: []string{"--x=flag"}, want: "flag"},
		{name: "empty flag over variable", args: []string{"--x="}, vars: map[string]string{"VERITRAIL_X": "env"}, want: ""},
		{name: "last flag wins", args: []string{"--x", "a", "--x", "b"}, want: "b"},
		{name: "non-secret has no _FILE", vars: map[string]string{"VERITRAIL_X_FILE": secretFile}, want: "def"},
		{name: "secret from variable", secret: true, vars: map[string]string{"VERITRAIL_X": "env"}, want: "env"},
		{name: "secret from file, trimmed", secret: true, vars: map[string]string{"VERITRAIL_X_FILE": secretFile}, want: "vt_from-file"},
		{name: "secret flag over file", secret: true, args: []string{"--x", "flag"}, vars: map[string]string{"VERITRAIL_X_FILE": secretFile}, want: "flag"},
		{name: "secret empty _FILE is unset", secret: true, vars: map[string]string{"VERITRAIL_X_FILE": ""}, want: "def"},
		{name: "secret both set", secret: true, vars: map[string]string{"VERITRAIL_X": "env", "VERITRAIL_X_FILE": secretFile},
			errHas: "VERITRAIL_X and VERITRAIL_X_FILE are both set: keep one"},
		{name: "secret both set, even with the flag", secret: true, args: []string{"--x", "flag"},
			vars: map[string]string{"VERITRAIL_X": "env", "VERITRAIL_X_FILE": secretFile}, errHas: "both set"},
		{name: "secret file missing", secret: true, vars: map[string]string{"VERITRAIL_X_FILE": missing},
			errHas: `VERITRAIL_X_FILE="` + missing + `": want a readable file holding VERITRAIL_X: no such file or directory`},
		{name: "secret file empty", secret: true, vars: map[string]string{"VERITRAIL_X_FILE": emptyFile},
			errHas: `VERITRAIL_X_FILE="` + emptyFile + `": want a file holding VERITRAIL_X; it is empty`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewSet("test")
			s.LookupEnv = env(c.vars)
			var v string
			st := Add(s, &v, "x", "VERITRAIL_X", "def", Text(), "x")
			if c.secret {
				st.Secret()
			}
			_, err := s.Parse(c.args)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("got %q, %v; want an error containing %q", v, err, c.errHas)
				}
				return
			}
			if err != nil || v != c.want {
				t.Fatalf("got %q, %v; want %q", v, err, c.want)
			}
		})
	}
}

// A secret's value is never repeated in an error, wherever it came from.
func TestSecretNotShown(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "smtp")
	os.WriteFile(f, []byte("smtp//user:hunter2@mail"), 0o600)
	for _, c := range []struct {
		args []string
		vars map[string]string
		src  string
	}{
		{vars: map[string]string{"VERITRAIL_X": "smtp//user:hunter2@mail"}, src: "VERITRAIL_X (not shown: a secret): want a URL starting with smtp://"},
		{vars: map[string]string{"VERITRAIL_X_FILE": f}, src: "VERITRAIL_X_FILE (" + f + ") (not shown: a secret): want"},
		{args: []string{"--x", "smtp//user:hunter2@mail"}, src: "--x (not shown: a secret): want"},
	} {
		s := NewSet("test")
		s.LookupEnv = env(c.vars)
		var v string
		Add(s, &v, "x", "VERITRAIL_X", "", URL("smtp", "smtps"), "x").Secret()
		_, err := s.Parse(c.args)
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.HasPrefix(err.Error(), c.src) {
			t.Errorf("error %v; want it to start %q and not show the secret", err, c.src)
		}
	}
}

func TestEveryRefusalAtOnceAndChecks(t *testing.T) {
	s := NewSet("test")
	var a, b int
	var lo, hi time.Duration
	Add(s, &a, "a", "VERITRAIL_A", 1, Int(0, 10), "a").Wanting("a whole number of apples, like 3")
	Add(s, &b, "b", "", 1, Int(0, 10), "b")
	Add(s, &lo, "lo", "", time.Second, Duration(time.Millisecond), "lo")
	Add(s, &hi, "hi", "", time.Minute, Duration(time.Millisecond), "hi")
	s.Check(func() error {
		if hi < lo {
			return errors.New("--hi is below --lo")
		}
		return nil
	})
	s.LookupEnv = env(map[string]string{"VERITRAIL_A": "many"})
	_, err := s.Parse([]string{"--b", "11"})
	if err == nil || err.Error() != "VERITRAIL_A=\"many\": want a whole number of apples, like 3\n--b=\"11\": want a whole number from 0 to 10" {
		t.Fatalf("got %v", err)
	}
	s = NewSet("test")
	Add(s, &lo, "lo", "", time.Second, Duration(time.Millisecond), "lo")
	Add(s, &hi, "hi", "", time.Minute, Duration(time.Millisecond), "hi")
	s.Check(func() error {
		if hi < lo {
			return errors.New("--hi is below --lo")
		}
		return nil
	})
	s.LookupEnv = env(nil)
	if _, err := s.Parse([]string{"--hi", "1s", "--lo", "2s"}); err == nil || err.Error() != "--hi is below --lo" {
		t.Fatalf("check: %v", err)
	}
}

func TestRepeatedAndPositional(t *testing.T) {
	s := NewSet("test")
	s.LookupEnv = env(nil)
	var hs []string
	var n int
	AddRepeated(s, &hs, "h", OneOf("a", "b"), "h")
	Add(s, &n, "n", "", 0, Int(0, 9), "n")
	pos, err := s.ParseInterspersed([]string{"one", "--h", "a", "two", "--h=b", "--n", "3", "--", "--h", "three"})
	if err != nil || strings.Join(hs, ",") != "a,b" || n != 3 || strings.Join(pos, ",") != "one,two,--h,three" {
		t.Fatalf("got %v %d %v %v", hs, n, pos, err)
	}
	s = NewSet("test")
	s.LookupEnv = env(nil)
	hs = nil
	AddRepeated(s, &hs, "h", OneOf("a", "b"), "h")
	if _, err := s.Parse([]string{"--h", "a", "--h", "c"}); err == nil || err.Error() != `--h="c": want one of a or b` {
		t.Fatalf("a bad repeated value: %v", err)
	}
	// Parse stops at the first argument that is not a flag.
	s = NewSet("test")
	s.LookupEnv = env(nil)
	Add(s, &n, "n", "", 0, Int(0, 9), "n")
	rest, err := s.Parse([]string{"--n", "2", "cmd", "--n", "x"})
	if err != nil || n != 2 || strings.Join(rest, " ") != "cmd --n x" {
		t.Fatalf("got %d %v %v", n, rest, err)
	}
	// A command of flags only refuses an argument rather than ignore it.
	s = NewSet("key")
	s.LookupEnv = env(nil)
	Add(s, &n, "n", "", 0, Int(0, 9), "n")
	if err := s.ParseFlagsOnly([]string{"--n", "2", "acme"}); err == nil ||
		err.Error() != `unexpected argument "acme": veritrail key takes flags only (veritrail key -h lists them)` {
		t.Fatalf("an argument to a command of flags only: %v", err)
	}
}

func TestHelp(t *testing.T) {
	s := NewSet("serve")
	var out bytes.Buffer
	s.SetOutput(&out)
	var addr, smtp string
	var ttl time.Duration
	var demo bool
	Add(s, &addr, "addr", "VERITRAIL_ADDR", "127.0.0.1:8080", Addr(), "listen address")
	Add(s, &ttl, "export-ttl", "VERITRAIL_EXPORT_TTL", 24*time.Hour, Duration(time.Second), "how long an export lasts")
	Add(s, &demo, "demo", "VERITRAIL_DEMO", false, Bool(), "load the sample organization")
	Add(s, &smtp, "", "VERITRAIL_SMTP_URL", "", URL("smtp", "smtps"), "the SMTP server").Secret()
	if _, err := s.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{
		"Usage of veritrail serve:",
		"--addr HOST:PORT\n    \tlisten address (env VERITRAIL_ADDR; default 127.0.0.1:8080)",
		"--export-ttl DURATION\n    \thow long an export lasts (env VERITRAIL_EXPORT_TTL; default 24h)",
		"--demo\n    \tload the sample organization (env VERITRAIL_DEMO)",
		"VERITRAIL_SMTP_URL=URL\n    \tthe SMTP server (or VERITRAIL_SMTP_URL_FILE naming a file that holds it)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDeclaredTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a flag declared twice was accepted")
		}
	}()
	s := NewSet("test")
	var a, b string
	Add(s, &a, "x", "", "", Text(), "")
	Add(s, &b, "x", "", "", Text(), "")
}
