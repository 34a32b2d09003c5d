package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/objstore"
)

// Errors returned by Upload. Classify them with errors.Is.
var (
	// ErrNoExternalLabels means a block was about to be uploaded without external
	// labels. Such a block cannot be told apart from other sources' blocks in the
	// bucket, so the compactor could not group it correctly; it is refused.
	ErrNoExternalLabels = errors.New("block has no external labels")
	// ErrNotBlockDir means a local directory does not hold the block it should:
	// its name is not the block's ULID, or the index or chunks are missing.
	ErrNotBlockDir = errors.New("not a block directory")
)

// Upload uploads the block in blockDir to bkt under "<ULID>/": every file of
// chunks/ in name order, then index, then meta.json last as the commit marker.
//
// The meta.json uploaded is meta, not the file in blockDir, with Thanos.Version set
// to ThanosVersion1, Thanos.Files listing the chunk files and the index with their
// sizes, and Thanos.UploadTime set; meta itself is not modified. meta must be valid,
// describe the block in blockDir (whose name must be its ULID) and carry at least one
// external label.
//
// If Upload fails, meta.json has not been uploaded, so the bucket holds at most a
// partial block, which readers ignore. Uploading the same block again replaces the
// partial one. Upload stops early when ctx is done. logger may be nil.
func Upload(ctx context.Context, logger *slog.Logger, bkt objstore.Bucket, blockDir string, meta *Meta) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if meta == nil {
		return fmt.Errorf("upload block from %s: %w: no meta", blockDir, ErrInvalidMeta)
	}
	id := meta.ULID
	if err := meta.Validate(); err != nil {
		return fmt.Errorf("upload block %s: %w", id, err)
	}
	if len(meta.Thanos.Labels) == 0 {
		return fmt.Errorf("upload block %s: %w", id, ErrNoExternalLabels)
	}
	if dirID, err := ulid.ParseStrict(filepath.Base(blockDir)); err != nil || dirID != id {
		return fmt.Errorf("upload block %s: %w: directory %s is not named after the block", id, ErrNotBlockDir, blockDir)
	}

	files, err := blockFiles(blockDir)
	if err != nil {
		return fmt.Errorf("upload block %s: %w", id, err)
	}

	start := time.Now()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("upload block %s: %w", id, err)
		}
		if err := uploadFile(ctx, bkt, filepath.Join(blockDir, filepath.FromSlash(f.RelPath)), path.Join(id.String(), f.RelPath)); err != nil {
			return fmt.Errorf("upload block %s: %w", id, err)
		}
	}

	// meta.json goes last: once it is in the bucket, the block is complete.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("upload block %s: %w", id, err)
	}
	out := *meta
	out.Thanos.Version = ThanosVersion1
	out.Thanos.Files = files
	out.Thanos.UploadTime = time.Now().UTC()
	b, err := out.Marshal()
	if err != nil {
		return fmt.Errorf("upload block %s: %w", id, err)
	}
	name := path.Join(id.String(), MetaFilename)
	if err := bkt.Upload(ctx, name, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("upload block %s: upload %s: %w", id, name, err)
	}
	logger.Debug("uploaded block", "block", id, "files", len(files)+1, "duration", time.Since(start))
	return nil
}

// blockFiles lists the files of the block in dir that go to the bucket, in upload
// order: chunk segment files sorted by name, then the index. As in Thanos, the
// tombstones file is not uploaded: a block in the bucket carries no deletions.
func blockFiles(dir string) ([]File, error) {
	chunksDir := filepath.Join(dir, ChunksDirname)
	entries, err := os.ReadDir(chunksDir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s directory", ErrNotBlockDir, dir, ChunksDirname)
	}
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	files := make([]File, 0, len(entries)+1)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("stat chunk file %s: %w", e.Name(), err)
		}
		files = append(files, File{RelPath: path.Join(ChunksDirname, e.Name()), SizeBytes: info.Size()})
	}

	info, err := os.Stat(filepath.Join(dir, IndexFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNotBlockDir, dir, IndexFilename)
	}
	if err != nil {
		return nil, fmt.Errorf("stat index: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotBlockDir, filepath.Join(dir, IndexFilename))
	}
	return append(files, File{RelPath: IndexFilename, SizeBytes: info.Size()}), nil
}

// uploadFile uploads the local file src as the object name.
func uploadFile(ctx context.Context, bkt objstore.Bucket, src, name string) (err error) {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer func() {
		// The file is only read; a close error cannot lose data, but report it
		// rather than hide it when nothing else went wrong.
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", src, cerr)
		}
	}()
	if err := bkt.Upload(ctx, name, f); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}
