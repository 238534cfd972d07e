// Package kafka delivers events to a Kafka topic through
// github.com/twmb/franz-go: one record per event, keyed by the
// organization's name (so one organization's events share a partition and
// keep their order), the record's body as the value, and the id, seq and
// type in headers. The producer is idempotent and waits for all in-sync
// replicas; a batch is acknowledged when every record of it is.
package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/veritrail/veritrail/sink"
)

type dest struct {
	client *kgo.Client
	topic  string
	format string
}

// New is the kafka sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	c := s.Config
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.ClientID("veritrail-forwarder"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), // the engine batches already
		// Fail a record after this long, so the engine's backoff and the
		// sink's state show an outage instead of a produce hanging.
		kgo.RecordDeliveryTimeout(20 * time.Second),
		kgo.DialTimeout(10 * time.Second),
		kgo.ProducerBatchMaxBytes(16 << 20),
	}
	// Every broker connection, the seeds' and those the cluster names
	// later, is checked after name resolution.
	var tlsConf *tls.Config
	if c.TLS {
		var err error
		if tlsConf, err = sink.TLSConfig(c); err != nil {
			return nil, err
		}
	}
	opts = append(opts, kgo.Dialer(guardedDial(s.Outbound.Dialer(), tlsConf)))
	switch c.SASL {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: string(s.Secret)}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: string(s.Secret)}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: string(s.Secret)}.AsSha512Mechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, sink.Permanent(err)
	}
	return &dest{client: cl, topic: c.Topic, format: c.Format}, nil
}

// guardedDial dials brokers through d, over TLS when t is set (verifying
// the broker's host name unless t names one, as kgo.DialTLSConfig does).
func guardedDial(d *net.Dialer, t *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	if t == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		c := t.Clone()
		if c.ServerName == "" {
			if h, _, err := net.SplitHostPort(host); err == nil {
				c.ServerName = h
			}
		}
		return (&tls.Dialer{NetDialer: d, Config: c}).DialContext(ctx, network, host)
	}
}

// Records returns b as Kafka records.
func Records(b *sink.Batch, topic, format string) []*kgo.Record {
	out := make([]*kgo.Record, len(b.Records))
	key := []byte(b.Org)
	for i := range b.Records {
		r := &b.Records[i]
		// No Timestamp: franz-go times delivery out from it, so the event's
		// (older) time would fail every record; the body has the time.
		out[i] = &kgo.Record{Topic: topic, Key: key, Value: r.Body,
			Headers: []kgo.RecordHeader{
				{Key: "veritrail-id", Value: []byte(r.ID)},
				{Key: "veritrail-seq", Value: strconv.AppendInt(nil, r.Seq, 10)},
				{Key: "veritrail-type", Value: []byte(r.Event.Type)},
				{Key: "veritrail-format", Value: []byte(format)},
			}}
	}
	return out
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	res := d.client.ProduceSync(ctx, Records(b, d.topic, d.format)...)
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("kafka produce: %w", err)
	}
	return nil
}

func (d *dest) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Records still buffered are abandoned: the engine sends the batch
	// again from its cursor, on a new client.
	d.client.AbortBufferedRecords(ctx)
	d.client.Close()
	return nil
}
