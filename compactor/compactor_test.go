package compactor

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

// TestCompactorReplicaDedupAndLevels compacts three days of 2h blocks of two
// tenants with two replicas each, the replicas of one tenant each missing
// different samples, and checks that every input sample is left exactly once
// per tenant, in blocks of the planned levels and ranges without overlaps.
func TestCompactorReplicaDedupAndLevels(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	const days = 3
	want := map[string]data{}
	var sources []ulid.ULID
	for _, tenant := range []string{"a", "b"} {
		want[tenant] = data{}
		for w := range int64(days * 12) {
			mint, maxt := base+w*2*h, base+(w+1)*2*h
			for _, replica := range []string{"r0", "r1"} {
				var skip func(int, int64) bool
				if tenant == "b" {
					// Each replica misses samples the other has (even and odd
					// ones): the union is kept.
					skip = func(series int, ts int64) bool {
						n := (ts - mint) / step
						return (replica == "r0" && n%2 == 0 && n%7 == 3) || (replica == "r1" && n%2 == 1 && n%11 == 5 && series == 1)
					}
				}
				d := generate(2, mint, maxt, skip)
				m := uploadBlock(t, bkt, map[string]string{"tenant_id": tenant, "receive_replica": replica}, mint, maxt, d)
				sources = append(sources, m.ULID)
			}
			want[tenant].merge(generate(2, mint, maxt, nil))
		}
	}

	cfg := testConfig(t)
	cfg.ReplicaLabels = []string{"receive_replica"}
	cfg.Concurrency = 2
	c := newCompactor(t, bkt, cfg)
	require.False(t, c.Ready())
	require.NoError(t, c.Pass(ctx))
	require.True(t, c.Ready())

	// 36 replica merges, then 8 compactions to 8h and one to 2d, per tenant.
	require.Equal(t, 2*(36+8+1), int(testutil.ToFloat64(c.metrics.compactions)))
	require.Equal(t, 2*36, int(testutil.ToFloat64(c.metrics.verticals)))
	require.Zero(t, testutil.ToFloat64(c.metrics.failures.WithLabelValues(failureCompaction)))
	require.Zero(t, testutil.ToFloat64(c.metrics.halted))
	require.Positive(t, testutil.ToFloat64(c.metrics.lastSuccess))

	// A second pass finds nothing to do.
	require.NoError(t, c.Pass(ctx))
	require.Equal(t, 2*(36+8+1), int(testutil.ToFloat64(c.metrics.compactions)))
	require.Zero(t, testutil.ToFloat64(c.metrics.todoGroups))

	blocks := listBlocks(t, bkt)
	marked := map[ulid.ULID]bool{}
	for _, b := range blocks {
		marked[b.meta.ULID] = b.deletionMark
	}
	for _, id := range sources {
		require.True(t, marked[id], "source block %s is not marked for deletion", id)
	}
	for _, tenant := range []string{"a", "b"} {
		metas := live(blocks, map[string]string{"tenant_id": tenant}, block.ResolutionRaw)
		require.Equal(t, []string{"0-48", "48-56", "56-64", "64-66", "66-68", "68-70", "70-72"}, ranges(metas), "tenant %s", tenant)
		requireNoOverlap(t, metas)
		levels := map[string]int{}
		for _, m := range metas {
			require.Equal(t, map[string]string{"tenant_id": tenant}, m.Thanos.Labels, "replica label dropped")
			require.Equal(t, block.SourceCompactor, m.Thanos.Source)
			levels[ranges([]*block.Meta{m})[0]] = m.Compaction.Level
		}
		require.Equal(t, map[string]int{"0-48": 4, "48-56": 3, "56-64": 3, "64-66": 2, "66-68": 2, "68-70": 2, "70-72": 2}, levels)
		require.Len(t, metas[0].Compaction.Sources, 2*24, "the 2d block holds both replicas of 24 2h blocks")
		require.Equal(t, want[tenant].normalized(), readAll(t, bkt, metas), "tenant %s: every sample exactly once", tenant)
	}
}

