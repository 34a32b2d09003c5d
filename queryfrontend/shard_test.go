package queryfrontend

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/queryshard"
)

// requireSameResponse compares responses with floats by bits, so that -0 is
// not 0, except that any NaN equals any NaN.
func requireSameResponse(t *testing.T, want, got Response) {
	t.Helper()
	require.Len(t, got.Series, len(want.Series), "got %v", got)
	for i, ws := range want.Series {
		gs := got.Series[i]
		require.Equal(t, ws.Labels, gs.Labels)
		require.Len(t, gs.Points, len(ws.Points), "%s: got %v", ws.Labels, gs.Points)
		for k, wp := range ws.Points {
			gp := gs.Points[k]
			require.Equal(t, wp.T, gp.T, "%s", ws.Labels)
			if !math.IsNaN(wp.V) || !math.IsNaN(gp.V) {
				require.Equal(t, math.Float64bits(wp.V), math.Float64bits(gp.V), "%s at %d: want %v, got %v", ws.Labels, wp.T, wp.V, gp.V)
			}
			require.Equal(t, wp.H, gp.H)
		}
	}
}

func TestCombineShards(t *testing.T) {
	a := labels.FromStrings("handler", "a")
	b := labels.FromStrings("handler", "b")
	h := json.RawMessage(`{"count":"3","sum":"1.5"}`)
	nan := math.NaN()
	combine := func(c queryshard.Combiner) queryshard.Plan {
		return queryshard.Plan{Mode: queryshard.ModeCombine, Combiner: c}
	}
	// Two shards: a in both, at partly different times; b in the second.
	shards := func(va1, va2 float64) []Response {
		return []Response{
			{Series: []Series{{Labels: a, Points: []Point{fp(10, 1), fp(20, va1)}}}},
			{Series: []Series{
				{Labels: b, Points: []Point{fp(10, 7)}},
				{Labels: a, Points: []Point{fp(20, va2), fp(30, 4)}},
			}},
		}
	}
	for _, tc := range []struct {
		name   string
		plan   queryshard.Plan
		in     []Response
		want   Response
		wantOK bool
	}{
		{
			name: "sum adds at equal times", plan: combine(queryshard.CombineSum), in: shards(2, 3), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, 5), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "max", plan: combine(queryshard.CombineMax), in: shards(2, 3), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, 3), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "max: NaN loses, either side", plan: combine(queryshard.CombineMax), in: append(shards(nan, -1), shards(-2, nan)...), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, -1), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "max: NaN only", plan: combine(queryshard.CombineMax), in: shards(nan, nan), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, nan), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "min: NaN loses, either side", plan: combine(queryshard.CombineMin), in: append(shards(nan, 5), shards(6, nan)...), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, 5), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "sum: infinities", plan: combine(queryshard.CombineSum), in: shards(math.Inf(1), math.Inf(-1)), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, nan), fp(30, 4)}},
				{Labels: b, Points: []Point{fp(10, 7)}},
			}},
		},
		{
			name: "group is 1", plan: combine(queryshard.CombineGroup), in: shards(1, 1), wantOK: true,
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, 1), fp(30, 1)}},
				{Labels: b, Points: []Point{fp(10, 1)}},
			}},
		},
		{
			name: "union merges", plan: queryshard.Plan{Mode: queryshard.ModeUnion, By: true, Labels: []string{"handler"}}, wantOK: true,
			in: []Response{
				{Series: []Series{{Labels: b, Points: []Point{fp(10, 2), {T: 20, H: h}}}}},
				{Series: []Series{{Labels: a, Points: []Point{fp(10, 1)}}}},
			},
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1)}},
				{Labels: b, Points: []Point{fp(10, 2), {T: 20, H: h}}},
			}},
		},
		{
			name: "empty series and shards", plan: combine(queryshard.CombineSum), wantOK: true,
			in:   []Response{{}, {Series: []Series{{Labels: a}}}},
			want: Response{},
		},
		{
			name: "histogram in a combine", plan: combine(queryshard.CombineSum),
			in: []Response{{Series: []Series{{Labels: a, Points: []Point{fp(10, 1)}}}}, {Series: []Series{{Labels: b, Points: []Point{{T: 10, H: h}}}}}},
		},
		{name: "no plan", in: shards(1, 2)},
		{name: "unknown combiner", plan: queryshard.Plan{Mode: queryshard.ModeCombine}, in: shards(1, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopyResponses(tc.in)
			got, ok := CombineShards(tc.plan, tc.in)
			require.Equal(t, tc.wantOK, ok)
			if ok {
				requireSameResponse(t, tc.want, got)
			}
			requireSameResponses(t, before, tc.in)
		})
	}
}

func deepCopyResponses(in []Response) []Response {
	out := make([]Response, len(in))
	for i, r := range in {
		for _, s := range r.Series {
			out[i].Series = append(out[i].Series, Series{Labels: s.Labels, Points: append([]Point(nil), s.Points...)})
		}
	}
	return out
}

func requireSameResponses(t *testing.T, want, got []Response) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		requireSameResponse(t, want[i], got[i])
	}
}
