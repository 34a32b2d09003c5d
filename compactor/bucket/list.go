package bucket

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// TenantLabel is the external label that names a block's tenant.
const TenantLabel = "tenant_id"

// DefaultConcurrency is how many blocks List and Verify read at a time when
// their options leave it zero.
const DefaultConcurrency = 16

// MarkerFiles are the marks a block can carry, in the order they are shown.
var markerFiles = []string{block.DeletionMarkFilename, block.NoCompactMarkFilename, block.NoDownsampleMarkFilename}

// BlockInfo describes one complete block of a bucket, as `tools bucket ls` and
// `inspect` show it.
type BlockInfo struct {
	// ID is the block's ULID.
	ID ulid.ULID `json:"ulid"`
	// Tenant is the value of the external label TenantLabel, empty if absent.
	Tenant string `json:"tenant,omitempty"`
	// Labels are all the external labels, the tenant's included.
	Labels map[string]string `json:"labels"`
	// Resolution is the block's resolution in milliseconds: 0 for raw data.
	Resolution int64 `json:"resolution"`
	// Level is the block's compaction level; 1 for a block as it was cut.
	Level int `json:"level"`
	// MinTime is the first millisecond the block covers.
	MinTime time.Time `json:"min_time"`
	// MaxTime is the end of the time range the block covers, exclusive.
	MaxTime time.Time `json:"max_time"`
	// Series, Samples and Chunks are the block's statistics from meta.json.
	Series  uint64 `json:"series"`
	Samples uint64 `json:"samples"`
	Chunks  uint64 `json:"chunks"`
	// Source is the component that produced the block.
	Source block.SourceType `json:"source"`
	// Marks are the file names of the marks the block carries, such as
	// block.DeletionMarkFilename.
	Marks []string `json:"marks,omitempty"`
	// UploadTime is when meta.json was uploaded, zero if unknown.
	UploadTime time.Time `json:"upload_time,omitzero"`
}

// Duration is the length of the block's time range.
func (b BlockInfo) Duration() time.Duration { return b.MaxTime.Sub(b.MinTime) }

// HasMark reports whether the block carries the mark stored in file.
func (b BlockInfo) HasMark(file string) bool { return slices.Contains(b.Marks, file) }

// newBlockInfo summarises meta and the marks found next to it.
func newBlockInfo(meta *block.Meta, marks []string) BlockInfo {
	return BlockInfo{
		ID:         meta.ULID,
		Tenant:     meta.Thanos.Labels[TenantLabel],
		Labels:     meta.Thanos.Labels,
		Resolution: meta.Thanos.Downsample.Resolution,
		Level:      meta.Compaction.Level,
		MinTime:    time.UnixMilli(meta.MinTime).UTC(),
		MaxTime:    time.UnixMilli(meta.MaxTime).UTC(),
		Series:     meta.Stats.NumSeries,
		Samples:    meta.Stats.NumSamples,
		Chunks:     meta.Stats.NumChunks,
		Source:     meta.Thanos.Source,
		Marks:      marks,
		UploadTime: meta.Thanos.UploadTime,
	}
}

// ListOptions selects the blocks List returns.
type ListOptions struct {
	// Selector keeps only blocks whose external labels have all these values;
	// empty keeps every block.
	Selector map[string]string
	// Concurrency is how many blocks are read at a time; zero means
	// DefaultConcurrency.
	Concurrency int
}

// List reads the meta.json and the marks of every complete block of bkt, that
// is every top-level ULID directory with a meta.json, and returns those that
// match opts, sorted by SortBlocks. Directories without meta.json (partial
// uploads) are skipped. A block whose meta.json does not read is left out and
// its error joined into the returned error, next to the blocks that did read.
func List(ctx context.Context, bkt objstore.BucketReader, opts ListOptions) ([]BlockInfo, error) {
	ids, err := block.ListIDs(ctx, bkt)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		infos []BlockInfo
	)
	err = forEach(ctx, opts.Concurrency, ids, func(id ulid.ULID) error {
		entries, err := blockEntries(ctx, bkt, id)
		if err != nil {
			return err
		}
		if !entries[block.MetaFilename] {
			return nil
		}
		meta, err := block.ReadMetaFromBucket(ctx, bkt, id)
		if err != nil {
			return err
		}
		if !matches(meta.Thanos.Labels, opts.Selector) {
			return nil
		}
		var marks []string
		for _, f := range markerFiles {
			if entries[f] {
				marks = append(marks, f)
			}
		}
		mu.Lock()
		infos = append(infos, newBlockInfo(meta, marks))
		mu.Unlock()
		return nil
	})
	SortBlocks(infos)
	return infos, err
}

