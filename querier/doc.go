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
// # Downsampled data
//
// Store gateways serve blocks that the compactor downsampled to 5m or 1h
// windows as aggregate chunks: count, sum, min, max and counter sub-chunks,
// one sample per window stamped at the window's last raw sample, with no raw
// chunk. Each Select tells the stores the coarsest resolution it accepts
// (max_resolution_window) and the aggregates it reads (aggregates); raw blocks
// and receivers answer with raw chunks whatever the request says.
//
// The resolution comes from the request context (WithMaxSourceResolution, or
// WithRequestParams from the API's max_source_resolution; raw data when
// absent): an explicit resolution is sent as it is. AutoResolution (the API's
// "auto", the default with APIOptions.AutoDownsampling) picks, per Select, a
// fifth of the finer of hints.Step and hints.Range, so that every step and
// every range selector's window holds at least five points: step/5 for an
// instant selector in a range query (Thanos' rule), range/5 for a range
// selector in an instant query, the subquery's step inside a subquery, and raw
// data for an instant selector in an instant query. Counter reads (below)
// that have a range never get more than half the range either way, so that
// rate(x[5m]) reads raw data even with max_source_resolution=1h.
//
// The aggregates follow hints.Func, the innermost function or aggregation
// around the selector:
//
//	function                                    aggregates    read as
//	rate, increase, irate, resets               COUNTER       the counter, resets applied
//	min_over_time, min                          MIN           the window's minimum
//	max_over_time, max                          MAX           the window's maximum
//	sum_over_time                               SUM           the window's sum
//	count_over_time, present_over_time,
//	absent_over_time, count, group              COUNT         the window's sample count
//	anything else, plain selectors included     COUNT, SUM    sum/count: the window's average
//
// So over downsampled data min_over_time and max_over_time are exact,
// sum_over_time sums the raw samples, avg_over_time averages the window
// averages (exact when every window holds as many samples and the range
// covers whole windows), and rate and increase differ from raw data only in
// how far they extrapolate. count_over_time counts windows, not raw samples:
// the engine counts the points it sees, and a window is one point. A plain
// selector reads the latest window's average within the lookback delta, which
// the querier does not widen: with 1h data, ask for lookback_delta=1h.
//
// Native histograms have count, sum and counter aggregates only: the counter
// reads as float histograms, the average as the sum histogram divided by the
// count. A downsampled chunk that lacks an aggregate the query reads (the min
// of a histogram, a store that ignored the request), or an average whose sum
// and count samples do not line up, fails the series' iterator, and so the
// query, with an error wrapping ErrMissingAggregate that names the series and
// the aggregate.
//
// A series may come as aggregate chunks for its old range and raw chunks for
// its recent one (one store serves each range from one resolution only, but
// several stores may overlap). Chunks are read in time order as above; where a
// raw chunk of the series covers a time, aggregate samples in it are hidden,
// so raw data wins and the two are never interleaved. Byte-identical aggregate
// chunks of several stores (every sub-chunk equal) are kept once.
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
//
// # Tenancy
//
// With APIOptions.Tenancy (and RulesOptions.Tenancy) every request belongs to
// one tenant and sees only that tenant's series. Tenancy.Tenant resolves it:
// with a RequestAuthenticator the credentials decide (401 for a missing or
// unknown one, 403 for a tenant header naming another tenant, both in
// Prometheus' error envelope with errorType unauthorized or forbidden); without
// one the tenant header does, or the default tenant. Every stored series
// carries its tenant in the tenant label (tenant_id), so confining is adding
// tenant_id="<tenant>" to what a request reads:
//
//   - query, query_range: every vector selector of the expression gets the
//     matcher (tenancy.EnforceQueryWith, which parses the confined expression
//     again and checks it), and the storage.Queryable the engine reads adds it
//     to every Select as well. Matchers are a conjunction, so nothing a tenant
//     writes, {tenant_id=~".+"}, or, label_replace, subqueries, @, reaches
//     another tenant's series; label_replace can rename the label of the
//     tenant's own results only.
//   - series, labels, label/<name>/values: every match[] gets the matcher,
//     and no match[] on labels and label values means {tenant_id="<tenant>"}:
//     the names and values of the tenant's series, not of every series.
//   - query_exemplars: the selectors of the query, and every set the exemplar
//     querier is asked for.
//   - metadata: answered empty. Metadata is keyed by metric name and carries no
//     tenant label; two tenants' metrics of one name share an entry.
//   - rules, alerts: only rules whose query has tenant_id="<tenant>" in every
//     selector (tenancy.CheckExpr), and the alerts of those rules; see
//     RulesProxy.
//
// The matcher also prunes the fan-out: an endpoint whose external label sets
// all name other tenants is not asked at all.
package querier
