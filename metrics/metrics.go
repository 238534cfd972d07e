// Package metrics exports Veritrail's measurements in the Prometheus format
// (github.com/prometheus/client_golang), on a registry of its own so that
// tests and several servers in one process do not collide.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. It implements veritrail.Observer.
type Metrics struct {
	Registry *prometheus.Registry

	IngestEvents     *prometheus.CounterVec // result: stored, duplicate, rejected
	IngestRequests   *prometheus.CounterVec // code
	CommitEvents     prometheus.Histogram
	CommitRequests   prometheus.Histogram
	CommitDuration   prometheus.Histogram
	CommitErrors     prometheus.Counter
	QueueDepth       prometheus.Gauge
	FullTextLagGauge prometheus.Gauge
	QueryDuration    *prometheus.HistogramVec // kind
	HTTPRequests     *prometheus.CounterVec   // route, code
	HTTPDuration     *prometheus.HistogramVec // route
	Checkpoints      prometheus.Counter
	Refusals         prometheus.Counter
	WitnessResults   *prometheus.CounterVec // witness, result
	WitnessRefusals  *prometheus.CounterVec // witness

	SinkLagEvents    *prometheus.GaugeVec     // org, sink
	SinkLagSeconds   *prometheus.GaugeVec     // org, sink
	SinkEvents       *prometheus.CounterVec   // org, sink
	SinkBytes        *prometheus.CounterVec   // org, sink
	SinkFailures     *prometheus.CounterVec   // org, sink, kind
	SinkSendDuration *prometheus.HistogramVec // org, sink
}

// New returns metrics registered on a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_ingest_events_total",
			Help: "Events received by POST /api/v1/events, by result (stored, duplicate, rejected).",
		}, []string{"result"}),
		IngestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_ingest_requests_total",
			Help: "Ingest requests by HTTP status code.",
		}, []string{"code"}),
		CommitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "veritrail_commit_batch_events",
			Help:    "New events per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		CommitRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "veritrail_commit_batch_requests",
			Help:    "Append requests merged into one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		CommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "veritrail_commit_duration_seconds",
			Help:    "Duration of a group commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "veritrail_commit_errors_total",
			Help: "Group commits that failed and rolled back.",
		}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "veritrail_commit_queue_depth",
			Help: "Append requests waiting for the next group commit.",
		}),
		FullTextLagGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "veritrail_fulltext_lag_events",
			Help: "Committed events not yet in the full-text index (it trails the commit by design).",
		}),
		QueryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "veritrail_query_duration_seconds",
			Help:    "Store query latency by kind (list, get).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"kind"}),
		Checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "veritrail_checkpoints_signed_total",
			Help: "Checkpoints signed.",
		}),
		Refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "veritrail_checkpoint_refusals_total",
			Help: "Checkpoints not signed because the tree was not consistent with the last one (investigate at once).",
		}),
		WitnessResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_witness_requests_total",
			Help: "Checkpoints handed to witnesses, by witness and result (ok, failed).",
		}, []string{"witness", "result"}),
		WitnessRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_witness_refusals_total",
			Help: "Checkpoints a witness refused because it cosigned another or a larger tree of the log: a fork or a rollback (investigate at once).",
		}, []string{"witness"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "veritrail_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"route"}),
		SinkLagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "veritrail_sink_lag_events",
			Help: "Events of the organization's log not yet delivered to the sink.",
		}, []string{"org", "sink"}),
		SinkLagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "veritrail_sink_lag_seconds",
			Help: "Age of the oldest event not yet delivered to the sink (0 when caught up).",
		}, []string{"org", "sink"}),
		SinkEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_sink_delivered_events_total",
			Help: "Events delivered to the sink and acknowledged by it.",
		}, []string{"org", "sink"}),
		SinkBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_sink_delivered_bytes_total",
			Help: "Bytes of records delivered to the sink.",
		}, []string{"org", "sink"}),
		SinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veritrail_sink_failures_total",
			Help: "Failed deliveries, by kind (retry: retried with backoff; permanent: pauses the sink when repeated).",
		}, []string{"org", "sink", "kind"}),
		SinkSendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "veritrail_sink_send_duration_seconds",
			Help:    "Duration of one acknowledged delivery to a sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"org", "sink"}),
	}
	r.MustRegister(m.SinkLagEvents, m.SinkLagSeconds, m.SinkEvents, m.SinkBytes, m.SinkFailures, m.SinkSendDuration)
	r.MustRegister(m.IngestEvents, m.IngestRequests, m.CommitEvents, m.CommitRequests,
		m.CommitDuration, m.CommitErrors, m.QueueDepth, m.FullTextLagGauge, m.QueryDuration, m.HTTPRequests, m.HTTPDuration, m.Checkpoints, m.Refusals, m.WitnessResults, m.WitnessRefusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ReadScheduling exposes the scheduler of reads behind ingest (package
// internal/admission): how busy ingest's commits keep the server, and how
// many reads wait for a turn.
func (m *Metrics) ReadScheduling(busy func() float64, waiting func() int) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "veritrail_ingest_busy_ratio",
			Help: "Fraction of the recent time spent committing (summed over commit lanes); from the read busy threshold on, reads are paced.",
		}, busy),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "veritrail_reads_waiting",
			Help: "Reads (lists, search, stats, exports) waiting for their turn behind ingest.",
		}, func() float64 { return float64(waiting()) }))
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// CommitDone implements veritrail.Observer.
func (m *Metrics) CommitDone(requests, events int, d time.Duration, err error) {
	if err != nil {
		m.CommitErrors.Inc()
		return
	}
	m.CommitRequests.Observe(float64(requests))
	m.CommitEvents.Observe(float64(events))
	m.CommitDuration.Observe(d.Seconds())
}

