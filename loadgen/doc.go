// Package loadgen is a remote-write load generator: it pushes node_exporter-like
// series to one or more Prometheus remote-write endpoints (strata, Prometheus,
// VictoriaMetrics, ...) as fast as they acknowledge, or at a fixed rate, and
// reports what was acknowledged, how fast, at what latency and at what CPU cost
// on both sides. `strata tools bench write` is its command line.
//
// # Workload
//
// A Workload holds Series slots. Slot s runs template s mod SeriesPerHost of a
// fixed list of node_exporter metric families (CPU modes, disks, filesystems,
// network devices, memory, load, ...) on host s / SeriesPerHost; the host
// decides the cluster, env, instance, job and region labels. Counters grow
// monotonically, gauges walk randomly. Everything, values included, is a
// function of the seed and the configuration, never of scheduling.
//
// Churn replaces round(Churn*Series) series every churn interval of sample
// time: a window of consecutive slots, advancing through the slots, moves to a
// new generation, which puts them on new hosts (new instance labels) with new
// values. A slot never changes its template or its tenant.
//
// # Rounds and ordering
//
// The load is sent in rounds: in round r every series gets exactly one sample
// at Start + r*ScrapeInterval. Sample time therefore runs ahead of the wall
// clock whenever the receiver is faster than real time, like a backfill.
//
// Series are partitioned into tenants (contiguous slot ranges) and each
// tenant's slots into fixed batches of BatchSize series; a request holds one
// batch. Sender i owns batches i, i+C, i+2C, ... and sends them in order,
// round after round, waiting for each response before the next request, so
// every series' samples reach the receiver in timestamp order. Senders may
// drift apart, but by at most maxLag of sample time (see newProgress), which
// keeps every receiver's TSDB head within its appendable window.
//
// # Cost on the client
//
// A batch is encoded once into its complete uncompressed request; each round
// only overwrites the value and timestamp bytes of its samples in place (a
// batch is re-encoded when churn changes one of its series, or when the
// timestamps need a longer varint). The request is then snappy-compressed into
// a per-sender buffer. Nothing on this path allocates.
package loadgen