// TestCompactorDedupThreeReplicas merges three replicas with identical samples
// into one block holding a third of their samples.
func TestCompactorDedupThreeReplicas(t *testing.T) {
	bkt := newBucket(t)
	d := generate(3, base, base+2*h, nil)
	var total uint64
	for _, r := range []string{"0", "1", "2"} {
		m := uploadBlock(t, bkt, map[string]string{"tenant_id": "t", "receive_replica": r}, base, base+2*h, d)
		total += m.Stats.NumSamples
	}
	cfg := testConfig(t)
	cfg.ReplicaLabels = []string{"receive_replica"}
	c := newCompactor(t, bkt, cfg)
	require.NoError(t, c.Pass(context.Background()))

	metas := live(listBlocks(t, bkt), nil, block.ResolutionRaw)
	require.Len(t, metas, 1)
	require.Equal(t, total/3, metas[0].Stats.NumSamples)
	require.Equal(t, uint64(3*120), metas[0].Stats.NumSamples)
	require.Equal(t, d.normalized(), readAll(t, bkt, metas))
}

// TestCompactorWithoutReplicaLabels keeps replicas apart when no replica label
// is configured.
func TestCompactorWithoutReplicaLabels(t *testing.T) {
	bkt := newBucket(t)
	d := generate(1, base, base+2*h, nil)
	for _, r := range []string{"0", "1"} {
		uploadBlock(t, bkt, map[string]string{"tenant_id": "t", "receive_replica": r}, base, base+2*h, d)
	}
	c := newCompactor(t, bkt, testConfig(t))
	require.NoError(t, c.Pass(context.Background()))
	require.Zero(t, testutil.ToFloat64(c.metrics.compactions))
	require.Len(t, live(listBlocks(t, bkt), nil, block.ResolutionRaw), 2)
}

// TestCompactorOutOfOrderBlock merges a block of out-of-order samples that
// overlaps the regular blocks of its stream.
func TestCompactorOutOfOrderBlock(t *testing.T) {
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	want := data{}
	for w := range int64(5) {
		d := generate(2, base+w*2*h, base+(w+1)*2*h, nil)
		uploadBlock(t, bkt, ext, base+w*2*h, base+(w+1)*2*h, d)
		want.merge(d)
	}
	// Late samples between the regular ones, plus one duplicate of a regular
	// sample, which must be kept once.
	ooo := data{seriesKey(0): {{T: base + 2*h + 30_000, V: -1}, {T: base + 3*h + 30_000, V: -2}, {T: base + 3*h, V: float64((base+3*h)/1000) + 0}}}
	uploadBlock(t, bkt, ext, base+2*h, base+4*h, ooo)
	want[seriesKey(0)] = append(want[seriesKey(0)], ooo[seriesKey(0)][:2]...)

	c := newCompactor(t, bkt, testConfig(t))
	require.NoError(t, c.Pass(context.Background()))
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.verticals)))

	metas := live(listBlocks(t, bkt), ext, block.ResolutionRaw)
	require.Equal(t, []string{"0-8", "8-10"}, ranges(metas))
	requireNoOverlap(t, metas)
	require.Equal(t, want.normalized(), readAll(t, bkt, metas))
}

// TestCompactorNoCompactMark leaves a no-compact marked block alone and
// compacts its neighbours without creating a gap.
func TestCompactorNoCompactMark(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	var ms []*block.Meta
	want := data{}
	for w := range int64(5) {
		d := generate(1, base+w*2*h, base+(w+1)*2*h, nil)
		ms = append(ms, uploadBlock(t, bkt, ext, base+w*2*h, base+(w+1)*2*h, d))
		want.merge(d)
	}
	require.NoError(t, block.WriteNoCompactMark(ctx, bkt, ms[1].ULID, time.Now(), block.ReasonManual, "test"))

	c := newCompactor(t, bkt, testConfig(t))
	require.NoError(t, c.Pass(ctx))
	blocks := listBlocks(t, bkt)
	metas := live(blocks, ext, block.ResolutionRaw)
	require.Equal(t, []string{"0-2", "2-4", "4-8", "8-10"}, ranges(metas))
	require.Equal(t, ms[0].ULID, metas[0].ULID, "a single block left of the marked one stays")
	require.Equal(t, ms[1].ULID, metas[1].ULID, "the marked block stays")
	require.Equal(t, want.normalized(), readAll(t, bkt, metas))
}

