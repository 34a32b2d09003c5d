package bucketstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

func TestSelectBlocks(t *testing.T) {
	const (
		raw = block.ResolutionRaw
		m5  = block.Resolution5m
		h1  = block.Resolution1h
	)
	type b struct {
		name       string
		tenant     string
		res        int64
		mint, maxt int64 // maxt exclusive, as in meta.json
	}
	cases := []struct {
		name       string
		blocks     []b
		mint, maxt int64
		maxRes     int64
		want       []string // "name [mint,maxt] ..." in the result's order
	}{
		{
			name:   "only raw",
			blocks: []b{{name: "r1", mint: 0, maxt: 100}, {name: "r2", mint: 100, maxt: 200}},
			mint:   0, maxt: 199, maxRes: h1,
			want: []string{"r1 [0,99]", "r2 [100,199]"},
		},
		{
			name:   "only 5m accepted",
			blocks: []b{{name: "d", res: m5, mint: 0, maxt: 200}},
			mint:   0, maxt: 199, maxRes: h1,
			want: []string{"d [0,199]"},
		},
		{
			name:   "only 5m but raw requested",
			blocks: []b{{name: "d", res: m5, mint: 0, maxt: 200}},
			mint:   0, maxt: 199, maxRes: raw,
		},
		{
			name:   "raw requested while 5m covers the same range",
			blocks: []b{{name: "r", mint: 0, maxt: 200}, {name: "d", res: m5, mint: 0, maxt: 200}},
			mint:   0, maxt: 199, maxRes: raw,
			want: []string{"r [0,199]"},
		},
		{
			name: "5m where it exists, raw after it",
			blocks: []b{
				{name: "r1", mint: 0, maxt: 100}, {name: "r2", mint: 100, maxt: 200}, {name: "r3", mint: 200, maxt: 300},
				{name: "d", res: m5, mint: 0, maxt: 200},
			},
			mint: 0, maxt: 299, maxRes: m5,
			want: []string{"d [0,199]", "r3 [200,299]"},
		},
		{
			name: "1h, then 5m, then raw",
			blocks: []b{
				{name: "h", res: h1, mint: 0, maxt: 100},
				{name: "d", res: m5, mint: 0, maxt: 200},
				{name: "r", mint: 0, maxt: 300},
			},
			mint: 0, maxt: 299, maxRes: h1,
			want: []string{"h [0,99]", "d [100,199]", "r [200,299]"},
		},
		{
			name: "window between resolutions takes the finer",
			blocks: []b{
				{name: "h", res: h1, mint: 0, maxt: 100},
				{name: "d", res: m5, mint: 0, maxt: 200},
				{name: "r", mint: 0, maxt: 300},
			},
			mint: 0, maxt: 299, maxRes: 10 * 60 * 1000,
			want: []string{"d [0,199]", "r [200,299]"},
		},
		{
			name: "gap between downsampled blocks filled with raw",
			blocks: []b{
				{name: "d1", res: m5, mint: 0, maxt: 100}, {name: "d2", res: m5, mint: 200, maxt: 300},
				{name: "r", mint: 0, maxt: 300},
			},
			mint: 0, maxt: 299, maxRes: h1,
			want: []string{"d1 [0,99]", "r [100,199]", "d2 [200,299]"},
		},
		{
			name: "gap nobody covers",
			blocks: []b{
				{name: "d", res: m5, mint: 0, maxt: 100}, {name: "r", mint: 200, maxt: 300},
			},
			mint: 0, maxt: 299, maxRes: h1,
			want: []string{"d [0,99]", "r [200,299]"},
		},
		{
			name: "partial overlaps with raw on both sides",
			blocks: []b{
				{name: "r1", mint: 0, maxt: 100}, {name: "r2", mint: 100, maxt: 200},
				{name: "d", res: m5, mint: 50, maxt: 150},
			},
			mint: 0, maxt: 199, maxRes: m5,
			want: []string{"r1 [0,49]", "d [50,149]", "r2 [150,199]"},
		},
		{
			name: "coarse block in the middle of a finer one",
			blocks: []b{
				{name: "d", res: m5, mint: 0, maxt: 100}, {name: "h", res: h1, mint: 40, maxt: 60},
			},
			mint: 0, maxt: 99, maxRes: h1,
			want: []string{"d [0,39] [60,99]", "h [40,59]"},
		},
		{
			name: "query inside the range",
			blocks: []b{
				{name: "r1", mint: 0, maxt: 100}, {name: "r2", mint: 100, maxt: 200}, {name: "r3", mint: 200, maxt: 300},
				{name: "d", res: m5, mint: 0, maxt: 200},
			},
			mint: 120, maxt: 250, maxRes: h1,
			want: []string{"d [120,199]", "r3 [200,250]"},
		},
		{
			name: "overlapping blocks of one resolution both serve",
			blocks: []b{
				{name: "r1", mint: 0, maxt: 100}, {name: "r2", mint: 50, maxt: 150},
				{name: "d", res: m5, mint: 0, maxt: 60},
			},
			mint: 0, maxt: 149, maxRes: m5,
			want: []string{"d [0,59]", "r1 [60,99]", "r2 [60,149]"},
		},
		{
			name: "external label sets are resolved alone",
			blocks: []b{
				{name: "a-raw", tenant: "a", mint: 0, maxt: 200}, {name: "a-5m", tenant: "a", res: m5, mint: 0, maxt: 100},
				{name: "b-raw", tenant: "b", mint: 0, maxt: 200},
				{name: "c-5m", tenant: "c", res: m5, mint: 100, maxt: 200},
			},
			mint: 0, maxt: 199, maxRes: m5,
			want: []string{"a-5m [0,99]", "b-raw [0,199]", "a-raw [100,199]", "c-5m [100,199]"},
		},
		{
			name:   "no block in range",
			blocks: []b{{name: "r", mint: 0, maxt: 100}},
			mint:   100, maxt: 199, maxRes: h1,
		},
		{
			name:   "empty request range",
			blocks: []b{{name: "r", mint: 0, maxt: 100}},
			mint:   50, maxt: 40, maxRes: h1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			names := map[ulid.ULID]string{}
			var metas []*block.Meta
			for i, bl := range c.blocks {
				m := &block.Meta{}
				m.ULID = ulid.MustNew(uint64(i+1), nil)
				m.MinTime, m.MaxTime = bl.mint, bl.maxt
				m.Thanos.Downsample.Resolution = bl.res
				m.Thanos.Labels = map[string]string{"replica": "r0"}
				if bl.tenant != "" {
					m.Thanos.Labels["tenant_id"] = bl.tenant
				}
				names[m.ULID] = bl.name
				metas = append(metas, m)
			}
			var got []string
			for _, s := range selectBlocks(metas, c.mint, c.maxt, c.maxRes) {
				var rs []string
				for _, r := range s.ranges {
					rs = append(rs, fmt.Sprintf("[%d,%d]", r.mint, r.maxt))
				}
				got = append(got, names[s.meta.ULID]+" "+strings.Join(rs, " "))
			}
			require.Equal(t, c.want, got)
		})
	}
}
