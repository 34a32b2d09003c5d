package queryfrontend

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	queries      *prometheus.CounterVec
	duration     prometheus.Histogram
	splits       prometheus.Counter
	cache        *prometheus.CounterVec
	sharded      prometheus.Counter
	shardFall    prometheus.Counter
	downstream   *prometheus.CounterVec
	retries      prometheus.Counter
	proxied      prometheus.Counter
	slow         prometheus.Counter
	cacheSkipped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		queries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_frontend_range_queries_total",
			Help: "Range queries the frontend answered, by HTTP status code.",
		}, []string{"code"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:                            "strata_query_frontend_range_query_duration_seconds",
			Help:                            "Time to answer a range query, from request to the last byte of the answer.",
			Buckets:                         []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}),
		splits: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_split_queries_total",
			Help: "Pieces range queries were split into at split-interval boundaries.",
		}),
		cache: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_frontend_results_cache_requests_total",
			Help: "Split queries looked up in the results cache, by outcome: hit (answered from the cache alone), partial (extended), miss, or bypass (not cacheable: inside the freshness window, @ start()/@ end()).",
		}, []string{"outcome"}),
		sharded: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_sharded_queries_total",
			Help: "Split queries run as shards in parallel.",
		}),
		shardFall: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_shard_fallbacks_total",
			Help: "Sharded queries whose shard results could not be combined (native histograms in a sum, max or min) and that ran again unsharded.",
		}),
		downstream: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_frontend_downstream_requests_total",
			Help: "Requests sent to the queriers, by HTTP status code, or error when none came back.",
		}, []string{"code"}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_downstream_retries_total",
			Help: "Requests sent again to another querier after a connection failure or a 502, 503 or 504.",
		}),
		proxied: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_proxied_requests_total",
			Help: "Requests passed to the queriers as they are (everything but cacheable range queries).",
		}),
		slow: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_slow_queries_total",
			Help: "Requests that took longer than the slow-query threshold and were logged.",
		}),
		cacheSkipped: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_frontend_results_cache_unavailable_total",
			Help: "Range queries answered while the results cache was failing, with a warning.",
		}),
	}
}