// TestCompactorCorruptBlock checks that a block with a broken index fails only
// its own group, and is marked no-compact after MaxBlockFailures passes, after
// which the rest of its group is compacted.
func TestCompactorCorruptBlock(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	var corrupt *block.Meta
	want := map[string]data{"a": {}, "b": {}}
	for _, tenant := range []string{"a", "b"} {
		for w := range int64(5) {
			d := generate(1, base+w*2*h, base+(w+1)*2*h, nil)
			m := uploadBlock(t, bkt, map[string]string{"tenant_id": tenant}, base+w*2*h, base+(w+1)*2*h, d)
			if tenant == "a" && w == 0 {
				corrupt = m
				continue
			}
			want[tenant].merge(d)
		}
	}
	// Garbage of the same size, so the download succeeds and verification fails.
	name := path.Join(corrupt.ULID.String(), block.IndexFilename)
	attrs, err := bkt.Attributes(ctx, name)
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(ctx, name, bytes.NewReader(bytes.Repeat([]byte{0xAB}, int(attrs.Size)))))

	cfg := testConfig(t)
	cfg.MaxBlockFailures = 3
	c := newCompactor(t, bkt, cfg)
	for pass := 1; pass <= 2; pass++ {
		err := c.Pass(ctx)
		require.Error(t, err, "pass %d", pass)
		require.ErrorContains(t, err, corrupt.ULID.String())
		require.Equal(t, pass, int(testutil.ToFloat64(c.metrics.failures.WithLabelValues(failureCompaction))))
		blocks := listBlocks(t, bkt)
		require.Equal(t, []string{"0-8", "8-10"}, ranges(live(blocks, map[string]string{"tenant_id": "b"}, 0)), "the other group is compacted")
		require.Len(t, live(blocks, map[string]string{"tenant_id": "a"}, 0), 5, "the broken group waits")
	}
	require.NoError(t, c.Pass(ctx), "the third failure excludes the block")
	blocks := listBlocks(t, bkt)
	for _, b := range blocks {
		if b.meta.ULID == corrupt.ULID {
			require.True(t, b.noCompact)
			require.False(t, b.deletionMark)
		}
	}
	metas := live(blocks, map[string]string{"tenant_id": "a"}, 0)
	require.Equal(t, []string{"0-2", "2-8", "8-10"}, ranges(metas))
	require.Equal(t, want["a"].normalized(), readAll(t, bkt, metas[1:]))
	mark, err := block.ReadNoCompactMark(ctx, bkt, corrupt.ULID)
	require.NoError(t, err)
	require.Equal(t, ReasonCorruptedBlock, mark.Reason)
}

// TestCompactorRetentionAndDeletion marks blocks past retention, and deletes
// them once their marks are older than the delete delay.
func TestCompactorRetentionAndDeletion(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	old := uploadBlock(t, bkt, ext, base, base+2*h, generate(1, base, base+2*h, nil))
	recent := uploadBlock(t, bkt, ext, base+10*24*h, base+10*24*h+2*h, generate(1, base+10*24*h, base+10*24*h+2*h, nil))

	now := time.UnixMilli(base + 5*24*h)
	cfg := testConfig(t)
	cfg.RetentionRaw = 3 * 24 * time.Hour
	cfg.Now = func() time.Time { return now }
	c := newCompactor(t, bkt, cfg)
	require.NoError(t, c.Pass(ctx))
	mark, err := block.ReadDeletionMark(ctx, bkt, old.ULID)
	require.NoError(t, err, "past retention")
	require.Equal(t, now.Unix(), mark.DeletionTime)
	_, err = block.ReadDeletionMark(ctx, bkt, recent.ULID)
	require.ErrorIs(t, err, objstore.ErrNotFound, "within retention")
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.markedForDeletion.WithLabelValues(deletionRetention))))

	now = now.Add(47 * time.Hour)
	require.NoError(t, c.Pass(ctx))
	require.Len(t, listBlocks(t, bkt), 2, "the delete delay has not passed")

	now = now.Add(2 * time.Hour)
	require.NoError(t, c.Pass(ctx))
	blocks := listBlocks(t, bkt)
	require.Len(t, blocks, 1)
	require.Equal(t, recent.ULID, blocks[0].meta.ULID)
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.deleted)))
	exists, err := bkt.Exists(ctx, path.Join(old.ULID.String(), block.IndexFilename))
	require.NoError(t, err)
	require.False(t, exists, "every file of the block is gone")
}

