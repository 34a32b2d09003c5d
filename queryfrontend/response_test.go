package queryfrontend

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func fp(t int64, v float64) Point { return Point{T: t, V: v} }

func TestMerge(t *testing.T) {
	a := labels.FromStrings("__name__", "up", "job", "a")
	b := labels.FromStrings("__name__", "up", "job", "b")
	h := json.RawMessage(`{"count":"3","sum":"1.5"}`)
	for _, tc := range []struct {
		name string
		in   []Response
		want Response
	}{
		{name: "nothing", in: nil, want: Response{}},
		{
			name: "series sorted and concatenated in time order",
			in: []Response{
				{Series: []Series{{Labels: b, Points: []Point{fp(30, 3)}}, {Labels: a, Points: []Point{fp(20, 2)}}}},
				{Series: []Series{{Labels: a, Points: []Point{fp(10, 1)}}}},
			},
			want: Response{Series: []Series{
				{Labels: a, Points: []Point{fp(10, 1), fp(20, 2)}},
				{Labels: b, Points: []Point{fp(30, 3)}},
			}},
		},
		{
			name: "duplicate time keeps the later argument",
			in: []Response{
				{Series: []Series{{Labels: a, Points: []Point{fp(10, 1), fp(20, 2)}}}},
				{Series: []Series{{Labels: a, Points: []Point{fp(20, 5), {T: 30, H: h}}}}},
			},
			want: Response{Series: []Series{{Labels: a, Points: []Point{fp(10, 1), fp(20, 5), {T: 30, H: h}}}}},
		},
		{
			name: "series without points dropped",
			in:   []Response{{Series: []Series{{Labels: a}, {Labels: b, Points: []Point{fp(1, 1)}}}}},
			want: Response{Series: []Series{{Labels: b, Points: []Point{fp(1, 1)}}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Merge(tc.in...))
		})
	}
}

func TestMergeDoesNotModifyArguments(t *testing.T) {
	a := labels.FromStrings("job", "a")
	in := Response{Series: []Series{{Labels: a, Points: []Point{fp(20, 2), fp(10, 1)}}}}
	Merge(in, in)
	require.Equal(t, []Point{fp(20, 2), fp(10, 1)}, in.Series[0].Points)
}

func TestTrim(t *testing.T) {
	a := labels.FromStrings("job", "a")
	b := labels.FromStrings("job", "b")
	r := Response{Series: []Series{
		{Labels: a, Points: []Point{fp(10, 1), fp(20, 2), fp(30, 3)}},
		{Labels: b, Points: []Point{fp(40, 4)}},
	}}
	require.Equal(t, Response{Series: []Series{{Labels: a, Points: []Point{fp(20, 2), fp(30, 3)}}}}, trim(r, 15, 30))
	require.Equal(t, Response{}, trim(r, 31, 39))
	require.Equal(t, r, trim(r, 10, 40))
}