// blockEntries returns the direct entries of block id's directory, by name
// relative to it (sub-directories with a trailing slash).
func blockEntries(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (map[string]bool, error) {
	prefix := id.String() + objstore.DirDelim
	entries := map[string]bool{}
	if err := bkt.Iter(ctx, prefix, func(name string) error {
		entries[strings.TrimPrefix(name, prefix)] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("block %s: list files: %w", id, err)
	}
	return entries, nil
}

func matches(lbls, selector map[string]string) bool {
	for k, v := range selector {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

// SortBlocks sorts blocks by tenant, then by their other external labels, then
// by resolution, minimum time and ULID.
func SortBlocks(blocks []BlockInfo) {
	slices.SortStableFunc(blocks, func(a, b BlockInfo) int {
		return cmp.Or(
			strings.Compare(a.Tenant, b.Tenant),
			labels.Compare(labels.FromMap(a.Labels), labels.FromMap(b.Labels)),
			cmp.Compare(a.Resolution, b.Resolution),
			a.MinTime.Compare(b.MinTime),
			a.ID.Compare(b.ID),
		)
	})
}

// ResolutionString names a resolution the way operators say it: raw, 5m, 1h,
// or a duration for any other value.
func ResolutionString(res int64) string {
	switch res {
	case block.ResolutionRaw:
		return "raw"
	case block.Resolution5m:
		return "5m"
	case block.Resolution1h:
		return "1h"
	}
	return (time.Duration(res) * time.Millisecond).String()
}

// otherLabels formats the external labels except the tenant's.
func otherLabels(lbls map[string]string) string {
	b := labels.NewBuilder(labels.FromMap(lbls))
	b.Del(TenantLabel)
	return b.Labels().String()
}

func markNames(marks []string) string {
	if len(marks) == 0 {
		return "-"
	}
	short := make([]string, len(marks))
	for i, m := range marks {
		short[i] = strings.TrimSuffix(m, "-mark.json")
	}
	return strings.Join(short, ",")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteBlocksJSON writes blocks as one indented JSON array.
func WriteBlocksJSON(w io.Writer, blocks []BlockInfo) error {
	if blocks == nil {
		blocks = []BlockInfo{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(blocks); err != nil {
		return fmt.Errorf("write blocks as JSON: %w", err)
	}
	return nil
}

// WriteBlocksTable writes blocks as a table with one row per block: ULID,
// tenant, other external labels, resolution, level, time range, duration,
// source and marks.
func WriteBlocksTable(w io.Writer, blocks []BlockInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ULID\tTENANT\tLABELS\tRES\tLEVEL\tMIN TIME\tMAX TIME\tDURATION\tSOURCE\tMARKS")
	for _, b := range blocks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			b.ID, orDash(b.Tenant), otherLabels(b.Labels), ResolutionString(b.Resolution), b.Level,
			formatTime(b.MinTime), formatTime(b.MaxTime), b.Duration(), orDash(string(b.Source)), markNames(b.Marks))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write blocks table: %w", err)
	}
	return nil
}

// WriteInspectTable writes blocks as a detailed table, one section per tenant
// with its block count and totals, then one row per block with its time range,
// duration, statistics, level, resolution, source, marks, upload time and
// other external labels. blocks must be sorted by SortBlocks.
func WriteInspectTable(w io.Writer, blocks []BlockInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := 0; i < len(blocks); {
		j := i
		var series, samples, chunks uint64
		for ; j < len(blocks) && blocks[j].Tenant == blocks[i].Tenant; j++ {
			series += blocks[j].Series
			samples += blocks[j].Samples
			chunks += blocks[j].Chunks
		}
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "TENANT %s: %d blocks, %d series, %d samples, %d chunks\n", orDash(blocks[i].Tenant), j-i, series, samples, chunks)
		fmt.Fprintln(tw, "ULID\tFROM\tUNTIL\tRANGE\tSERIES\tSAMPLES\tCHUNKS\tLEVEL\tRES\tSOURCE\tMARKS\tUPLOADED\tLABELS")
		for _, b := range blocks[i:j] {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n",
				b.ID, formatTime(b.MinTime), formatTime(b.MaxTime), b.Duration(), b.Series, b.Samples, b.Chunks,
				b.Level, ResolutionString(b.Resolution), orDash(string(b.Source)), markNames(b.Marks),
				formatTime(b.UploadTime), otherLabels(b.Labels))
		}
		i = j
	}
	if len(blocks) == 0 {
		fmt.Fprintln(tw, "no blocks")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write inspect table: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// forEach calls fn for every id with at most concurrency calls at a time (zero
// means DefaultConcurrency), and joins their errors. It stops starting new
// calls once ctx is done.
func forEach(ctx context.Context, concurrency int, ids []ulid.ULID, fn func(ulid.ULID) error) error {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		work = make(chan ulid.ULID)
	)
	for range min(concurrency, len(ids)) {
		wg.Go(func() {
			for id := range work {
				if err := fn(id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			mu.Lock()
			errs = append(errs, ctx.Err())
			mu.Unlock()
			break feed
		}
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
