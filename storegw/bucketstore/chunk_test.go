package bucketstore

import (
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// TestTrimChunk cuts chunks of every wire encoding to ranges and checks the
// samples left.
func TestTrimChunk(t *testing.T) {
	const n = 10
	build := func(t *testing.T, enc chunkenc.Encoding, gauge bool) *storepb.Chunk {
		c, err := chunkenc.NewEmptyChunk(enc)
		require.NoError(t, err)
		app, err := c.Appender()
		require.NoError(t, err)
		for i := range int64(n) {
			switch enc {
			case chunkenc.EncXOR:
				app.Append(0, i*10, float64(i))
			case chunkenc.EncHistogram:
				h := tsdbutil.GenerateTestHistogram(i)
				if gauge {
					h = tsdbutil.GenerateTestGaugeHistogram(n - i)
				}
				next, _, a, err := app.AppendHistogram(nil, 0, i*10, h, true)
				require.NoError(t, err)
				require.Nil(t, next)
				app = a
			case chunkenc.EncFloatHistogram:
				next, _, a, err := app.AppendFloatHistogram(nil, 0, i*10, tsdbutil.GenerateTestFloatHistogram(i), true)
				require.NoError(t, err)
				require.Nil(t, next)
				app = a
			}
		}
		pc, err := storeapi.ChunkToProto(c)
		require.NoError(t, err)
		return pc
	}
	// times returns the sample times of c and checks their values are those
	// written at those times.
	times := func(t *testing.T, c *storepb.Chunk, want *storepb.Chunk) []int64 {
		enc := map[storepb.Chunk_Encoding]chunkenc.Encoding{storepb.Chunk_XOR: chunkenc.EncXOR, storepb.Chunk_HISTOGRAM: chunkenc.EncHistogram, storepb.Chunk_FLOAT_HISTOGRAM: chunkenc.EncFloatHistogram}[c.GetType()]
		got, err := chunkenc.FromData(enc, c.GetData())
		require.NoError(t, err)
		orig, err := chunkenc.FromData(enc, want.GetData())
		require.NoError(t, err)
		all := map[int64]string{}
		it := orig.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			all[it.AtT()] = sampleString(it, vt)
		}
		var out []int64
		it = got.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			require.Equal(t, all[it.AtT()], sampleString(it, vt), "sample at %d", it.AtT())
			out = append(out, it.AtT())
		}
		require.NoError(t, it.Err())
		return out
	}
	encs := []struct {
		name  string
		enc   chunkenc.Encoding
		gauge bool
	}{
		{name: "xor", enc: chunkenc.EncXOR},
		{name: "histogram", enc: chunkenc.EncHistogram},
		{name: "gauge histogram", enc: chunkenc.EncHistogram, gauge: true},
		{name: "float histogram", enc: chunkenc.EncFloatHistogram},
	}
	cases := []struct {
		name       string
		ranges     []interval
		want       []int64 // nil: nothing left
		mint, maxt int64
	}{
		{name: "head", ranges: []interval{{math.MinInt64, 25}}, want: []int64{0, 10, 20}, mint: 0, maxt: 20},
		{name: "tail", ranges: []interval{{70, math.MaxInt64}}, want: []int64{70, 80, 90}, mint: 70, maxt: 90},
		{name: "hole", ranges: []interval{{math.MinInt64, 10}, {80, math.MaxInt64}}, want: []int64{0, 10, 80, 90}, mint: 0, maxt: 90},
		{name: "nothing", ranges: []interval{{31, 39}}},
	}
	for _, e := range encs {
		for _, c := range cases {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				orig := build(t, e.enc, e.gauge)
				got, mint, maxt, err := trimChunk(orig, 0, 90, c.ranges)
				require.NoError(t, err)
				if c.want == nil {
					require.Nil(t, got)
					return
				}
				require.Equal(t, orig.GetType(), got.GetType())
				require.Equal(t, c.want, times(t, got, orig))
				require.Equal(t, c.mint, mint)
				require.Equal(t, c.maxt, maxt)
			})
		}
	}

	_, _, _, err := trimChunk(&storepb.Chunk{Type: storepb.Chunk_XOR, Data: []byte{0, 5, 1}}, 0, 1, []interval{{0, 0}})
	require.Error(t, err, "a chunk shorter than its sample count says")
}

func sampleString(it chunkenc.Iterator, vt chunkenc.ValueType) string {
	switch vt {
	case chunkenc.ValFloat:
		_, v := it.At()
		return fmt.Sprint(v)
	case chunkenc.ValHistogram:
		_, h := it.AtHistogram(nil)
		return h.String()
	case chunkenc.ValFloatHistogram:
		_, h := it.AtFloatHistogram(nil)
		return h.String()
	}
	return vt.String()
}
