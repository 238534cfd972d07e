// Package webhook delivers batches as JSON to an HTTP endpoint, each body
// signed with X-Veritrail-Signature: sha256=<hex HMAC-SHA256 of the body
// under the sink's secret> (docs/FORWARDING.md).
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
	"strconv"
	"time"

	"github.com/veritrail/veritrail/internal/canonjson"
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
	*sink.HTTPPeer
	secret []byte
}

// New is the webhook sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	p, err := sink.NewHTTPPeer(s, s.Config.URL)
	if err != nil {
		return nil, err
	}
	return &dest{HTTPPeer: p, secret: s.Secret}, nil
}

// AppendBody appends the webhook body of b, sent at t.
func AppendBody(dst []byte, b *sink.Batch, t time.Time) []byte {
	dst = append(dst, `{"organization":`...)
	dst = canonjson.AppendString(dst, b.Org)
	dst = append(dst, `,"sink":`...)
	dst = canonjson.AppendString(dst, b.SinkID)
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
	// The records, a comma between each, and the envelope's members: one
	// allocation, not a doubling copy of a megabyte body.
	body := AppendBody(make([]byte, 0, b.Bytes()+len(b.Records)+6*(len(b.Org)+len(b.SinkID))+256), b, time.Now())
	return d.Post(ctx, bytes.NewReader(body), SignatureHeader, Sign(d.secret, body), "X-Veritrail-Sink", b.SinkID)
}
