// Package dlp finds secrets and personal data in text and JSON, and masks
// them: AWS keys, private keys, common API token shapes, card numbers (Luhn
// checked), e-mail addresses, phone numbers and IBANs (mod-97 checked). The
// MCP gateway (mcp/) and the server's ingest (http/) share it, so a rule
// means the same thing at both ends.
//
// It also turns inline attachments (images, audio, blobs) into their
// digest: mime, size and SHA-256, keeping the bytes only when asked.
//
// Detection is pattern matching: it finds what has a recognisable shape and
// misses secrets that have none (a password in prose). It MUST NOT be the
// only control between an agent and data it may not see.
package dlp

import (
	"regexp"
	"slices"
	"strings"
)

// Detector names, as used in policies and settings.
const (
	AWSAccessKeyID     = "aws_access_key_id"
	AWSSecretAccessKey = "aws_secret_access_key"
	PrivateKey         = "private_key"
	APIToken           = "api_token"
	CardNumber         = "card_number"
	Email              = "email"
	Phone              = "phone"
	IBAN               = "iban"
)

// Detector finds one kind of sensitive value.
type Detector struct {
	Name string
	// hint is a cheap test a text must pass before the regexp runs (any of
	// these substrings, or a digit when digit is set).
	hint  []string
	digit bool
	re    *regexp.Regexp
	// valid, when set, confirms a regexp match (checksums).
	valid func(string) bool
	// starts, when set, picks the positions where re (anchored with ^)
	// is tried: regexps over common characters (digits) are slow to run
	// over a whole text. scan, when set, replaces re altogether.
	starts func(text string, i int) bool
	scan   func(text string) [][2]int
}

