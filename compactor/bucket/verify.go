package bucket

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// IssueKind classifies a problem Verify finds.
type IssueKind string

// Kinds of issues Verify reports.
const (
	// IssueOverlap is a block whose time range overlaps another block of its
	// compaction group. The compactor halts on it unless vertical compaction
	// is enabled.
	IssueOverlap IssueKind = "overlapped_blocks"
	// IssueIndex is a block whose index is unreadable or invalid.
	IssueIndex IssueKind = "index"
	// IssueOutOfOrderChunks is a block whose index has a series with
	// overlapping or unsorted chunks.
	IssueOutOfOrderChunks IssueKind = "out_of_order_chunks"
	// IssuePartialUpload is a block directory without meta.json: an upload in
	// progress or abandoned, or an interrupted deletion. Cleanup removes it.
	IssuePartialUpload IssueKind = "partial_upload"
	// IssueInvalidMeta is a meta.json that does not decode or does not
	// describe a usable block.
	IssueInvalidMeta IssueKind = "invalid_meta"
	// IssueMissingFile is a file that meta.json lists (or every block needs,
	// the index) and the bucket does not hold.
	IssueMissingFile IssueKind = "missing_file"
	// IssueFileSize is a file whose size differs from the one meta.json lists.
	IssueFileSize IssueKind = "file_size_mismatch"
	// IssueUnlistedFile is a file of the block directory that meta.json does
	// not list and that is not a mark.
	IssueUnlistedFile IssueKind = "unlisted_file"
	// IssueInvalidMark is a mark file that does not decode or names another
	// block.
	IssueInvalidMark IssueKind = "invalid_mark"
)

// Issue is one problem with one block.
type Issue struct {
	// Block is the block concerned.
	Block ulid.ULID `json:"block"`
	// Kind classifies the problem.
	Kind IssueKind `json:"kind"`
	// Message describes the problem for a human.
	Message string `json:"message"`
}

// Report is the outcome of Verify.
type Report struct {
	// Blocks is the number of ULID directories looked at, partial ones
	// included.
	Blocks int `json:"blocks"`
	// Issues are the problems found, sorted by block and kind.
	Issues []Issue `json:"issues"`
}

// OK reports whether no issue was found.
func (r *Report) OK() bool { return len(r.Issues) == 0 }

// WriteJSON writes the report as an indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	out := *r
	if out.Issues == nil {
		out.Issues = []Issue{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write report as JSON: %w", err)
	}
	return nil
}

// WriteText writes the report as a table of issues and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Issues) > 0 {
		fmt.Fprintln(tw, "BLOCK\tISSUE\tMESSAGE")
		for _, is := range r.Issues {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", is.Block, is.Kind, is.Message)
		}
	}
	fmt.Fprintf(tw, "%d blocks verified, %d issues\n", r.Blocks, len(r.Issues))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// VerifyOptions says what Verify checks.
type VerifyOptions struct {
	// ReplicaLabels are removed from the external labels before blocks are
	// grouped for the overlap check, as the compactor does when it
	// deduplicates replicas: blocks of replicas of one stream then overlap.
	ReplicaLabels []string
	// SkipIndex skips downloading and verifying each block's index.
	SkipIndex bool
	// ChunkRefs downloads whole blocks instead of their indexes and also
	// checks that every chunk reference resolves; see WithChunkRefs.
	ChunkRefs bool
	// TempDir is where indexes are downloaded, one block at a time per
	// worker; empty means the system's temporary directory.
	TempDir string
	// Concurrency is how many blocks are verified at a time; zero means
	// DefaultConcurrency.
	Concurrency int
}

