// Package tsdbshard keeps one Prometheus TSDB per tenant on a receiver and ships
// their blocks to object storage.
//
// # Model
//
// A Manager owns a directory (--tsdb.path). Each tenant has a sub-directory holding
// an ordinary Prometheus TSDB (wal/, chunks_head/, wbl/ and block directories) plus
// the shipper's state file, strata.shipper.json. A tenant's TSDB is opened on its
// first write; on start the Manager re-opens every tenant directory it finds,
// replaying their WALs with bounded parallelism, and reports ready only once all of
// them are open, so nothing acknowledged before a crash is invisible after it.
//
// Appends go through the TSDB appender: a sample is in the WAL once Commit returns,
// and only then does the write path acknowledge it.
//
// # Blocks and shipping
//
// The TSDB cuts 2-hour blocks from its head by itself (min and max block duration
// are both 2h, so it never merges blocks locally and never merges overlapping
// out-of-order blocks: that is the compactor's work on the bucket). A Shipper per
// tenant uploads every new block with the external labels tenant_id and
// receive_replica in meta.json's thanos section, chunks first and meta.json last,
// and records what it shipped so a restart neither repeats nor skips a block.
//
// Local blocks leave the disk only through retention, and retention only deletes
// blocks that are older than the retention period and already shipped.
//
// # Lifecycle
//
// A tenant that has received no write for the idle timeout is flushed (its whole
// head written as blocks), shipped, closed and, once everything is in the bucket,
// removed from disk. Close does the same for every tenant, which is what a receiver
// does on SIGTERM: scaling down loses nothing.
//
// While a tenant is being flushed and closed its appenders fail with ErrNotReady,
// which the write path turns into a retryable 503.
package tsdbshard
