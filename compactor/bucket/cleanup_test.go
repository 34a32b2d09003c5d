package bucket

import (
	"bytes"
	"context"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	bkt, root := newBucket(t)
	now := time.Now().Truncate(time.Second)
	lbls := map[string]string{"tenant_id": "a"}

	healthy := uploadBlock(t, bkt, 0, 2*hour, lbls, 0)

	oldMarked := uploadBlock(t, bkt, 2*hour, 4*hour, lbls, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, oldMarked.ULID, now.Add(-72*time.Hour), "replaced"))

	youngMarked := uploadBlock(t, bkt, 4*hour, 6*hour, lbls, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, youngMarked.ULID, now.Add(-time.Hour), "replaced"))

	// A block marked exactly DeleteDelay ago is due.
	justDue := uploadBlock(t, bkt, 6*hour, 8*hour, lbls, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, justDue.ULID, now.Add(-48*time.Hour), ""))

	oldPartial := uploadBlock(t, bkt, 8*hour, 10*hour, lbls, 0)
	require.NoError(t, bkt.Delete(ctx, path.Join(oldPartial.ULID.String(), block.MetaFilename)))
	setMtime(t, root, oldPartial.ULID.String(), now.Add(-72*time.Hour))

	// A partial upload with one fresh object is still being uploaded.
	freshPartial := uploadBlock(t, bkt, 10*hour, 12*hour, lbls, 0)
	require.NoError(t, bkt.Delete(ctx, path.Join(freshPartial.ULID.String(), block.MetaFilename)))
	setMtime(t, root, freshPartial.ULID.String(), now.Add(-72*time.Hour))
	setMtime(t, root, path.Join(freshPartial.ULID.String(), block.IndexFilename), now.Add(-time.Hour))

	// An interrupted delete: meta.json gone, chunks and mark left, the mark
	// younger than the delay and the files fresh.
	interrupted := uploadBlock(t, bkt, 12*hour, 14*hour, lbls, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, interrupted.ULID, now.Add(-time.Minute), ""))
	require.NoError(t, bkt.Delete(ctx, path.Join(interrupted.ULID.String(), block.MetaFilename)))
	require.NoError(t, bkt.Delete(ctx, path.Join(interrupted.ULID.String(), block.IndexFilename)))

	// Entries whose names are not ULIDs are never touched, however old.
	require.NoError(t, bkt.Upload(ctx, "debug/metas/x.json", bytes.NewReader([]byte("{}"))))
	require.NoError(t, bkt.Upload(ctx, "README", bytes.NewReader([]byte("hi"))))
	require.NoError(t, bkt.Upload(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAVX/meta.json", bytes.NewReader([]byte("{}")))) // one character too long
	setMtime(t, root, "debug", now.Add(-1000*time.Hour))
	setMtime(t, root, "01ARZ3NDEKTSV4RRFFQ69G5FAVX", now.Add(-1000*time.Hour))

	cfg := CleanupConfig{DeleteDelay: 48 * time.Hour, PartialUploadAge: 48 * time.Hour, Now: now}
	stats, err := Cleanup(ctx, nil, bkt, cfg)
	require.NoError(t, err)
	require.Equal(t, CleanupStats{Blocks: 7, Deleted: 2, PartialDeleted: 1, InterruptedDeleted: 1}, stats)

	for _, gone := range []*block.Meta{oldMarked, justDue, oldPartial, interrupted} {
		require.Empty(t, objects(t, bkt, gone.ULID.String()), "block %s should be gone", gone.ULID)
	}
	require.True(t, exists(t, bkt, healthy.ULID, block.MetaFilename))
	require.True(t, exists(t, bkt, youngMarked.ULID, block.MetaFilename))
	require.True(t, exists(t, bkt, youngMarked.ULID, block.DeletionMarkFilename))
	require.True(t, exists(t, bkt, freshPartial.ULID, block.IndexFilename))
	require.Equal(t, []string{"debug/metas/x.json"}, objects(t, bkt, "debug"))
	require.Equal(t, []string{"01ARZ3NDEKTSV4RRFFQ69G5FAVX/meta.json"}, objects(t, bkt, "01ARZ3NDEKTSV4RRFFQ69G5FAVX"))
	ok, err := bkt.Exists(ctx, "README")
	require.NoError(t, err)
	require.True(t, ok)

	// Nothing more is due: a second run deletes nothing.
	stats, err = Cleanup(ctx, nil, bkt, cfg)
	require.NoError(t, err)
	require.Equal(t, CleanupStats{Blocks: 3}, stats)

	// Later, the young mark and the fresh partial upload are due as well.
	cfg.Now = now.Add(48 * time.Hour)
	stats, err = Cleanup(ctx, nil, bkt, cfg)
	require.NoError(t, err)
	require.Equal(t, CleanupStats{Blocks: 3, Deleted: 1, PartialDeleted: 1}, stats)
	require.True(t, exists(t, bkt, healthy.ULID, block.MetaFilename))
	require.Empty(t, objects(t, bkt, youngMarked.ULID.String()))
	require.Empty(t, objects(t, bkt, freshPartial.ULID.String()))
}

func TestCleanupZeroDelayAndInvalidMark(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	lbls := map[string]string{"tenant_id": "a"}

	marked := uploadBlock(t, bkt, 0, 2*hour, lbls, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, marked.ULID, time.Now(), ""))
	// A mark that does not decode never gets a complete block deleted.
	invalid := uploadBlock(t, bkt, 2*hour, 4*hour, lbls, 0)
	require.NoError(t, bkt.Upload(ctx, path.Join(invalid.ULID.String(), block.DeletionMarkFilename), bytes.NewReader([]byte("not json"))))

	stats, err := Cleanup(ctx, nil, bkt, CleanupConfig{})
	require.NoError(t, err)
	require.Equal(t, CleanupStats{Blocks: 2, Deleted: 1}, stats)
	require.Empty(t, objects(t, bkt, marked.ULID.String()))
	require.True(t, exists(t, bkt, invalid.ULID, block.MetaFilename))
}

func TestCleanupRejectsNegativeDurations(t *testing.T) {
	bkt, _ := newBucket(t)
	for _, cfg := range []CleanupConfig{{DeleteDelay: -time.Second}, {PartialUploadAge: -time.Second}} {
		_, err := Cleanup(context.Background(), nil, bkt, cfg)
		require.ErrorContains(t, err, "negative")
	}
}