// Queued implements veritrail.Observer.
func (m *Metrics) Queued(n int) { m.QueueDepth.Set(float64(n)) }

// QueryDone implements veritrail.Observer.
func (m *Metrics) QueryDone(kind string, d time.Duration) {
	m.QueryDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// FullTextLag implements veritrail.Observer.
func (m *Metrics) FullTextLag(n int64) { m.FullTextLagGauge.Set(float64(n)) }

// CheckpointSigned implements checkpoint.Observer.
func (m *Metrics) CheckpointSigned(int64, int64) { m.Checkpoints.Inc() }

// CheckpointRefused implements checkpoint.Observer.
func (m *Metrics) CheckpointRefused(int64) { m.Refusals.Inc() }

// Witnessed implements checkpoint.Observer.
func (m *Metrics) Witnessed(url string, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.WitnessResults.WithLabelValues(url, result).Inc()
}

// WitnessRefused implements checkpoint.Observer.
func (m *Metrics) WitnessRefused(url string) { m.WitnessRefusals.WithLabelValues(url).Inc() }

// SinkLag implements sink.Observer.
func (m *Metrics) SinkLag(org, sink string, events int64, seconds float64) {
	m.SinkLagEvents.WithLabelValues(org, sink).Set(float64(events))
	m.SinkLagSeconds.WithLabelValues(org, sink).Set(seconds)
}

// SinkDelivered implements sink.Observer.
func (m *Metrics) SinkDelivered(org, sink string, events, bytes int, d time.Duration) {
	m.SinkEvents.WithLabelValues(org, sink).Add(float64(events))
	m.SinkBytes.WithLabelValues(org, sink).Add(float64(bytes))
	m.SinkSendDuration.WithLabelValues(org, sink).Observe(d.Seconds())
}

// SinkFailed implements sink.Observer.
func (m *Metrics) SinkFailed(org, sink string, permanent bool) {
	kind := "retry"
	if permanent {
		kind = "permanent"
	}
	m.SinkFailures.WithLabelValues(org, sink, kind).Inc()
}

// SinkGone implements sink.Observer: a deleted sink's series go away.
func (m *Metrics) SinkGone(org, sink string) {
	l := map[string]string{"org": org, "sink": sink}
	m.SinkLagEvents.DeletePartialMatch(l)
	m.SinkLagSeconds.DeletePartialMatch(l)
	m.SinkEvents.DeletePartialMatch(l)
	m.SinkBytes.DeletePartialMatch(l)
	m.SinkFailures.DeletePartialMatch(l)
	m.SinkSendDuration.DeletePartialMatch(l)
}
