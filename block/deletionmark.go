package block

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/objstore"
)

// DeletionMarkFilename is the object, inside a block's directory, that marks the
// block for deletion. The compactor writes it when it has replaced the block, and
// deletes the block once the mark is old enough that no reader still serves it.
const DeletionMarkFilename = "deletion-mark.json"

// DeletionMarkVersion1 is the only version of deletion-mark.json in use.
const DeletionMarkVersion1 = 1

// ErrInvalidDeletionMark is wrapped by every error about a deletion-mark.json that
// does not decode or does not describe its block. Classify it with errors.Is.
var ErrInvalidDeletionMark = errors.New("invalid deletion mark")

// DeletionMark is the content of deletion-mark.json, in Thanos' format, so either
// system honours the other's marks in a shared bucket.
type DeletionMark struct {
	// ID is the block the mark belongs to.
	ID ulid.ULID `json:"id"`
	// DeletionTime is when the block was marked, in Unix seconds.
	DeletionTime int64 `json:"deletion_time"`
	// Version is the format version, DeletionMarkVersion1.
	Version int `json:"version"`
	// Details says why the block was marked; optional.
	Details string `json:"details,omitempty"`
}

// ParseDeletionMark decodes the content of the deletion-mark.json of block id. It
// returns an error wrapping ErrInvalidDeletionMark if b does not decode, has another
// version, or names another block.
func ParseDeletionMark(b []byte, id ulid.ULID) (*DeletionMark, error) {
	var m DeletionMark
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: block %s: decode: %w", ErrInvalidDeletionMark, id, err)
	}
	if m.Version != DeletionMarkVersion1 {
		return nil, fmt.Errorf("%w: block %s: unexpected version %d", ErrInvalidDeletionMark, id, m.Version)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: block %s: mark names block %s", ErrInvalidDeletionMark, id, m.ID)
	}
	return &m, nil
}

// ReadDeletionMark reads the deletion mark of block id from bkt. A block without a
// mark yields an error matching objstore.ErrNotFound.
func ReadDeletionMark(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*DeletionMark, error) {
	b, err := readObject(ctx, bkt, path.Join(id.String(), DeletionMarkFilename))
	if err != nil {
		return nil, err
	}
	return ParseDeletionMark(b, id)
}

// WriteDeletionMark marks block id in bkt for deletion as of deletionTime, which is
// stored with a resolution of seconds. details is optional. An existing mark is
// replaced.
func WriteDeletionMark(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, deletionTime time.Time, details string) error {
	return writeMark(ctx, bkt, id, DeletionMarkFilename, DeletionMark{
		ID:           id,
		DeletionTime: deletionTime.Unix(),
		Version:      DeletionMarkVersion1,
		Details:      details,
	})
}
