// Package downsample turns a block into a block of coarser resolution.
package downsample

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stratametrics/strata/block"
)

// Downsample reads the block in srcDir (raw, or already downsampled to a finer
// resolution) and writes a block of the given resolution into dstDir/<ULID>,
// meta.json included. It returns the new block's meta.
func Downsample(ctx context.Context, logger *slog.Logger, srcDir string, resolution int64, dstDir string) (*block.Meta, error) {
	return nil, errors.New("downsample: being written")
}
