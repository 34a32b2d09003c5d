package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// registerUpload registers `tools bucket upload`: a backfill of Prometheus
// TSDB blocks, such as `promtool tsdb create-blocks-from` writes, into the
// bucket with the external labels strata's readers and compactor group by.
func (c *bucketConfig) registerUpload(cmd *kingpin.CmdClause) {
	var labelFlags, dirs []string
	up := cmd.Command("upload", "Upload Prometheus TSDB blocks (such as promtool tsdb create-blocks-from writes) to the bucket with the given external labels, for the store gateways to serve and the compactor to compact and downsample: a backfill. Blocks already in the bucket are skipped.")
	up.Flag("label", `External label name="value" of the uploaded blocks, such as tenant_id="default-tenant" to add them to that tenant's data. Repeatable; at least one.`).
		Required().PlaceHolder(`name="value"`).StringsVar(&labelFlags)
	up.Arg("dir", "A block directory (named after its ULID), or a directory of blocks such as a Prometheus data directory. Repeatable.").
		Required().StringsVar(&dirs)
	c.runs[up.FullCommand()] = func(ctx context.Context, bkt objstore.Bucket, logger *slog.Logger, out io.Writer) error {
		lbls, err := parseLabels(labelFlags)
		if err != nil {
			return err
		}
		ext := lbls.Map()
		blocks, err := findBlockDirs(dirs)
		if err != nil {
			return err
		}
		for _, dir := range blocks {
			meta, err := block.ReadMetaFromDir(dir)
			if err != nil {
				return err
			}
			done, err := bkt.Exists(ctx, path.Join(meta.ULID.String(), block.MetaFilename))
			if err != nil {
				return fmt.Errorf("check block %s: %w", meta.ULID, err)
			}
			if done {
				fmt.Fprintf(out, "%s already in the bucket, skipped\n", meta.ULID)
				continue
			}
			if meta.Thanos.Source == "" {
				meta.Thanos.Source = block.SourceBucketUpload
			}
			meta.Thanos.Labels = ext
			if err := block.Upload(ctx, logger, bkt, dir, meta); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s uploaded: %s to %s, %d series, %d samples\n", meta.ULID,
				time.UnixMilli(meta.MinTime).UTC().Format(time.RFC3339), time.UnixMilli(meta.MaxTime).UTC().Format(time.RFC3339), meta.Stats.NumSeries, meta.Stats.NumSamples)
		}
		return nil
	}
}

// findBlockDirs returns the block directories among dirs and their
// immediate subdirectories, sorted: a directory named after a ULID that
// holds a meta.json.
func findBlockDirs(dirs []string) ([]string, error) {
	isBlock := func(dir string) bool {
		if _, err := ulid.ParseStrict(filepath.Base(dir)); err != nil {
			return false
		}
		_, err := os.Stat(filepath.Join(dir, block.MetaFilename))
		return err == nil
	}
	var out []string
	for _, d := range dirs {
		if isBlock(d) {
			out = append(out, d)
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("read block directory: %w", err)
		}
		n := len(out)
		for _, e := range entries {
			if sub := filepath.Join(d, e.Name()); e.IsDir() && isBlock(sub) {
				out = append(out, sub)
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: %w", d, errNoBlocks)
		}
	}
	sort.Strings(out)
	return out, nil
}

// errNoBlocks is returned by `tools bucket upload` for a directory that is
// neither a block nor holds any.
var errNoBlocks = errors.New("neither a block directory nor a directory of blocks")