// Verify checks every ULID directory of bkt and returns the issues found:
//
//   - directories without meta.json (IssuePartialUpload) and meta.json files
//     that do not read (IssueInvalidMeta);
//   - files meta.json lists that are missing or have another size, and files
//     it does not list (when it lists files at all);
//   - marks that do not decode or name another block (IssueInvalidMark);
//   - blocks overlapping in time within a compaction group, the group being
//     block.GroupKey of the resolution and of the external labels without
//     opts.ReplicaLabels (IssueOverlap);
//   - unless opts.SkipIndex, the index of each block, downloaded and checked
//     with VerifyIndex (IssueIndex, IssueOutOfOrderChunks).
//
// Blocks marked for deletion are left out of the overlap and index checks:
// they are on their way out, and a compacted block overlaps its sources until
// they are deleted. Verify only reads the bucket. The error is for failures
// that prevented checking, such as a bucket that cannot be listed; the report
// holds what could be checked. logger may be nil.
func Verify(ctx context.Context, logger *slog.Logger, bkt objstore.BucketReader, opts VerifyOptions) (*Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ids, err := block.ListIDs(ctx, bkt)
	if err != nil {
		return nil, fmt.Errorf("verify bucket: %w", err)
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "strata-verify-")
	if err != nil {
		return nil, fmt.Errorf("verify bucket: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			logger.Warn("remove temporary directory", "dir", tmp, "err", err)
		}
	}()

	v := &verifier{bkt: bkt, logger: logger, opts: opts, tmp: tmp}
	rep := &Report{Blocks: len(ids)}
	var (
		mu    sync.Mutex
		metas []*block.Meta
	)
	err = forEach(ctx, opts.Concurrency, ids, func(id ulid.ULID) error {
		meta, issues, err := v.block(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		rep.Issues = append(rep.Issues, issues...)
		if meta != nil {
			metas = append(metas, meta)
		}
		return err
	})
	rep.Issues = append(rep.Issues, overlaps(metas, opts.ReplicaLabels)...)
	slices.SortStableFunc(rep.Issues, func(a, b Issue) int {
		return cmp.Or(a.Block.Compare(b.Block), strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Message, b.Message))
	})
	if err != nil {
		return rep, fmt.Errorf("verify bucket: %w", err)
	}
	return rep, nil
}

type verifier struct {
	bkt    objstore.BucketReader
	logger *slog.Logger
	opts   VerifyOptions
	tmp    string
}

