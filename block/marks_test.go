package block_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

func TestNoCompactAndNoDownsampleMarks(t *testing.T) {
	ctx := context.Background()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	id := ulid.Make()

	_, err = block.ReadNoCompactMark(ctx, bkt, id)
	require.ErrorIs(t, err, objstore.ErrNotFound)
	_, err = block.ReadNoDownsampleMark(ctx, bkt, id)
	require.ErrorIs(t, err, objstore.ErrNotFound)

	at := time.Unix(1_700_000_000, 0)
	require.NoError(t, block.WriteNoCompactMark(ctx, bkt, id, at, block.ReasonManual, "too big"))
	nc, err := block.ReadNoCompactMark(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, block.NoCompactMark{ID: id, Version: 1, Details: "too big", NoCompactTime: at.Unix(), Reason: block.ReasonManual}, *nc)

	require.NoError(t, block.WriteNoDownsampleMark(ctx, bkt, id, at, block.ReasonManual, ""))
	nd, err := block.ReadNoDownsampleMark(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, block.NoDownsampleMark{ID: id, Version: 1, NoDownsampleTime: at.Unix(), Reason: block.ReasonManual}, *nd)

	// Thanos' own encoding reads back; a mark naming another block does not.
	require.NoError(t, bkt.Upload(ctx, id.String()+"/"+block.NoCompactMarkFilename, strings.NewReader(
		`{"id":"`+id.String()+`","version":1,"details":"x","no_compact_time":1700000000,"reason":"index-size-exceeding"}`)))
	nc, err = block.ReadNoCompactMark(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, "index-size-exceeding", nc.Reason)
	other := ulid.Make()
	require.NoError(t, bkt.Upload(ctx, id.String()+"/"+block.NoDownsampleMarkFilename, strings.NewReader(
		`{"id":"`+other.String()+`","version":1,"no_downsample_time":1,"reason":"manual"}`)))
	_, err = block.ReadNoDownsampleMark(ctx, bkt, id)
	require.ErrorIs(t, err, block.ErrInvalidMark)
	require.NoError(t, bkt.Upload(ctx, id.String()+"/"+block.NoCompactMarkFilename, strings.NewReader(`{"id":`)))
	_, err = block.ReadNoCompactMark(ctx, bkt, id)
	require.ErrorIs(t, err, block.ErrInvalidMark)
}

func TestDeleteRemovesMetaFirstAndMarkLast(t *testing.T) {
	ctx := context.Background()
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	id := ulid.Make()
	for _, f := range []string{"chunks/000001", "chunks/000002", "index", block.MetaFilename, block.DeletionMarkFilename} {
		require.NoError(t, fs.Upload(ctx, id.String()+"/"+f, strings.NewReader("x")))
	}
	keep := ulid.Make()
	require.NoError(t, fs.Upload(ctx, keep.String()+"/index", strings.NewReader("x")))

	rec := &deleteRecorder{Bucket: fs}
	require.NoError(t, block.Delete(ctx, nil, rec, id))
	require.Equal(t, id.String()+"/"+block.MetaFilename, rec.deleted[0])
	require.Equal(t, id.String()+"/"+block.DeletionMarkFilename, rec.deleted[len(rec.deleted)-1])
	require.Len(t, rec.deleted, 5)

	var left []string
	require.NoError(t, fs.Iter(ctx, "", func(n string) error { left = append(left, n); return nil }, objstore.WithRecursiveIter()))
	require.Equal(t, []string{keep.String() + "/index"}, left)

	// A block already gone, or half gone, deletes without error.
	require.NoError(t, block.Delete(ctx, nil, fs, id))
}

type deleteRecorder struct {
	objstore.Bucket
	deleted []string
}

func (r *deleteRecorder) Delete(ctx context.Context, name string) error {
	err := r.Bucket.Delete(ctx, name)
	if err == nil {
		r.deleted = append(r.deleted, name)
	}
	return err
}

func TestGroupKey(t *testing.T) {
	a := block.GroupKey(0, map[string]string{"tenant_id": "a", "receive_replica": "1"})
	require.Equal(t, a, block.GroupKey(0, map[string]string{"receive_replica": "1", "tenant_id": "a"}))
	require.NotEqual(t, a, block.GroupKey(block.Resolution5m, map[string]string{"tenant_id": "a", "receive_replica": "1"}))
	require.NotEqual(t, a, block.GroupKey(0, map[string]string{"tenant_id": "a"}))
	require.True(t, strings.HasPrefix(block.GroupKey(block.Resolution1h, nil), "3600000@"))
	m := &block.Meta{}
	m.Thanos.Labels = map[string]string{"tenant_id": "a"}
	m.Thanos.Downsample.Resolution = block.Resolution5m
	require.Equal(t, block.GroupKey(block.Resolution5m, map[string]string{"tenant_id": "a"}), m.GroupKey())
}