// TestCompactorTenantRetention applies each tenant's own retention, the
// shorter of it and the resolution's, and reads it on every pass.
func TestCompactorTenantRetention(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	blocks := map[string]*block.Meta{}
	for _, tenant := range []string{"short", "long", "none"} {
		blocks[tenant] = uploadBlock(t, bkt, map[string]string{"tenant_id": tenant}, base, base+2*h, generate(1, base, base+2*h, nil))
	}
	now := time.UnixMilli(base + 5*24*h)
	retention := map[string]time.Duration{"short": 2 * 24 * time.Hour, "long": 30 * 24 * time.Hour}
	cfg := testConfig(t)
	cfg.DisableDownsampling = true
	cfg.RetentionRaw = 10 * 24 * time.Hour
	cfg.TenantRetention = func(tenant string) time.Duration { return retention[tenant] }
	cfg.Now = func() time.Time { return now }
	c := newCompactor(t, bkt, cfg)
	// marked returns the tenants whose block is marked for deletion or gone.
	marked := func() []string {
		var out []string
		for tenant, m := range blocks {
			_, err := block.ReadDeletionMark(ctx, bkt, m.ULID)
			exists, eerr := bkt.Exists(ctx, path.Join(m.ULID.String(), block.MetaFilename))
			require.NoError(t, eerr)
			if err == nil || !exists {
				out = append(out, tenant)
			}
		}
		return out
	}
	require.NoError(t, c.Pass(ctx))
	require.Equal(t, []string{"short"}, marked(), "5 days old: past short's 2d, within the 10d raw retention")

	now = now.Add(6 * 24 * time.Hour)
	require.NoError(t, c.Pass(ctx))
	require.ElementsMatch(t, []string{"short", "long", "none"}, marked(), "11 days old: the 10d raw retention is shorter than long's 30d")
}

// TestCompactorConsistencyDelay leaves fresh uploads alone until they are
// older than the consistency delay.
func TestCompactorConsistencyDelay(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	for w := range int64(5) {
		uploadBlock(t, bkt, ext, base+w*2*h, base+(w+1)*2*h, generate(1, base+w*2*h, base+(w+1)*2*h, nil))
	}
	now := time.Now()
	cfg := testConfig(t)
	cfg.ConsistencyDelay = 30 * time.Minute
	cfg.Now = func() time.Time { return now }
	c := newCompactor(t, bkt, cfg)
	require.NoError(t, c.Pass(ctx))
	require.Zero(t, testutil.ToFloat64(c.metrics.compactions))

	now = now.Add(time.Hour)
	require.NoError(t, c.Pass(ctx))
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.compactions)))
	// The compactor's own block is visible at once, so its sources are not
	// compacted a second time although they are still in the bucket.
	require.NoError(t, c.Pass(ctx))
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.compactions)))
	require.Equal(t, []string{"0-8", "8-10"}, ranges(live(listBlocks(t, bkt), ext, 0)))
}

// TestCompactorCrashBeforeMarks simulates a crash after a compaction's result
// was uploaded and before its sources were marked: the next compactor marks
// them as duplicates instead of compacting them again.
func TestCompactorCrashBeforeMarks(t *testing.T) {
	ctx := context.Background()
	fs := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	want := data{}
	var sources []*block.Meta
	for w := range int64(5) {
		d := generate(1, base+w*2*h, base+(w+1)*2*h, nil)
		sources = append(sources, uploadBlock(t, fs, ext, base+w*2*h, base+(w+1)*2*h, d))
		want.merge(d)
	}
	rec := blocktest.NewRecordingBucket(fs)
	rec.FailUploadsOf(func(name string) bool { return strings.HasSuffix(name, block.DeletionMarkFilename) })
	c1 := newCompactor(t, rec, testConfig(t))
	require.ErrorIs(t, c1.Pass(ctx), blocktest.ErrInjected)

	c2 := newCompactor(t, fs, testConfig(t))
	require.NoError(t, c2.Pass(ctx))
	require.Zero(t, testutil.ToFloat64(c2.metrics.compactions), "nothing is compacted twice")
	require.Equal(t, 4, int(testutil.ToFloat64(c2.metrics.markedForDeletion.WithLabelValues(deletionDuplicate))))
	blocks := listBlocks(t, fs)
	metas := live(blocks, ext, 0)
	require.Equal(t, []string{"0-8", "8-10"}, ranges(metas))
	require.Equal(t, want.normalized(), readAll(t, fs, metas))
	for _, b := range blocks {
		if b.meta.ULID != sources[4].ULID && b.meta.Thanos.Source != block.SourceCompactor {
			require.True(t, b.deletionMark, "source %s", b.meta.ULID)
		}
	}
}

