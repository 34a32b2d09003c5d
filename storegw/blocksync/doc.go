// Package blocksync decides which blocks of a bucket a store gateway serves.
//
// A Fetcher lists the top-level "<ULID>/" directories of the bucket and reads each
// block's meta.json. meta.json is the commit marker of an upload and never changes
// once written, so the Fetcher keeps every meta it has read in memory and a later
// fetch reads only the metas of blocks it has not seen. A directory without
// meta.json is a partial upload; one whose meta.json does not decode or validate is
// corrupted. Both are reported, per block, and skipped; neither fails the fetch.
// Any other read error (a network error, a timeout) fails the whole fetch, so a
// caller keeps serving what it served before instead of dropping blocks it merely
// could not reach.
//
// The metas that were read then pass through a chain of Filters, each of which
// drops blocks for one reason:
//
//   - DeletionMarkFilter drops blocks marked for deletion long enough ago that the
//     compactor's replacement is visible everywhere;
//   - ConsistencyDelayFilter drops blocks whose ULID time is too recent, giving an
//     eventually consistent bucket time to show all of a block's files;
//   - TimeFilter keeps blocks that overlap a configured time range;
//   - ShardFilter keeps the blocks a hashring assigns to this gateway.
//
// Every fetch sets strata_blocksync_blocks{state} to the number of blocks in each
// state: loaded (passed every filter), partial, corrupted, or the state of the
// filter that dropped it.
//
// A Syncer runs the Fetcher every SyncInterval, keeps the served set that
// Metas and Info read concurrently, and tells the gateway which blocks to load and
// unload through OnAdd and OnRemove.
package blocksync