// block checks one block directory. It returns the block's meta when the
// block is complete, not marked for deletion, and so takes part in the overlap
// check.
func (v *verifier) block(ctx context.Context, id ulid.ULID) (*block.Meta, []Issue, error) {
	var issues []Issue
	add := func(kind IssueKind, format string, args ...any) {
		issues = append(issues, Issue{Block: id, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}

	prefix := id.String() + objstore.DirDelim
	sizes := map[string]int64{}
	var newest time.Time
	err := v.bkt.Iter(ctx, prefix, func(name string) error {
		attrs, err := v.bkt.Attributes(ctx, name)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("attributes of %s: %w", name, err)
		}
		sizes[strings.TrimPrefix(name, prefix)] = attrs.Size
		if attrs.LastModified.After(newest) {
			newest = attrs.LastModified
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return nil, nil, fmt.Errorf("block %s: list files: %w", id, err)
	}

	for _, f := range markerFiles {
		if _, ok := sizes[f]; !ok {
			continue
		}
		var err error
		switch f {
		case block.DeletionMarkFilename:
			_, err = block.ReadDeletionMark(ctx, v.bkt, id)
		case block.NoCompactMarkFilename:
			_, err = block.ReadNoCompactMark(ctx, v.bkt, id)
		case block.NoDownsampleMarkFilename:
			_, err = block.ReadNoDownsampleMark(ctx, v.bkt, id)
		}
		switch {
		case errors.Is(err, block.ErrInvalidDeletionMark) || errors.Is(err, block.ErrInvalidMark):
			add(IssueInvalidMark, "%s: %v", f, err)
		case errors.Is(err, objstore.ErrNotFound):
		case err != nil:
			return nil, issues, fmt.Errorf("block %s: read %s: %w", id, f, err)
		}
	}
	_, deletionMarked := sizes[block.DeletionMarkFilename]

	if _, ok := sizes[block.MetaFilename]; !ok {
		msg := fmt.Sprintf("no meta.json; %d objects, the newest modified at %s", len(sizes), formatTime(newest))
		if deletionMarked {
			msg += "; a deletion mark is left: an interrupted deletion"
		}
		add(IssuePartialUpload, "%s", msg)
		return nil, issues, nil
	}
	meta, err := block.ReadMetaFromBucket(ctx, v.bkt, id)
	switch {
	case errors.Is(err, block.ErrInvalidMeta):
		add(IssueInvalidMeta, "%v", err)
		return nil, issues, nil
	case err != nil:
		return nil, issues, fmt.Errorf("block %s: %w", id, err)
	}

	issues = append(issues, fileIssues(meta, sizes)...)
	if deletionMarked {
		return nil, issues, nil
	}
	if _, ok := sizes[block.IndexFilename]; ok && !v.opts.SkipIndex {
		is, err := v.index(ctx, meta)
		if err != nil {
			return meta, issues, err
		}
		issues = append(issues, is...)
	}
	return meta, issues, nil
}

// fileIssues compares the files of a block, by relative name and size, with
// those its meta.json lists.
func fileIssues(meta *block.Meta, sizes map[string]int64) []Issue {
	var issues []Issue
	add := func(kind IssueKind, format string, args ...any) {
		issues = append(issues, Issue{Block: meta.ULID, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
	if _, ok := sizes[block.IndexFilename]; !ok && !slices.ContainsFunc(meta.Thanos.Files, func(f block.File) bool { return f.RelPath == block.IndexFilename }) {
		add(IssueMissingFile, "%s is missing", block.IndexFilename)
	}
	if len(meta.Thanos.Files) == 0 {
		return issues // an older block that does not list its files
	}
	listed := map[string]bool{block.MetaFilename: true}
	for _, f := range markerFiles {
		listed[f] = true
	}
	for _, f := range meta.Thanos.Files {
		listed[f.RelPath] = true
		size, ok := sizes[f.RelPath]
		switch {
		case !ok:
			add(IssueMissingFile, "%s is listed in meta.json but missing", f.RelPath)
		case f.SizeBytes > 0 && size != f.SizeBytes:
			add(IssueFileSize, "%s has %d bytes, meta.json says %d", f.RelPath, size, f.SizeBytes)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(sizes)) {
		if !listed[name] {
			add(IssueUnlistedFile, "%s is not listed in meta.json", name)
		}
	}
	return issues
}

// index downloads the index (or, with ChunkRefs, the whole block) of the
// block and checks it with VerifyIndex.
func (v *verifier) index(ctx context.Context, meta *block.Meta) (_ []Issue, err error) {
	id := meta.ULID
	dir := filepath.Join(v.tmp, id.String())
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("block %s: remove downloaded files: %w", id, rerr))
		}
	}()
	var opts []IndexOption
	if v.opts.ChunkRefs {
		if err := block.Download(ctx, v.logger, v.bkt, id, v.tmp); err != nil {
			return []Issue{{Block: id, Kind: IssueIndex, Message: fmt.Sprintf("download block: %v", err)}}, nil
		}
		opts = append(opts, WithChunkRefs())
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("block %s: %w", id, err)
		}
		if err := meta.WriteToDir(v.logger, dir); err != nil {
			return nil, fmt.Errorf("block %s: %w", id, err)
		}
		if err := downloadObject(ctx, v.bkt, path.Join(id.String(), block.IndexFilename), filepath.Join(dir, block.IndexFilename)); err != nil {
			return nil, fmt.Errorf("block %s: %w", id, err)
		}
	}
	err = VerifyIndex(ctx, dir, opts...)
	switch {
	case errors.Is(err, ErrOutOfOrderChunks):
		return []Issue{{Block: id, Kind: IssueOutOfOrderChunks, Message: err.Error()}}, nil
	case errors.Is(err, ErrInvalidIndex):
		return []Issue{{Block: id, Kind: IssueIndex, Message: err.Error()}}, nil
	case err != nil:
		return nil, err
	}
	return nil, nil
}

// downloadObject copies object name of bkt to the local file dst.
func downloadObject(ctx context.Context, bkt objstore.BucketReader, name, dst string) (err error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s: %w", name, cerr))
		}
	}()
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		return errors.Join(fmt.Errorf("download %s: %w", name, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("download %s: close %s: %w", name, dst, err)
	}
	return nil
}

// overlaps reports, for every compaction group, the blocks whose time range
// overlaps an earlier block of the group.
func overlaps(metas []*block.Meta, replicaLabels []string) []Issue {
	groups := map[string][]*block.Meta{}
	for _, m := range metas {
		lbls := maps.Clone(m.Thanos.Labels)
		for _, l := range replicaLabels {
			delete(lbls, l)
		}
		key := block.GroupKey(m.Thanos.Downsample.Resolution, lbls)
		groups[key] = append(groups[key], m)
	}
	var issues []Issue
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		g := groups[key]
		slices.SortFunc(g, func(a, b *block.Meta) int {
			return cmp.Or(cmp.Compare(a.MinTime, b.MinTime), cmp.Compare(a.MaxTime, b.MaxTime), a.ULID.Compare(b.ULID))
		})
		for i, b := range g {
			for _, a := range g[:i] {
				// Ranges are half-open: [min, max).
				if a.MaxTime > b.MinTime {
					issues = append(issues, Issue{Block: b.ULID, Kind: IssueOverlap, Message: fmt.Sprintf(
						"[%s, %s) overlaps block %s [%s, %s) in group %s",
						formatMillis(b.MinTime), formatMillis(b.MaxTime), a.ULID, formatMillis(a.MinTime), formatMillis(a.MaxTime), key)})
				}
			}
		}
	}
	return issues
}

func formatMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
