package dlp

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

func TestDetectors(t *testing.T) {
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
	for _, tc := range []struct {
		text string
		want []string // detectors found, in order
	}{
		{"key AKIAIOSFODNN7EXAMPLE here", []string{AWSAccessKeyID}},
		{"ASIAY34FZKBOKMUTVV7A", []string{AWSAccessKeyID}},
		{"AKIAIOSFODNN7EXAMPL", nil}, // 19 characters
		{"XAKIAIOSFODNN7EXAMPLE", nil},
		{`aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"`, []string{AWSSecretAccessKey}},
		{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", nil}, // no name beside it
		{"before " + pem + " after", []string{PrivateKey}},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", []string{PrivateKey}}, // cut
		{"-----BEGIN PUBLIC KEY-----", nil},
		{"ghp_" + strings.Repeat("a1B2", 9), []string{APIToken}},
		{"xoxb-123456789012-abcdefABCDEF", []string{APIToken}},
		{"sk_live_" + strings.Repeat("x", 24), []string{APIToken}},
		{"AIza" + strings.Repeat("Q", 35), []string{APIToken}},
		{"sk-proj-" + strings.Repeat("Ab3_", 10), []string{APIToken}},
		{"vt_" + strings.Repeat("A", 43), []string{APIToken}},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", []string{APIToken}},
		{"the sky is blue", nil},
		{"card 4111 1111 1111 1111 ok", []string{CardNumber}},
		{"4012-8888-8888-1881", []string{CardNumber}},
		{"4111 1111 1111 1111 2030", []string{CardNumber}}, // a card, then more digits
		{"12345678901234567890123", nil},                   // a long id: not a card
		{"4111111111111112", nil},                          // fails Luhn
		{"0000000000000000", nil},                          // passes Luhn, not a card
		{"1700000000000", nil},                             // a timestamp in ms: fails Luhn
		{"mail dana@example.com now", []string{Email}},
		{"not an address: a@b", nil},
		{"call +44 20 7946 0958", []string{Phone}},
		{"call (415) 555-2671", []string{Phone}},
		{"call 415-555-2671", []string{Phone}},
		{"on 2026-11-22 at 10:15", nil},
		{"order 12345678", nil},
		{"IBAN GB82 WEST 1234 5698 7654 32", []string{IBAN}},
		{"DE89370400440532013000", []string{IBAN}},
		{"DE89370400440532013001", nil}, // bad checksum
		{"two: AKIAIOSFODNN7EXAMPLE and bob@example.org", []string{AWSAccessKeyID, Email}},
	} {
		var got []string
		for _, m := range NewSet().Find(tc.text) {
			got = append(got, m.Detector)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: found %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestLuhnAndIBAN(t *testing.T) {
	for _, n := range []string{"79927398713", "4111111111111111", "5500 0000 0000 0004", "378282246310005"} {
		if !Luhn(n) {
			t.Errorf("Luhn(%s) = false", n)
		}
	}
	for _, n := range []string{"79927398710", "4111111111111121"} {
		if Luhn(n) {
			t.Errorf("Luhn(%s) = true", n)
		}
	}
	if !ValidIBAN("FR14 2004 1010 0505 0001 3M02 606") || ValidIBAN("FR14 2004 1010 0505 0001 3M02 607") || ValidIBAN("ZZ00 1234 5678 9012 34") {
		t.Error("IBAN checks wrong")
	}
}

func TestSetSubsetAndPattern(t *testing.T) {
	s := NewSet(Email)
	if len(s.Find("AKIAIOSFODNN7EXAMPLE x@example.com")) != 1 {
		t.Fatal("subset should only find e-mail")
	}
	p := NewSet(Email).WithPattern("ticket", regexp.MustCompile(`TCK-\d+`))
	red, ms := p.Redact("see TCK-42 from x@example.com")
	if red != "see [REDACTED:ticket] from [REDACTED:email]" || len(ms) != 2 {
		t.Fatalf("got %q %v", red, ms)
	}
	if !Known("*") || !Known(IBAN) || Known("password") {
		t.Fatal("Known")
	}
	// A pattern anchored to a whole value finds it inside a document.
	zip := NewSet(Email).WithPattern("zip", regexp.MustCompile(`^\d{5}$`))
	if fs, err := zip.ScanJSON([]byte(`{"a":"12345","b":"123456"}`)); err != nil || len(fs) != 1 || fs[0].Path != "a" {
		t.Fatalf("anchored pattern: %v %v", fs, err)
	}
}

func TestRedactJSON(t *testing.T) {
	doc := []byte(`{"arguments":{"key":"AKIAIOSFODNN7EXAMPLE","n":4111111111111111,"list":["ok","mail x@example.com"]},"name":"echo","nested":{"deep":[{"v":"<b>&"}]}}`)
	out, fs, err := NewSet().RedactJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"arguments":{"key":"[REDACTED:aws_access_key_id]","list":["ok","mail [REDACTED:email]"],"n":"[REDACTED:card_number]"},"name":"echo","nested":{"deep":[{"v":"<b>&"}]}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	wantF := `[{"detector":"aws_access_key_id","path":"arguments.key","count":1},{"detector":"email","path":"arguments.list[1]","count":1},{"detector":"card_number","path":"arguments.n","count":1}]`
	if b, _ := json.Marshal(fs); string(b) != wantF {
		t.Fatalf("findings %s", b)
	}
	// An escape cannot hide a key.
	out, fs, _ = NewSet().RedactJSON([]byte(`{"k":"\u0041KIAIOSFODNN7EXAMPLE"}`))
	if len(fs) != 1 || strings.Contains(string(out), "IOSFODNN7") {
		t.Fatalf("escaped key not found: %s", out)
	}
	// Nothing found: the same bytes back.
	clean := []byte(`{"a": "fine", "b": [1, 2]}`)
	if out, fs, _ := NewSet().RedactJSON(clean); string(out) != string(clean) || fs != nil {
		t.Fatal("clean document changed")
	}
	if _, _, err := NewSet().RedactJSON([]byte(`{"a": "AKIAIOSFODNN7EXAMPLE"`)); err == nil {
		t.Fatal("malformed JSON accepted")
	}
}

func TestDigestAttachments(t *testing.T) {
	v, _ := Decode([]byte(`{"content":[{"type":"text","text":"hi"},{"type":"image","data":"aGVsbG8=","mimeType":"image/png"},
		{"type":"resource","resource":{"uri":"file:///a.bin","mimeType":"application/octet-stream","blob":"AAEC"}}],
		"parts":[{"type":"blob","modality":"image","mime_type":"image/jpeg","content":"aGk="}]}`))
	nv, atts := DigestAttachments(v, "response", false)
	if len(atts) != 3 {
		t.Fatalf("attachments: %+v", atts)
	}
	if atts[0].Bytes != 5 || atts[0].SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" || atts[0].Mime != "image/png" || atts[0].Path != "response.content[1]" {
		t.Fatalf("image: %+v", atts[0])
	}
	b, _ := Encode(nv)
	if strings.Contains(string(b), "aGVsbG8=") || strings.Contains(string(b), "AAEC") || strings.Contains(string(b), "aGk=") {
		t.Fatalf("bytes kept: %s", b)
	}
	if !strings.Contains(string(b), `"sha256":"2cf24dba`) {
		t.Fatalf("digest missing: %s", b)
	}
	// The original is untouched; keep=true keeps the bytes.
	nv, _ = DigestAttachments(v, "", true)
	if b, _ := Encode(nv); !strings.Contains(string(b), "aGVsbG8=") {
		t.Fatalf("keep dropped bytes: %s", b)
	}
	if b, _ := Encode(v); !strings.Contains(string(b), "aGVsbG8=") || strings.Contains(string(b), "sha256") {
		t.Fatalf("input modified: %s", b)
	}
}

func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"AKIAIOSFODNN7EXAMPLE"}`, `["x@example.com", 4111111111111111]`, `"+44 20 7946 0958"`,
		`{"k":"\u0041KIAIOSFODNN7EXAMPLE","p":"-----BEGIN PRIVATE KEY-----\nabc"}`, `{"iban":"GB82 WEST 1234 5698 7654 32"}`, `1`, `{`,
	} {
		f.Add([]byte(s))
	}
	set := NewSet()
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		out, fs, err := set.RedactJSON(doc)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %q", out)
		}
		if len(fs) == 0 {
			return
		}
		// What was masked is not found again.
		if again, err := set.ScanJSON(out); err != nil || len(again) != 0 {
			t.Fatalf("after redaction still found %v (%v) in %s", again, err, out)
		}
	})
}

func FuzzFind(f *testing.F) {
	f.Add("AKIAIOSFODNN7EXAMPLE 4111 1111 1111 1111 x@y.io +1 415 555 2671 DE89370400440532013000")
	set := NewSet()
	f.Fuzz(func(t *testing.T, s string) {
		prev := -1
		for _, m := range set.Find(s) {
			if m.Start < prev || m.End <= m.Start || m.End > len(s) {
				t.Fatalf("bad match %+v in %q", m, s)
			}
			prev = m.End
		}
	})
}

// TestFindsWholeVeritrailTokens: both forms of Veritrail token are found
// whole, so masking leaves no part of the secret.
func TestFindsWholeVeritrailTokens(t *testing.T) {
	for _, tok := range []string{veritrail.NewTokenSecret(), veritrail.NewOrgTokenSecret(42)} {
		text := "token " + tok + " here"
		m := NewSet().Find(text)
		if len(m) != 1 || m[0].Detector != APIToken || text[m[0].Start:m[0].End] != tok {
			t.Errorf("%q: found %+v, want the whole token", text, m)
		}
	}
}
