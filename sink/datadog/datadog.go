// Package datadog delivers batches to Datadog's Logs intake, API v2:
// POST https://http-intake.logs.<site>/api/v2/logs with DD-API-KEY, a
// gzip-compressed JSON array of logs {"ddsource", "ddtags", "hostname",
// "service", "message"}; the message is the record's JSON, which Datadog
// parses into attributes.
package datadog

import (
	"bytes"
	"compress/gzip"
	"context"
	"strconv"
	"strings"

	"github.com/veritrail/veritrail/internal/canonjson"
	"github.com/veritrail/veritrail/sink"
)

type dest struct {
	*sink.HTTPPeer
	key string
	cfg *sink.Config
}

// IntakeURL is the v2 logs intake of a Datadog site.
func IntakeURL(site string) string { return "https://http-intake.logs." + site + "/api/v2/logs" }

// New is the datadog sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	u := s.Config.URL
	if u == "" {
		u = IntakeURL(s.Config.Site)
	}
	p, err := sink.NewHTTPPeer(s, u)
	if err != nil {
		return nil, err
	}
	return &dest{HTTPPeer: p, key: string(s.Secret), cfg: s.Config}, nil
}

// AppendBody appends the (uncompressed) intake body of b.
func AppendBody(dst []byte, b *sink.Batch, c *sink.Config) []byte {
	hostname := c.Hostname
	if hostname == "" {
		hostname = "veritrail"
	}
	dst = append(dst, '[')
	for i := range b.Records {
		r := &b.Records[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		tags := append([]string{"organization:" + b.Org, "event_type:" + r.Event.Type, "format:" + c.Format}, c.Tags...)
		dst = append(dst, `{"ddsource":"veritrail","ddtags":`...)
		dst = canonjson.AppendString(dst, strings.Join(tags, ","))
		dst = append(dst, `,"hostname":`...)
		dst = canonjson.AppendString(dst, hostname)
		dst = append(dst, `,"service":`...)
		dst = canonjson.AppendString(dst, c.Service)
		// timestamp: the event's time (ms), which Datadog takes as the log's date.
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendInt(dst, r.Event.Time.UnixMilli(), 10)
		dst = append(dst, `,"message":`...)
		dst = canonjson.AppendString(dst, string(r.Body))
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb) // writes to a bytes.Buffer do not fail
	zw.Write(AppendBody(make([]byte, 0, b.Bytes()*11/10+150*len(b.Records)), b, d.cfg))
	zw.Close()
	return d.Post(ctx, &zb, "DD-API-KEY", d.key, "Content-Encoding", "gzip")
}
