package receive

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// handlerMetrics are the Handler's metrics. No label depends on the tenant or
// the data, so their cardinality is fixed.
type handlerMetrics struct {
	requests         *prometheus.CounterVec   // code, protocol
	duration         *prometheus.HistogramVec // code, protocol
	bodyBytes        *prometheus.HistogramVec // protocol, encoding
	samples          prometheus.Counter
	histograms       prometheus.Counter
	exemplars        prometheus.Counter
	rejected         [numReasons]prometheus.Counter
	exemplarsDropped [numExemplarReasons]prometheus.Counter
	forwardedWrites  *prometheus.CounterVec // code
}

func newHandlerMetrics(reg prometheus.Registerer) *handlerMetrics {
	f := promauto.With(reg)
	m := &handlerMetrics{
		forwardedWrites: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_receive_forwarded_writes_total",
			Help: "Writes forwarded to this receiver by peers and appended locally, by outcome as an HTTP status code.",
		}, []string{"code"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_receive_requests_total",
			Help: "Remote write requests handled, by HTTP status code and protocol (rw1, rw2, or unknown before content negotiation).",
		}, []string{"code", "protocol"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                           "strata_receive_request_duration_seconds",
			Help:                           "Time to handle a remote write request, by HTTP status code and protocol.",
			Buckets:                        []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor:    1.1,
			NativeHistogramMaxBucketNumber: 100,
		}, []string{"code", "protocol"}),
		bodyBytes: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                           "strata_receive_request_body_bytes",
			Help:                           "Size of remote write request bodies, as sent (encoding=snappy) and decompressed (encoding=identity).",
			Buckets:                        prometheus.ExponentialBuckets(1024, 4, 10),
			NativeHistogramBucketFactor:    1.1,
			NativeHistogramMaxBucketNumber: 100,
		}, []string{"protocol", "encoding"}),
		samples: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_receive_samples_written_total",
			Help: "Float samples written to storage (committed).",
		}),
		histograms: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_receive_histograms_written_total",
			Help: "Native histogram samples written to storage (committed).",
		}),
		exemplars: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_receive_exemplars_written_total",
			Help: "Exemplars written to storage (committed).",
		}),
	}
	rejected := f.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_receive_samples_rejected_total",
		Help: "Float and histogram samples rejected for good (answered with 400), by reason.",
	}, []string{"reason"})
	for r := range numReasons {
		m.rejected[r] = rejected.WithLabelValues(reasonNames[r])
	}
	dropped := f.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_receive_exemplars_dropped_total",
		Help: "Exemplars not written, by reason. Dropped exemplars alone do not fail a request.",
	}, []string{"reason"})
	for r := range numExemplarReasons {
		m.exemplarsDropped[r] = dropped.WithLabelValues(exemplarReasonNames[r])
	}
	return m
}

// observe records the written and rejected counts of a request whose appends
// were committed.
func (m *handlerMetrics) observe(res *result) {
	m.samples.Add(float64(res.samples))
	m.histograms.Add(float64(res.histograms))
	m.exemplars.Add(float64(res.exemplars))
	for r, n := range res.byReason {
		if n > 0 {
			m.rejected[r].Add(float64(n))
		}
	}
	for r, n := range res.exemplarsDropped {
		if n > 0 {
			m.exemplarsDropped[r].Add(float64(n))
		}
	}
}
