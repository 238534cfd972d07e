// Package all lists every sink type of this build with its destination.
package all

import (
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/datadog"
	"github.com/veritrail/veritrail/sink/kafka"
	"github.com/veritrail/veritrail/sink/s3"
	"github.com/veritrail/veritrail/sink/splunk"
	"github.com/veritrail/veritrail/sink/syslog"
	"github.com/veritrail/veritrail/sink/webhook"
)

// Types maps each sink type to its destination's factory.
func Types() map[string]sink.Factory {
	return map[string]sink.Factory{
		sink.Webhook:   webhook.New,
		sink.SplunkHEC: splunk.New,
		sink.Datadog:   datadog.New,
		sink.Syslog:    syslog.New,
		sink.Kafka:     kafka.New,
		sink.S3:        s3.New,
	}
}
