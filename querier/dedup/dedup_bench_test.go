package dedup

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// BenchmarkDedup dedups 1000 series with 2 replicas of 240 samples each (one
// hour at 15s), iterating every output sample as PromQL would, reusing the
// iterator between series.
func BenchmarkDedup(b *testing.B) {
	const (
		numSeries  = 1000
		numSamples = 240
		interval   = 15000
	)
	for _, bc := range []struct {
		label  string
		offset int64 // of the second replica, ms
	}{
		{label: "prometheus_replica", offset: 5000},
		{label: "receive_replica", offset: 0},
	} {
		in := make([]storage.Series, 0, 2*numSeries)
		for i := range numSeries {
			for r := range 2 {
				samples := make([]chunks.Sample, 0, numSamples)
				for j := range numSamples {
					t := int64(j)*interval + int64(r)*bc.offset
					samples = append(samples, sample{t: t, f: float64(j)})
				}
				lset := labels.FromStrings("__name__", "http_requests_total", "instance", fmt.Sprintf("10.0.%03d.%03d:9090", i/256, i%256), "job", "api", bc.label, fmt.Sprintf("%d", r))
				in = append(in, storage.NewListSeries(lset, samples))
			}
		}
		b.Run(bc.label, func(b *testing.B) {
			b.ReportAllocs()
			var it chunkenc.Iterator
			for b.Loop() {
				set := NewSeriesSet(&sliceSet{series: in, i: -1}, []string{bc.label}, Options{})
				n := 0
				for set.Next() {
					it = set.At().Iterator(it)
					for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
						n++
					}
				}
				if err := set.Err(); err != nil {
					b.Fatal(err)
				}
				if n != numSeries*numSamples {
					b.Fatalf("got %d samples, want %d", n, numSeries*numSamples)
				}
			}
		})
	}
}
