package queryfrontend

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAlign(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         Request
		start, end int64
		err        error
	}{
		{name: "already aligned", in: Request{Start: 60_000, End: 120_000, Step: time.Minute}, start: 60_000, end: 120_000},
		{name: "widened", in: Request{Start: 61_000, End: 119_000, Step: time.Minute}, start: 60_000, end: 120_000},
		{name: "negative times floor", in: Request{Start: -61_000, End: -1, Step: time.Minute}, start: -120_000, end: 0},
		{name: "single point", in: Request{Start: 30_000, End: 30_000, Step: 15 * time.Second}, start: 30_000, end: 30_000},
		{name: "zero step", in: Request{Start: 0, End: 1, Step: 0}, err: ErrInvalidStep},
		{name: "sub-millisecond step", in: Request{Start: 0, End: 1, Step: 1500 * time.Microsecond}, err: ErrInvalidStep},
		{name: "end before start", in: Request{Start: 10, End: 9, Step: time.Millisecond}, err: ErrInvalidRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Align(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.start, got.Start)
			require.Equal(t, tc.end, got.End)
		})
	}
}

func TestSplitErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       Request
		interval time.Duration
		err      error
	}{
		{name: "not aligned", in: Request{Start: 1, End: 60_000, Step: time.Minute}, interval: time.Hour, err: ErrNotAligned},
		{name: "zero interval", in: Request{Start: 0, End: 60_000, Step: time.Minute}, interval: 0, err: ErrInvalidInterval},
		{name: "bad step", in: Request{Start: 0, End: 60_000, Step: -time.Minute}, interval: time.Hour, err: ErrInvalidStep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Split(tc.in, tc.interval)
			require.ErrorIs(t, err, tc.err)
		})
	}
}

func TestSplitByUTCDay(t *testing.T) {
	start := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	end := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC)
	subs, err := Split(Request{Query: "up", Start: start.UnixMilli(), End: end.UnixMilli(), Step: time.Hour, Tenant: "a"}, 24*time.Hour)
	require.NoError(t, err)
	day := func(d, h int) int64 { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC).UnixMilli() }
	require.Equal(t, []Request{
		{Query: "up", Start: day(1, 22), End: day(1, 23), Step: time.Hour, Tenant: "a"},
		{Query: "up", Start: day(2, 0), End: day(2, 23), Step: time.Hour, Tenant: "a"},
		{Query: "up", Start: day(3, 0), End: day(3, 1), Step: time.Hour, Tenant: "a"},
	}, subs)
}

// points lists the evaluation times of a request.
func points(r Request) []int64 {
	var ts []int64
	for t := r.Start; t <= r.End; t += r.Step.Milliseconds() {
		ts = append(ts, t)
	}
	return ts
}

// TestAlignSplitProperties checks, for random requests, that Align widens a
// request to the smallest aligned one that covers it, and that the points of
// Split's sub-requests are those of the request, each exactly once, each
// sub-request inside one interval.
func TestAlignSplitProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 20))
	steps := []int64{1, 7, 1000, 15_000, 60_000, 3_600_000, 86_400_000, 7_200_001}
	intervals := []int64{1, 13, 60_000, 3_600_000, 86_400_000, 3 * 86_400_000}
	for i := range 2000 {
		step := steps[rng.IntN(len(steps))]
		iv := intervals[rng.IntN(len(intervals))]
		start := rng.Int64N(4e12) - 1e12
		end := start + rng.Int64N(step*2000)
		r := Request{Query: "up", Start: start, End: end, Step: time.Duration(step) * time.Millisecond}

		a, err := Align(r)
		require.NoError(t, err, "case %d", i)
		require.Zero(t, floorTo(a.Start, step)-a.Start, "case %d", i)
		require.LessOrEqual(t, a.Start, start)
		require.Greater(t, a.Start, start-step)
		require.GreaterOrEqual(t, a.End, end)
		require.Less(t, a.End, end+step)
		require.Zero(t, a.End%step)

		subs, err := Split(a, time.Duration(iv)*time.Millisecond)
		require.NoError(t, err, "case %d", i)
		var got []int64
		for k, s := range subs {
			// Plain checks: require's per-call cost dominates with
			// thousands of one-point sub-requests.
			switch {
			case s.Start > s.End:
				t.Fatalf("case %d sub %d: empty %+v", i, k, s)
			case floorTo(s.Start, step) != s.Start || floorTo(s.End, step) != s.End:
				t.Fatalf("case %d sub %d: not aligned %+v", i, k, s)
			case splitStart(s.Start, iv) != splitStart(s.End, iv):
				t.Fatalf("case %d sub %d: crosses a boundary %+v", i, k, s)
			case k > 0 && splitStart(subs[k-1].End, iv) >= splitStart(s.Start, iv):
				t.Fatalf("case %d sub %d: shares an interval with the one before", i, k)
			}
			got = append(got, points(s)...)
		}
		// Sub-requests are in order and their point sets are consecutive,
		// so equality with the aligned points proves no gap and no overlap.
		require.Equal(t, points(a), got, "case %d", i)

		// Unaligned: Trunc keeps the points, and Split does not move them.
		tr, err := Trunc(r)
		require.NoError(t, err)
		require.Equal(t, points(r), points(tr), "case %d", i)
		subs, err = Split(tr, time.Duration(iv)*time.Millisecond)
		require.NoError(t, err, "case %d", i)
		got = got[:0]
		for k, s := range subs {
			if splitStart(s.Start, iv) != splitStart(s.End, iv) || (k > 0 && splitStart(subs[k-1].End, iv) >= splitStart(s.Start, iv)) {
				t.Fatalf("case %d sub %d: crosses or shares an interval %+v", i, k, s)
			}
			got = append(got, points(s)...)
		}
		require.Equal(t, points(r), got, "case %d", i)
	}
}
