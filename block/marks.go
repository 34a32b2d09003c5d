package block

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/objstore"
)

// Resolutions of a block's samples, as stored in thanos.downsample.resolution, in
// milliseconds.
const (
	// ResolutionRaw marks a block of samples as they were written.
	ResolutionRaw int64 = 0
	// Resolution5m marks a block downsampled to one aggregate per 5 minutes.
	Resolution5m int64 = 5 * 60 * 1000
	// Resolution1h marks a block downsampled to one aggregate per hour.
	Resolution1h int64 = 60 * 60 * 1000
)

// AggregateLabel is the reserved label that tells the aggregate series of a
// downsampled block apart. A downsampled block is a standard Prometheus block:
// each raw series S becomes up to five series, S plus AggregateLabel set to one of
// the Aggregate* values, each holding one sample per resolution window. Tools
// that know nothing of downsampling (promtool tsdb dump, a Prometheus opening the
// block) read them as ordinary series.
const AggregateLabel = "__aggregate__"

// Values of AggregateLabel.
const (
	// AggregateCount is the number of raw samples in the window.
	AggregateCount = "count"
	// AggregateSum is the sum of the raw samples in the window.
	AggregateSum = "sum"
	// AggregateMin is the smallest raw sample in the window.
	AggregateMin = "min"
	// AggregateMax is the largest raw sample in the window.
	AggregateMax = "max"
	// AggregateCounter is the series read as a counter with its resets applied,
	// at the end of the window; rate and increase read it.
	AggregateCounter = "counter"
)

// Marker files that change how the compactor treats a block, in Thanos' format so
// either system honours the other's marks in a shared bucket.
const (
	// NoCompactMarkFilename excludes a block from compaction.
	NoCompactMarkFilename = "no-compact-mark.json"
	// NoDownsampleMarkFilename excludes a block from downsampling.
	NoDownsampleMarkFilename = "no-downsample-mark.json"
	// MarkVersion1 is the only version of the no-compact and no-downsample marks.
	MarkVersion1 = 1
)

// Reasons stored in a no-compact or no-downsample mark.
const (
	// ReasonManual marks a block by an operator's hand.
	ReasonManual = "manual"
	// ReasonOutOfOrderChunks marks a block whose index has chunks out of order.
	ReasonOutOfOrderChunks = "block-index-out-of-order-chunk"
	// ReasonDownsampleVerticalCompaction marks a downsampled block that overlaps
	// another; downsampled blocks are never merged vertically.
	ReasonDownsampleVerticalCompaction = "downsample-vertical-compaction"
)

// ErrInvalidMark is wrapped by every error about a no-compact or no-downsample
// mark that does not decode or does not describe its block.
var ErrInvalidMark = errors.New("invalid block mark")

// NoCompactMark is the content of no-compact-mark.json.
type NoCompactMark struct {
	// ID is the block the mark belongs to.
	ID ulid.ULID `json:"id"`
	// Version is the format version, MarkVersion1.
	Version int `json:"version"`
	// Details says why the block was marked; optional.
	Details string `json:"details,omitempty"`
	// NoCompactTime is when the block was marked, in Unix seconds.
	NoCompactTime int64 `json:"no_compact_time"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
}

// NoDownsampleMark is the content of no-downsample-mark.json.
type NoDownsampleMark struct {
	// ID is the block the mark belongs to.
	ID ulid.ULID `json:"id"`
	// Version is the format version, MarkVersion1.
	Version int `json:"version"`
	// Details says why the block was marked; optional.
	Details string `json:"details,omitempty"`
	// NoDownsampleTime is when the block was marked, in Unix seconds.
	NoDownsampleTime int64 `json:"no_downsample_time"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
}

// WriteNoCompactMark excludes block id from compaction. An existing mark is replaced.
func WriteNoCompactMark(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, at time.Time, reason, details string) error {
	return writeMark(ctx, bkt, id, NoCompactMarkFilename, NoCompactMark{
		ID: id, Version: MarkVersion1, Details: details, NoCompactTime: at.Unix(), Reason: reason,
	})
}

// WriteNoDownsampleMark excludes block id from downsampling. An existing mark is
// replaced.
func WriteNoDownsampleMark(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, at time.Time, reason, details string) error {
	return writeMark(ctx, bkt, id, NoDownsampleMarkFilename, NoDownsampleMark{
		ID: id, Version: MarkVersion1, Details: details, NoDownsampleTime: at.Unix(), Reason: reason,
	})
}

// ReadNoCompactMark reads the no-compact mark of block id. A block without one
// yields an error matching objstore.ErrNotFound.
func ReadNoCompactMark(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*NoCompactMark, error) {
	var m NoCompactMark
	if err := readMark(ctx, bkt, id, NoCompactMarkFilename, &m, func() (ulid.ULID, int) { return m.ID, m.Version }); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadNoDownsampleMark reads the no-downsample mark of block id. A block without
// one yields an error matching objstore.ErrNotFound.
func ReadNoDownsampleMark(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*NoDownsampleMark, error) {
	var m NoDownsampleMark
	if err := readMark(ctx, bkt, id, NoDownsampleMarkFilename, &m, func() (ulid.ULID, int) { return m.ID, m.Version }); err != nil {
		return nil, err
	}
	return &m, nil
}

func writeMark(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, file string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("encode %s of block %s: %w", file, id, err)
	}
	name := path.Join(id.String(), file)
	if err := bkt.Upload(ctx, name, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func readMark(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID, file string, v any, idVersion func() (ulid.ULID, int)) error {
	b, err := readObject(ctx, bkt, path.Join(id.String(), file))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s of block %s: decode: %w", ErrInvalidMark, file, id, err)
	}
	markID, version := idVersion()
	if version != MarkVersion1 {
		return fmt.Errorf("%w: %s of block %s: unexpected version %d", ErrInvalidMark, file, id, version)
	}
	if markID != id {
		return fmt.Errorf("%w: %s of block %s names block %s", ErrInvalidMark, file, id, markID)
	}
	return nil
}

// Delete removes block id from bkt in the order that keeps every reader safe:
// meta.json first, so the block turns into a partial upload that nobody reads,
// then every other file, and the deletion mark last, so a Delete interrupted
// half-way is finished by the next one. Deleting a block that is already gone is
// not an error. logger may be nil.
func Delete(ctx context.Context, logger *slog.Logger, bkt objstore.Bucket, id ulid.ULID) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := id.String() + "/"
	if err := deleteIfExists(ctx, bkt, path.Join(id.String(), MetaFilename)); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	var names []string
	if err := bkt.Iter(ctx, dir, func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return fmt.Errorf("delete block %s: list files: %w", id, err)
	}
	mark := path.Join(id.String(), DeletionMarkFilename)
	for _, name := range names {
		if name == mark || strings.HasSuffix(name, "/") {
			continue
		}
		if err := deleteIfExists(ctx, bkt, name); err != nil {
			return fmt.Errorf("delete block %s: %w", id, err)
		}
	}
	if err := deleteIfExists(ctx, bkt, mark); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	logger.Debug("deleted block", "block", id, "files", len(names))
	return nil
}

func deleteIfExists(ctx context.Context, bkt objstore.Bucket, name string) error {
	if err := bkt.Delete(ctx, name); err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}
