package bucketstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

func TestFetchParts(t *testing.T) {
	const size = 64 << 10
	obj := make([]byte, size)
	for i := range obj {
		obj[i] = byte(i * 7)
	}
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(context.Background(), "obj", bytes.NewReader(obj)))

	cases := []struct {
		name         string
		size         int64 // the size the caller believes the object has
		parts        []part
		wantRequests int64
		wantBytes    int64
		wantErr      error
	}{
		{name: "one part", size: size, parts: []part{{off: 100, end: 200}}, wantRequests: 1, wantBytes: 100},
		{name: "overlapping parts share a read", size: size, parts: []part{{off: 100, end: 612}, {off: 400, end: 912}}, wantRequests: 1, wantBytes: 812},
		{name: "parts within the gap share a read", size: size, parts: []part{{off: 0, end: 100}, {off: 100 + maxGap, end: 200 + maxGap}}, wantRequests: 1, wantBytes: 200 + maxGap},
		{name: "parts beyond the gap are read apart", size: size, parts: []part{{off: 0, end: 100}, {off: 101 + maxGap, end: 201 + maxGap}}, wantRequests: 2, wantBytes: 200},
		{name: "unsorted parts", size: size, parts: []part{{off: 30000, end: 30010}, {off: 10, end: 20}, {off: 30005, end: 30020}}, wantRequests: 2, wantBytes: 30},
		{name: "parts are clipped to the object", size: size, parts: []part{{off: size - 10, end: size + 500}}, wantRequests: 1, wantBytes: 10},
		{name: "a shorter object is truncated", size: size + 100, parts: []part{{off: size - 10, end: size + 50}}, wantErr: ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMetrics(nil)
			mb := &meteredBucket{BucketReader: bkt, m: m}
			for i := range c.parts {
				c.parts[i].id = i
			}
			want := map[int][]byte{}
			for _, p := range c.parts {
				want[p.id] = obj[p.off:min(p.end, size)]
			}
			got := map[int][]byte{}
			err := fetchParts(context.Background(), mb, "obj", c.size, c.parts, func(p part, data []byte) error {
				got[p.id] = data
				return nil
			})
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, c.wantRequests, m.requests.Load())
			require.Equal(t, c.wantBytes, m.bytes.Load())
		})
	}
}

// openTestBlock uploads a small real block and opens it.
func openTestBlock(t testing.TB) (*Block, objstore.Bucket) {
	t.Helper()
	dir := t.TempDir()
	id := blocktest.Create(t, dir, 0, 2*60*60*1000, 20)
	m, err := block.ReadMetaFromDir(filepath.Join(dir, id.String()))
	require.NoError(t, err)
	m.Thanos.Labels = map[string]string{"tenant_id": "t"}
	m.Thanos.Source = block.SourceTest
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, block.Upload(context.Background(), nil, bkt, filepath.Join(dir, id.String()), m))
	m, err = block.ReadMetaFromBucket(context.Background(), bkt, id)
	require.NoError(t, err)
	b, err := OpenBlock(context.Background(), bkt, m, t.TempDir(), nil)
	require.NoError(t, err)
	return b, bkt
}

// FuzzDecodeSeries feeds series entry bodies to the decoder, seeded with the
// real entries of a block: it must never panic.
func FuzzDecodeSeries(f *testing.F) {
	b, _ := openTestBlock(f)
	ctx := context.Background()
	refs, err := b.postings(ctx, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "series", ".+")})
	require.NoError(f, err)
	require.NotEmpty(f, refs)
	for _, ref := range refs[:3] {
		raw, err := readRange(ctx, b.bkt, b.indexName(), int64(ref)*16, seriesWindow)
		require.NoError(f, err)
		l, n := binary.Uvarint(raw)
		f.Add(raw[n : n+int(l)])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := b.decodeSeries(body)
		if err == nil {
			require.Positive(t, e.lset.Len()+len(e.chunks)+1)
		}
	})
}

// FuzzChunkProto feeds chunk bytes of every encoding to the converter, seeded
// with a real chunk: it must never panic.
func FuzzChunkProto(f *testing.F) {
	b, bkt := openTestBlock(f)
	ctx := context.Background()
	refs, err := b.postings(ctx, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "series", "3")})
	require.NoError(f, err)
	entries, err := b.readSeries(ctx, refs)
	require.NoError(f, err)
	_, off := chunks.BlockChunkRef(entries[0].chunks[0].Ref).Unpack()
	seg := b.segments[0]
	raw, err := readRange(ctx, bkt, path.Join(b.meta.ULID.String(), seg.RelPath), int64(off), min(4096, seg.SizeBytes-int64(off)))
	require.NoError(f, err)
	l, n := binary.Uvarint(raw)
	for enc := range byte(6) {
		f.Add(enc, raw[n+1:n+1+int(l)])
	}
	f.Fuzz(func(t *testing.T, enc byte, data []byte) {
		c, err := chunkProto(enc, data)
		if err == nil && c == nil {
			t.Fatal(errors.New("nil chunk without an error"))
		}
	})
}
