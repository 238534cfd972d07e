// Package webhook delivers batches as JSON to an HTTP endpoint, each body
// signed with X-Veritrail-Signature: sha256=<hex HMAC-SHA256 of the body
// under the sink's secret> (DESIGN.md §9).
//
// Body: {"organization": …, "sink": …, "first_seq": …, "last_seq": …,
// "sent_at": …, "events": [record, …]}; records are the sink's format
// (the API's event JSON, or OCSF). A 2xx answer acknowledges the batch;
// 408, 429 and 5xx are retried; other statuses pause the sink after a few
// attempts. Receivers deduplicate by the records' id (or seq).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

// SignatureHeader carries the body's HMAC.
const SignatureHeader = "X-Veritrail-Signature"

// Sign returns the X-Veritrail-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in
// constant time: what a receiver does.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, body)))
}

type dest struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// New is the webhook sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	c, err := sink.HTTPClient(s.Config)
	if err != nil {
		return nil, err
	}
	return &dest{url: s.Config.URL, secret: s.Secret, client: c, now: time.Now}, nil
}

// AppendBody appends the webhook body of b, sent at t.
func AppendBody(dst []byte, b *sink.Batch, t time.Time) []byte {
	dst = append(dst, `{"organization":`...)
	dst = veritrail.AppendJSONString(dst, b.Org)
	dst = append(dst, `,"sink":`...)
	dst = veritrail.AppendJSONString(dst, b.SinkID)
	dst = append(dst, `,"first_seq":`...)
	dst = strconv.AppendInt(dst, b.Records[0].Seq, 10)
	dst = append(dst, `,"last_seq":`...)
	dst = strconv.AppendInt(dst, b.Records[len(b.Records)-1].Seq, 10)
	dst = append(dst, `,"sent_at":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","events":[`...)
	for i := range b.Records {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, b.Records[i].Body...)
	}
	return append(dst, "]}"...)
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	body := AppendBody(make([]byte, 0, b.Bytes()+256), b, d.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "veritrail-forwarder")
	req.Header.Set(SignatureHeader, Sign(d.secret, body))
	req.Header.Set("X-Veritrail-Sink", b.SinkID)
	resp, err := d.client.Do(req)
	if err != nil {
		return sink.NetError(err)
	}
	return sink.HTTPResult(resp)
}

func (d *dest) Close() error {
	d.client.CloseIdleConnections()
	return nil
}
