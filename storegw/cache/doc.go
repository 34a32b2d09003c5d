// Package cache holds the bounded in-memory caches of a store gateway: postings
// lists, series entries and chunks it has read from object storage, keyed by
// strings the caller builds (for example "P:<ulid>:<name>:<value>").
//
// # Model
//
// An LRU is bounded by bytes, not by item count. Each entry costs
// len(key) + len(value) + EntryOverhead, where EntryOverhead approximates the
// memory of the entry's bookkeeping (list links, map slot, slice and string
// headers). The sum of these costs never exceeds the configured maximum; Set
// evicts least recently used entries until the new entry fits. An entry larger
// than the per-item limit, or larger than the budget of its shard, is not stored
// and is counted in strata_storegw_cache_items_too_large_total.
//
// # Sharding
//
// To keep lock contention low under many concurrent queries, an LRU splits its
// keys by hash into up to 64 shards. Each shard has its own mutex, its own
// recency list and an equal share maxBytes/N of the byte budget. The trade-offs:
// recency is exact only within a shard, so a globally older entry in a busy shard
// can outlive a newer one in another; a skewed key distribution can leave some
// shards full and evicting while others have room; and no single item can be
// larger than maxBytes/N. The shard count is chosen so that each shard gets at
// least 1 MiB, so caches smaller than 2 MiB are a single exact LRU.
//
// # Ownership
//
// Values are stored as given, without copying. After Set the caller must not
// modify the slice, and slices returned by Get and GetMulti are shared with the
// cache and with other readers: they must be treated as read-only.
//
// # Disabled caches
//
// A size of zero disables a cache: New returns one that stores nothing and
// always misses, but still counts requests, so dashboards show the hit ratio of
// a disabled cache as zero rather than missing.
//
// # Memcached
//
// Memcached is a Cache kept on one or more memcached servers, so that several
// gateways share what they read and a restart keeps it. It speaks the text
// protocol itself. Each key lives on the server its xxhash picks by jump
// consistent hashing; keys memcached would refuse (over 250 bytes, spaces,
// control characters, empty) are stored under "H:" and their SHA-256, as is any
// key that starts with "H:", so every caller key is valid and none collides
// with another. Values above max_item_size are skipped and counted as too
// large.
//
// A memcached outage is never an error: a network error, timeout or
// unexpected answer makes lookups miss and stores do nothing, the server is
// skipped for a second (so a black-holed server costs one timeout per second,
// not one per lookup), strata_storegw_cache_memcached_operation_failures_total
// counts it, a warning is logged at most once a minute, and LastError reports
// it to callers that want to attach a warning. Connections are re-dialled when
// the server is back. Items, bytes and evictions of a memcached cache read
// zero: memcached's own statistics hold them.
//
// # Metrics
//
// Every cache exports, with a constant label cache=<name>:
//
//	strata_storegw_cache_requests_total
//	strata_storegw_cache_hits_total
//	strata_storegw_cache_items
//	strata_storegw_cache_bytes
//	strata_storegw_cache_evictions_total
//	strata_storegw_cache_items_too_large_total
//	strata_storegw_cache_max_bytes
//
// Requests, hits, evictions, items and bytes are kept per shard under the
// shard's mutex and summed at scrape time, so the hot path touches no shared
// counter.
package cache
