package cache

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// BenchmarkLRU_Parallel measures Get and Set from GOMAXPROCS goroutines on a
// 256MiB cache of 1KiB values, with a key space that fits and one that churns.
func BenchmarkLRU_Parallel(b *testing.B) {
	for _, bc := range []struct {
		name       string
		keys       int
		setPercent int
	}{
		{name: "fits/get-only", keys: 100_000, setPercent: 0},
		{name: "fits/set-10pct", keys: 100_000, setPercent: 10},
		{name: "churn/set-50pct", keys: 1_000_000, setPercent: 50},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := NewLRU("bench", 256<<20, 0, nil)
			keys := make([]string, bc.keys)
			for i := range keys {
				keys[i] = fmt.Sprintf("S:01HZX7Q2V4M6N8P0R2T4W6Y8A0:%d", i)
			}
			v := make([]byte, 1024)
			for _, k := range keys[:min(len(keys), 100_000)] {
				c.Set(k, v)
			}
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 1))
				for pb.Next() {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(100) < bc.setPercent {
						c.Set(k, v)
					} else {
						c.Get(k)
					}
				}
			})
		})
	}
}
