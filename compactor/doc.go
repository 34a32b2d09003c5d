// Package compactor keeps a bucket of Prometheus blocks compact: it merges the
// small blocks receivers ship into larger ones, merges the blocks of replicas
// into one (offline deduplication), downsamples old data to 5m and 1h, applies
// retention and deletes what was replaced. It reads and writes Thanos' bucket
// layout and marks, so it can take over a Thanos bucket and the other way round.
//
// # The pass
//
// A Compactor works in passes (Compactor.Pass; Compactor.Run repeats them):
//
//  1. Sync. The bucket's metas are read (storegw/blocksync.Fetcher) and
//     filtered: blocks uploaded by other components whose ULID is younger than
//     ConsistencyDelay are hidden (the compactor's own blocks never are);
//     deletion, no-compact and no-downsample marks are gathered with one
//     recursive listing, and blocks whose deletion mark is older than half the
//     DeleteDelay are hidden; ReplicaLabels are removed from the external
//     labels; blocks whose compaction sources are all within the sources of
//     another block of the same group are hidden as duplicates, and marked for
//     deletion.
//  2. Compaction. Blocks are grouped by resolution and external labels
//     (block.GroupKey). Each group is planned (PlanGroup) and compacted until
//     nothing is left to plan, up to Concurrency groups at once.
//  3. Downsampling, raw to 5m, then (after another sync) 5m to 1h. A raw block
//     is downsampled once it spans 40h, a 5m block once it spans 10 days, if
//     some of its sources are not yet covered by a block of the target
//     resolution.
//  4. Retention, after another sync: a block is marked for deletion once
//     MaxTime plus the retention of its resolution has passed.
//  5. Cleanup (compactor/bucket.Cleanup): blocks whose deletion mark is older
//     than DeleteDelay, and abandoned partial uploads older than
//     PartialUploadAge, are deleted.
//
// # Planning
//
// PlanGroup is Prometheus' leveled planner over the ranges 2h, 8h, 2d and 14d,
// without a filesystem. Overlapping blocks come first: raw ones are merged
// (vertical compaction, with storage.NewCompactingChunkSeriesMerger so that a
// sample present in several blocks is kept once), downsampled ones are never
// merged; the newer ones get a no-compact mark. Then the newest block is left
// out, and the first aligned window of the smallest range with two or more
// blocks that is complete, or ends before the newest remaining block, is
// compacted. Blocks with a no-compact or a deletion mark are never planned,
// and cut windows into runs without leaving gaps.
//
// # Never halting
//
// Thanos halts its compactor on several kinds of errors and waits for an
// operator. This compactor never does; strata_compact_halted is always 0. A
// group that fails (a download or upload error, a broken block) is logged,
// counted in strata_compact_failures_total and retried in the next pass; the
// other groups go on, and so do downsampling, retention and cleanup. A block
// whose index has out-of-order chunks is marked no-compact at once
// (block.ReasonOutOfOrderChunks); a block that fails to verify or misses files
// MaxBlockFailures passes in a row is marked no-compact (ReasonCorruptedBlock).
// Either way its group is planned again without it, so one bad block cannot
// wedge its group. Overlaps are merged rather than reported.
//
// # Crash safety
//
// A compactor can be killed (SIGKILL, power loss) at any point, and the next
// run repairs the bucket. The argument rests on three facts: an object upload
// is atomic; a block is visible to everyone only once its meta.json exists,
// and meta.json is uploaded last; a block's sources are marked for deletion
// only after its result is visible. Local state is scratch (DataDir is wiped at
// start); everything that matters is in the bucket. Going through the points
// where a kill can happen:
//
//   - While downloading or compacting: nothing was written to the bucket.
//   - While uploading a result (compaction or downsampling): the result has no
//     meta.json, so it is a partial upload that nobody reads. The sources are
//     untouched, so the next pass plans the same work again, under a new
//     ULID. Cleanup deletes the partial upload once older than
//     PartialUploadAge.
//   - After the result's meta.json, before or while marking the sources: the
//     result's sources include every source of the unmarked blocks, so the
//     duplicate filter hides them in the next sync, which marks them for
//     deletion. They are never compacted twice, and no sample appears twice
//     (even if it did, vertical compaction would keep each sample once).
//     The consistency delay never hides the compactor's own results, so the
//     duplicate filter always sees them.
//   - After a downsampled block's meta.json: its sources now count as covered;
//     nothing else was to be done.
//   - While writing a no-compact, no-downsample or deletion mark: marks are
//     single objects, either there or not; a missing one is written again by
//     the pass that needs it.
//   - While deleting a block (block.Delete): meta.json goes first, so the
//     block is no longer read by anyone, and the deletion mark last; Cleanup
//     finishes a block directory that has a deletion mark but no meta.json
//     whatever its age.
//
// What the argument needs from the operator: one compactor per bucket (there
// is no lock, as in Thanos), and a PartialUploadAge longer than any upload
// takes, since a younger partial upload is indistinguishable from one in
// progress.
package compactor
