package block_test

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

var testLabels = map[string]string{"tenant_id": "team-a", "receive_replica": "r0"}

// newBlock writes a real block into a temporary directory and returns its directory
// and its meta, labelled and ready for upload.
func newBlock(t *testing.T) (string, *block.Meta) {
	t.Helper()
	dir := t.TempDir()
	id := blocktest.Create(t, dir, 0, 2*3_600_000, 3)
	blockDir := filepath.Join(dir, id.String())
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.Thanos.Labels = testLabels
	m.Thanos.Source = block.SourceReceive
	return blockDir, m
}

func newBucket(t *testing.T) (*objstore.Filesystem, *blocktest.RecordingBucket) {
	t.Helper()
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	return fs, blocktest.NewRecordingBucket(fs)
}

func TestUploadOrderAndMeta(t *testing.T) {
	ctx := context.Background()
	blockDir, m := newBlock(t)
	// Extra segment files, created out of order, show that chunks go up sorted. A copy
	// of a valid segment keeps the block readable.
	seg, err := os.ReadFile(filepath.Join(blockDir, block.ChunksDirname, "000001"))
	require.NoError(t, err)
	for _, name := range []string{"000003", "000002"} {
		require.NoError(t, os.WriteFile(filepath.Join(blockDir, block.ChunksDirname, name), seg, 0o644))
	}
	indexInfo, err := os.Stat(filepath.Join(blockDir, block.IndexFilename))
	require.NoError(t, err)

	fs, rec := newBucket(t)
	before := time.Now()
	require.NoError(t, block.Upload(ctx, nil, rec, blockDir, m))

	id := m.ULID.String()
	require.Equal(t, []string{
		id + "/chunks/000001",
		id + "/chunks/000002",
		id + "/chunks/000003",
		id + "/index",
		id + "/meta.json",
	}, rec.Uploads())

	got, err := block.ReadMetaFromBucket(ctx, fs, m.ULID)
	require.NoError(t, err)
	require.Equal(t, m.BlockMeta, got.BlockMeta)
	require.Equal(t, testLabels, got.Thanos.Labels)
	require.Equal(t, block.SourceReceive, got.Thanos.Source)
	require.Equal(t, block.ThanosVersion1, got.Thanos.Version)
	require.Equal(t, int64(0), got.Thanos.Downsample.Resolution)
	require.Equal(t, []block.File{
		{RelPath: "chunks/000001", SizeBytes: int64(len(seg))},
		{RelPath: "chunks/000002", SizeBytes: int64(len(seg))},
		{RelPath: "chunks/000003", SizeBytes: int64(len(seg))},
		{RelPath: "index", SizeBytes: indexInfo.Size()},
	}, got.Thanos.Files)
	require.False(t, got.Thanos.UploadTime.Before(before.Truncate(time.Second)), "upload time %v", got.Thanos.UploadTime)

	// The caller's meta is left as it was.
	require.Empty(t, m.Thanos.Files)
	require.True(t, m.Thanos.UploadTime.IsZero())

	// Every object has the local file's content.
	for _, rel := range []string{"chunks/000001", "index"} {
		want, err := os.ReadFile(filepath.Join(blockDir, filepath.FromSlash(rel)))
		require.NoError(t, err)
		rc, err := fs.Get(ctx, path.Join(id, rel))
		require.NoError(t, err)
		have, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.Equal(t, want, have, rel)
	}
}

func TestUploadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, blockDir string, m *block.Meta) (dir string)
		wantErr error
	}{
		{
			name:    "nil labels",
			prepare: func(_ *testing.T, d string, m *block.Meta) string { m.Thanos.Labels = nil; return d },
			wantErr: block.ErrNoExternalLabels,
		},
		{
			name:    "empty labels",
			prepare: func(_ *testing.T, d string, m *block.Meta) string { m.Thanos.Labels = map[string]string{}; return d },
			wantErr: block.ErrNoExternalLabels,
		},
		{
			name:    "invalid meta",
			prepare: func(_ *testing.T, d string, m *block.Meta) string { m.MaxTime = m.MinTime; return d },
			wantErr: block.ErrInvalidMeta,
		},
		{
			name: "directory of another block",
			prepare: func(_ *testing.T, d string, m *block.Meta) string {
				m.ULID = ulid.MustParseStrict(testULID)
				return d
			},
			wantErr: block.ErrNotBlockDir,
		},
		{
			name: "directory not named by a ULID",
			prepare: func(t *testing.T, d string, _ *block.Meta) string {
				renamed := filepath.Join(filepath.Dir(d), "not-a-block")
				require.NoError(t, os.Rename(d, renamed))
				return renamed
			},
			wantErr: block.ErrNotBlockDir,
		},
		{
			name: "no index",
			prepare: func(t *testing.T, d string, _ *block.Meta) string {
				require.NoError(t, os.Remove(filepath.Join(d, block.IndexFilename)))
				return d
			},
			wantErr: block.ErrNotBlockDir,
		},
		{
			name: "no chunks",
			prepare: func(t *testing.T, d string, _ *block.Meta) string {
				require.NoError(t, os.RemoveAll(filepath.Join(d, block.ChunksDirname)))
				return d
			},
			wantErr: block.ErrNotBlockDir,
		},
		{
			name: "canceled context",
			prepare: func(_ *testing.T, d string, _ *block.Meta) string {
				return d
			},
			wantErr: context.Canceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.wantErr == context.Canceled {
				cancel()
			}
			blockDir, m := newBlock(t)
			dir := tc.prepare(t, blockDir, m)
			fs, rec := newBucket(t)

			err := block.Upload(ctx, nil, rec, dir, m)
			require.ErrorIs(t, err, tc.wantErr)
			requireNoMetaInBucket(t, fs)
		})
	}
	t.Run("nil meta", func(t *testing.T) {
		blockDir, _ := newBlock(t)
		_, rec := newBucket(t)
		require.ErrorIs(t, block.Upload(context.Background(), nil, rec, blockDir, nil), block.ErrInvalidMeta)
		require.Empty(t, rec.Uploads())
	})
}

// requireNoMetaInBucket fails unless the bucket holds no meta.json at all.
func requireNoMetaInBucket(t *testing.T, bkt objstore.Bucket) {
	t.Helper()
	var metas []string
	require.NoError(t, bkt.Iter(context.Background(), "", func(name string) error {
		if path.Base(name) == block.MetaFilename {
			metas = append(metas, name)
		}
		return nil
	}, objstore.WithRecursiveIter()))
	require.Empty(t, metas)
}

func TestUploadFailureLeavesNoMeta(t *testing.T) {
	ctx := context.Background()
	for _, failOn := range []string{"/chunks/000001", "/index", "/meta.json"} {
		t.Run(strings.TrimPrefix(failOn, "/"), func(t *testing.T) {
			blockDir, m := newBlock(t)
			fs, rec := newBucket(t)
			rec.FailUploadsOf(func(name string) bool { return strings.HasSuffix(name, failOn) })

			err := block.Upload(ctx, nil, rec, blockDir, m)
			require.ErrorIs(t, err, blocktest.ErrInjected)
			requireNoMetaInBucket(t, fs)
			// Nothing is attempted after the failed file.
			uploads := rec.Uploads()
			require.True(t, strings.HasSuffix(uploads[len(uploads)-1], failOn), "%v", uploads)

			// Once the bucket works again, the same block uploads completely.
			rec.FailUploads(nil)
			require.NoError(t, block.Upload(ctx, nil, rec, blockDir, m))
			got, err := block.ReadMetaFromBucket(ctx, fs, m.ULID)
			require.NoError(t, err)
			require.Equal(t, m.ULID, got.ULID)
		})
	}
}
