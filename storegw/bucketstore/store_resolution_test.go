package bucketstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
)

// TestResolutionSelection serves one series m from three blocks of tenant t1:
//
//	1h   [0h, 10h)        count 120 per window
//	5m   [0h, 24h)        count 10 per window, chunks cut every 100 windows
//	raw  [20h15m, 26h15m) one sample every 30s
//
// and m from a raw block of tenant t2 over the same 6 hours. Every request
// must serve each instant of t1 from exactly one resolution, the coarsest
// allowed that has it, cutting chunks that cross from one resolution into the
// next; t2 is resolved on its own.
func TestResolutionSelection(t *testing.T) {
	ctx := context.Background()
	lset := metric("m")
	var (
		rawMint = bigMint + 20*hour + 15*60_000
		rawMaxt = rawMint + 6*hour
		end     = rawMaxt
	)
	bkt := newBucket(t)
	s := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
	t1, t2 := labels.FromStrings("tenant_id", "t1"), labels.FromStrings("tenant_id", "t2")
	for _, m := range []*block.Meta{
		upload(t, bkt, downsampledBlock(t, res1h, bigMint, bigMint+10*hour, []aggrSeries{uniform(lset, bigMint, res1h, 10, 100, 0, allAggregates...)}), t1),
		upload(t, bkt, downsampledBlock(t, res5m, bigMint, bigMint+24*hour, []aggrSeries{uniform(lset, bigMint, res5m, 24*12, 100, 0, allAggregates...)}), t1),
		upload(t, bkt, rawBlock(t, rawMint, rawMaxt, lset), t1),
		upload(t, bkt, rawBlock(t, rawMint, rawMaxt, lset), t2),
	} {
		require.NoError(t, s.Add(ctx, m))
	}
	client, _ := storeapitest.Serve(t, s, s)

	// span is what one resolution served: its sample count and time range.
	type span struct {
		n          int
		mint, maxt int64
	}
	cases := []struct {
		name   string
		maxRes int64
		// By source: "1h" and "5m" by the count aggregate's value, "raw".
		t1 map[string]span
	}{
		{
			name: "raw only", maxRes: block.ResolutionRaw,
			t1: map[string]span{"raw": {6 * 120, rawMint, rawMaxt - rawStep}},
		},
		{
			name: "5m, then raw", maxRes: res5m,
			t1: map[string]span{
				"5m":  {24 * 12, bigMint + res5m - 1, bigMint + 24*hour - 1},
				"raw": {(2*60 + 15) * 2, bigMint + 24*hour, rawMaxt - rawStep},
			},
		},
		{
			name: "between 5m and 1h", maxRes: 30 * 60_000,
			t1: map[string]span{
				"5m":  {24 * 12, bigMint + res5m - 1, bigMint + 24*hour - 1},
				"raw": {(2*60 + 15) * 2, bigMint + 24*hour, rawMaxt - rawStep},
			},
		},
		{
			name: "1h, then 5m, then raw", maxRes: res1h,
			t1: map[string]span{
				"1h":  {10, bigMint + res1h - 1, bigMint + 10*hour - 1},
				"5m":  {14 * 12, bigMint + 10*hour + res5m - 1, bigMint + 24*hour - 1},
				"raw": {(2*60 + 15) * 2, bigMint + 24*hour, rawMaxt - rawStep},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAll(t, client, &storepb.SeriesRequest{
				MinTime: bigMint, MaxTime: end, MaxResolutionWindow: c.maxRes,
				Matchers: []*storepb.LabelMatcher{eqMatcher("__name__", "m")},
			})
			require.NoError(t, err)
			series := bySeries(got)
			require.Len(t, series, 2)

			spans := map[string]span{}
			var last int64 = -1 << 62
			add := func(src string, ts int64) {
				sp, ok := spans[src]
				if !ok {
					sp = span{mint: ts, maxt: ts}
				}
				sp.n++
				sp.mint, sp.maxt = min(sp.mint, ts), max(sp.maxt, ts)
				spans[src] = sp
			}
			for _, ch := range series[`{__name__="m", tenant_id="t1"}`].GetChunks() {
				if ch.GetRaw() != nil {
					require.Equal(t, []string{"raw"}, fieldsSet(ch))
					smp := decode(t, ch.GetRaw())
					require.Greater(t, smp[0].T, last, "chunks overlap in time")
					require.Equal(t, smp[0].T, ch.GetMinTime())
					require.Equal(t, smp[len(smp)-1].T, ch.GetMaxTime())
					for _, x := range smp {
						add("raw", x.T)
					}
					last = smp[len(smp)-1].T
					continue
				}
				require.Equal(t, []string{"count", "sum"}, fieldsSet(ch), "default aggregates")
				counts, sums := decode(t, ch.GetCount()), decode(t, ch.GetSum())
				require.Len(t, sums, len(counts))
				require.Greater(t, counts[0].T, last, "chunks overlap in time")
				require.Equal(t, counts[0].T, ch.GetMinTime())
				require.Equal(t, counts[len(counts)-1].T, ch.GetMaxTime())
				for i, x := range counts {
					require.Equal(t, x.T, sums[i].T)
					switch x.V {
					case 120:
						add("1h", x.T)
					case 10:
						add("5m", x.T)
					default:
						t.Fatalf("count %v at %d", x.V, x.T)
					}
				}
				last = counts[len(counts)-1].T
			}
			require.Equal(t, c.t1, spans)

			// t2 only has raw data, whatever t1 has.
			n := 0
			for _, ch := range series[`{__name__="m", tenant_id="t2"}`].GetChunks() {
				require.Equal(t, []string{"raw"}, fieldsSet(ch))
				n += len(decode(t, ch.GetRaw()))
			}
			require.Equal(t, 6*120, n)
		})
	}
}
