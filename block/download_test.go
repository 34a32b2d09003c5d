package block_test

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

func TestDownloadReproducesBlock(t *testing.T) {
	ctx := context.Background()
	blockDir, m := newBlock(t)
	fs, _ := newBucket(t)
	require.NoError(t, block.Upload(ctx, nil, fs, blockDir, m))

	dst := t.TempDir()
	require.NoError(t, block.Download(ctx, nil, fs, m.ULID, dst))
	got := filepath.Join(dst, m.ULID.String())

	for _, rel := range []string{"chunks/000001", "index"} {
		want, err := os.ReadFile(filepath.Join(blockDir, filepath.FromSlash(rel)))
		require.NoError(t, err)
		have, err := os.ReadFile(filepath.Join(got, filepath.FromSlash(rel)))
		require.NoError(t, err)
		require.Equal(t, want, have, rel)
	}

	// meta.json is the bucket's, byte for byte.
	rc, err := fs.Get(ctx, path.Join(m.ULID.String(), block.MetaFilename))
	require.NoError(t, err)
	raw, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	localMeta, err := os.ReadFile(filepath.Join(got, block.MetaFilename))
	require.NoError(t, err)
	require.Equal(t, raw, localMeta)

	// Prometheus opens the downloaded block and reads the same samples.
	want := blocktest.Samples(t, blockDir)
	require.Len(t, want, 3)
	require.Equal(t, want, blocktest.Samples(t, got))

	// Downloading over an existing copy works too.
	require.NoError(t, block.Download(ctx, nil, fs, m.ULID, dst))
	require.Equal(t, want, blocktest.Samples(t, got))
}

func TestDownloadFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, bkt objstore.Bucket, id string)
		wantErr error
		wantMsg string
	}{
		{
			name: "no block",
			corrupt: func(t *testing.T, bkt objstore.Bucket, id string) {
				require.NoError(t, bkt.Delete(ctx, id+"/meta.json"))
			},
			wantErr: objstore.ErrNotFound,
		},
		{
			name:    "no index",
			corrupt: func(t *testing.T, bkt objstore.Bucket, id string) { require.NoError(t, bkt.Delete(ctx, id+"/index")) },
			wantErr: objstore.ErrNotFound,
		},
		{
			name: "chunk file missing",
			corrupt: func(t *testing.T, bkt objstore.Bucket, id string) {
				require.NoError(t, bkt.Delete(ctx, id+"/chunks/000001"))
			},
			wantMsg: "chunks/000001 is listed in meta.json but missing",
		},
		{
			name: "chunk file truncated",
			corrupt: func(t *testing.T, bkt objstore.Bucket, id string) {
				require.NoError(t, bkt.Upload(ctx, id+"/chunks/000001", strings.NewReader("short")))
			},
			wantMsg: "chunks/000001 has 5 bytes",
		},
		{
			name: "corrupt meta",
			corrupt: func(t *testing.T, bkt objstore.Bucket, id string) {
				require.NoError(t, bkt.Upload(ctx, id+"/meta.json", strings.NewReader("{")))
			},
			wantErr: block.ErrInvalidMeta,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blockDir, m := newBlock(t)
			fs, _ := newBucket(t)
			require.NoError(t, block.Upload(ctx, nil, fs, blockDir, m))
			tc.corrupt(t, fs, m.ULID.String())

			dst := t.TempDir()
			err := block.Download(ctx, nil, fs, m.ULID, dst)
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			if tc.wantMsg != "" {
				require.ErrorContains(t, err, tc.wantMsg)
			}
			// A failed download never leaves a meta.json that would make it look complete.
			_, err = os.Stat(filepath.Join(dst, m.ULID.String(), block.MetaFilename))
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}

	t.Run("canceled context", func(t *testing.T) {
		blockDir, m := newBlock(t)
		fs, _ := newBucket(t)
		require.NoError(t, block.Upload(ctx, nil, fs, blockDir, m))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, block.Download(cctx, nil, fs, m.ULID, t.TempDir()), context.Canceled)
	})
}
