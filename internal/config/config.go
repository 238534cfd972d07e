// Package config declares, reads and checks the settings of a command in
// one place. A setting is a flag, a VERITRAIL_* environment variable, or
// both; a flag overrides its variable and a variable overrides the
// default. A secret's variable NAME may instead name a file, NAME_FILE,
// whose trimmed content is the value; setting both is an error.
//
// Every value is parsed and checked before the command starts: a value
// that does not parse stops it with the flag's or variable's name and the
// form expected, e.g.
//
//	VERITRAIL_RATE_LIMIT="abc": want a whole number of requests per minute, like 6000
//
// An empty variable counts as unset. A secret's value is never repeated in
// an error.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Set is the settings of one command. Declare them with Add, AddRepeated
// and Check, then call Parse once.
type Set struct {
	// LookupEnv reads a variable; os.LookupEnv unless a test replaces it.
	LookupEnv func(name string) (string, bool)
	// Intro is printed before the settings by -h (a usage line, say).
	Intro string

	name     string
	fs       *flag.FlagSet
	settings []*Setting
	checks   []func() error
}

// NewSet returns an empty set for the command called name (as in
// "veritrail NAME"); help goes to standard error.
func NewSet(name string) *Set {
	s := &Set{LookupEnv: os.LookupEnv, name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	s.fs.SetOutput(os.Stderr)
	s.fs.Usage = func() { s.PrintUsage(s.fs.Output()) }
	return s
}

// SetOutput sends help and flag syntax errors to w.
func (s *Set) SetOutput(w io.Writer) { s.fs.SetOutput(w) }

// Name returns the command's name.
func (s *Set) Name() string { return s.name }

// Settings returns the declared settings in declaration order.
func (s *Set) Settings() []*Setting { return s.settings }

// Setting is one declared setting.
type Setting struct {
	Flag    string // the flag's name without dashes; "" when there is none
	Env     string // the variable's name; "" when there is none
	Usage   string
	Default string // the default as shown in help and documentation; "" when none
	Meta    string // placeholder of the value in help: N, DURATION, URL…
	Want    string // the form expected, completing "want …"
	secret  bool
	bool    bool
	repeat  bool
	apply   func(string) error
	flagged []string // raw values given with the flag, in order
}

// Secret marks the setting as a secret: its variable may name a file
// instead (Env+"_FILE"), and its value is never shown in an error.
func (st *Setting) Secret() *Setting { st.secret = true; return st }

// IsSecret reports whether the setting is a secret.
func (st *Setting) IsSecret() bool { return st.secret }

// ShowDefault replaces the default shown in help, for a default computed
// at run time ("<data>/link-key", "http://<addr>").
func (st *Setting) ShowDefault(text string) *Setting { st.Default = text; return st }

// Wanting replaces the form expected said in errors, for a more telling
// one: "a whole number of requests per minute, like 6000".
func (st *Setting) Wanting(want string) *Setting { st.Want = want; return st }

// Add declares a setting stored in *p, which starts at def. flag or env
// may be "" (a variable only, a flag only).
func Add[T any](s *Set, p *T, flag, env string, def T, k Kind[T], usage string) *Setting {
	*p = def
	st := &Setting{Flag: flag, Env: env, Usage: usage}
	if !isZero(def) {
		st.Default = k.format(def)
	}
	return declare(s, st, k, func(v T) { *p = v })
}

// AddRepeated declares a flag that may be given several times; each value
// is appended to *p.
func AddRepeated[T any](s *Set, p *[]T, flag string, k Kind[T], usage string) *Setting {
	st := &Setting{Flag: flag, Usage: usage + " (repeatable)", repeat: true}
	return declare(s, st, k, func(v T) { *p = append(*p, v) })
}

// declare adds st, of kind k, whose parsed values go to store.
func declare[T any](s *Set, st *Setting, k Kind[T], store func(T)) *Setting {
	st.Meta, st.Want, st.bool = k.Meta, k.Want, k.bool
	st.apply = func(raw string) error {
		v, err := k.Parse(raw)
		if err == nil {
			store(v)
		}
		return err
	}
	s.add(st)
	return st
}

func (s *Set) add(st *Setting) {
	for _, o := range s.settings {
		if st.Flag != "" && o.Flag == st.Flag || st.Env != "" && o.Env == st.Env {
			panic(fmt.Sprintf("config: %s: --%s or %s declared twice", s.name, st.Flag, st.Env))
		}
	}
	s.settings = append(s.settings, st)
	if st.Flag != "" {
		s.fs.Var(rawFlag{st}, st.Flag, st.Usage)
	}
}

// Check adds a check of several settings together (a minimum below a
// maximum, two that go together); it runs after every setting parsed.
// Its error should name the settings and say what to change.
func (s *Set) Check(f func() error) { s.checks = append(s.checks, f) }

// Parse reads the flags in args, up to the first argument that is not a
// flag, and the variables; it returns the arguments after the flags.
// flag.ErrHelp means -h was asked for (help was printed).
func (s *Set) Parse(args []string) ([]string, error) {
	if err := s.fs.Parse(args); err != nil {
		return nil, err
	}
	return s.fs.Args(), s.resolve()
}

// ParseFlagsOnly is Parse for a command that takes no positional
// argument: one is refused, not ignored.
func (s *Set) ParseFlagsOnly(args []string) error {
	rest, err := s.Parse(args)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q: veritrail %s takes flags only (veritrail %s -h lists them)", rest[0], s.name, s.name)
	}
	return err
}

