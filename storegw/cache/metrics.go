package cache

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// stats is a point-in-time sum over a cache's shards.
type stats struct {
	requests, hits, evictions int64
	items, bytes              int64
}

type metrics struct {
	itemsTooLarge prometheus.Counter
}

// newMetrics registers the metrics of the cache called name. Everything but
// itemsTooLarge is read from snapshot at scrape time; each metric takes its own
// snapshot, so values of one scrape may differ by the requests in flight.
func newMetrics(reg prometheus.Registerer, name string, maxBytes int64, snapshot func() stats) *metrics {
	f := promauto.With(reg)
	labels := prometheus.Labels{"cache": name}
	f.NewCounterFunc(prometheus.CounterOpts{
		Name:        "strata_storegw_cache_requests_total",
		Help:        "Lookups in the cache, counting each key of a multi-get.",
		ConstLabels: labels,
	}, func() float64 { return float64(snapshot().requests) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name:        "strata_storegw_cache_hits_total",
		Help:        "Lookups that found their key in the cache.",
		ConstLabels: labels,
	}, func() float64 { return float64(snapshot().hits) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "strata_storegw_cache_items",
		Help:        "Entries in the cache.",
		ConstLabels: labels,
	}, func() float64 { return float64(snapshot().items) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "strata_storegw_cache_bytes",
		Help:        "Bytes the cache accounts for: keys, values and a fixed overhead per entry.",
		ConstLabels: labels,
	}, func() float64 { return float64(snapshot().bytes) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name:        "strata_storegw_cache_evictions_total",
		Help:        "Entries evicted to make room for new ones.",
		ConstLabels: labels,
	}, func() float64 { return float64(snapshot().evictions) })
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "strata_storegw_cache_max_bytes",
		Help:        "Byte budget of the cache; zero if it is disabled.",
		ConstLabels: labels,
	}).Set(float64(maxBytes))
	return &metrics{
		itemsTooLarge: f.NewCounter(prometheus.CounterOpts{
			Name:        "strata_storegw_cache_items_too_large_total",
			Help:        "Items not stored because they exceed the item size limit or a shard's budget.",
			ConstLabels: labels,
		}),
	}
}
