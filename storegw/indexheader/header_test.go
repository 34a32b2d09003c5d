package indexheader_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storegw/indexheader"
)

// countingBucket wraps a bucket and counts the bytes its readers return. A Get of
// a whole object fails the test: the header must use ranged reads only.
type countingBucket struct {
	objstore.Bucket
	t      testing.TB
	bytes  atomic.Int64
	ranges atomic.Int64
}

func (b *countingBucket) Get(_ context.Context, name string) (io.ReadCloser, error) {
	b.t.Errorf("whole object %s read with Get", name)
	return nil, fmt.Errorf("get %s: not allowed in this test", name)
}

func (b *countingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if length < 0 {
		b.t.Errorf("open-ended range of %s read", name)
	}
	rc, err := b.Bucket.GetRange(ctx, name, off, length)
	if err != nil {
		return nil, err
	}
	b.ranges.Add(1)
	return &countingReader{ReadCloser: rc, n: &b.bytes}, nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// createBlock writes a real block of numSeries series with several label names
// of different cardinalities into dir and returns its ULID.
func createBlock(t testing.TB, dir string, numSeries int) ulid.ULID {
	t.Helper()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, tsdb.DefaultBlockDuration)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	app := w.Appender(context.Background())
	for i := range numSeries {
		lset := labels.FromStrings(
			model.MetricNameLabel, fmt.Sprintf("metric_%d", i%7),
			"job", fmt.Sprintf("job-%d", i%13),
			"instance", fmt.Sprintf("host-%04d:9100", i%211),
			"series", fmt.Sprint(i),
			"zone", []string{"eu-1", "us-2", "ap-3"}[i%3],
		)
		for ts := int64(0); ts < 3_600_000; ts += 60_000 {
			_, err := app.Append(0, lset, ts, float64(ts+int64(i)))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	return id
}

// fixture is a real block on local disk and in a filesystem bucket.
type fixture struct {
	id       ulid.ULID
	blockDir string
	bkt      *objstore.Filesystem
}

func newFixture(t testing.TB, numSeries int) fixture {
	t.Helper()
	dir := t.TempDir()
	id := createBlock(t, dir, numSeries)
	blockDir := filepath.Join(dir, id.String())
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.Thanos.Labels = map[string]string{"tenant_id": "team-a"}
	m.Thanos.Source = block.SourceTest
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, block.Upload(context.Background(), nil, bkt, blockDir, m))
	return fixture{id: id, blockDir: blockDir, bkt: bkt}
}

// requireMatchesIndex checks every answer of h against Prometheus' own reader of
// the block's index, including decoding every postings list fetched from the
// bucket at the range h gives.
func requireMatchesIndex(t *testing.T, f fixture, h *indexheader.Header) {
	t.Helper()
	ctx := context.Background()
	indexPath := filepath.Join(f.blockDir, block.IndexFilename)
	ir, err := index.NewFileReader(indexPath, index.DecodePostingsRaw)
	require.NoError(t, err)
	defer func() { require.NoError(t, ir.Close()) }()

	raw, err := os.ReadFile(indexPath)
	require.NoError(t, err)
	require.Equal(t, int64(len(raw)), h.Size())
	require.Equal(t, ir.Version(), h.IndexVersion())
	toc, err := index.NewTOCFromByteSlice(realByteSlice(raw))
	require.NoError(t, err)
	require.Equal(t, indexheader.TOC{
		Symbols: toc.Symbols, Series: toc.Series, LabelIndices: toc.LabelIndices,
		LabelIndicesTable: toc.LabelIndicesTable, Postings: toc.Postings, PostingsTable: toc.PostingsTable,
	}, h.TOC())

	// Symbols: the reference of a symbol is its position in the table.
	var n uint32
	for it := ir.Symbols(); it.Next(); n++ {
		got, err := h.Symbol(n)
		require.NoError(t, err)
		require.Equal(t, it.At(), got, "symbol %d", n)
	}
	require.Equal(t, int(n), h.NumSymbols())
	_, err = h.Symbol(n)
	require.ErrorIs(t, err, indexheader.ErrUnknownSymbol)

	// Series entries refer to their label names and values by symbol reference:
	// decode every series entry of the raw index and resolve them through h.
	allName, allValue := index.AllPostingsKey()
	p, err := ir.Postings(ctx, allName, allValue)
	require.NoError(t, err)
	refs, err := index.ExpandPostings(p)
	require.NoError(t, err)
	var builder labels.ScratchBuilder
	for _, ref := range refs {
		require.NoError(t, ir.Series(ref, &builder, nil))
		want := builder.Labels()
		entry := raw[16*ref:]
		_, n := binary.Uvarint(entry) // entry length
		entry = entry[n:]
		count, n := binary.Uvarint(entry)
		entry = entry[n:]
		got := labels.NewScratchBuilder(int(count))
		for range count {
			nameRef, n := binary.Uvarint(entry)
			entry = entry[n:]
			valueRef, n := binary.Uvarint(entry)
			entry = entry[n:]
			name, err := h.Symbol(uint32(nameRef))
			require.NoError(t, err)
			value, err := h.Symbol(uint32(valueRef))
			require.NoError(t, err)
			got.Add(name, value)
		}
		require.Equal(t, want, got.Labels())
	}

	wantNames, err := ir.LabelNames(ctx)
	require.NoError(t, err)
	require.Equal(t, wantNames, h.LabelNames())
	require.Nil(t, h.LabelValues("no_such_label"))

	ranges, err := ir.PostingsRanges()
	require.NoError(t, err)
	lists := 0
	for _, name := range append([]string{""}, wantNames...) {
		values := []string{""}
		if name != "" {
			values, err = ir.LabelValues(ctx, name, nil)
			require.NoError(t, err)
			require.Equal(t, values, h.LabelValues(name), "values of %s", name)
		}
		for _, value := range values {
			start, end, ok := h.PostingsRange(name, value)
			require.True(t, ok, "%s=%q", name, value)

			// Prometheus' ranges exclude the length and CRC; ours include them plus padding.
			want := ranges[labels.Label{Name: name, Value: value}]
			require.Equal(t, want.Start, start+4, "%s=%q", name, value)
			require.GreaterOrEqual(t, end, want.End+4, "%s=%q", name, value)
			require.Less(t, end-(want.End+4), int64(4), "%s=%q: more than alignment padding", name, value)

			rc, err := f.bkt.GetRange(ctx, path.Join(f.id.String(), block.IndexFilename), start, end-start)
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			got, err := indexheader.DecodePostings(b)
			require.NoError(t, err)

			p, err := ir.Postings(ctx, name, value)
			require.NoError(t, err)
			wantRefs, err := index.ExpandPostings(p)
			require.NoError(t, err)
			require.Equal(t, wantRefs, got, "%s=%q", name, value)
			lists++
		}
		_, _, ok := h.PostingsRange(name, "\xff no such value")
		require.False(t, ok)
		_, _, ok = h.PostingsRange(name, "!")
		require.False(t, ok)
	}
	require.Len(t, ranges, lists, "every postings list was checked")
	_, _, ok := h.PostingsRange("no_such_label", "x")
	require.False(t, ok)
}

type realByteSlice []byte

func (b realByteSlice) Len() int                    { return len(b) }
func (b realByteSlice) Range(start, end int) []byte { return b[start:end] }

func TestBuildMatchesPrometheusReader(t *testing.T) {
	for _, numSeries := range []int{1, 40, 2000} {
		t.Run(fmt.Sprintf("series=%d", numSeries), func(t *testing.T) {
			f := newFixture(t, numSeries)
			ctx := context.Background()
			dir := t.TempDir()
			require.NoError(t, indexheader.Build(ctx, f.bkt, f.id, dir))
			require.FileExists(t, filepath.Join(dir, f.id.String(), indexheader.Filename))

			h, err := indexheader.Open(ctx, f.bkt, f.id, dir, indexheader.WithRebuildHook(func(ulid.ULID, error) {
				t.Error("a freshly built header was rebuilt")
			}))
			require.NoError(t, err)
			require.Zero(t, h.BucketBytes(), "loaded from disk, not the bucket")
			require.Equal(t, f.id, h.ID())
			requireMatchesIndex(t, f, h)
		})
	}
}

func TestBuildReadsSmallFractionOfIndex(t *testing.T) {
	for _, numSeries := range []int{2000, 20000} {
		t.Run(fmt.Sprintf("series=%d", numSeries), func(t *testing.T) {
			f := newFixture(t, numSeries)
			cb := &countingBucket{Bucket: f.bkt, t: t}
			h, err := indexheader.Open(context.Background(), cb, f.id, t.TempDir())
			require.NoError(t, err)

			read := cb.bytes.Load()
			require.Equal(t, read, h.BucketBytes())
			frac := float64(read) / float64(h.Size())
			t.Logf("series=%d: read %d of %d index bytes (%.1f%%) in %d ranged reads", numSeries, read, h.Size(), 100*frac, cb.ranges.Load())
			require.Less(t, frac, 0.5)
			require.Equal(t, int64(4), cb.ranges.Load())
		})
	}
}

func TestOpenRebuildsBadHeader(t *testing.T) {
	f := newFixture(t, 300)
	ctx := context.Background()
	other := newFixture(t, 3)
	otherDir := t.TempDir()
	require.NoError(t, indexheader.Build(ctx, other.bkt, other.id, otherDir))
	otherFile, err := os.ReadFile(filepath.Join(otherDir, other.id.String(), indexheader.Filename))
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		corrupt func(b []byte) []byte // nil removes the file
	}{
		{name: "missing"},
		{name: "empty", corrupt: func([]byte) []byte { return nil }},
		{name: "bad magic", corrupt: func(b []byte) []byte { b[0] ^= 0xff; return b }},
		{name: "flipped byte in symbols", corrupt: func(b []byte) []byte { b[100] ^= 0x01; return b }},
		{name: "flipped byte in postings table", corrupt: func(b []byte) []byte { b[len(b)-50] ^= 0x10; return b }},
		{name: "flipped checksum", corrupt: func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
		{name: "truncated to half", corrupt: func(b []byte) []byte { return b[:len(b)/2] }},
		{name: "truncated by one", corrupt: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "trailing garbage", corrupt: func(b []byte) []byte { return append(b, 0) }},
		{name: "header of another block", corrupt: func([]byte) []byte { return bytes.Clone(otherFile) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, f.id.String(), indexheader.Filename)
			require.NoError(t, indexheader.Build(ctx, f.bkt, f.id, dir))
			good, err := os.ReadFile(file)
			require.NoError(t, err)
			if tc.corrupt == nil {
				require.NoError(t, os.Remove(file))
			} else {
				require.NoError(t, os.WriteFile(file, tc.corrupt(bytes.Clone(good)), 0o644))
			}

			var reasons []error
			hook := indexheader.WithRebuildHook(func(id ulid.ULID, reason error) {
				require.Equal(t, f.id, id)
				reasons = append(reasons, reason)
			})
			h, err := indexheader.Open(ctx, f.bkt, f.id, dir, hook)
			require.NoError(t, err)
			require.Len(t, reasons, 1, "rebuilt once")
			if tc.corrupt == nil {
				require.ErrorIs(t, reasons[0], os.ErrNotExist)
			} else {
				require.ErrorIs(t, reasons[0], indexheader.ErrCorruptHeader)
			}
			require.Positive(t, h.BucketBytes())
			requireMatchesIndex(t, f, h)

			rebuilt, err := os.ReadFile(file)
			require.NoError(t, err)
			require.Equal(t, good, rebuilt, "the rebuilt file is the one Build writes")

			// Now the file is good again: no further rebuild.
			h, err = indexheader.Open(ctx, f.bkt, f.id, dir, hook)
			require.NoError(t, err)
			require.Len(t, reasons, 1)
			require.Zero(t, h.BucketBytes())
			entries, err := os.ReadDir(filepath.Dir(file))
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary files left behind")
		})
	}
}