// ParseInterspersed is Parse for a command whose flags may also come
// between and after its positional arguments (org create acme --data d);
// it returns the positional arguments. After "--" everything is
// positional.
func (s *Set) ParseInterspersed(args []string) ([]string, error) {
	var pos []string
	for {
		if err := s.fs.Parse(args); err != nil {
			return nil, err
		}
		rest := s.fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at a lone "--" after consuming it: what follows is
		// positional, whatever it looks like.
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, s.resolve()
}

// resolve stores each setting's value from its flag, else its variable,
// and runs the checks. It reports every refused value at once.
func (s *Set) resolve() error {
	var errs []error
	for _, st := range s.settings {
		if err := s.resolveOne(st); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, c := range s.checks {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Set) resolveOne(st *Setting) error {
	var envErr error
	raw, src, fromEnv := "", "", false
	if st.Env != "" {
		raw, src, fromEnv, envErr = s.fromEnv(st)
	}
	if len(st.flagged) > 0 {
		// A flag wins over its variable; a variable set twice (NAME and
		// NAME_FILE) is still refused, since it says something is wrong.
		if envErr != nil {
			return envErr
		}
		if st.repeat {
			for _, v := range st.flagged {
				if err := st.apply(v); err != nil {
					return st.refused("--"+st.Flag, v, err)
				}
			}
			return nil
		}
		v := st.flagged[len(st.flagged)-1] // the last one, as with flag
		if err := st.apply(v); err != nil {
			return st.refused("--"+st.Flag, v, err)
		}
		return nil
	}
	if envErr != nil || !fromEnv {
		return envErr
	}
	if err := st.apply(raw); err != nil {
		return st.refused(src, raw, err)
	}
	return nil
}

// fromEnv reads the setting's variable, or for a secret the file its
// _FILE variable names.
func (s *Set) fromEnv(st *Setting) (raw, src string, ok bool, err error) {
	v, set := s.LookupEnv(st.Env)
	set = set && v != ""
	if !st.secret {
		return v, st.Env, set, nil
	}
	fileVar := st.Env + "_FILE"
	path, fileSet := s.LookupEnv(fileVar)
	fileSet = fileSet && path != ""
	switch {
	case set && fileSet:
		return "", "", false, fmt.Errorf("%s and %s are both set: keep one (the _FILE one keeps the secret out of the environment)", st.Env, fileVar)
	case set:
		return v, st.Env, true, nil
	case !fileSet:
		return "", "", false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", false, fmt.Errorf("%s=%q: want a readable file holding %s: %v", fileVar, path, st.Env, unwrapPathError(err))
	}
	content := strings.TrimSpace(string(b))
	if content == "" {
		return "", "", false, fmt.Errorf("%s=%q: want a file holding %s; it is empty", fileVar, path, st.Env)
	}
	return content, fileVar + " (" + path + ")", true, nil
}

// refused is the error for a value that did not parse: the source, the
// value (unless secret), the form expected, and why, when that helps.
func (st *Setting) refused(src, raw string, err error) error {
	if st.secret {
		// Not the value, nor the parser's reason: either may quote it.
		return fmt.Errorf("%s (not shown: a secret): want %s", src, st.Want)
	}
	msg := fmt.Sprintf("%s=%q: want %s", src, raw, st.Want)
	if !errors.Is(err, ErrMalformed) {
		msg += ": " + err.Error()
	}
	return errors.New(msg)
}

// rawFlag records the values given with a flag; they are parsed with the
// variables, so both are refused the same way.
type rawFlag struct{ st *Setting }

func (f rawFlag) String() string {
	if f.st == nil {
		return ""
	}
	return f.st.Default
}

func (f rawFlag) Set(v string) error {
	f.st.flagged = append(f.st.flagged, v)
	return nil
}

func (f rawFlag) IsBoolFlag() bool { return f.st != nil && f.st.bool }

// PrintUsage writes the intro and every setting: flag, variable, default
// and what it does.
func (s *Set) PrintUsage(w io.Writer) {
	if s.Intro != "" {
		fmt.Fprint(w, s.Intro)
		if !strings.HasSuffix(s.Intro, "\n") {
			fmt.Fprintln(w)
		}
	} else {
		fmt.Fprintf(w, "Usage of veritrail %s:\n", s.name)
	}
	for _, st := range s.settings {
		var head string
		switch {
		case st.Flag != "" && st.bool:
			head = "--" + st.Flag
		case st.Flag != "":
			head = "--" + st.Flag + " " + st.Meta
		default:
			head = st.Env + "=" + st.Meta
		}
		var notes []string
		if st.Flag != "" && st.Env != "" {
			notes = append(notes, "env "+st.Env)
		}
		if st.secret {
			notes = append(notes, "or "+st.Env+"_FILE naming a file that holds it")
		}
		if st.Default != "" {
			notes = append(notes, "default "+st.Default)
		}
		fmt.Fprintf(w, "  %s\n    \t%s", head, strings.ReplaceAll(st.Usage, "\n", "\n    \t"))
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
