package queryfrontend

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// benchExtent is a day of one-minute points for 100 series.
func benchExtent() Extent {
	const points = 1440
	e := Extent{Start: 0, End: (points - 1) * 60_000}
	for i := range 100 {
		s := Series{Labels: labels.FromStrings("__name__", "http_requests_total", "instance", fmt.Sprintf("host-%03d:9090", i), "job", "api")}
		for j := range points {
			s.Points = append(s.Points, Point{T: int64(j) * 60_000, V: float64(i*j) / 7})
		}
		e.Response.Series = append(e.Response.Series, s)
	}
	return e
}

func BenchmarkEncodeExtent(b *testing.B) {
	e := benchExtent()
	b.ReportAllocs()
	for b.Loop() {
		EncodeExtent(e)
	}
}

func BenchmarkDecodeExtent(b *testing.B) {
	enc := EncodeExtent(benchExtent())
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeExtent(enc); err != nil {
			b.Fatal(err)
		}
	}
}
