// Package queryshard splits one PromQL query into shards that each read a
// disjoint part of the series, and says how the shards' results add up to the
// unsharded result. It is shared by the query frontend, which plans, sends and
// combines the shards, and the querier, which evaluates one shard. It depends
// on neither.
//
// # Sharding
//
// A Selector picks the series of shard Index of Total by a hash of their
// labels: xxhash64 over name, 0xff, value, 0xff of every hashed label in name
// order, modulo Total. With By the hashed labels are those named in Labels,
// otherwise all labels except those. The querier applies the selector to the
// series the PromQL engine reads, after replica deduplication, so replicas of
// a series (which differ only in replica labels that dedup removes) are one
// series in one shard. The engine then evaluates the unchanged expression over
// that shard's series only.
//
// On the wire a selector is three form parameters of query and query_range:
// shard=<index>_of_<total>, and either shard_by=<names> or
// shard_without=<names>, comma-separated; an empty shard_without hashes every
// label. Selector.AddTo writes them and FromForm reads and validates them.
//
// # What is shardable
//
// PlanExpr accepts a top-level aggregation (parentheses aside) whose inner
// expression computes every output series from exactly one series of its only
// selector and keeps that series' labels, except perhaps the metadata labels
// __name__, __type__ and __unit__: selectors with offsets and @ <time> (not @
// start() or @ end()), subqueries, unary minus, arithmetic and comparisons
// with number literals, and an allowlist of per-series functions (rate,
// increase, the *_over_time family without absent_over_time, abs, round,
// clamp, histogram_count, ...) whose other arguments are number literals.
// Everything else, joins, label_replace, histogram_quantile, absent, sort and
// nested aggregations among it, is not shardable. There are two plans:
//
//   - ModeCombine, for sum, count, count_values, max, min and group with any
//     grouping. Any partition of the input series works: each shard
//     aggregates its part, and series with equal labels are merged at equal
//     timestamps by adding (sum, count, count_values), taking the maximum or
//     minimum (a NaN losing against any number, as in PromQL) or 1 (group).
//     The shards hash all labels, except the metadata labels when the inner
//     expression may drop them: series that differ only in those must meet
//     in one shard, so that PromQL's duplicate series error happens sharded
//     as it does unsharded. Sums of native histograms are not combined;
//     the caller runs such a query unsharded (Plan.FallbackOnWarnings explains
//     when a warning asks for the same).
//   - ModeUnion, for avg, stddev, stdvar, quantile, topk and bottomk with a
//     by clause that names none of the metadata labels, or a without clause.
//     The shards hash the grouping labels (By), or all labels except the
//     without labels and the metadata labels, so every group lies wholly in
//     one shard, and the result is the union of the shards' results.
//
// Sharding never changes the labels a query returns, only which shard
// computes them, and every shard evaluates the same steps, so results match
// the unsharded query up to the order of floating-point summation.
package queryshard