func TestOpenConcurrently(t *testing.T) {
	f := newFixture(t, 100)
	dir := t.TempDir()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			h, err := indexheader.Open(context.Background(), f.bkt, f.id, dir)
			if !assertNoError(t, err) {
				return
			}
			if _, _, ok := h.PostingsRange("job", "job-1"); !ok {
				t.Error("job=job-1 not found")
			}
		})
	}
	wg.Wait()
	h, err := indexheader.Open(context.Background(), f.bkt, f.id, dir)
	require.NoError(t, err)
	requireMatchesIndex(t, f, h)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func TestBuildErrors(t *testing.T) {
	f := newFixture(t, 50)
	ctx := context.Background()
	indexObj := path.Join(f.id.String(), block.IndexFilename)
	raw, err := os.ReadFile(filepath.Join(f.blockDir, block.IndexFilename))
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		index func(b []byte) []byte // nil deletes the index
		want  error
	}{
		{name: "missing index", want: objstore.ErrNotFound},
		{name: "empty index", index: func([]byte) []byte { return nil }, want: indexheader.ErrCorruptIndex},
		{name: "truncated index", index: func(b []byte) []byte { return b[:len(b)/2] }, want: indexheader.ErrCorruptIndex},
		{name: "truncated by one", index: func(b []byte) []byte { return b[:len(b)-1] }, want: indexheader.ErrCorruptIndex},
		{name: "bad magic", index: func(b []byte) []byte { b[0] = 0; return b }, want: indexheader.ErrCorruptIndex},
		{name: "version 1", index: func(b []byte) []byte { b[4] = 1; return b }, want: indexheader.ErrUnsupportedVersion},
		{name: "bad TOC checksum", index: func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, want: indexheader.ErrCorruptIndex},
		{name: "bad symbol", index: func(b []byte) []byte { b[20] ^= 1; return b }, want: indexheader.ErrCorruptIndex},
		{name: "bad postings offset table", index: func(b []byte) []byte { b[len(b)-60] ^= 1; return b }, want: indexheader.ErrCorruptIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.index == nil {
				require.NoError(t, f.bkt.Delete(ctx, indexObj))
			} else {
				require.NoError(t, f.bkt.Upload(ctx, indexObj, bytes.NewReader(tc.index(bytes.Clone(raw)))))
			}
			t.Cleanup(func() { require.NoError(t, f.bkt.Upload(ctx, indexObj, bytes.NewReader(raw))) })

			dir := t.TempDir()
			err := indexheader.Build(ctx, f.bkt, f.id, dir)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, f.id.String(), "the error names the block")
			require.NoFileExists(t, filepath.Join(dir, f.id.String(), indexheader.Filename))

			_, err = indexheader.Open(ctx, f.bkt, f.id, dir)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, f.id.String())
		})
	}

	t.Run("missing block", func(t *testing.T) {
		id := ulid.MustNew(1, nil)
		_, err := indexheader.Open(ctx, f.bkt, id, t.TempDir())
		require.ErrorIs(t, err, objstore.ErrNotFound)
		require.ErrorContains(t, err, id.String())
	})
}
