// Package querier is strata's read path: it finds the Store API endpoints
// (receivers, store gateways, rulers, other queriers), fans every query out to
// those that can hold matching data, merges their answers, removes replicas,
// and serves the result to the PromQL engine and the Prometheus HTTP API.
//
// # Endpoints
//
// An EndpointSet holds the endpoints. Targets come from static addresses
// (--endpoint) and an SD file (--endpoint.sd-config-file, see SDConfig) that is
// re-read every discovery interval. A "dns+host:port" target stands for every
// A and AAAA address of host, re-resolved every discovery interval; a failed
// read or lookup keeps the last good targets, so a DNS outage does not empty
// the set. Each address gets one gRPC connection and is asked for its Info
// every info interval: component type, external label sets, time range and
// whether it serves the Store API. An endpoint whose latest Info call failed is
// unhealthy: it stays in the set (and in Endpoints, for the UI) but queries
// skip it. A removed endpoint's connection is closed once no query uses it.
//
// # Fan-out and pruning
//
// Queryable is a storage.Queryable over an EndpointSet. For each Select,
// LabelNames and LabelValues it asks, at most Options.MaxConcurrency at a
// time, every healthy endpoint that serves the Store API and can hold matching
// data: its time range overlaps the request's, and one of its external label
// sets agrees with the matchers (a matcher on a label of the set must accept
// the set's value, because every series of the endpoint carries it). Select
// fans out in the background, so the PromQL engine's selectors of one query
// run in parallel; the answer is read whole before it is merged.
//
// # Merge and dedup
//
// Series with equal labels from several endpoints become one series. Chunks
// that are byte-identical (same hash, time range and bytes, as replicas and
// overlapping blocks produce) are kept once; the remaining chunks are split
// into runs of non-overlapping chunks, and the runs are merged by timestamp,
// each timestamp once. Samples outside the requested range are trimmed.
//
// With dedup on (the default, per request WithDedup) the merged set goes
// through dedup.NewSeriesSet with Options.ReplicaLabels. Its input contract
// is met as follows: endpoints are asked WITHOUT without_replica_labels, so
// replica labels stay on the series, and the querier sorts the merged series
// itself by labels without the replica labels, then by full labels. Every
// answer is read whole anyway, so this costs one sort and no second buffer.
// LabelNames leaves replica labels out and LabelValues of a replica label is
// empty while dedup is on.
//
// # Partial response
//
// An endpoint that fails (an error, a timeout of Options.Timeout, a warning
// frame) or an unhealthy endpoint that could hold matching data makes the
// answer partial. With partial response allowed (the default, per request
// WithPartialResponse) the query answers with the other endpoints' data and
// one annotation per failure naming the endpoint; otherwise it fails with an
// error wrapping ErrPartialResult. A cancelled or expired request context
// fails the query either way.
package querier
