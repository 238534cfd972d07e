// Package splunk delivers batches to a Splunk HTTP Event Collector:
// POST <url>/services/collector/event with "Authorization: Splunk
// <token>", the events of a batch concatenated in one body, each
// {"time", "host", "source", "sourcetype", "index", "event", "fields"}.
package splunk

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/veritrail/veritrail/internal/canonjson"
	"github.com/veritrail/veritrail/sink"
)

// Path is HEC's JSON event endpoint.
const Path = "/services/collector/event"

type dest struct {
	*sink.HTTPPeer
	token   string
	channel string
	cfg     *sink.Config
}

// New is the splunk_hec sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	u := strings.TrimRight(s.Config.URL, "/")
	if !strings.HasSuffix(u, Path) {
		u += Path
	}
	p, err := sink.NewHTTPPeer(s, u)
	if err != nil {
		return nil, err
	}
	return &dest{HTTPPeer: p, token: string(s.Secret), channel: channelOf(s.SinkID), cfg: s.Config}, nil
}

// channelOf derives a stable HEC channel GUID from the sink id (HEC asks
// for one when indexer acknowledgment is on).
func channelOf(id string) string {
	var h [16]byte
	for i := 0; i < len(id); i++ {
		h[i%16] = h[i%16]*31 + id[i]
	}
	const hexd = "0123456789abcdef"
	var b strings.Builder
	for i, c := range h {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b.WriteByte('-')
		}
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

// AppendBody appends the HEC body of b.
func AppendBody(dst []byte, b *sink.Batch, c *sink.Config) []byte {
	sourcetype := c.SourceType
	if sourcetype == "" {
		sourcetype = "veritrail:event"
		if c.Format == sink.FormatOCSF {
			sourcetype = "veritrail:ocsf"
		}
	}
	source := c.Source
	if source == "" {
		source = "veritrail"
	}
	for i := range b.Records {
		r := &b.Records[i]
		if i > 0 {
			dst = append(dst, '\n')
		}
		// time: seconds with milliseconds, as HEC expects.
		ms := r.Event.Time.UnixMilli()
		dst = append(dst, `{"time":`...)
		dst = strconv.AppendFloat(dst, float64(ms)/1000, 'f', 3, 64)
		if c.Hostname != "" {
			dst = append(dst, `,"host":`...)
			dst = canonjson.AppendString(dst, c.Hostname)
		}
		dst = append(dst, `,"source":`...)
		dst = canonjson.AppendString(dst, source)
		dst = append(dst, `,"sourcetype":`...)
		dst = canonjson.AppendString(dst, sourcetype)
		if c.Index != "" {
			dst = append(dst, `,"index":`...)
			dst = canonjson.AppendString(dst, c.Index)
		}
		dst = append(dst, `,"event":`...)
		dst = append(dst, r.Body...)
		dst = append(dst, `,"fields":{"organization":`...)
		dst = canonjson.AppendString(dst, b.Org)
		dst = append(dst, `,"veritrail_seq":"`...)
		dst = strconv.AppendInt(dst, r.Seq, 10)
		dst = append(dst, `","veritrail_type":`...)
		dst = canonjson.AppendString(dst, r.Event.Type)
		dst = append(dst, "}}"...)
	}
	return dst
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	body := AppendBody(make([]byte, 0, b.Bytes()+200*len(b.Records)), b, d.cfg)
	return d.Post(ctx, bytes.NewReader(body), "Authorization", "Splunk "+d.token, "X-Splunk-Request-Channel", d.channel)
}
