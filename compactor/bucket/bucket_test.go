package bucket

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

const hour = int64(time.Hour / time.Millisecond)

// newBucket returns a filesystem bucket and its root directory.
func newBucket(t *testing.T) (*objstore.Filesystem, string) {
	t.Helper()
	dir := t.TempDir()
	bkt, err := objstore.NewFilesystem(dir)
	require.NoError(t, err)
	return bkt, dir
}

// uploadBlock writes a real block covering [mint, maxt) with the given external
// labels and resolution, uploads it to bkt and returns its meta as uploaded.
func uploadBlock(t *testing.T, bkt objstore.Bucket, mint, maxt int64, lbls map[string]string, resolution int64) *block.Meta {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	id := blocktest.Create(t, dir, mint, maxt, 3)
	meta, err := block.ReadMetaFromDir(filepath.Join(dir, id.String()))
	require.NoError(t, err)
	// Prometheus ends the range one millisecond after the last sample; blocks
	// cut by a head cover whole aligned ranges, so make this one do as well.
	meta.MinTime, meta.MaxTime = mint, maxt
	meta.Thanos.Labels = lbls
	meta.Thanos.Downsample.Resolution = resolution
	meta.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(ctx, nil, bkt, filepath.Join(dir, id.String()), meta))
	got, err := block.ReadMetaFromBucket(ctx, bkt, id)
	require.NoError(t, err)
	return got
}

// setMtime sets the modification time of every file under root/dir.
func setMtime(t *testing.T, root, dir string, mtime time.Time) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	}))
}

func objects(t *testing.T, bkt objstore.BucketReader, dir string) []string {
	t.Helper()
	var names []string
	require.NoError(t, bkt.Iter(context.Background(), dir, func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()))
	return names
}

func exists(t *testing.T, bkt objstore.BucketReader, id ulid.ULID, file string) bool {
	t.Helper()
	ok, err := bkt.Exists(context.Background(), path.Join(id.String(), file))
	require.NoError(t, err)
	return ok
}
