package bucket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// Errors of Mark. Classify them with errors.Is.
var (
	// ErrUnknownMarker means the mark named is none of block.DeletionMarkFilename,
	// block.NoCompactMarkFilename and block.NoDownsampleMarkFilename.
	ErrUnknownMarker = errors.New("unknown marker")
	// ErrBlockNotFound means a block to be marked has no meta.json in the
	// bucket.
	ErrBlockNotFound = errors.New("block not found")
)

// Markers lists the mark files Mark can write.
func Markers() []string { return append([]string(nil), markerFiles...) }

// Mark writes the mark stored in the file named marker (block.DeletionMarkFilename,
// block.NoCompactMarkFilename or block.NoDownsampleMarkFilename) for every block
// of ids, dated at, with the given details; no-compact and no-downsample marks
// carry block.ReasonManual. Every block must exist (have a meta.json) and is
// checked before any mark is written, so a typo in one ID marks nothing. An
// existing mark of the same kind is replaced. logger may be nil.
func Mark(ctx context.Context, logger *slog.Logger, bkt objstore.Bucket, ids []ulid.ULID, marker, details string, at time.Time) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var write func(id ulid.ULID) error
	switch marker {
	case block.DeletionMarkFilename:
		write = func(id ulid.ULID) error { return block.WriteDeletionMark(ctx, bkt, id, at, details) }
	case block.NoCompactMarkFilename:
		write = func(id ulid.ULID) error {
			return block.WriteNoCompactMark(ctx, bkt, id, at, block.ReasonManual, details)
		}
	case block.NoDownsampleMarkFilename:
		write = func(id ulid.ULID) error {
			return block.WriteNoDownsampleMark(ctx, bkt, id, at, block.ReasonManual, details)
		}
	default:
		return fmt.Errorf("mark blocks: %w %q; want one of %v", ErrUnknownMarker, marker, markerFiles)
	}
	if len(ids) == 0 {
		return errors.New("mark blocks: no block given")
	}
	for _, id := range ids {
		ok, err := bkt.Exists(ctx, path.Join(id.String(), block.MetaFilename))
		if err != nil {
			return fmt.Errorf("mark block %s: check meta.json: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("mark block %s: %w", id, ErrBlockNotFound)
		}
	}
	for _, id := range ids {
		if err := write(id); err != nil {
			return fmt.Errorf("mark block %s: %w", id, err)
		}
		logger.Info("marked block", "block", id, "marker", marker)
	}
	return nil
}
