package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/bucket"
	"github.com/stratametrics/strata/objstore"
)

// errVerifyIssues is returned by `tools bucket verify` when it found issues,
// so the process exits non-zero after printing them.
var errVerifyIssues = errors.New("bucket verification found issues")

// Output formats of the bucket tools.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// bucketConfig holds the flags of the `tools bucket` subcommands, and which
// subcommand runs for each full command name.
type bucketConfig struct {
	objstore *objstoreFlags
	runs     map[string]func(ctx context.Context, bkt objstore.Bucket, logger *slog.Logger, out io.Writer) error

	lsOutput, inspectOutput     string
	lsSelector, inspectSelector []string

	verifyOutput      string
	replicaLabels     []string
	skipIndex         bool
	verifyChunks      bool
	verifyConcurrency int

	markIDs     []string
	marker      string
	markDetails string

	deleteDelay      model.Duration
	partialUploadAge model.Duration
}

// registerBucket registers `bucket` and its subcommands (ls, inspect, verify,
// mark, cleanup) under tools.
func registerBucket(tools *kingpin.CmdClause) *bucketConfig {
	cmd := tools.Command("bucket", "Inspect, verify and repair the blocks of an object storage bucket.")
	c := &bucketConfig{
		objstore: registerObjstoreFlags(cmd),
		runs:     map[string]func(context.Context, objstore.Bucket, *slog.Logger, io.Writer) error{},
	}
	output := func(cl *kingpin.CmdClause, v *string) {
		cl.Flag("output", "Output format: table or json.").Default(outputTable).EnumVar(v, outputTable, outputJSON)
	}
	selector := func(cl *kingpin.CmdClause, v *[]string) {
		cl.Flag("selector", `Only show blocks with this external label, as name=value or name="value". Repeatable: all must match.`).
			PlaceHolder("<name>=<value>").StringsVar(v)
	}

	ls := cmd.Command("ls", "List the complete blocks of the bucket, sorted by tenant, external labels, resolution and time.")
	output(ls, &c.lsOutput)
	selector(ls, &c.lsSelector)
	c.runs[ls.FullCommand()] = c.runLs

	inspect := cmd.Command("inspect", "Show the blocks of the bucket in detail (time range, series, samples, chunks, level, resolution, marks), grouped by tenant.")
	output(inspect, &c.inspectOutput)
	selector(inspect, &c.inspectSelector)
	c.runs[inspect.FullCommand()] = c.runInspect

	verify := cmd.Command("verify", "Check the bucket for overlapping blocks, invalid indexes, partial uploads, missing or unlisted files and invalid marks. Exits non-zero if it finds any issue. Only reads the bucket.")
	verify.Flag("replica-label", "External label that tells replicas apart; removed before blocks are grouped for the overlap check, as the compactor's deduplication does. Repeatable.").
		PlaceHolder("<name>").StringsVar(&c.replicaLabels)
	verify.Flag("skip-index", "Do not download and check each block's index.").BoolVar(&c.skipIndex)
	verify.Flag("verify-chunks", "Download whole blocks and check that every chunk the index refers to resolves and decodes.").BoolVar(&c.verifyChunks)
	verify.Flag("concurrency", "Blocks verified at a time.").Default(strconv.Itoa(bucket.DefaultConcurrency)).IntVar(&c.verifyConcurrency)
	output(verify, &c.verifyOutput)
	c.runs[verify.FullCommand()] = c.runVerify

	mark := cmd.Command("mark", "Mark blocks for deletion, or exclude them from compaction or downsampling. Every block must exist; otherwise nothing is marked.")
	mark.Flag("id", "ULID of a block to mark. Repeatable.").Required().PlaceHolder("<ulid>").StringsVar(&c.markIDs)
	mark.Flag("marker", "Mark to write.").Required().
		EnumVar(&c.marker, block.DeletionMarkFilename, block.NoCompactMarkFilename, block.NoDownsampleMarkFilename)
	mark.Flag("details", "Why the blocks are marked; stored in the mark.").StringVar(&c.markDetails)
	c.runs[mark.FullCommand()] = c.runMark

	cleanup := cmd.Command("cleanup", "Delete blocks whose deletion mark is older than --delete-delay, finish interrupted deletions, and delete partial uploads older than --partial-upload-age. Stop compactors first.")
	cleanup.Flag("delete-delay", "Age a deletion mark must reach before its block is deleted.").
		Default(model.Duration(bucket.DefaultDeleteDelay).String()).SetValue(&c.deleteDelay)
	cleanup.Flag("partial-upload-age", "Time a block directory without meta.json must go unmodified before it is deleted as an abandoned upload.").
		Default(model.Duration(bucket.DefaultPartialUploadAge).String()).SetValue(&c.partialUploadAge)
	c.runs[cleanup.FullCommand()] = c.runCleanup

	c.registerUpload(cmd)
	return c
}