var detectors = []*Detector{
	{
		Name: AWSAccessKeyID,
		hint: []string{"AKIA", "ASIA", "ABIA", "ACCA", "A3T"},
		re:   regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b`),
	},
	{
		// A secret access key has no shape of its own (40 base64
		// characters): only next to a name that says what it is.
		Name: AWSSecretAccessKey,
		hint: []string{"ecret", "ECRET"},
		re:   regexp.MustCompile(`(?i)aws.{0,20}?secret.{0,20}?["'=:\s]+[A-Za-z0-9/+]{40}\b`),
	},
	{
		Name: PrivateKey,
		hint: []string{"PRIVATE KEY"},
		// A whole PEM block, or from its BEGIN line to the end when cut.
		re: regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)`),
	},
	{
		Name: APIToken,
		hint: []string{"gh", "github_pat_", "xox", "sk_", "rk_", "AIza", "sk-", "eyJ", "vt_", "glpat-", "npm_", "hf_"},
		re: regexp.MustCompile(`\b(?:` +
			`gh[pousr]_[A-Za-z0-9]{36,255}` + // GitHub
			`|github_pat_[A-Za-z0-9_]{22,255}` +
			`|xox[abposr]-[A-Za-z0-9-]{10,}` + // Slack
			`|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}` + // Stripe
			`|AIza[0-9A-Za-z_-]{35}` + // Google
			`|sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{32,}` + // OpenAI, Anthropic
			`|glpat-[A-Za-z0-9_-]{20,}` + // GitLab
			`|npm_[A-Za-z0-9]{36}` + // npm
			`|hf_[A-Za-z0-9]{34,}` + // Hugging Face
			`|vt_[A-Za-z0-9_-]{43}(?:[A-Za-z0-9_-]{11})?` + // Veritrail (an organization's token: 54)
			`|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}` + // JWT
			`)`),
	},
	{
		Name:  CardNumber,
		digit: true,
		scan:  findCards,
	},
	{
		Name: Email,
		hint: []string{"@"},
		re:   regexp.MustCompile(`\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b`),
	},
	{
		// International (+CC …) or North American (NXX) NXX-XXXX forms:
		// bare digit runs are ids and amounts far more often than phones.
		Name:  Phone,
		digit: true,
		re: regexp.MustCompile(`^(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}\b` +
			`|(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}\b)`),
		starts: phoneStart,
		valid:  phoneDigits,
	},
	{
		Name:   IBAN,
		digit:  true,
		re:     regexp.MustCompile(`^[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`),
		starts: ibanStart,
		valid:  validIBAN,
	},
}

// Names lists every detector name.
func Names() []string {
	out := make([]string, len(detectors))
	for i, d := range detectors {
		out[i] = d.Name
	}
	return out
}

// Known reports whether name is a detector ("*" stands for all).
func Known(name string) bool {
	return name == "*" || slices.ContainsFunc(detectors, func(d *Detector) bool { return d.Name == name })
}

// Set is a set of detectors, and optionally extra patterns (a policy's own
// regular expressions), applied together.
type Set struct {
	dets  []*Detector
	extra []*Detector
}

// NewSet returns the detectors named (all of them for "*" or none given).
// Unknown names are ignored: callers validate with Known first.
func NewSet(names ...string) *Set {
	if len(names) == 0 || slices.Contains(names, "*") {
		return &Set{dets: detectors}
	}
	s := &Set{}
	for _, d := range detectors {
		if slices.Contains(names, d.Name) {
			s.dets = append(s.dets, d)
		}
	}
	return s
}

// WithPattern returns a copy of s that also finds re, reported under name.
func (s *Set) WithPattern(name string, re *regexp.Regexp) *Set {
	c := &Set{dets: s.dets, extra: append(slices.Clip(s.extra), &Detector{Name: name, re: re})}
	return c
}

// Union returns a set that finds what any of sets finds.
func Union(sets ...*Set) *Set {
	u := &Set{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, d := range s.dets {
			if !slices.Contains(u.dets, d) {
				u.dets = append(u.dets, d)
			}
		}
		u.extra = append(u.extra, s.extra...)
	}
	return u
}

// Empty reports whether the set finds nothing.
func (s *Set) Empty() bool { return s == nil || len(s.dets)+len(s.extra) == 0 }

// Match is one finding in a text.
type Match struct {
	Detector   string
	Start, End int
}

// mayMatch is d's cheap pre-test; hasDigit is the text's answer for
// detectors of digits, computed once for all of them.
func (d *Detector) mayMatch(text string, hasDigit func() bool) bool {
	if d.digit {
		return hasDigit()
	}
	if len(d.hint) == 0 {
		return true
	}
	for _, h := range d.hint {
		if strings.Contains(text, h) {
			return true
		}
	}
	return false
}

// Find returns the non-overlapping findings in text, in order. Where two
// detectors overlap, the earlier and longer finding wins.
func (s *Set) Find(text string) []Match {
	if s.Empty() || text == "" {
		return nil
	}
	var out []Match
	digit := 0 // 0 unknown, 1 yes, -1 no
	hasDigit := func() bool {
		if digit == 0 {
			digit = -1
			if strings.ContainsAny(text, "0123456789") {
				digit = 1
			}
		}
		return digit > 0
	}
	scan := func(d *Detector) {
		if !d.mayMatch(text, hasDigit) {
			return
		}
		var locs [][2]int
		switch {
		case d.scan != nil:
			locs = d.scan(text)
		case d.starts != nil:
			for i := 0; i < len(text); i++ {
				if !d.starts(text, i) {
					continue
				}
				if loc := d.re.FindStringIndex(text[i:]); loc != nil && loc[1] > 0 {
					locs = append(locs, [2]int{i, i + loc[1]})
					i += loc[1] - 1
				}
			}
		default:
			for _, loc := range d.re.FindAllStringIndex(text, -1) {
				locs = append(locs, [2]int{loc[0], loc[1]})
			}
		}
		for _, loc := range locs {
			if d.valid != nil && !d.valid(text[loc[0]:loc[1]]) {
				continue
			}
			out = append(out, Match{d.Name, loc[0], loc[1]})
		}
	}
	for _, d := range s.dets {
		scan(d)
	}
	for _, d := range s.extra {
		scan(d)
	}
	if len(out) < 2 {
		return out
	}
	slices.SortStableFunc(out, func(a, b Match) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	kept := out[:1]
	for _, m := range out[1:] {
		if m.Start >= kept[len(kept)-1].End {
			kept = append(kept, m)
		}
	}
	return kept
}

// Mask is what replaces a finding: [REDACTED:detector].
func Mask(detector string) string { return "[REDACTED:" + detector + "]" }

// Redact returns text with every finding masked, and the findings.
// Masking can expose what an overlapping finding hid, so it repeats (a
// few times at most) until nothing is found.
func (s *Set) Redact(text string) (string, []Match) {
	var all []Match
	for range 4 {
		ms := s.Find(text)
		if len(ms) == 0 {
			break
		}
		all = append(all, ms...)
		var b strings.Builder
		prev := 0
		for _, m := range ms {
			b.WriteString(text[prev:m.Start])
			b.WriteString(Mask(m.Detector))
			prev = m.End
		}
		b.WriteString(text[prev:])
		text = b.String()
	}
	return text, all
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isWord is regexp's \w (ASCII letters, digits, underscore).
func isWord(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func boundaryBefore(t string, i int) bool { return i == 0 || !isWord(t[i-1]) }

func phoneStart(t string, i int) bool {
	switch c := t[i]; {
	case c == '+':
		return i+1 < len(t) && t[i+1] >= '1' && t[i+1] <= '9'
	case c == '(':
		return i+4 < len(t) && isDigit(t[i+1]) && isDigit(t[i+2]) && isDigit(t[i+3]) && t[i+4] == ')'
	case isDigit(c):
		return boundaryBefore(t, i) && i+4 < len(t) && isDigit(t[i+1]) && isDigit(t[i+2]) &&
			(t[i+3] == ' ' || t[i+3] == '.' || t[i+3] == '-') && isDigit(t[i+4])
	}
	return false
}

func ibanStart(t string, i int) bool {
	return i+3 < len(t) && t[i] >= 'A' && t[i] <= 'Z' && t[i+1] >= 'A' && t[i+1] <= 'Z' &&
		isDigit(t[i+2]) && isDigit(t[i+3]) && boundaryBefore(t, i)
}

// findCards finds runs of 13 to 19 digits, optionally grouped by single
// spaces or dashes, standing alone (a word boundary on both sides) or as
// whole groups of a longer grouped run, that pass the Luhn check.
func findCards(t string) [][2]int {
	var out [][2]int
	type group struct{ start, end, digits int }
	var groups []group
	for i := 0; i < len(t); {
		if !isDigit(t[i]) || !boundaryBefore(t, i) {
			i++
			continue
		}
		groups = groups[:0]
		j := i
		for {
			g := group{start: j}
			for j < len(t) && isDigit(t[j]) {
				j++
			}
			g.end, g.digits = j, j-g.start
			groups = append(groups, g)
			if j+1 < len(t) && (t[j] == ' ' || t[j] == '-') && isDigit(t[j+1]) {
				j++
				continue
			}
			break
		}
		end := groups[len(groups)-1].end
		if end < len(t) && isWord(t[end]) {
			i = end
			continue
		}
		for a := 0; a < len(groups); {
			n, best := 0, -1
			for b := a; b < len(groups) && n <= 19; b++ {
				n += groups[b].digits
				if n >= 13 && n <= 19 && luhnCard(t[groups[a].start:groups[b].end]) {
					best = b
				}
			}
			if best < 0 {
				a++
				continue
			}
			out = append(out, [2]int{groups[a].start, groups[best].end})
			a = best + 1
		}
		i = end
	}
	return out
}

func digitsOf(s string) []byte {
	d := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i]-'0')
		}
	}
	return d
}

// Luhn reports whether a digit string passes the Luhn checksum.
func Luhn(number string) bool { return luhn(digitsOf(number)) }

func luhn(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// luhnCard accepts 13 to 19 digits that pass Luhn and are not all one
// digit (0000 0000 0000 0000 passes Luhn).
func luhnCard(s string) bool {
	d := digitsOf(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	same := true
	for _, c := range d[1:] {
		if c != d[0] {
			same = false
			break
		}
	}
	return !same && d[0] != 0 && luhn(d)
}

func phoneDigits(s string) bool {
	n := len(digitsOf(s))
	return n >= 8 && n <= 15
}

// ibanLengths are the IBAN lengths of the countries that use one.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// ValidIBAN checks an IBAN's country length and ISO 7064 mod-97 checksum
// (spaces allowed).
func ValidIBAN(s string) bool { return validIBAN(s) }

func validIBAN(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	if n, ok := ibanLengths[s[:2]]; !ok || n != len(s) {
		return false
	}
	rearranged := s[4:] + s[:4]
	rem := 0
	for i := 0; i < len(rearranged); i++ {
		c := rearranged[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
	}
	return rem == 1
}
