package loadgen

import (
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
)

// BenchmarkBatch measures what the client spends per request of 2000 series:
// advancing the values, patching them into the pre-encoded request and snappy
// compression, with s2 (what senders use) and golang/snappy for comparison,
// and without compression.
func BenchmarkBatch(b *testing.B) {
	for _, proto := range []Protocol{ProtocolRW1, ProtocolRW2} {
		for _, c := range []struct {
			name     string
			compress func(dst, src []byte) []byte
		}{
			{"uncompressed", func(dst, _ []byte) []byte { return dst }},
			{"s2", s2.EncodeSnappy},
			{"golang_snappy", func(dst, src []byte) []byte { return snappy.Encode(dst[:cap(dst)], src) }},
		} {
			b.Run(string(proto)+"/"+c.name, func(b *testing.B) {
				w, err := NewWorkload(WorkloadConfig{
					Series: DefaultBatchSize, BatchSize: DefaultBatchSize, Tenants: 1, Protocol: proto,
					Start: time.UnixMilli(1700000000000), ScrapeInterval: 15 * time.Second, Seed: 1,
				})
				if err != nil {
					b.Fatal(err)
				}
				batch := w.Batches()[0]
				buf := c.compress(nil, batch.Next(0))
				var raw, wire int
				b.ReportAllocs()
				b.ResetTimer()
				for r := 1; b.Loop(); r++ {
					p := batch.Next(r)
					buf = c.compress(buf, p)
					raw, wire = len(p), len(buf)
				}
				n := float64(batch.Len())
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/sample")
				b.ReportMetric(float64(raw)/n, "raw-bytes/sample")
				b.ReportMetric(float64(wire)/n, "wire-bytes/sample")
			})
		}
	}
}
