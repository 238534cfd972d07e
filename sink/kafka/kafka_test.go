package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/kafka"
	"github.com/veritrail/veritrail/sink/sinktest"
)

// loopbackOK lets destinations reach the test peers, which listen on
// loopback.
var loopbackOK = netguard.Guard{AllowLoopback: true}

const topic = "veritrail-events"

// consume reads n records from the topic with a real franz-go consumer.
func consume(t *testing.T, addrs []string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestKafkaKeyedAndOrdered(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := kafka.New(&sink.Settings{Outbound: loopbackOK, Config: &sink.Config{Format: sink.FormatOCSF, Brokers: c.ListenAddrs(), Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := sinktest.Batch(t, sink.FormatOCSF, true)
	// Three batches: the same organization's records must land in one
	// partition, in seq order.
	for range 3 {
		if err := d.Send(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := consume(t, c.ListenAddrs(), 3*len(b.Records))
	part := got[0].Partition
	for i, r := range got {
		want := b.Records[i%len(b.Records)]
		if string(r.Key) != "acme" || r.Partition != part || string(r.Value) != string(want.Body) ||
			header(r, "veritrail-id") != want.ID || header(r, "veritrail-seq") != strconv.FormatInt(want.Seq, 10) ||
			header(r, "veritrail-type") != want.Event.Type || header(r, "veritrail-format") != "ocsf" {
			t.Fatalf("record %d: key %q partition %d (first %d) headers %v", i, r.Key, r.Partition, part, r.Headers)
		}
	}
}

func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "veritrail", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := &sink.Config{Format: sink.FormatNative, Brokers: c.ListenAddrs(), Topic: topic, SASL: "plain", Username: "veritrail"}
	d, err := kafka.New(&sink.Settings{Outbound: loopbackOK, Config: cfg, Secret: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := sinktest.Batch(t, sink.FormatNative, false)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got := consume(t, c.ListenAddrs(), len(b.Records), kgo.SASL(plainAuth("veritrail", "s3cret")))
	if string(got[0].Value) != string(b.Records[0].Body) {
		t.Fatalf("first record %s", got[0].Value)
	}
	// A wrong password fails the batch.
	bad, _ := kafka.New(&sink.Settings{Outbound: loopbackOK, Config: cfg, Secret: []byte("wrong")})
	defer bad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := bad.Send(ctx, b); err == nil {
		t.Fatal("a wrong SASL password delivered")
	}
}
