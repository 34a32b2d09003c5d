package compactbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/stratametrics/strata/block"
)

// Dataset describes generated data: Series counters sampled every Step
// milliseconds over Days days from Start, shipped in 2h blocks by Replicas
// receive replicas of one tenant, each holding the same samples.
type Dataset struct {
	Series   int
	Days     int
	Replicas int
	Step     int64
	Start    int64
}

const blockRange = 2 * 60 * 60 * 1000

// Samples is the number of samples of one replica.
func (d Dataset) Samples() int64 {
	return int64(d.Series) * int64(d.Days) * 24 * 60 * 60 * 1000 / d.Step
}

// seriesLabels returns the sorted label sets of the dataset: 100 metric names
// per host, as a node exporter would have.
func (d Dataset) seriesLabels() []labels.Labels {
	out := make([]labels.Labels, 0, d.Series)
	for i := range d.Series {
		out = append(out, labels.FromStrings("__name__", fmt.Sprintf("node_metric_%02d_total", i%100),
			"instance", fmt.Sprintf("host-%05d", i/100), "job", "node"))
	}
	slices.SortFunc(out, labels.Compare)
	return out
}

// Write writes every block of the dataset into the filesystem bucket rooted at
// dir: the blocks of the first replica are encoded, the others are hard links of
// their files with their own meta.json, as receive replicas holding identical
// samples would ship them.
func (d Dataset) Write(ctx context.Context, dir string) (blocks int, err error) {
	lsets := d.seriesLabels()
	// Counter state per series, carried from block to block.
	vals := make([]float64, len(lsets))
	rng := rand.New(rand.NewPCG(1, 2))
	end := d.Start + int64(d.Days)*24*60*60*1000
	for lo := d.Start; lo < end; lo += blockRange {
		ids := make([]ulid.ULID, d.Replicas)
		for r := range ids {
			ids[r] = ulid.Make()
		}
		first := filepath.Join(dir, ids[0].String())
		if err := d.writeBlock(ctx, first, lsets, vals, rng, lo, lo+blockRange); err != nil {
			return blocks, err
		}
		for r, id := range ids {
			bdir := filepath.Join(dir, id.String())
			if r > 0 {
				if err := linkBlock(first, bdir); err != nil {
					return blocks, err
				}
			}
			m := &block.Meta{BlockMeta: tsdb.BlockMeta{
				ULID: id, MinTime: lo, MaxTime: lo + blockRange, Version: 1,
				Stats:      tsdb.BlockStats{NumSeries: uint64(len(lsets)), NumSamples: uint64(len(lsets)) * uint64(blockRange/d.Step)},
				Compaction: tsdb.BlockMetaCompaction{Level: 1, Sources: []ulid.ULID{id}},
			}}
			m.Thanos = block.ThanosMeta{
				Version: block.ThanosVersion1, Source: block.SourceReceive,
				Labels: map[string]string{"tenant_id": "bench", "receive_replica": fmt.Sprint(r)},
			}
			if err := m.WriteToDir(nil, bdir); err != nil {
				return blocks, err
			}
			blocks++
		}
	}
	return blocks, nil
}

func (d Dataset) writeBlock(ctx context.Context, dir string, lsets []labels.Labels, vals []float64, rng *rand.Rand, lo, hi int64) error {
	cw, err := chunks.NewWriter(filepath.Join(dir, block.ChunksDirname))
	if err != nil {
		return err
	}
	iw, err := index.NewWriter(ctx, filepath.Join(dir, block.IndexFilename))
	if err != nil {
		return err
	}
	syms := map[string]struct{}{}
	for _, l := range lsets {
		l.Range(func(l labels.Label) {
			syms[l.Name], syms[l.Value] = struct{}{}, struct{}{}
		})
	}
	sorted := make([]string, 0, len(syms))
	for s := range syms {
		sorted = append(sorted, s)
	}
	slices.Sort(sorted)
	for _, s := range sorted {
		if err := iw.AddSymbol(s); err != nil {
			return err
		}
	}
	for i, l := range lsets {
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			return err
		}
		for ts := lo; ts < hi; ts += d.Step {
			vals[i] += float64(rng.IntN(100))
			app.Append(0, ts, vals[i])
		}
		// WriteChunks sets the references in the slice it is given.
		metas := []chunks.Meta{{MinTime: lo, MaxTime: hi - d.Step, Chunk: c}}
		if err := cw.WriteChunks(metas...); err != nil {
			return err
		}
		if err := iw.AddSeries(storage.SeriesRef(i+1), l, metas...); err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	return iw.Close()
}

func linkBlock(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == block.MetaFilename {
			return nil
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return os.Link(p, target)
	})
}