// TestCompactorCrashDuringUpload simulates a crash while the result was
// uploaded: the next pass compacts again, and the abandoned upload is removed
// once older than the partial upload age.
func TestCompactorCrashDuringUpload(t *testing.T) {
	ctx := context.Background()
	fs := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	want := data{}
	for w := range int64(5) {
		d := generate(1, base+w*2*h, base+(w+1)*2*h, nil)
		uploadBlock(t, fs, ext, base+w*2*h, base+(w+1)*2*h, d)
		want.merge(d)
	}
	rec := blocktest.NewRecordingBucket(fs)
	rec.FailUploadsOf(func(name string) bool { return strings.HasSuffix(name, block.MetaFilename) })
	c1 := newCompactor(t, rec, testConfig(t))
	require.ErrorIs(t, c1.Pass(ctx), blocktest.ErrInjected)
	var partial ulid.ULID
	for _, name := range rec.Uploads() {
		if strings.HasSuffix(name, block.MetaFilename) {
			partial = ulid.MustParse(strings.Split(name, "/")[0])
		}
	}
	require.NotZero(t, partial)

	now := time.Now()
	cfg := testConfig(t)
	cfg.Now = func() time.Time { return now }
	c2 := newCompactor(t, fs, cfg)
	require.NoError(t, c2.Pass(ctx))
	require.Equal(t, 1, int(testutil.ToFloat64(c2.metrics.compactions)))
	exists, err := fs.Exists(ctx, path.Join(partial.String(), block.IndexFilename))
	require.NoError(t, err)
	require.True(t, exists, "the partial upload is young")

	now = now.Add(49 * time.Hour)
	require.NoError(t, c2.Pass(ctx))
	exists, err = fs.Exists(ctx, path.Join(partial.String(), block.IndexFilename))
	require.NoError(t, err)
	require.False(t, exists, "the abandoned upload is removed")
	require.Equal(t, 1, int(testutil.ToFloat64(c2.metrics.partialDeleted)))
	metas := live(listBlocks(t, fs), ext, 0)
	require.Equal(t, []string{"0-8", "8-10"}, ranges(metas))
	require.Equal(t, want.normalized(), readAll(t, fs, metas))
}

// TestCompactorOverlappingDownsampledBlocks marks the newer of two overlapping
// 5m blocks no-compact instead of merging them.
func TestCompactorOverlappingDownsampledBlocks(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	mk := func(mint, maxt int64) *block.Meta {
		dir := t.TempDir()
		id := blocktest.Create(t, dir, mint, maxt, 1)
		m, err := block.ReadMetaFromDir(dir + "/" + id.String())
		require.NoError(t, err)
		m.Thanos = block.ThanosMeta{Labels: map[string]string{"tenant_id": "t"}, Downsample: block.Downsample{Resolution: block.Resolution5m}, Source: block.SourceCompactor}
		require.NoError(t, block.Upload(ctx, nil, bkt, dir+"/"+id.String(), m))
		return m
	}
	older := mk(base, base+2*h)
	newer := mk(base+h, base+3*h)
	c := newCompactor(t, bkt, testConfig(t))
	require.NoError(t, c.Pass(ctx))
	mark, err := block.ReadNoCompactMark(ctx, bkt, newer.ULID)
	require.NoError(t, err)
	require.Equal(t, block.ReasonDownsampleVerticalCompaction, mark.Reason)
	_, err = block.ReadNoCompactMark(ctx, bkt, older.ULID)
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.Zero(t, testutil.ToFloat64(c.metrics.compactions))
	require.NoError(t, c.Pass(ctx), "the next pass is quiet")
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.markedNoCompact.WithLabelValues(block.ReasonDownsampleVerticalCompaction))))
}