// commands returns, by full command name, the function main runs for each
// bucket subcommand, writing its output to out.
func (c *bucketConfig) commands(out io.Writer) map[string]func(*slog.Logger, *prometheus.Registry) error {
	cmds := make(map[string]func(*slog.Logger, *prometheus.Registry) error, len(c.runs))
	for name := range c.runs {
		cmds[name] = func(logger *slog.Logger, reg *prometheus.Registry) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return c.run(ctx, name, logger, reg, out)
		}
	}
	return cmds
}

// run opens the configured bucket and runs the subcommand named cmd (its
// full command name) against it. A nil reg registers no metrics.
func (c *bucketConfig) run(ctx context.Context, cmd string, logger *slog.Logger, reg prometheus.Registerer, out io.Writer) (err error) {
	fn, ok := c.runs[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bkt, err := c.objstore.bucket(ctx, reg, logger)
	if err != nil {
		return err
	}
	if bkt == nil {
		return errors.New("no bucket: give --objstore.config-file or --objstore.config")
	}
	defer func() {
		if cerr := bkt.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close bucket: %w", cerr))
		}
	}()
	return fn(ctx, bkt, logger, out)
}

func (c *bucketConfig) runLs(ctx context.Context, bkt objstore.Bucket, _ *slog.Logger, out io.Writer) error {
	return listBlocks(ctx, bkt, c.lsSelector, c.lsOutput, out, bucket.WriteBlocksTable)
}

func (c *bucketConfig) runInspect(ctx context.Context, bkt objstore.Bucket, _ *slog.Logger, out io.Writer) error {
	return listBlocks(ctx, bkt, c.inspectSelector, c.inspectOutput, out, bucket.WriteInspectTable)
}

// listBlocks writes the blocks matching selector as JSON or with writeTable.
// Blocks whose meta.json does not read are reported in the returned error
// after the others are written.
func listBlocks(ctx context.Context, bkt objstore.BucketReader, selector []string, output string, out io.Writer, writeTable func(io.Writer, []bucket.BlockInfo) error) error {
	sel, err := parseSelector(selector)
	if err != nil {
		return err
	}
	blocks, listErr := bucket.List(ctx, bkt, bucket.ListOptions{Selector: sel})
	if output == outputJSON {
		err = bucket.WriteBlocksJSON(out, blocks)
	} else {
		err = writeTable(out, blocks)
	}
	return errors.Join(err, listErr)
}

// parseSelector parses repeated name=value or name="value" flags.
func parseSelector(flags []string) (map[string]string, error) {
	sel := make(map[string]string, len(flags))
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || !model.UTF8Validation.IsValidLabelName(name) {
			return nil, fmt.Errorf("selector %q: want name=value", f)
		}
		if strings.HasPrefix(value, `"`) {
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("selector %q: %w", f, err)
			}
			value = v
		}
		if _, dup := sel[name]; dup {
			return nil, fmt.Errorf("selector for label %q given twice", name)
		}
		sel[name] = value
	}
	return sel, nil
}

func (c *bucketConfig) runVerify(ctx context.Context, bkt objstore.Bucket, logger *slog.Logger, out io.Writer) error {
	rep, err := bucket.Verify(ctx, logger, bkt, bucket.VerifyOptions{
		ReplicaLabels: c.replicaLabels,
		SkipIndex:     c.skipIndex,
		ChunkRefs:     c.verifyChunks,
		Concurrency:   c.verifyConcurrency,
	})
	if rep == nil {
		return err
	}
	var werr error
	if c.verifyOutput == outputJSON {
		werr = rep.WriteJSON(out)
	} else {
		werr = rep.WriteText(out)
	}
	if err := errors.Join(err, werr); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d issues in %d blocks", errVerifyIssues, len(rep.Issues), rep.Blocks)
	}
	return nil
}

func (c *bucketConfig) runMark(ctx context.Context, bkt objstore.Bucket, logger *slog.Logger, out io.Writer) error {
	ids := make([]ulid.ULID, 0, len(c.markIDs))
	for _, s := range c.markIDs {
		id, err := ulid.ParseStrict(s)
		if err != nil {
			return fmt.Errorf("block ID %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	if err := bucket.Mark(ctx, logger, bkt, ids, c.marker, c.markDetails, time.Now()); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := fmt.Fprintf(out, "marked %s with %s\n", id, c.marker); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

func (c *bucketConfig) runCleanup(ctx context.Context, bkt objstore.Bucket, logger *slog.Logger, out io.Writer) error {
	stats, err := bucket.Cleanup(ctx, logger, bkt, bucket.CleanupConfig{
		DeleteDelay:      time.Duration(c.deleteDelay),
		PartialUploadAge: time.Duration(c.partialUploadAge),
	})
	_, werr := fmt.Fprintf(out, "%d blocks looked at: %d deleted after their deletion delay, %d interrupted deletions finished, %d partial uploads deleted\n",
		stats.Blocks, stats.Deleted, stats.InterruptedDeleted, stats.PartialDeleted)
	if werr != nil {
		werr = fmt.Errorf("write output: %w", werr)
	}
	return errors.Join(err, werr)
}
