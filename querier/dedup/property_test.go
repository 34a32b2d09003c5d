package dedup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
)

// randomScrapes returns the timestamps (ms) of a replica that scrapes every
// interval from offset with up to 500ms jitter, missing single scrapes and
// longer stretches at random.
func randomScrapes(rng *rand.Rand, offset, interval int64, n int) []int64 {
	var ts []int64
	for i := 0; i < n; i++ {
		switch r := rng.IntN(100); {
		case r < 5:
			i += 1 + rng.IntN(30) // A long gap.
			continue
		case r < 10:
			continue // A missed scrape.
		}
		ts = append(ts, offset+int64(i)*interval+rng.Int64N(500))
	}
	return ts
}

func replicaSeries(label string, replicas [][]int64, value func(replica int, t int64) float64) []storage.Series {
	out := make([]storage.Series, 0, len(replicas))
	for r, ts := range replicas {
		s := make([]chunks.Sample, 0, len(ts))
		for _, t := range ts {
			s = append(s, sample{t: t, f: value(r, t)})
		}
		out = append(out, ser(labels.FromStrings(label, fmt.Sprintf("r%d", r)), s))
	}
	return out
}

func onlySeries(t *testing.T, set storage.SeriesSet) storage.Series {
	t.Helper()
	require.True(t, set.Next())
	s := set.At()
	require.False(t, set.Next())
	require.NoError(t, set.Err())
	return s
}

func TestPenaltyProperties(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		k := 1 + rng.IntN(4)
		interval := int64(5+rng.IntN(56)) * 1000
		replicas := make([][]int64, k)
		minSpacing := interval - 500
		for r := range replicas {
			replicas[r] = randomScrapes(rng, rng.Int64N(interval), interval, rng.IntN(200))
		}
		in := replicaSeries("replica", replicas, func(r int, _ int64) float64 { return float64(r) })
		s := onlySeries(t, NewSeriesSet(newSet(in...), []string{"replica"}, Options{}))
		samples, err := drain(t, s.Iterator(nil))
		require.NoError(t, err)

		bound := min(minSpacing, DefaultInitialPenalty.Milliseconds())
		for i, smp := range samples {
			r := int(smp.f)
			_, ok := slices.BinarySearch(replicas[r], smp.t)
			require.True(t, ok, "seed %d: output sample %d at %d is not in replica %d", seed, i, smp.t, r)
			if i == 0 {
				continue
			}
			prev := samples[i-1]
			require.Greater(t, smp.t, prev.t, "seed %d: timestamps must increase", seed)
			if int(prev.f) != r {
				require.Greater(t, smp.t-prev.t, bound, "seed %d: switch from replica %d to %d at %d doubles a scrape", seed, int(prev.f), r, smp.t)
			}
		}
		var nonEmpty bool
		for _, r := range replicas {
			nonEmpty = nonEmpty || len(r) > 0
		}
		require.Equal(t, nonEmpty, len(samples) > 0, "seed %d", seed)

		// A fresh Seek lands on the earliest sample at or after t of any replica.
		at := rng.Int64N(200 * interval)
		want := int64(-1)
		for _, r := range replicas {
			if i, _ := slices.BinarySearch(r, at); i < len(r) && (want < 0 || r[i] < want) {
				want = r[i]
			}
		}
		it := s.Iterator(nil)
		if vt := it.Seek(at); want < 0 {
			require.Equal(t, chunkenc.ValNone, vt, "seed %d", seed)
		} else {
			require.Equal(t, chunkenc.ValFloat, vt, "seed %d", seed)
			require.Equal(t, want, it.AtT(), "seed %d", seed)
		}
		checkIteratorContract(t, rng, s, interval, seed)
	}
}

// checkIteratorContract runs random Next and Seek calls and checks what the
// chunkenc.Iterator contract promises about them.
func checkIteratorContract(t *testing.T, rng *rand.Rand, s storage.Series, interval int64, seed uint64) {
	t.Helper()
	it := s.Iterator(nil)
	cur, has := int64(0), false
	for range 100 {
		if rng.IntN(2) == 0 {
			vt := it.Next()
			if vt == chunkenc.ValNone {
				require.Equal(t, chunkenc.ValNone, it.Next(), "seed %d", seed)
				return
			}
			if has {
				require.Greater(t, it.AtT(), cur, "seed %d: Next must advance", seed)
			}
			cur, has = it.AtT(), true
			continue
		}
		at := cur + rng.Int64N(5*interval) - 2*interval
		vt := it.Seek(at)
		if vt == chunkenc.ValNone {
			require.Equal(t, chunkenc.ValNone, it.Next(), "seed %d", seed)
			return
		}
		switch {
		case has && cur >= at:
			require.Equal(t, cur, it.AtT(), "seed %d: Seek(%d) at %d must not move", seed, at, cur)
		default:
			require.GreaterOrEqual(t, it.AtT(), at, "seed %d", seed)
		}
		cur, has = it.AtT(), true
	}
}

func TestIdenticalProperties(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 2))
		k := 1 + rng.IntN(4)
		interval := int64(1+rng.IntN(60)) * 1000
		grid := randomScrapes(rng, 0, interval, rng.IntN(200))
		replicas := make([][]int64, k)
		var union []int64
		for r := range replicas {
			for _, ts := range grid {
				if rng.IntN(100) < 70 {
					replicas[r] = append(replicas[r], ts)
				}
			}
			union = append(union, replicas[r]...)
		}
		slices.Sort(union)
		union = slices.Compact(union)
		in := replicaSeries("receive_replica", replicas, func(_ int, t int64) float64 { return float64(t) })
		s := onlySeries(t, NewSeriesSet(newSet(in...), []string{"receive_replica"}, Options{}))
		samples, err := drain(t, s.Iterator(nil))
		require.NoError(t, err)
		var got []int64
		for _, smp := range samples {
			require.Equal(t, float64(smp.t), smp.f, "seed %d", seed)
			got = append(got, smp.t)
		}
		require.Equal(t, union, got, "seed %d: output must be the sorted union", seed)

		// Random Next and Seek calls against a model: a position in union.
		it := s.Iterator(nil)
		pos := -1
		for range 100 {
			if rng.IntN(2) == 0 {
				pos++
				if pos >= len(union) {
					require.Equal(t, chunkenc.ValNone, it.Next(), "seed %d", seed)
					break
				}
				require.Equal(t, chunkenc.ValFloat, it.Next(), "seed %d", seed)
			} else {
				var at int64
				if len(union) > 0 {
					at = union[rng.IntN(len(union))] + rng.Int64N(3) - 1
				}
				if pos < 0 || union[pos] < at {
					i, _ := slices.BinarySearch(union, at)
					pos = max(pos, i)
				}
				if pos >= len(union) {
					require.Equal(t, chunkenc.ValNone, it.Seek(at), "seed %d", seed)
					break
				}
				require.Equal(t, chunkenc.ValFloat, it.Seek(at), "seed %d", seed)
			}
			require.Equal(t, union[pos], it.AtT(), "seed %d", seed)
		}
	}
}
