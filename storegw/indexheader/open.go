package indexheader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/objstore"
)

// Option changes how Open behaves.
type Option func(*options)

type options struct {
	logger    *slog.Logger
	onRebuild func(id ulid.ULID, reason error)
}

// WithLogger makes Open log rebuilds of bad header files to logger.
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// WithRebuildHook makes Open call f, before rebuilding, whenever the local header
// file of block id is missing or unusable; reason says why. A caller counts
// rebuilds with it. f is called on Open's goroutine.
func WithRebuildHook(f func(id ulid.ULID, reason error)) Option {
	return func(o *options) { o.onRebuild = f }
}

// Open returns the index header of block id from dir/<id>/index-header. If that
// file is missing, truncated, fails its checksum or describes another block, Open
// builds it again from bkt, logging the reason when it is not simply missing.
func Open(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID, dir string, opts ...Option) (*Header, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	h, reason := load(filepath.Join(dir, id.String(), Filename), id)
	if reason == nil {
		return h, nil
	}
	if errors.Is(reason, os.ErrNotExist) {
		o.logger.Debug("building index header", "block", id)
	} else if errors.Is(reason, ErrCorruptHeader) {
		o.logger.Warn("rebuilding corrupt index header", "block", id, "err", reason)
	} else {
		// Not a corrupt file but an I/O problem; building again may still work.
		o.logger.Warn("rebuilding unreadable index header", "block", id, "err", reason)
	}
	if o.onRebuild != nil {
		o.onRebuild(id, reason)
	}
	return build(ctx, bkt, id, dir)
}

// load reads and parses a header file. Any error is a reason to rebuild it; a
// malformed file gives an error matching ErrCorruptHeader.
func load(p string, id ulid.ULID) (*Header, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	c, err := decodeFile(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if c.id != id {
		return nil, fmt.Errorf("read %s: %w: it describes block %s", p, ErrCorruptHeader, c.id)
	}
	h, err := newHeader(c)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", p, ErrCorruptHeader, err)
	}
	return h, nil
}
