package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 255, 256, 257, 511, 512, 1<<20 - 1, 1 << 20, math.MaxInt64}
	for range 10000 {
		values = append(values, rng.Uint64N(math.MaxInt64))
		values = append(values, rng.Uint64N(1<<30))
	}
	for _, v := range values {
		i := bucketOf(v)
		require.Less(t, i, numBuckets, "value %d", v)
		lo, hi := bucketBounds(i)
		require.True(t, lo <= v && v <= hi, "value %d in bucket %d [%d, %d]", v, i, lo, hi)
		require.LessOrEqual(t, float64(hi-lo)/2, float64(lo)/256, "bucket %d is too wide", i)
	}
	// Buckets tile the values: each starts right after the previous one ends.
	for i := 1; i < numBuckets; i++ {
		lo, _ := bucketBounds(i)
		_, prevHi := bucketBounds(i - 1)
		require.Equal(t, prevHi+1, lo, "bucket %d", i)
	}
}

func TestQuantiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []time.Duration
	}{
		{"one", []time.Duration{3 * time.Millisecond}},
		{"two", []time.Duration{time.Millisecond, time.Second}},
		{"hundred", func() []time.Duration {
			var v []time.Duration
			for i := 1; i <= 100; i++ {
				v = append(v, time.Duration(i)*time.Millisecond)
			}
			return v
		}()},
		{"log-normal", func() []time.Duration {
			rng := rand.New(rand.NewPCG(3, 4))
			var v []time.Duration
			for range 50000 {
				v = append(v, time.Duration(math.Exp(rng.NormFloat64()*1.5+math.Log(5e6))))
			}
			return v
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Record into two histograms and merge, as senders do.
			var a, b, h histogram
			for i, v := range c.values {
				if i%2 == 0 {
					a.record(v)
				} else {
					b.record(v)
				}
			}
			h.merge(&a)
			h.merge(&b)
			sorted := slices.Clone(c.values)
			slices.Sort(sorted)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				// Nearest rank: the smallest value with at least q of the values at
				// or below it.
				want := sorted[int(math.Ceil(q*float64(len(sorted))))-1]
				got := h.quantile(q)
				require.InEpsilon(t, float64(want), float64(got), 1.0/256, "q%v", q)
			}
		})
	}
	t.Run("hundred exact", func(t *testing.T) {
		var h histogram
		for i := 1; i <= 100; i++ {
			h.record(time.Duration(i)) // below 256ns every value has its own bucket
		}
		require.Equal(t, time.Duration(50), h.quantile(0.5))
		require.Equal(t, time.Duration(99), h.quantile(0.99))
	})
	t.Run("empty", func(t *testing.T) {
		var h histogram
		require.Zero(t, h.quantile(0.99))
	})
}
