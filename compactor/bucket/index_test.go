package bucket

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
)

type indexSeries struct {
	lset   labels.Labels
	chunks []chunks.Meta
}

// writeIndexBlock writes a block directory with meta.json for [mint, maxt) and an
// index written with Prometheus' index writer, but no chunk files.
func writeIndexBlock(t *testing.T, mint, maxt int64, series []indexSeries) string {
	t.Helper()
	id := ulid.MustNew(ulid.Now(), nil)
	dir := filepath.Join(t.TempDir(), id.String())
	require.NoError(t, os.MkdirAll(dir, 0o755))
	meta := &block.Meta{BlockMeta: tsdb.BlockMeta{ULID: id, MinTime: mint, MaxTime: maxt, Version: block.TSDBVersion1}}
	require.NoError(t, meta.WriteToDir(nil, dir))

	symbols := map[string]struct{}{}
	for _, s := range series {
		s.lset.Range(func(l labels.Label) {
			symbols[l.Name] = struct{}{}
			symbols[l.Value] = struct{}{}
		})
	}
	sorted := make([]string, 0, len(symbols))
	for s := range symbols {
		sorted = append(sorted, s)
	}
	slices.Sort(sorted)

	w, err := index.NewWriter(context.Background(), filepath.Join(dir, block.IndexFilename))
	require.NoError(t, err)
	for _, s := range sorted {
		require.NoError(t, w.AddSymbol(s))
	}
	for i, s := range series {
		require.NoError(t, w.AddSeries(storage.SeriesRef(i+1), s.lset, s.chunks...))
	}
	require.NoError(t, w.Close())
	return dir
}

// touchSecondChunk rewrites the index of the block in dir so that the second
// chunk of its first series starts at the MaxTime of the first chunk, which
// makes the two overlap. Prometheus' index writer refuses to write that, so the
// series entry is patched in place and its checksum recomputed. The chunks must
// have been written with the second starting one millisecond after the first
// ended.
func touchSecondChunk(t *testing.T, dir string) {
	t.Helper()
	fn := filepath.Join(dir, block.IndexFilename)
	ir, err := index.NewFileReader(fn, index.DecodePostingsRaw)
	require.NoError(t, err)
	name, value := index.AllPostingsKey()
	p, err := ir.Postings(context.Background(), name, value)
	require.NoError(t, err)
	require.True(t, p.Next())
	// In index format 2, a series reference is its offset divided by 16.
	off := int(p.At()) * 16
	require.NoError(t, ir.Close())

	b, err := os.ReadFile(fn)
	require.NoError(t, err)
	size, n := binary.Uvarint(b[off:])
	require.Positive(t, n)
	start := off + n
	pos := start
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b[pos:])
		require.Positive(t, n)
		pos += n
		return v
	}
	nLabels := uvarint()
	for range 2 * nLabels {
		uvarint()
	}
	require.Equal(t, uint64(2), uvarint(), "want two chunks")
	_, n = binary.Varint(b[pos:]) // minTime of the first chunk
	pos += n
	uvarint() // its length
	uvarint() // its reference
	require.Equal(t, byte(1), b[pos], "the second chunk must start right after the first")
	b[pos] = 0
	end := start + int(size)
	binary.BigEndian.PutUint32(b[end:], crc32.Checksum(b[start:end], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(fn, b, 0o644))
}

func TestVerifyIndex(t *testing.T) {
	ctx := context.Background()
	lsetA := labels.FromStrings("__name__", "up", "job", "a")
	lsetB := labels.FromStrings("__name__", "up", "job", "b")

	t.Run("healthy block", func(t *testing.T) {
		dir := t.TempDir()
		id := blocktest.Create(t, dir, 0, 2*hour, 5)
		require.NoError(t, VerifyIndex(ctx, filepath.Join(dir, id.String())))
		require.NoError(t, VerifyIndex(ctx, filepath.Join(dir, id.String()), WithChunkRefs()))
	})

	t.Run("healthy hand-written index", func(t *testing.T) {
		dir := writeIndexBlock(t, 0, 100, []indexSeries{
			{lsetA, []chunks.Meta{{Ref: 8, MinTime: 0, MaxTime: 10}, {Ref: 100, MinTime: 11, MaxTime: 99}}},
			{lsetB, []chunks.Meta{{Ref: 200, MinTime: 5, MaxTime: 50}}},
		})
		require.NoError(t, VerifyIndex(ctx, dir))
	})

	t.Run("overlapping chunks", func(t *testing.T) {
		dir := writeIndexBlock(t, 0, 100, []indexSeries{
			{lsetA, []chunks.Meta{{Ref: 8, MinTime: 0, MaxTime: 10}, {Ref: 100, MinTime: 11, MaxTime: 20}}},
			{lsetB, []chunks.Meta{{Ref: 200, MinTime: 5, MaxTime: 50}}},
		})
		require.NoError(t, VerifyIndex(ctx, dir), "the index is healthy before the patch")
		touchSecondChunk(t, dir)
		err := VerifyIndex(ctx, dir)
		require.ErrorIs(t, err, ErrOutOfOrderChunks)
		require.ErrorIs(t, err, ErrInvalidIndex)
		require.ErrorContains(t, err, filepath.Base(dir))
		require.ErrorContains(t, err, `job="a"`)
	})

	for _, c := range []struct {
		name  string
		chunk chunks.Meta
	}{
		{"chunk at the exclusive maxTime", chunks.Meta{Ref: 8, MinTime: 50, MaxTime: 100}},
		{"chunk before minTime", chunks.Meta{Ref: 8, MinTime: -1, MaxTime: 50}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeIndexBlock(t, 0, 100, []indexSeries{{lsetA, []chunks.Meta{c.chunk}}})
			err := VerifyIndex(ctx, dir)
			require.ErrorIs(t, err, ErrInvalidIndex)
			require.NotErrorIs(t, err, ErrOutOfOrderChunks)
			require.ErrorContains(t, err, "outside the block's range")
			require.ErrorContains(t, err, filepath.Base(dir))
		})
	}

	t.Run("chunk reference that does not resolve", func(t *testing.T) {
		dir := writeIndexBlock(t, 0, 100, []indexSeries{{lsetA, []chunks.Meta{{Ref: 8, MinTime: 0, MaxTime: 10}}}})
		require.NoError(t, os.MkdirAll(filepath.Join(dir, block.ChunksDirname), 0o755))
		require.NoError(t, VerifyIndex(ctx, dir), "references are only resolved on request")
		err := VerifyIndex(ctx, dir, WithChunkRefs())
		require.ErrorIs(t, err, ErrInvalidIndex)
		require.ErrorContains(t, err, `job="a"`)
	})

	t.Run("truncated index", func(t *testing.T) {
		dir := t.TempDir()
		id := blocktest.Create(t, dir, 0, 2*hour, 5)
		fn := filepath.Join(dir, id.String(), block.IndexFilename)
		st, err := os.Stat(fn)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(fn, st.Size()/2))
		err = VerifyIndex(ctx, filepath.Join(dir, id.String()))
		require.ErrorIs(t, err, ErrInvalidIndex)
		require.ErrorContains(t, err, id.String())
	})

	t.Run("missing meta.json", func(t *testing.T) {
		err := VerifyIndex(ctx, t.TempDir())
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrInvalidIndex)
	})
}
