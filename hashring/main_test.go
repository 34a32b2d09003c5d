package hashring

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// memberlist's probe of a peer is not tied to Shutdown: a probe started just
	// before it waits out its own timeout (up to the probe interval) before it
	// returns, which a loaded CI machine can stretch past goleak's retries.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// numSeries is how many series the property tests place.
const numSeries = 1_000_000

// seriesHashes returns the placement hashes of numSeries random but realistic
// series (node-exporter-like names, instances, pods, status codes) spread over
// 20 tenants, hashed with Hash. The set is the same on every run and computed
// once per test binary, because several tests share it.
var seriesHashes = sync.OnceValue(func() []uint64 {
	rng := rand.New(rand.NewPCG(20240601, 1))
	// Pools of label values, drawn from independently: 200 metrics x 8 jobs
	// x 4096 instances x 65536 pods x 9 codes make collisions among a
	// million series negligible, without formatting a string per series.
	pool := func(n int, format func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = format(i)
		}
		return out
	}
	metrics := pool(200, func(i int) string { return fmt.Sprintf("node_subsystem%d_metric_%d_total", i%17, i) })
	instances := pool(4096, func(int) string {
		return fmt.Sprintf("10.%d.%d.%d:9100", rng.IntN(256), rng.IntN(256), rng.IntN(256))
	})
	pods := pool(1<<16, func(int) string { return fmt.Sprintf("app-%08x-%05x", rng.Uint32(), rng.IntN(1<<20)) })
	tenants := pool(20, func(i int) string { return fmt.Sprintf("team-%c%d", 'a'+i, i*7) })
	jobs := []string{"node", "kubelet", "cadvisor", "apiserver", "coredns", "etcd", "ingress", "app"}
	codes := []string{"200", "201", "204", "400", "404", "429", "500", "503"}

	// Chunks with their own generators fill in parallel and still give the
	// same series on every run.
	hashes := make([]uint64, numSeries)
	const chunks = 4
	var wg sync.WaitGroup
	for c := range chunks {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			var b labels.ScratchBuilder
			for i := c * numSeries / chunks; i < (c+1)*numSeries/chunks; i++ {
				// Added in name order, so no sort is needed.
				b.Reset()
				b.Add("__name__", metrics[rng.IntN(len(metrics))])
				if code := rng.IntN(len(codes) + 1); code < len(codes) {
					b.Add("code", codes[code])
				}
				b.Add("instance", instances[rng.IntN(len(instances))])
				b.Add("job", jobs[rng.IntN(len(jobs))])
				b.Add("pod", pods[rng.IntN(len(pods))])
				hashes[i] = Hash(tenants[rng.IntN(len(tenants))], b.Labels())
			}
		})
	}
	wg.Wait()
	return hashes
})

// nodeNames returns n receiver names as a StatefulSet gives them.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("strata-receive-%d.strata-receive.monitoring.svc:10901", i)
	}
	return names
}

// testEndpoints returns endpoints named by nodeNames; zones, if given, are
// assigned round-robin.
func testEndpoints(n int, zones ...string) []Endpoint {
	eps := make([]Endpoint, n)
	for i, name := range nodeNames(n) {
		eps[i] = Endpoint{Name: name, Address: name, State: StateActive}
		if len(zones) > 0 {
			eps[i].Zone = zones[i%len(zones)]
		}
	}
	return eps
}
