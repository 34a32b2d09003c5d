package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb/fileutil"

	"github.com/stratametrics/strata/objstore"
)

// Download copies block id from bkt into the directory dst/<ULID>, which it creates
// if needed: meta.json is read and validated first, then the index and every chunk
// file are downloaded, and meta.json is written last. A block without meta.json in
// the bucket yields an error matching objstore.ErrNotFound.
//
// When meta.json lists the block's files, each must have been downloaded with the
// listed size. If Download fails, dst/<ULID> may hold some files but no meta.json,
// so it is not mistaken for a complete block; the caller removes it. Download
// stops early when ctx is done. logger may be nil.
func Download(ctx context.Context, logger *slog.Logger, bkt objstore.BucketReader, id ulid.ULID, dst string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()

	// Keep meta.json's bytes as they are, so fields this package does not model
	// survive the copy.
	metaName := path.Join(id.String(), MetaFilename)
	rawMeta, err := readObject(ctx, bkt, metaName)
	if err != nil {
		return fmt.Errorf("download block %s: %w", id, err)
	}
	meta, err := ReadMeta(bytes.NewReader(rawMeta))
	if err != nil {
		return fmt.Errorf("download block %s: %w", id, err)
	}
	if meta.ULID != id {
		return fmt.Errorf("download block %s: %w: meta.json describes block %s", id, ErrInvalidMeta, meta.ULID)
	}

	dir := filepath.Join(dst, id.String())
	if err := os.MkdirAll(filepath.Join(dir, ChunksDirname), 0o755); err != nil {
		return fmt.Errorf("download block %s: create directory: %w", id, err)
	}
	// A meta.json left by an earlier download would vouch for files about to be
	// overwritten; it comes back only once they are all in place.
	if err := os.Remove(filepath.Join(dir, MetaFilename)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("download block %s: remove old meta.json: %w", id, err)
	}

	var names []string
	chunksPrefix := path.Join(id.String(), ChunksDirname) + objstore.DirDelim
	err = bkt.Iter(ctx, chunksPrefix, func(name string) error {
		if !strings.HasSuffix(name, objstore.DirDelim) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("download block %s: list chunks: %w", id, err)
	}
	names = append(names, path.Join(id.String(), IndexFilename))

	sizes := make(map[string]int64, len(names))
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("download block %s: %w", id, err)
		}
		rel := strings.TrimPrefix(name, id.String()+objstore.DirDelim)
		n, err := downloadFile(ctx, bkt, name, filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("download block %s: %w", id, err)
		}
		sizes[rel] = n
	}
	if err := SyncDir(filepath.Join(dir, ChunksDirname)); err != nil {
		return fmt.Errorf("download block %s: %w", id, err)
	}

	for _, f := range meta.Thanos.Files {
		if f.RelPath == MetaFilename {
			continue
		}
		n, ok := sizes[f.RelPath]
		if !ok {
			return fmt.Errorf("download block %s: %s is listed in meta.json but missing in the bucket", id, f.RelPath)
		}
		if f.SizeBytes > 0 && n != f.SizeBytes {
			return fmt.Errorf("download block %s: %s has %d bytes, meta.json says %d", id, f.RelPath, n, f.SizeBytes)
		}
	}

	if err := WriteFileAtomic(logger, filepath.Join(dir, MetaFilename), rawMeta); err != nil {
		return fmt.Errorf("download block %s: %w", id, err)
	}
	logger.Debug("downloaded block", "block", id, "files", len(names)+1, "duration", time.Since(start))
	return nil
}

// readObject returns the whole content of a small object.
func readObject(ctx context.Context, bkt objstore.BucketReader, name string) (_ []byte, err error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
	}()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// downloadFile copies the object name into the local file dst, syncs it and returns
// its size.
func downloadFile(ctx context.Context, bkt objstore.BucketReader, name, dst string) (_ int64, err error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
	}()
	f, err := os.Create(dst)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: rc})
	if err != nil {
		return 0, errors.Join(fmt.Errorf("download %s: %w", name, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return 0, errors.Join(fmt.Errorf("sync %s: %w", dst, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", dst, err)
	}
	return n, nil
}

// SyncDir persists the entries of dir, so that files created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy once its context is done, whatever the bucket's reader does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
