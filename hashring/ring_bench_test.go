package hashring

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func BenchmarkHash(b *testing.B) {
	lset := labels.FromStrings(
		"__name__", "http_requests_total", "code", "200", "handler", "/api/v1/query",
		"instance", "10.1.2.3:9090", "job", "prometheus", "method", "GET",
		"namespace", "monitoring", "pod", "prometheus-k8s-0",
	)
	b.ReportAllocs()
	for b.Loop() {
		Hash("team-a", lset)
	}
}

func BenchmarkOwners(b *testing.B) {
	for _, alg := range []Algorithm{AlgorithmKetama, AlgorithmHashmod} {
		b.Run(fmt.Sprintf("%s/nodes=12/rf=3", alg), func(b *testing.B) {
			r := mustNew(b, alg, testEndpoints(12), 3)
			hashes := seriesHashes()[:1<<16]
			dst := make([]int, 0, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = r.Owners(hashes[i&(1<<16-1)], dst[:0])
				i++
			}
		})
	}
}

// BenchmarkNew is the cost of a membership change.
func BenchmarkNew(b *testing.B) {
	for _, tc := range []struct {
		nodes int
		zones []string
	}{
		{nodes: 12}, {nodes: 12, zones: []string{"a", "b", "c"}}, {nodes: 100}, {nodes: 100, zones: []string{"a", "b", "c"}},
	} {
		b.Run(fmt.Sprintf("ketama/nodes=%d/zones=%d/rf=3", tc.nodes, len(tc.zones)), func(b *testing.B) {
			eps := testEndpoints(tc.nodes, tc.zones...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(AlgorithmKetama, eps, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
