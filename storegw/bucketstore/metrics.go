package bucketstore

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	bytesRead     prometheus.Counter
	rangeRequests prometheus.Counter
	blocksLoaded  prometheus.Gauge
	limitHits     *prometheus.CounterVec

	// bytes and requests mirror the counters for ReadStats, which must work
	// whatever registry the counters went to.
	bytes, requests atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		bytesRead: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_bucketstore_bucket_bytes_read_total",
			Help: "Bytes read from object storage by ranged reads: index headers, postings, series and chunks.",
		}),
		rangeRequests: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_bucketstore_bucket_range_requests_total",
			Help: "Ranged reads (GetRange calls) issued to object storage.",
		}),
		blocksLoaded: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_bucketstore_blocks_loaded",
			Help: "Blocks currently served.",
		}),
		limitHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bucketstore_request_limit_hits_total",
			Help: "Series requests refused for hitting a per-request limit, by limit (series or samples).",
		}, []string{"limit"}),
	}
	// Both series exist from the start, so that rate() sees the first hit.
	m.limitHits.WithLabelValues("series")
	m.limitHits.WithLabelValues("samples")
	return m
}

// ReadStats counts what a Store has read from object storage since it was made.
type ReadStats struct {
	// Bytes is the number of bytes returned by ranged reads.
	Bytes int64
	// Requests is the number of ranged reads.
	Requests int64
}
