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
	"net/http"
	"strconv"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

type dest struct {
	url    string
	key    string
	cfg    *sink.Config
	client *http.Client
}

// IntakeURL is the v2 logs intake of a Datadog site.
func IntakeURL(site string) string { return "https://http-intake.logs." + site + "/api/v2/logs" }

// New is the datadog sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	c, err := sink.HTTPClient(s.Config)
	if err != nil {
		return nil, err
	}
	u := s.Config.URL
	if u == "" {
		u = IntakeURL(s.Config.Site)
	}
	return &dest{url: u, key: string(s.Secret), cfg: s.Config, client: c}, nil
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
		dst = veritrail.AppendJSONString(dst, strings.Join(tags, ","))
		dst = append(dst, `,"hostname":`...)
		dst = veritrail.AppendJSONString(dst, hostname)
		dst = append(dst, `,"service":`...)
		dst = veritrail.AppendJSONString(dst, c.Service)
		// timestamp: the event's time (ms), which Datadog takes as the log's date.
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendInt(dst, r.Event.Time.UnixMilli(), 10)
		dst = append(dst, `,"message":`...)
		dst = veritrail.AppendJSONString(dst, string(r.Body))
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.DefaultCompression)
	zw.Write(AppendBody(make([]byte, 0, b.Bytes()*11/10+150*len(b.Records)), b, d.cfg))
	zw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, &zb)
	if err != nil {
		return sink.Permanent(err)
	}
	req.Header.Set("DD-API-KEY", d.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "veritrail-forwarder")
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
