package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/mail"
)

func TestSendSTARTTLSAndAuth(t *testing.T) {
	srv := smtptest.Start(t)
	ctx := context.Background()
	cfg := &mail.Config{URL: srv.URL(), From: "veritrail@acme.example", CAFile: srv.CAFile}
	if err := mail.Send(ctx, cfg, &mail.Message{To: "sec@acme.example", Subject: "Export prêt", Body: "line one\nline two\n"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(t, 1, 10*time.Second)
	for _, want := range []string{"X-Rcpt-To: sec@acme.example", "From: veritrail@acme.example", "Subject: =?utf-8?q?Export_pr=C3=AAt?=", "line one\r\nline two"} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("message lacks %q:\n%s", want, msgs[0])
		}
	}

	for name, c := range map[string]*mail.Config{
		"wrong password":        {URL: strings.Replace(srv.URL(), srv.Password, "nope", 1), CAFile: srv.CAFile},
		"untrusted certificate": {URL: srv.URL()},
		"bad URL":               {URL: "http://" + srv.Addr},
	} {
		t0 := time.Now()
		err := mail.Send(ctx, c, &mail.Message{To: "sec@acme.example", Subject: "x", Body: "x"})
		t.Logf("%s: %v in %v", name, err, time.Since(t0))
		if err == nil {
			t.Errorf("%s: sent", name)
		} else if strings.Contains(err.Error(), srv.Password) || strings.Contains(err.Error(), "nope") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestValidAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"a@b.example": true, "a@b": false, "@b.example": false, "a@b.example\r\nBcc: x@y.z": false,
		"a@b.example, c@d.example": false, "<a@b.example>": false, "": false,
	} {
		if got := mail.ValidAddress(s); got != want {
			t.Errorf("ValidAddress(%q) = %v", s, got)
		}
	}
}