// TestCompactorDownsampling downsamples a raw block spanning 2d to 5m, and a
// raw block spanning 14d to 5m and then 1h, once each, and skips blocks marked
// no-downsample.
func TestCompactorDownsampling(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	twoDays := uploadBlock(t, bkt, ext, base, base+48*h, generate(1, base, base+48*h, nil))
	// Too short to downsample.
	uploadBlock(t, bkt, ext, base+48*h, base+50*h, generate(1, base+48*h, base+50*h, nil))
	fortnight := uploadBlock(t, bkt, map[string]string{"tenant_id": "u"}, base, base+336*h, generate(1, base, base+336*h, nil))
	skipped := uploadBlock(t, bkt, map[string]string{"tenant_id": "v"}, base, base+48*h, generate(1, base, base+48*h, nil))
	require.NoError(t, block.WriteNoDownsampleMark(ctx, bkt, skipped.ULID, time.Now(), block.ReasonManual, "test"))

	cfg := testConfig(t)
	cfg.DisableDownsampling = false
	c := newCompactor(t, bkt, cfg)
	require.NoError(t, c.Pass(ctx))
	require.Equal(t, 2, int(testutil.ToFloat64(c.metrics.downsamples.WithLabelValues("300000"))))
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.downsamples.WithLabelValues("3600000"))))

	blocks := listBlocks(t, bkt)
	for _, tc := range []struct {
		sel     map[string]string
		res     int64
		sources []ulid.ULID
		ranges  []string
	}{
		{ext, block.Resolution5m, twoDays.Compaction.Sources, []string{"0-48"}},
		{map[string]string{"tenant_id": "u"}, block.Resolution5m, fortnight.Compaction.Sources, []string{"0-336"}},
		{map[string]string{"tenant_id": "u"}, block.Resolution1h, fortnight.Compaction.Sources, []string{"0-336"}},
		{map[string]string{"tenant_id": "v"}, block.Resolution5m, nil, nil},
	} {
		metas := live(blocks, tc.sel, tc.res)
		require.Equal(t, tc.ranges, ranges(metas), "%v at %d", tc.sel, tc.res)
		for _, m := range metas {
			require.Equal(t, tc.sources, m.Compaction.Sources)
			require.Equal(t, tc.sel, m.Thanos.Labels)
			require.Equal(t, block.SourceCompactor, m.Thanos.Source)
		}
	}
	require.Empty(t, live(blocks, map[string]string{"tenant_id": "t"}, block.Resolution1h))

	require.NoError(t, c.Pass(ctx))
	require.Equal(t, 2, int(testutil.ToFloat64(c.metrics.downsamples.WithLabelValues("300000"))), "covered blocks are not downsampled again")
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.downsamples.WithLabelValues("3600000"))))
}

