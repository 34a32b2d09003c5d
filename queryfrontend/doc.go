// Package queryfrontend is the HTTP-free core of strata's query frontend: it
// aligns, splits and caches range queries on their way to the queriers.
//
// # Requests and points
//
// A Request evaluates a PromQL expression at the points Start, Start+Step,
// ..., up to End (Unix milliseconds, inclusive), for one tenant. Align
// snaps Start down and End up to multiples of Step, so that the points are
// exactly the multiples of Step in the widened range. Aligning is what makes
// results reusable: two aligned requests with the same step evaluate the
// same points wherever their ranges overlap.
//
// Split cuts an aligned request at every multiple of an interval since the
// Unix epoch; for 24h these are UTC midnights. Sub-request k holds the
// points in [boundary_k, boundary_k+1) and its Start and End are its first
// and last point, so each point of the request is evaluated by exactly one
// sub-request. PromQL evaluates every point independently of the request's
// range, so the merged sub-results equal the result of the whole request,
// with one exception: @ start() and @ end() refer to the request's range.
// Callers must not split such queries; the results cache never caches them.
//
// # Results
//
// A Response is a result matrix: series with labels and points, each point a
// float or an opaque native histogram (its query API JSON). Merge combines
// sub-results into canonical form: series sorted by labels, points sorted by
// time, no duplicates, no empty series.
//
// # Results cache
//
// ResultsCache keeps one Extent per (tenant, query, step, split interval,
// split start): the points of the query in a contiguous, step-aligned time
// range [Start, End] inside that split, plus the range itself, so that a
// series absent from the data is known to have no points there. The key is
// a SHA-256 of those fields, length-prefixed; the query is normalized by
// parsing it and printing it back, and the tenant is always part of the
// key, so no tenant can be served another tenant's results.
//
// ResultsCache.Fetch serves one sub-request. The part of the request that
// lies inside the cached extent comes from the cache; what lies before or
// after it is fetched (at most two downstream requests), merged, and the
// extent is widened to cover it and stored again. A request that does not
// overlap or touch the extent replaces it rather than fetching the gap.
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
