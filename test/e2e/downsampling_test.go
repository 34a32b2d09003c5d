package e2e

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

// TestDownsamplingThroughQuerier compacts 22 days of 1-minute raw data in a real
// MinIO bucket until it has 5m blocks for all of it and 1h blocks for the first
// 14 days, then asks a querier over a store gateway the same range queries with
// max_source_resolution 0, 5m, 1h and auto. The downsampled answers must agree
// with the raw ones (and count_over_time shows the resolution each one read):
//
//   - min_over_time, max_over_time, sum_over_time and avg_over_time exactly (to
//     1e-9), since the query ranges are whole resolution windows and every window
//     holds the same number of raw samples;
//   - rate and increase within 1% where the range holds no counter reset, and
//     within one window's share of the range plus 1% where it does: a reset's
//     increase before the first window of the range is not visible at a coarser
//     resolution.
func TestDownsamplingThroughQuerier(t *testing.T) {
	ctx := context.Background()
	minio := miniotest.Start(t)
	bucketYAML := minio.NewBucketYAML(t, "downsampling")
	bkt, err := objstore.NewBucket(ctx, bucketYAML, nil, nil)
	require.NoError(t, err)

	g := genData{series: 5, step: 60_000, offset: 30_000}
	const fortnight = 14 * dayMs
	base := (time.Now().Add(-40*24*time.Hour).UnixMilli()/fortnight + 1) * fortnight
	end := base + 22*dayMs
	uploadGenBlocks(t, bkt, g, map[string]string{"tenant_id": "team-a"}, base, end, 2*dayMs)

	runCompact(t, bucketYAML)
	byRes := map[int64][][2]int64{}
	for _, m := range bucketBlocks(t, bkt) {
		r := m.Thanos.Downsample.Resolution
		byRes[r] = append(byRes[r], [2]int64{m.MinTime, m.MaxTime})
	}
	t.Logf("blocks by resolution: %v", byRes)
	require.Contains(t, byRes[block.Resolution1h], [2]int64{base, base + fortnight}, "the first 14 days have a 1h block")
	covered5m := int64(0)
	for _, r := range byRes[block.Resolution5m] {
		covered5m += r[1] - r[0]
	}
	require.Equal(t, end-base, covered5m, "every day has 5m data")

	storeGRPC, storeHTTP, queryHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	store := startProcess(t, "strata store", strataBin, "store",
		"--objstore.config="+string(bucketYAML), "--data-dir="+t.TempDir(),
		"--grpc-address="+storeGRPC, "--http-address="+storeHTTP, "--consistency-delay=0s")
	waitHTTP(t, store, "http://"+storeHTTP+"/-/ready", time.Minute)
	query := startProcess(t, "strata query", strataBin, "query",
		"--endpoint="+storeGRPC, "--endpoint.info-interval=200ms", "--http-address="+queryHTTP)
	qURL := "http://" + queryHTTP
	waitHTTP(t, query, qURL+"/-/ready", time.Minute)
	require.Eventually(t, func() bool {
		res, err := fetchQuery(ctx, qURL, "/api/v1/query", url.Values{"query": {"gen_gauge"}, "time": {formatMillis(base + dayMs)}})
		return err == nil && len(res.series) == g.series
	}, time.Minute, 200*time.Millisecond, "the querier finds the store gateway's data")

	// resetIn reports whether a counter of g resets in (from, to].
	resetIn := func(from, to int64) bool {
		period := 2000 * g.step
		return to/period > from/period
	}
	type period struct {
		name       string
		start, end int64
		resolution string
		res        int64
	}
	periods := []period{
		{"1h over the first fortnight", base + dayMs, base + 13*dayMs, "1h", block.Resolution1h},
		{"5m over the first fortnight", base + dayMs, base + 13*dayMs, "5m", block.Resolution5m},
		{"auto (step/5) over the last week", base + 15*dayMs, base + 21*dayMs, "auto", block.Resolution5m},
		{"1h falls back to 5m over the last week", base + 15*dayMs, base + 21*dayMs, "1h", block.Resolution5m},
	}
	for _, p := range periods {
		t.Run(p.name, func(t *testing.T) {
			rng := 12 * p.res // twelve windows per range
			rangeSel := fmt.Sprintf("[%dm]", rng/60_000)
			exprs := []struct {
				expr    string
				counter bool
			}{
				{"rate(gen_counter_total" + rangeSel + ")", true},
				{"increase(gen_counter_total" + rangeSel + ")", true},
				{"min_over_time(gen_gauge" + rangeSel + ")", false},
				{"max_over_time(gen_gauge" + rangeSel + ")", false},
				{"sum_over_time(gen_gauge" + rangeSel + ")", false},
				{"avg_over_time(gen_gauge" + rangeSel + ")", false},
			}
			// count_over_time counts the points it reads, which tells the
			// resolution served: one per window, against one per raw sample.
			countParams := url.Values{"query": {"count_over_time(gen_gauge" + rangeSel + ")"}, "start": {formatMillis(p.start)},
				"end": {formatMillis(p.end)}, "step": {"3600"}, "max_source_resolution": {"0s"}}
			for _, c := range []struct {
				resolution string
				want       float64
			}{{"0s", float64(rng / g.step)}, {p.resolution, 12}} {
				countParams.Set("max_source_resolution", c.resolution)
				res := queryResult(t, qURL, "/api/v1/query_range", countParams)
				require.Len(t, res.series, g.series)
				for _, s := range res.series {
					for _, pt := range s.points {
						require.Equal(t, c.want, pt.f, "points per range at max_source_resolution=%s, %s at %s", c.resolution, s.labels, formatMillis(pt.t))
					}
				}
			}
			for _, e := range exprs {
				params := url.Values{"query": {e.expr}, "start": {formatMillis(p.start)}, "end": {formatMillis(p.end)},
					"step": {"3600"}, "max_source_resolution": {"0s"}}
				raw := queryResult(t, qURL, "/api/v1/query_range", params)
				params.Set("max_source_resolution", p.resolution)
				down := queryResult(t, qURL, "/api/v1/query_range", params)
				require.Len(t, raw.series, g.series, e.expr)
				require.Len(t, down.series, len(raw.series), e.expr)
				points, resets, worst := 0, 0, 0.0
				for i, rs := range raw.series {
					ds := down.series[i]
					require.Equal(t, rs.labels, ds.labels, e.expr)
					require.Len(t, ds.points, len(rs.points), "%s %s", e.expr, rs.labels)
					for j, rp := range rs.points {
						dp := ds.points[j]
						require.Equal(t, rp.t, dp.t)
						rel := math.Abs(rp.f-dp.f) / math.Max(math.Abs(rp.f), 1e-12)
						tol := 1e-9
						if e.counter {
							tol = 0.01
							if resetIn(rp.t-rng, rp.t) {
								tol += float64(p.res) / float64(rng)
								resets++
							}
						}
						require.LessOrEqual(t, rel, tol, "%s of %s at %s: raw %v, %s %v", e.expr, rs.labels,
							formatMillis(rp.t), rp.f, p.resolution, dp.f)
						worst = math.Max(worst, rel)
						points++
					}
				}
				t.Logf("%-40s %5d points (%d with a reset in range), max relative difference %s", e.expr, points, resets,
					strconv.FormatFloat(worst, 'e', 2, 64))
			}
		})
	}
}
