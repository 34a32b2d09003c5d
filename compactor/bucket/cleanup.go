package bucket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// Defaults of CleanupConfig, as in Thanos: readers stop serving a marked block
// after half the delete delay, so the other half is the margin for readers
// that synced late.
const (
	// DefaultDeleteDelay is how long a block stays in the bucket after it was
	// marked for deletion.
	DefaultDeleteDelay = 48 * time.Hour
	// DefaultPartialUploadAge is how long a block directory without meta.json
	// may go unmodified before it is taken for an abandoned upload.
	DefaultPartialUploadAge = 48 * time.Hour
)

// CleanupConfig says what Cleanup deletes.
type CleanupConfig struct {
	// DeleteDelay is the least age of a deletion mark, measured from the
	// mark's deletion_time, before its block is deleted. Zero deletes every
	// marked block at once.
	DeleteDelay time.Duration
	// PartialUploadAge is the least age of the newest object of a block
	// directory without meta.json before the directory is deleted as an
	// abandoned upload. It must exceed the longest time an upload can take;
	// zero means DefaultPartialUploadAge.
	PartialUploadAge time.Duration
	// Now is the time ages are measured against; zero means time.Now().
	Now time.Time
}

// Validate reports whether the configuration can be used.
func (c CleanupConfig) Validate() error {
	if c.DeleteDelay < 0 {
		return fmt.Errorf("delete delay %s is negative", c.DeleteDelay)
	}
	if c.PartialUploadAge < 0 {
		return fmt.Errorf("partial upload age %s is negative", c.PartialUploadAge)
	}
	return nil
}

// CleanupStats counts what one Cleanup run did.
type CleanupStats struct {
	// Blocks is the number of ULID directories looked at.
	Blocks int
	// Deleted is the number of blocks deleted because their deletion mark was
	// older than the delete delay.
	Deleted int
	// PartialDeleted is the number of partial uploads deleted.
	PartialDeleted int
	// InterruptedDeleted is the number of blocks whose earlier deletion had
	// been interrupted (a deletion mark but no meta.json) and was finished.
	InterruptedDeleted int
}

// Cleanup deletes from bkt, with block.Delete, every block whose deletion mark
// is at least cfg.DeleteDelay old; every block directory without meta.json
// that still holds a valid deletion mark, which is a deletion interrupted
// after meta.json was removed, whatever its age; and every other block
// directory without meta.json whose newest object is at least
// cfg.PartialUploadAge old, which is an abandoned upload.
//
// Only top-level entries named by a ULID are considered. A block whose
// deletion mark does not decode is left alone (and reported in the log) as
// long as it has meta.json. An error on one block does not stop the others;
// the errors are joined. The stats count what was deleted even when an error
// is returned. logger may be nil.
func Cleanup(ctx context.Context, logger *slog.Logger, bkt objstore.Bucket, cfg CleanupConfig) (CleanupStats, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var stats CleanupStats
	if err := cfg.Validate(); err != nil {
		return stats, fmt.Errorf("cleanup: %w", err)
	}
	if cfg.PartialUploadAge == 0 {
		cfg.PartialUploadAge = DefaultPartialUploadAge
	}
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	ids, err := block.ListIDs(ctx, bkt)
	if err != nil {
		return stats, fmt.Errorf("cleanup: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		stats.Blocks++
		if err := cleanupBlock(ctx, logger, bkt, id, cfg, now, &stats); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return stats, fmt.Errorf("cleanup: %w", err)
	}
	return stats, nil
}

func cleanupBlock(ctx context.Context, logger *slog.Logger, bkt objstore.Bucket, id ulid.ULID, cfg CleanupConfig, now time.Time, stats *CleanupStats) error {
	hasMeta, err := bkt.Exists(ctx, path.Join(id.String(), block.MetaFilename))
	if err != nil {
		return fmt.Errorf("block %s: check meta.json: %w", id, err)
	}
	mark, err := block.ReadDeletionMark(ctx, bkt, id)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		mark = nil
	case errors.Is(err, block.ErrInvalidDeletionMark):
		logger.Warn("ignoring invalid deletion mark", "block", id, "err", err)
		mark = nil
	case err != nil:
		return fmt.Errorf("block %s: read deletion mark: %w", id, err)
	}

	switch {
	case mark != nil && now.Sub(time.Unix(mark.DeletionTime, 0)) >= cfg.DeleteDelay:
		if err := block.Delete(ctx, logger, bkt, id); err != nil {
			return err
		}
		stats.Deleted++
		logger.Info("deleted block marked for deletion", "block", id, "marked", time.Unix(mark.DeletionTime, 0).UTC())
	case mark != nil && !hasMeta:
		// Delete removes meta.json first and the mark last: this is a delete
		// that stopped half-way, and nobody reads the block any more.
		if err := block.Delete(ctx, logger, bkt, id); err != nil {
			return err
		}
		stats.InterruptedDeleted++
		logger.Info("finished interrupted deletion of block", "block", id)
	case !hasMeta:
		newest, n, err := newestObject(ctx, bkt, id)
		if err != nil {
			return err
		}
		if n == 0 || now.Sub(newest) < cfg.PartialUploadAge {
			return nil
		}
		if err := block.Delete(ctx, logger, bkt, id); err != nil {
			return err
		}
		stats.PartialDeleted++
		logger.Info("deleted partial upload", "block", id, "last_modified", newest.UTC())
	}
	return nil
}

// newestObject returns the latest modification time among the objects of block
// id, and how many objects there are.
func newestObject(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (time.Time, int, error) {
	var (
		newest time.Time
		n      int
	)
	err := bkt.Iter(ctx, id.String()+objstore.DirDelim, func(name string) error {
		if strings.HasSuffix(name, objstore.DirDelim) {
			return nil
		}
		attrs, err := bkt.Attributes(ctx, name)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("attributes of %s: %w", name, err)
		}
		n++
		if attrs.LastModified.After(newest) {
			newest = attrs.LastModified
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("block %s: list files: %w", id, err)
	}
	return newest, n, nil
}
