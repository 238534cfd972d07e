package syslog_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/sinktest"
	"github.com/veritrail/veritrail/sink/syslog"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

func cfgFor(r *sinktest.Rsyslog, protocol, framing, format string) *sink.Config {
	f := 13
	c := &sink.Config{Format: format, Address: r.Addr, Protocol: protocol, Framing: framing, Facility: &f, AppName: "veritrail", Hostname: "vt-test"}
	if protocol == "tls" {
		c.CAFile = r.CAFile
	}
	return c
}

// check reads n messages from rsyslog and compares the fields its RFC 5424
// parser found with the batch.
func check(t *testing.T, r *sinktest.Rsyslog, b *sink.Batch, offset int) {
	t.Helper()
	lines := r.Lines(offset + len(b.Records))
	for i, rec := range b.Records {
		f := strings.SplitN(lines[offset+i], "|", 7)
		if len(f) != 7 {
			t.Fatalf("line %d: %q", i, lines[offset+i])
		}
		pri, _ := strconv.Atoi(f[0])
		if pri/8 != 13 || f[2] != "vt-test" || f[3] != "veritrail" || f[4] != rec.Event.Type[:min(32, len(rec.Event.Type))] {
			t.Fatalf("line %d header fields %q", i, f[:5])
		}
		if !strings.Contains(f[5], `seq="`+strconv.FormatInt(rec.Seq, 10)+`"`) || !strings.Contains(f[5], `id="`+rec.ID+`"`) ||
			!strings.Contains(f[5], `org="acme"`) {
			t.Fatalf("line %d structured data %q", i, f[5])
		}
		if strings.TrimPrefix(f[6], " ") != string(rec.Body) {
			t.Fatalf("line %d message:\n got %s\nwant %s", i, f[6], rec.Body)
		}
	}
}

func TestRsyslogTCP(t *testing.T) {
	r := sinktest.StartRsyslog(t, false)
	for i, c := range []struct{ framing, format string }{
		{"octet_counting", sink.FormatNative},
		{"newline", sink.FormatCEF},
		{"octet_counting", sink.FormatOCSF},
	} {
		d, err := syslog.New(&sink.Settings{Outbound: loopbackOK, Config: cfgFor(r, "tcp", c.framing, c.format)})
		if err != nil {
			t.Fatal(err)
		}
		b := sinktest.Batch(t, c.format, c.format != sink.FormatCEF)
		if err := d.Send(context.Background(), b); err != nil {
			t.Fatalf("%s/%s: %v", c.framing, c.format, err)
		}
		d.Close()
		check(t, r, b, i*len(b.Records))
	}
}

func TestRsyslogTLS(t *testing.T) {
	r := sinktest.StartRsyslog(t, true)
	d, err := syslog.New(&sink.Settings{Outbound: loopbackOK, Config: cfgFor(r, "tls", "octet_counting", sink.FormatNative)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := sinktest.Batch(t, sink.FormatNative, true)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), b); err != nil { // the same connection again
		t.Fatal(err)
	}
	check(t, r, b, 0)
	check(t, r, b, len(b.Records))

	// Without the private CA the certificate is refused, and that is not
	// worth retrying as is.
	c := cfgFor(r, "tls", "octet_counting", sink.FormatNative)
	c.CAFile = ""
	d2, _ := syslog.New(&sink.Settings{Outbound: loopbackOK, Config: c})
	if err := d2.Send(context.Background(), b); err == nil || !sink.IsPermanent(err) {
		t.Fatalf("unknown CA: %v", err)
	}
}

// The receiver restarts between batches: the sender notices the closed
// connection, reports the batch as failed (so the engine sends it again),
// and reconnects.
func TestRsyslogRestart(t *testing.T) {
	r := sinktest.StartRsyslog(t, false)
	d, _ := syslog.New(&sink.Settings{Outbound: loopbackOK, Config: cfgFor(r, "tcp", "octet_counting", sink.FormatNative)})
	defer d.Close()
	b := sinktest.Batch(t, sink.FormatNative, false)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	check(t, r, b, 0)
	r.Stop()
	// Down: a send fails (at once, or after the write when the closed
	// connection is noticed); then the receiver is back.
	failed := false
	for range 3 {
		if err := d.Send(context.Background(), b); err != nil {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("sending to a stopped receiver never failed")
	}
	r.Restart()
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	lines := r.Lines(2 * len(b.Records))
	last := lines[len(lines)-len(b.Records):]
	for i, rec := range b.Records {
		if !strings.HasSuffix(last[i], string(rec.Body)) {
			t.Fatalf("after the restart, message %d: %q", i, last[i])
		}
	}
}

func TestMessageFormat(t *testing.T) {
	f := 13
	c := &sink.Config{Format: sink.FormatCEF, Framing: "octet_counting", Facility: &f, AppName: "veritrail"}
	b := sinktest.Batch(t, sink.FormatCEF, false)
	var out []byte
	for i := range b.Records {
		msg := syslog.AppendMessage(nil, c, "vt-test", b.Org, &b.Records[i])
		out = syslog.AppendFrame(out, c, msg)
		out = append(out, '\n')
	}
	sinktest.Golden(t, "frames-cef.txt", out)
}
