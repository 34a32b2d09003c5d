// Package frontendbench measures the query frontend on the dashboard it is
// for: a 30-day Grafana dashboard of ten range-query panels over a bucket of
// node-like counters, answered by a store gateway and a querier, with and
// without `strata query-frontend` in front, cold and warm. `make
// bench-frontend` runs it and writes docs/benchmarks-frontend.md; see
// TestFrontendDashboard, which is skipped unless -frontendbench.strata names
// a strata binary, so that `make test` stays fast.
//
// # Data
//
// The bucket is compactbench.Dataset's, one replica: 100 counters per host
// (node_metric_NN_total{instance, job="node"}, external labels
// tenant_id="bench" and receive_replica="0"), one sample a minute for 30 days
// in 2h blocks. It ends at the last 2h boundary before the run, as a bucket
// does while receivers still hold the latest hours in their heads; the
// dashboard's range ends at the last full step before now, so its last day
// is a short one, as on a real dashboard. By default `strata compact` runs
// once over it, without downsampling, so that the store gateway serves the
// few large blocks a real bucket holds rather than 360 small ones (it takes
// about half a minute here); the querier reads raw data, its default.
//
// # Dashboard
//
// Ten panels, the kinds a host overview holds: sums, maxima and averages of
// rates by instance, topk, count, increase over 1h, a quantile, a single
// series, a regular expression on __name__ and a ratio of two sums. The
// range is the last 30 days at a 1h step, what Grafana picks for a panel
// about 1000 pixels wide, with start and end aligned down to the step as
// Grafana's Prometheus data source sends them. Because they are aligned the
// frontend needs no --query-range.align-range-with-step and its answers are
// the querier's exactly, which the benchmark checks for every panel of every
// load (a sharded frontend's within a relative 1e-12: its shards add partial
// sums in another order). The range is fixed for the whole run, so every
// load asks the same question; a dashboard reopened within the hour does.
// With a 1h step the frontend's 1m freshness window holds at most the last
// point, in the first minute after the hour, so in practice the warm loads
// are answered from the cache alone.
//
// A load sends the ten panels at once, as Grafana does, and its time is
// until the last answer arrived.
//
// # Configurations and phases
//
// Each configuration is the querier directly, the frontend with its default
// in-memory results cache, and the frontend with --query-range.shards=2.
// Cold is one load on freshly started processes, whose caches are empty; it
// is repeated on new processes to get enough samples. The store gateway's
// data directory of index headers is kept between starts, as a restarted
// gateway's is, and what it reads from the bucket at start-up is not
// counted: bucket bytes are the delta of its
// strata_objstore_bucket_read_bytes_total over the loads alone. Warm is
// further loads on the processes of the last cold load. Every process runs
// on loopback on the same machine as the client, so the CPU the processes
// spend (process_cpu_seconds_total) is reported next to the latencies: on a
// small machine that is where the time goes.
package frontendbench
