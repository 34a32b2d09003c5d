package querier

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storeapi/storepb"
)

func TestDedupChunksAggregates(t *testing.T) {
	sub := func(data string, hash uint64) *storepb.Chunk {
		return &storepb.Chunk{Type: storepb.Chunk_XOR, Data: []byte(data), Hash: hash}
	}
	avg := func(count, sum *storepb.Chunk) *storepb.AggrChunk {
		return &storepb.AggrChunk{MinTime: 10, MaxTime: 20, Count: count, Sum: sum}
	}
	for _, tc := range []struct {
		name   string
		chunks []*storepb.AggrChunk
		want   []int // indexes of the chunks kept
	}{
		{
			name:   "identical aggregates kept once",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), sub("s", 2)), avg(sub("c", 1), sub("s", 2))},
			want:   []int{0},
		},
		{
			name:   "same count, other sum",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), sub("s", 2)), avg(sub("c", 1), sub("t", 3))},
			want:   []int{0, 1},
		},
		{
			name:   "equal hashes, other bytes",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), sub("s", 2)), avg(sub("c", 1), sub("t", 2))},
			want:   []int{0, 1},
		},
		{
			name:   "one aggregate more",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), nil), avg(sub("c", 1), sub("s", 2))},
			want:   []int{0, 1},
		},
		{
			name: "same bytes in another field",
			chunks: []*storepb.AggrChunk{
				{MinTime: 10, MaxTime: 20, Count: sub("x", 1)},
				{MinTime: 10, MaxTime: 20, Sum: sub("x", 1)},
				{MinTime: 10, MaxTime: 20, Raw: sub("x", 1)},
			},
			want: []int{0, 1, 2},
		},
		{
			name:   "other time range",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), sub("s", 2)), {MinTime: 10, MaxTime: 21, Count: sub("c", 1), Sum: sub("s", 2)}},
			want:   []int{0, 1},
		},
		{
			name:   "no hash",
			chunks: []*storepb.AggrChunk{avg(sub("c", 1), sub("s", 0)), avg(sub("c", 1), sub("s", 0))},
			want:   []int{0, 1},
		},
		{
			name:   "identical raw kept once",
			chunks: []*storepb.AggrChunk{{MinTime: 1, MaxTime: 2, Raw: sub("r", 7)}, {MinTime: 1, MaxTime: 2, Raw: sub("r", 7)}},
			want:   []int{0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []*storepb.AggrChunk
			for _, i := range tc.want {
				want = append(want, tc.chunks[i])
			}
			s := &mergedSeries{chunks: append([]*storepb.AggrChunk(nil), tc.chunks...)}
			dedupChunks(s)
			require.Len(t, s.chunks, len(want))
			for i := range want {
				require.Same(t, want[i], s.chunks[i])
			}
		})
	}
}

func TestAggrReadFor(t *testing.T) {
	for fn, want := range map[string][]storepb.Aggr{
		"rate":               {storepb.Aggr_COUNTER},
		"increase":           {storepb.Aggr_COUNTER},
		"irate":              {storepb.Aggr_COUNTER},
		"resets":             {storepb.Aggr_COUNTER},
		"min_over_time":      {storepb.Aggr_MIN},
		"min":                {storepb.Aggr_MIN},
		"max_over_time":      {storepb.Aggr_MAX},
		"max":                {storepb.Aggr_MAX},
		"sum_over_time":      {storepb.Aggr_SUM},
		"count_over_time":    {storepb.Aggr_COUNT},
		"present_over_time":  {storepb.Aggr_COUNT},
		"count":              {storepb.Aggr_COUNT},
		"group":              {storepb.Aggr_COUNT},
		"avg_over_time":      {storepb.Aggr_COUNT, storepb.Aggr_SUM},
		"sum":                {storepb.Aggr_COUNT, storepb.Aggr_SUM},
		"count_values":       {storepb.Aggr_COUNT, storepb.Aggr_SUM},
		"delta":              {storepb.Aggr_COUNT, storepb.Aggr_SUM},
		"quantile_over_time": {storepb.Aggr_COUNT, storepb.Aggr_SUM},
		"":                   {storepb.Aggr_COUNT, storepb.Aggr_SUM},
	} {
		require.Equal(t, want, aggrReadFor(fn).aggregates(), "func %q", fn)
	}
}
