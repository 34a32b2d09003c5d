// Package receive is strata's remote write endpoint: it takes Prometheus
// Remote-Write 1.0 and 2.0 requests over HTTP, decodes and validates them, and
// appends every valid sample to the storage of the request's tenant.
//
// # Request flow
//
// A Handler serves POST /api/v1/receive (see Path). For each request it:
//
//  1. negotiates the protocol from Content-Type: empty, "application/x-protobuf"
//     or "application/x-protobuf;proto=prometheus.WriteRequest" is Remote-Write 1.0,
//     "application/x-protobuf;proto=io.prometheus.write.v2.Request" is 2.0, and
//     anything else is answered 415. Content-Encoding must be snappy (or absent);
//     X-Prometheus-Remote-Write-Version is informational only, as the 2.0 spec says;
//  2. takes the tenant from the configured header (THANOS-TENANT by default) or
//     uses the default tenant, and checks it with ValidateTenant;
//  3. reads the body through the compressed-size limit, checks the decompressed
//     size that snappy announces, and only then decompresses;
//  4. decodes the protobuf message with its own zero-copy decoder into a flat,
//     pooled request (see below) and, for 2.0, resolves symbol references;
//  5. validates each series and appends each of its samples separately, then
//     commits once.
//
// # Per-sample decisions
//
// Bad data never fails good data. A series with invalid labels (empty set,
// missing or empty __name__, empty name, invalid UTF-8, names unsorted or
// repeated) or with a broken 2.0 symbol reference is rejected as a whole; every
// other series is appended sample by sample, and storage decides per sample.
// Storage errors that can never succeed on retry (out of order, out of bounds,
// too old for the out-of-order window, duplicate timestamp with another value,
// invalid native histogram) reject just that sample. Samples further in the
// future than Options.MaxFutureSkew are rejected as out of bounds before they
// reach storage. Labels with an empty value are dropped, as Prometheus does:
// an empty value means the label is absent.
//
// Float NaNs and stale markers are ordinary samples and are stored bit for bit;
// a stale marker ends the series for PromQL.
//
// # Status codes
//
//	204  everything was written (also for an empty request)
//	400  tenant invalid, body not snappy or not protobuf, or some data permanently
//	     rejected: the good samples of the request ARE committed, and the body names
//	     the first bad series, the reason and the counts, e.g.
//	     "3 of 1200 samples rejected (1 series), first: {__name__="x"}: out of order sample"
//	405  not a POST
//	413  body over MaxCompressedBytes, or decompressed size over MaxDecompressedBytes
//	415  unsupported content type, proto or content encoding
//	503  transient: tenant storage could not be opened, an append failed for an
//	     unknown reason, or the commit failed. Nothing of the request is written
//	     (appends are rolled back), so the sender's retry is clean.
//
// A permanent error never gets a 5xx: Prometheus retries 5xx forever, and a
// batch that can never succeed would block its queue.
//
// For 2.0 requests every response after content negotiation carries
// X-Prometheus-Remote-Write-Samples-Written, -Histograms-Written and
// -Exemplars-Written with what was really committed: on a 400 that is the good
// part of the request, on a 503 it is zero.
//
// # Exemplars and metadata
//
// Storage (storage.AppenderV2) takes exemplars only together with a sample. A
// series' exemplars ride along with its newest sample that is not a stale marker.
// Prometheus sends exemplars in series of their own, without samples; such
// exemplars ride along with a sample of the series with the same labels in the
// same request, and are dropped if there is none. Exemplars that are dropped or
// that storage refuses (out of order, labels too long) never fail a request: they
// are counted in strata_receive_exemplars_dropped_total and left out of the
// written-exemplars header. Set Options.DisableExemplars when storage keeps no
// exemplars, so that the header stays true.
//
// 2.0 series metadata (type, help, unit) and start timestamps go to storage with
// every sample. 1.0 requests carry metadata per metric family; it is applied to
// the series of that family in the same request, and is otherwise ignored
// (storage has no metadata-only append).
//
// # Memory
//
// The write path is a hot path. A pool of batches holds the body buffers, the
// decoded request and scratch space. Decoded strings alias the decompressed body
// (no copy per label); anything storage keeps is copied first: labels of series
// that storage does not know yet, exemplar labels and metadata. When the appender
// implements storage.GetRef, known series are found by hash, so a request of known
// series does not allocate per sample.
//
// When the appender also implements SeriesCacheHolder (tsdbshard's do), the
// handler keeps a cache of series references in the storage: a series sent
// before is found by a hash of its labels as sent and compared label by label
// with the stored series, which skips validation, building labels and the
// storage's own lookup. The cache lives and dies with the storage instance.
package receive
