package receive

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// cpuTime returns the process' user plus system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRouter writes through one node of an in-process three-node cluster
// (real TSDBs, gRPC forwarding on loopback), 2000 node_exporter-like series per
// request. Every node runs in this process, so the CPU time measured is the whole
// cluster's: cpu-ns/sample at RF=3 over RF=1 is the CPU cost of replication.
func BenchmarkRouter(b *testing.B) {
	for _, rf := range []int{1, 3} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) {
			nodes := startCluster(b, rf, "", "", "")
			const numSeries = 2000
			start := time.Now().Add(-time.Hour).UnixMilli()
			body := func(i int) []byte {
				series := make([]prompb.TimeSeries, numSeries)
				for j := range series {
					series[j] = prompb.TimeSeries{
						Labels: lbls("__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(j%8), "instance", fmt.Sprintf("host-%04d:9100", j/8),
							"job", "node", "mode", "user", "region", "eu-west-1", "team", "infra"),
						Samples: []prompb.Sample{{Value: float64(i), Timestamp: start + int64(i)}},
					}
				}
				raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
				if err != nil {
					b.Fatal(err)
				}
				return snappy.Encode(nil, raw)
			}
			// Warm up: every series exists on its owners before timing starts.
			if w := post(nodes[0].handler, body(0), nil); w.Code != http.StatusNoContent {
				b.Fatal(w.Code, w.Body.String())
			}
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = body(i + 1)
			}

			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for i := range b.N {
				if w := post(nodes[0].handler, bodies[i], nil); w.Code != http.StatusNoContent {
					b.Fatal(w.Code, w.Body.String())
				}
			}
			cpu := cpuTime(b) - cpu0
			b.StopTimer()
			samples := float64(b.N * numSeries)
			b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/samples, "cpu-ns/sample")
			b.ReportMetric(samples/cpu.Seconds(), "samples/cpu-s")
		})
	}
}