// uploadOutOfOrderBlock writes a block over [mint, maxt) whose one series has
// two chunks that overlap in time, and uploads it with external labels ext.
// Prometheus' index writer refuses overlapping chunks, so the block is written
// with the second chunk starting 1ms after the first ends, and the index entry
// is then patched to make it start where the first ends.
func uploadOutOfOrderBlock(t *testing.T, bkt objstore.Bucket, ext map[string]string, mint, maxt int64) *block.Meta {
	t.Helper()
	ctx := context.Background()
	m := &block.Meta{}
	m.ULID = ulid.Make()
	m.Version = block.TSDBVersion1
	m.MinTime, m.MaxTime = mint, maxt
	m.Compaction.Level = 1
	m.Compaction.Sources = []ulid.ULID{m.ULID}
	m.Stats = tsdb.BlockStats{NumSeries: 1, NumChunks: 2, NumSamples: 20}
	m.Thanos = block.ThanosMeta{Labels: ext, Source: block.SourceReceive}
	dir := filepath.Join(t.TempDir(), m.ULID.String())

	chunk := func(from int64) chunks.Meta {
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		require.NoError(t, err)
		for i := range int64(10) {
			app.Append(0, from+i*step, float64(i))
		}
		return chunks.Meta{Chunk: c, MinTime: from, MaxTime: from + 9*step}
	}
	first := chunk(mint)
	chks := []chunks.Meta{first, chunk(first.MaxTime + 1)}
	cw, err := chunks.NewWriter(filepath.Join(dir, block.ChunksDirname))
	require.NoError(t, err)
	require.NoError(t, cw.WriteChunks(chks...))
	require.NoError(t, cw.Close())

	lset := labels.FromStrings(model.MetricNameLabel, "test_metric", "series", "0")
	fn := filepath.Join(dir, block.IndexFilename)
	iw, err := index.NewWriter(ctx, fn)
	require.NoError(t, err)
	for _, s := range []string{"0", model.MetricNameLabel, "series", "test_metric"} {
		require.NoError(t, iw.AddSymbol(s))
	}
	require.NoError(t, iw.AddSeries(1, lset, chks...))
	require.NoError(t, iw.Close())

	// The only series entry follows the symbol table. Series entries are
	// 16-byte aligned: find it through the postings of the only series.
	ir, err := index.NewFileReader(fn, index.DecodePostingsRaw)
	require.NoError(t, err)
	k, v := index.AllPostingsKey()
	p, err := ir.Postings(ctx, k, v)
	require.NoError(t, err)
	require.True(t, p.Next())
	off := int(p.At()) * 16
	require.NoError(t, ir.Close())
	b, err := os.ReadFile(fn)
	require.NoError(t, err)
	length, n := binary.Uvarint(b[off:])
	start := off + n
	pos := start
	next := func() {
		_, n := binary.Uvarint(b[pos:])
		pos += n
	}
	next()        // number of labels: 2
	for range 4 { // their name and value symbol references
		next()
	}
	next() // number of chunks: 2
	_, n = binary.Varint(b[pos:])
	pos += n // first chunk's minTime
	next()   // its maxTime delta
	next()   // its reference
	require.Equal(t, byte(1), b[pos], "second chunk's minTime delta")
	b[pos] = 0
	end := start + int(length)
	binary.BigEndian.PutUint32(b[end:], crc32.Checksum(b[start:end], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(fn, b, 0o600))

	require.NoError(t, m.WriteToDir(nil, dir))
	require.NoError(t, block.Upload(ctx, nil, bkt, dir, m))
	return m
}

// TestCompactorOutOfOrderChunks marks a block whose index has overlapping
// chunks no-compact and compacts the rest of its group in the same pass.
func TestCompactorOutOfOrderChunks(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	ext := map[string]string{"tenant_id": "t"}
	var bad *block.Meta
	for w := range int64(5) {
		mint, maxt := base+w*2*h, base+(w+1)*2*h
		if w == 1 {
			bad = uploadOutOfOrderBlock(t, bkt, ext, mint, maxt)
			continue
		}
		uploadBlock(t, bkt, ext, mint, maxt, generate(1, mint, maxt, nil))
	}
	c := newCompactor(t, bkt, testConfig(t))
	require.NoError(t, c.Pass(ctx), "a block with out-of-order chunks is no reason to fail")
	mark, err := block.ReadNoCompactMark(ctx, bkt, bad.ULID)
	require.NoError(t, err)
	require.Equal(t, block.ReasonOutOfOrderChunks, mark.Reason)
	require.Equal(t, []string{"0-2", "2-4", "4-8", "8-10"}, ranges(live(listBlocks(t, bkt), ext, 0)))
	require.Equal(t, 1, int(testutil.ToFloat64(c.metrics.compactions)))
}

// TestCompactorRun runs passes until stopped, and is ready after the first
// sync.
func TestCompactorRun(t *testing.T) {
	bkt := newBucket(t)
	c := newCompactor(t, bkt, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx, time.Millisecond) }()
	require.Eventually(t, func() bool {
		return c.Ready() && testutil.ToFloat64(c.metrics.passes) >= 3
	}, 30*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, testutil.ToFloat64(c.metrics.failures.WithLabelValues(failureSync)))
}
