// Package queryfrontend is strata's query frontend: an http.Handler for the
// Prometheus HTTP API in front of queriers (Frontend) that answers range
// queries by splitting, caching and sharding them, and passes every other
// request through, retrying on the next querier.
//
// # Requests and points
//
// A Request evaluates a PromQL expression at the points Start, Start+Step,
// ..., up to End (Unix milliseconds, inclusive), for one tenant, with
// Options standing for the request's other parameters that change its
// result. The points' phase is Start modulo Step: two requests with the same
// step and phase evaluate the same points wherever their ranges overlap,
// which is what makes results reusable. Trunc moves End back to the last
// point, which changes nothing. Align snaps Start down and End up to
// multiples of Step, so that requests of any phase share results; it moves
// the points of unaligned requests, so the frontend does it only when asked.
//
// Split cuts a request at every multiple of an interval since the Unix
// epoch; for 24h these are UTC midnights. Sub-request k holds the points in
// [boundary_k, boundary_k+1) and its Start and End are its first and last
// point, so each point of the request is evaluated by exactly one
// sub-request, at the same time as in the whole request. PromQL evaluates
// every point independently of the request's range, so the merged
// sub-results equal the result of the whole request, with one exception:
// @ start() and @ end() refer to the request's range. The frontend neither
// splits nor caches such queries.
//
// # Results
//
// A Response is a result matrix: series with labels and points, each point a
// float or an opaque native histogram (its query API JSON), and the
// downstream's warnings and infos. Merge combines sub-results into canonical
// form: series sorted by labels, points sorted by time, no duplicates, no
// empty series.
//
// # Results cache
//
// ResultsCache keeps one Extent per (tenant, options, query, step and phase,
// split interval, split start): the points of the query in a contiguous time
// range [Start, End] of that phase inside that split, plus the range itself,
// so that a series absent from the data is known to have no points there.
// The key is a SHA-256 of those fields, length-prefixed; the query is
// normalized by parsing it and printing it back, and the tenant is always
// part of the key, so no tenant can be served another tenant's results. The
// Frontend's tenant holds the tenant header and the Authorization header, so
// different credentials do not share results either.
//
// ResultsCache.Fetch serves one sub-request. The part of the request that
// lies inside the cached extent comes from the cache; what lies before or
// after it is fetched (at most two downstream requests), merged, and the
// extent is widened to cover it and stored again. A request that does not
// overlap or touch the extent replaces it rather than fetching the gap. An
// answer with warnings (a partial response) is never stored.
//
// The Frontend looks up every split of a query at once (LookupAll, one
// GetMulti), answers the splits with a hit through FetchLookup, and fetches
// each run of consecutive splits without one as a single downstream query
// (FetchRun), storing the answer split by split: a cold cache costs one query
// per run, not one per split.
//
// The freshness window keeps recent results out of the cache: samples for
// the last minutes may still arrive (remote-write delay, out-of-order
// ingestion, a replica catching up). Only points strictly before
// now-freshness are stored; the rest of a request is fetched every time,
// together with any uncached tail, in one downstream request. A request
// that lies entirely inside the window bypasses the cache. As time moves on
// the next request extends the extent by the points that have aged out of
// the window.
//
// Two concurrent fetches of one split may both miss and both store; the last
// store wins. Either extent is correct, so the race only costs a fetch.
//
// # Sharding
//
// With Config.Shards of 2 or more, a piece whose query queryshard.PlanExpr
// accepts runs as that many downstream queries, each with a shard selector
// (queryshard.Selector in the form parameters), in parallel, and
// CombineShards puts their answers together: point by point for sum, count,
// max, min, group and count_values, a union for aggregations sharded by
// their grouping. When the answers cannot be combined exactly (a native
// histogram in a combine, or a warning from a shard where the plan says so)
// the piece runs again unsharded.
//
// # The HTTP layer
//
// Frontend reads a range query's parameters as the Prometheus API does; a
// request it cannot read, or one with more points than the queriers allow or
// per-step statistics, goes to a querier unchanged, so that its errors are
// the querier's. A querier's answer other than 200 is passed on as it is.
// Requests go to the queriers in turn; a connection error or a 502, 503 or
// 504 sends the request to the next one. Every answer carries
// X-Strata-Results-Cache with the pieces and their cache outcomes, and
// X-Strata-Query-Shards when it ran in shards; a cache that reports an error
// (memcached's LastError) adds a warning to the answer, which is otherwise
// computed without it.
//
// # Extent encoding
//
// Values in the cache are an Extent encoded as follows (varint is
// encoding/binary's zig-zag varint, uvarint its unsigned varint, string a
// uvarint length and the bytes):
//
//	byte     version (1)
//	varint   start
//	varint   end - start
//	uvarint  number of series, then for each series, sorted by labels:
//	  uvarint  number of labels, then for each label, sorted by name:
//	    string   name
//	    string   value
//	  uvarint  number of points, then for each point, sorted by time:
//	    varint   time - previous time (the first point: time - start)
//	    byte     kind: 0 float, 1 native histogram
//	    kind 0:  8 bytes, little-endian IEEE 754 bits of the value
//	    kind 1:  string, the histogram's JSON (not empty)
//	4 bytes  little-endian CRC-32C (Castagnoli) of everything before it
//
// Floats are stored as bits, so NaN payloads, Prometheus' stale marker,
// infinities and -0 survive exactly. DecodeExtent checks the checksum and
// every ordering and range invariant above; a value that fails is treated as
// a cache miss and overwritten by the next store.
package queryfrontend
