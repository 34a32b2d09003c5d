// Package bucketstore serves blocks in object storage over the Store API
// (storepb.StoreServer and infopb.InfoServer) with ranged reads only: no block
// is ever downloaded whole.
//
// # Model
//
// A Block is one block of the bucket. Opening it loads its index header
// (storegw/indexheader), which is local and small: the symbol table and where
// each postings list lies in the index. Everything else is read per request:
//
//  1. Matchers become postings. An equality matcher is one postings list; a
//     regular expression, or any matcher on a label name, is the union of the
//     lists of the label's values that it matches (from the header). A matcher
//     that matches the empty value also selects series without the label, so it
//     becomes "every series (the "" = "" list) minus those with a value it
//     rejects", as in Prometheus. The sorted series references are intersected
//     and subtracted. In index format 2 and 3 a reference is the offset of the
//     series entry divided by 16.
//  2. Series entries (uvarint length, label symbol references, chunk metas, CRC32)
//     are read at those offsets. Their length is unknown until read, so each is
//     read with a 512-byte window and read again with its exact length if longer.
//  3. Chunks (uvarint length, encoding byte, data, CRC32) are read from the
//     segment files "<ULID>/chunks/NNNNNN" at their references (segment index
//     << 32 | offset), with a 1 KiB window and the same fallback. Segment sizes
//     come from meta.json's file list, so no read runs past an object's end.
//
// In every step, wanted ranges of one object that overlap or lie within 4 KiB
// of each other are fetched with one GetRange: a few wasted bytes cost far less
// than a request. Only chunks overlapping the request's time range are read, and
// none with skip_chunks. Checksums of series entries, postings lists and chunks
// are verified; a malformed or short read is an error wrapping ErrCorrupt or
// ErrTruncated whose message names the block, and it fails only the requests
// that touch that block.
//
// # Store
//
// A Store serves a set of Blocks that Add and Remove change at any time, which
// blocksync.Syncer's OnAdd and OnRemove hooks call. It follows the Store API
// contract (docs/storeapi.md) as storeapi.TSDBStore does: the block's external
// labels from meta.json's thanos.labels are attached to every series, replacing
// a series label of the same name; matchers on them are evaluated against the
// external value and select or skip the whole block; without_replica_labels
// drops external labels; the stream is sorted by the labels clients see, and
// series with equal labels from several blocks go out as one with their chunks
// sorted by time. Series reads the blocks chosen for the request's time range
// and resolution (see Resolutions), LabelNames and LabelValues every block
// overlapping theirs; blocks are read concurrently.
// LabelNames and LabelValues answer from the index headers when the request has
// no matchers on series labels, and otherwise read the matching series entries
// (never chunks); their time filter is whole blocks.
//
// # Resolutions
//
// Blocks are raw (thanos.downsample.resolution 0) or downsampled to 5m or 1h.
// A Series request accepts resolutions up to max_resolution_window (0: raw data
// only). Blocks are grouped by their external labels, and each group is
// resolved alone, so one tenant's or replica's downsampled blocks never hide
// another's raw ones. Within a group, the coarsest accepted resolution serves
// the parts of [min_time, max_time] its blocks cover, and the parts it leaves
// uncovered go to the next finer resolution, down to raw (selectBlocks). Every
// instant is thus served from one resolution; blocks of one resolution that
// overlap in time all serve the overlap, as without downsampling. A block
// serves only chunks overlapping its parts, and a chunk that crosses from its
// part into one served by another resolution is cut at the boundary, decoded
// and re-encoded with only its samples on this side (histogram chunks that
// cannot be rebuilt that way are sent whole). Boundaries that are the request's
// own are not cut: clients trim there. LabelNames and LabelValues carry no
// resolution and read every block in range.
//
// # Downsampled blocks
//
// A downsampled block is a standard Prometheus block in which each series S is
// stored as up to five series, S{__aggregate__="count"|"sum"|"min"|"max"|
// "counter"} (block.AggregateLabel), one sample per window; native histograms
// have count, sum and counter only. Clients never see those series: the store
// serves S, whose chunks are AggrChunks with the aggregates in their fields.
//
//   - Which aggregates: those the request's aggregates field lists; RAW, or no
//     aggregate at all, means COUNT and SUM, from which the querier computes the
//     average. A series without any of them is not sent. Postings are
//     intersected with the __aggregate__ lists of those aggregates only, so a
//     rate query reads counter series entries and chunks and nothing else.
//     Without chunks (skip_chunks, and LabelNames and LabelValues with
//     matchers) every aggregate is read, since any of them proves that S exists.
//   - Chunks: the writer cuts the aggregates of one series at the same windows,
//     so when all aggregates read have the same number of chunks, chunk i of
//     each goes into AggrChunk i, spanning the earliest min time to the latest
//     max time of its members; otherwise each chunk is its own AggrChunk with
//     one field set.
//   - Labels: S's labels, external labels attached as for raw blocks. A matcher
//     on __aggregate__ is evaluated against S, which has no such label: only
//     matchers that match the empty value select anything. LabelNames leaves
//     __aggregate__ out, and LabelValues has no values for it.
//
// Read accounting, caches and checksums work on the aggregate series and
// chunks exactly as on raw ones, and errors name the block the same way.
//
// # Read accounting
//
// The Store counts what it reads from the bucket in
// strata_bucketstore_bucket_bytes_read_total and
// strata_bucketstore_bucket_range_requests_total, and in ReadStats.
//
// # Caches
//
// With WithCaches, each of the three reads above first looks in its cache of a
// cache.Gateway, and reads from the bucket only what is missing:
//
//	postings lists   "P:<ULID>:<len(name)>:<name><value>"  the list as in the index
//	series entries   "S:<ULID>:<series ref>"                the entry's body
//	chunks           "C:<ULID>:<chunk ref>"                 wire encoding byte + data
//
// Blocks are immutable, so entries never go stale; a removed block's entries
// age out. Only bytes that passed their checksum (and decoded, for series
// entries and chunks) are stored, and always as a copy, so a cache never holds
// corrupt data or pins a larger read buffer; errors are never cached, so a
// corrupt object fails every request that reads it. A chunk is cached after its
// conversion to the wire encoding, so an XOR2 chunk is re-encoded only once.
// Cached values are shared and read-only: chunks sent to clients alias them.
// Hits and misses are counted by the caches themselves
// (strata_storegw_cache_hits_total{cache="postings"} and so on). LabelNames and
// LabelValues use the postings and series caches too. Without the option
// nothing is cached.
//
// # Limits
//
// With WithLimits, a Series request fails with gRPC code ResourceExhausted and
// a message naming the limit, for example "the query hit the series limit of
// 1000 (--store.limits.request-series)", as soon as it is known to go past one;
// strata_bucketstore_request_limit_hits_total{limit} counts such requests.
// Limits count the whole request, across the blocks it reads concurrently:
//
//   - Series are counted per block as soon as its postings are known, before
//     any series entry is read. The count is an upper bound of what is sent:
//     it includes series without chunks in the time range, a series in
//     several blocks counts once per block, and a series of a downsampled
//     block counts once per aggregate series read.
//   - Samples are counted from each chunk's header (every Prometheus chunk
//     encoding starts with its sample count as a big-endian uint16) as the
//     chunk is verified, or found in the cache, before it is converted; reads
//     stop at the first chunk past the limit. Whole chunks count, including
//     samples outside the time range or cut at a resolution boundary. In
//     downsampled blocks, the samples of every aggregate chunk read count, so
//     asking for five aggregates costs five times one. Requests with
//     skip_chunks count none.
//
// So a refused request holds at most the postings it needed, or the chunks up
// to the limit plus one merged range. LabelNames and LabelValues are not
// limited.
package bucketstore
