package bucketstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newBucket(t *testing.T) *objstore.Filesystem {
	t.Helper()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	return bkt
}

// upload uploads the block in blockDir with external labels ext and returns the
// meta.json as it is in the bucket.
func upload(t *testing.T, bkt objstore.Bucket, blockDir string, ext labels.Labels) *block.Meta {
	t.Helper()
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.Thanos.Labels = ext.Map()
	m.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(context.Background(), nil, bkt, blockDir, m))
	m, err = block.ReadMetaFromBucket(context.Background(), bkt, m.ULID)
	require.NoError(t, err)
	return m
}

// fixtureBlock writes data into a TSDB, compacts [mint, maxt] of its head into
// one block and returns the block's directory. enc is the float chunk encoding.
func fixtureBlock(t *testing.T, data []storeapitest.Series, enc chunkenc.Encoding, mint, maxt int64) string {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.FloatChunkEncoding = enc
	dir := t.TempDir()
	db, err := tsdb.Open(dir, nil, nil, opts, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	app := db.AppenderV2(context.Background())
	require.NoError(t, storeapitest.AppendAll(app, data))
	require.NoError(t, app.Commit())
	require.NoError(t, db.CompactHead(tsdb.NewRangeHead(db.Head(), mint, maxt)))
	require.Len(t, db.Blocks(), 1)
	return filepath.Join(dir, db.Blocks()[0].Meta().ULID.String())
}

// Times of the generated blocks: two hours aligned to a block boundary.
const (
	bigMint = int64(1_699_999_200_000)
	bigMaxt = bigMint + 2*60*60*1000
	bigStep = 30_000
)

// bigLabels returns the labels of series i of a generated block: several label
// names of different cardinalities.
func bigLabels(i int) labels.Labels {
	return labels.FromStrings(
		model.MetricNameLabel, fmt.Sprintf("metric_%d", i%7),
		"instance", fmt.Sprintf("host-%04d:9100", i%211),
		"job", fmt.Sprintf("job-%d", i%13),
		"series", fmt.Sprint(i),
		"zone", []string{"eu-1", "us-2", "ap-3"}[i%3],
	)
}

// bigBlock writes a real block of numSeries series (bigLabels) with one sample
// every bigStep over two hours, several chunks each, and returns its directory.
func bigBlock(t *testing.T, numSeries int) string {
	t.Helper()
	dir := t.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, tsdb.DefaultBlockDuration)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	app := w.Appender(context.Background())
	for i := range numSeries {
		lset := bigLabels(i)
		for ts := bigMint; ts < bigMaxt; ts += bigStep {
			_, err := app.Append(0, lset, ts, float64(ts-bigMint)/1000+float64(i))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	return filepath.Join(dir, id.String())
}

// blockReader serves a local block to storeapi.TSDBStore, the reference the
// bucket store is compared with.
type blockReader struct{ b *tsdb.Block }

func (r blockReader) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return tsdb.NewBlockChunkQuerier(r.b, mint, maxt)
}

func (r blockReader) StartTime() (int64, error) { return r.b.Meta().MinTime, nil }

// readAll reads a whole Series stream; frames of the same series are joined.
func readAll(t *testing.T, c storepb.StoreClient, req *storepb.SeriesRequest) ([]*storepb.Series, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := c.Series(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*storepb.Series
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		s := resp.GetSeries()
		require.NotNil(t, s, "unexpected frame %T", resp.GetResult())
		if n := len(out); n > 0 && labelsString(out[n-1]) == labelsString(s) {
			out[n-1].Chunks = append(out[n-1].Chunks, s.GetChunks()...)
			continue
		}
		out = append(out, s)
	}
}

func labelsString(s *storepb.Series) string {
	m := map[string]string{}
	for _, l := range s.GetLabels() {
		m[l.GetName()] = l.GetValue()
	}
	return labels.FromMap(m).String()
}

// summary renders series as comparable strings: labels, then every chunk's
// time range, encoding, length and hash.
func summary(ss []*storepb.Series) []string {
	var out []string
	for _, s := range ss {
		line := labelsString(s)
		for _, c := range s.GetChunks() {
			r := c.GetRaw()
			line += fmt.Sprintf(" [%d,%d %s %d %x]", c.GetMinTime(), c.GetMaxTime(), r.GetType(), len(r.GetData()), r.GetHash())
		}
		out = append(out, line)
	}
	return out
}
