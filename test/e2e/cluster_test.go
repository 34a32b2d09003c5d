package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clusterQuorum is the write quorum of the RF=3 clusters below: floor(3/2)+1.
const clusterQuorum = 2

// TestClusterPrometheusKillAndRejoin has a real Prometheus remote-write to one
// node of a three-node RF=3 gossip cluster while another node is SIGKILLed and
// then restarted under the same name, ports and data directory. Writes keep
// succeeding on a quorum of two, the ring shows the node UNHEALTHY and then back,
// and in the end every sample Prometheus holds is on at least two nodes.
func TestClusterPrometheusKillAndRejoin(t *testing.T) {
	promBin := requireBinary(t, "prometheus")
	begin := time.Now()
	nodes := newClusterNodes(t, 3, 3)
	joinEachOther(nodes...)
	startClusterNodes(t, nodes...)
	waitRings(t, nodes, ringOf(nodes, nil))
	t.Logf("3 nodes up and ACTIVE everywhere after %s", time.Since(begin).Round(time.Millisecond))

	prom := startRemoteWritingPrometheus(t, promBin, nodes[0].rwURL)
	require.Eventually(t, func() bool { return prom.metric(t, "prometheus_remote_storage_samples_total") >= 1000 },
		time.Minute, 100*time.Millisecond, "Prometheus sends samples")
	requireNoFailedSamples(t, prom)

	// SIGKILL node-2 mid-stream; node-0 sees it fail and keeps it as UNHEALTHY.
	killedAt := time.Now()
	_ = nodes[2].stop(t, syscall.SIGKILL, 30*time.Second)
	waitRings(t, nodes[:1], ringOf(nodes, map[string]string{nodes[2].name: "UNHEALTHY"}))
	t.Logf("node-2 UNHEALTHY on node-0 %s after SIGKILL", time.Since(killedAt).Round(time.Millisecond))

	// Writes keep succeeding on a quorum of node-0 and node-1 while a few more
	// scrapes flow through.
	sentAtDetection := prom.metric(t, "prometheus_remote_storage_samples_total")
	require.Eventually(t, func() bool {
		return prom.metric(t, "prometheus_remote_storage_samples_total") >= sentAtDetection+2000
	}, time.Minute, 100*time.Millisecond, "samples keep flowing with node-2 down")
	requireNoFailedSamples(t, prom)
	t.Logf("%.0f samples sent with node-2 UNHEALTHY", prom.metric(t, "prometheus_remote_storage_samples_total")-sentAtDetection)

	// Restart node-2 as the same node: it takes its old place in every ring, and
	// writes reach it again.
	restartedAt := time.Now()
	startClusterNodes(t, nodes[2])
	waitRings(t, nodes, ringOf(nodes, nil))
	rejoined := time.Now()
	t.Logf("node-2 ACTIVE on every node %s after restart (down %s)",
		rejoined.Sub(restartedAt).Round(time.Millisecond), restartedAt.Sub(killedAt).Round(time.Millisecond))
	forwardsToNode2 := func() float64 {
		v, _, err := metricValue(context.Background(), nodes[2].httpURL+"/metrics", "strata_receive_forwarded_writes_total")
		require.NoError(t, err)
		return v
	}
	// Once membership shows node-2 ACTIVE again, writes reach it at once: neither
	// the router's peer backoff nor gRPC's reconnect backoff may hold them back.
	require.Eventually(t, func() bool { return forwardsToNode2() > 0 },
		5*time.Second, 20*time.Millisecond, "node-0 forwards writes to the restarted node-2")
	t.Logf("first write forwarded to node-2 %s after it was ACTIVE everywhere", time.Since(rejoined).Round(time.Millisecond))
	require.Eventually(t, func() bool { return forwardsToNode2() >= 5 },
		30*time.Second, 20*time.Millisecond, "node-0 keeps forwarding writes to node-2")

	// Stop scraping and let the queue drain. Stale markers, should Prometheus
	// write any, are not checked: its API does not return them.
	stoppedScraping := time.Now()
	prom.stopScraping(t)
	prom.waitDrained(t)
	requireNoFailedSamples(t, prom)
	// Every batch was accepted at the first attempt: with one node down, node-0
	// never missed a quorum (a 503 would have made Prometheus retry).
	require.Zero(t, prom.metric(t, "prometheus_remote_storage_samples_retried_total"), "samples retried after a 5xx")
	sent := prom.metric(t, "prometheus_remote_storage_samples_in_total")

	// promRawSamples queries at the current whole second: wait until that is past
	// every scrape, so that the last one is checked too.
	require.Eventually(t, func() bool { return time.Now().Unix() > stoppedScraping.Unix() },
		5*time.Second, 20*time.Millisecond)
	want := promRawSamples(t, prom.url)
	require.NoError(t, prom.stop(t, syscall.SIGTERM, time.Minute))
	stopClusterNodes(t, nodes...)

	// Debian's Prometheus 2.42 sends no tenant header: the default tenant.
	stored := make([]map[string][]sample, len(nodes))
	for i, n := range nodes {
		stored[i] = readTSDB(t, filepath.Join(n.dataDir, "default-tenant"))
	}
	var checked, afterRejoin, afterRejoinOnAll int
	onNodes := make([]int, len(nodes)+1)
	for series, samples := range want {
		for _, smp := range samples {
			holders := 0
			for _, s := range stored {
				if holdsSample(s[series], smp) {
					holders++
				}
			}
			require.GreaterOrEqual(t, holders, clusterQuorum, "sample %s @%d (%v) is on %d nodes", series, smp.t, smp.v, holders)
			checked++
			onNodes[holders]++
			if smp.t > rejoined.UnixMilli() {
				afterRejoin++
				if holders == len(nodes) {
					afterRejoinOnAll++
				}
			}
		}
	}
	require.Positive(t, afterRejoinOnAll, "samples scraped after the rejoin reach node-2 again")
	t.Logf("Prometheus sent %.0f samples, none retried; checked its %d samples of %d series: %d on 3 nodes, %d on 2 nodes; of the %d scraped after the rejoin, %d on 3 nodes",
		sent, checked, len(want), onNodes[3], onNodes[2], afterRejoin, afterRejoinOnAll)
	t.Logf("node-2 killed at +%s, restarted at +%s; test body took %s",
		killedAt.Sub(begin).Round(time.Millisecond), restartedAt.Sub(begin).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// TestClusterMembershipChangesLoseNothing streams writes to node-0 of a
// three-node RF=3 cluster while a fourth node joins and leaves gracefully, and
// node-2 is SIGKILLed and restarted. Every request acknowledged with a 2xx must
// be on at least a quorum of two nodes, counting the departed node's directory.
func TestClusterMembershipChangesLoseNothing(t *testing.T) {
	begin := time.Now()
	nodes := newClusterNodes(t, 4, 3)
	initial, fourth := nodes[:3], nodes[3]
	joinEachOther(initial...)
	fourth.join = gossipAddrs(initial...)
	startClusterNodes(t, initial...)
	waitRings(t, initial, ringOf(initial, nil))

	w := startClusterWriter(t, nodes[0].rwURL, "membership", 4, 200)
	defer w.stop()

	// run makes one membership change, waits for its effect on the rings, and
	// then for a healthy number of requests acknowledged after it.
	run := func(name string, change func()) {
		t.Helper()
		start := time.Now()
		acks0, notAcked0 := w.counts()
		change()
		changed, _ := w.counts()
		require.Eventually(t, func() bool { a, _ := w.counts(); return a >= changed+200 },
			30*time.Second, 20*time.Millisecond, "writes are acknowledged after %s", name)
		acks, notAcked := w.counts()
		t.Logf("%-24s %7s  %5d requests acknowledged, %4d not", name, time.Since(start).Round(time.Millisecond), acks-acks0, notAcked-notAcked0)
	}

	run("warm-up", func() {})
	run("node-3 joins", func() {
		startClusterNodes(t, fourth)
		waitRings(t, nodes, ringOf(nodes, nil))
	})
	run("node-3 leaves (SIGTERM)", func() {
		require.NoError(t, fourth.stop(t, syscall.SIGTERM, time.Minute))
		waitRings(t, initial, ringOf(initial, nil))
	})
	run("node-2 SIGKILLed", func() {
		_ = nodes[2].stop(t, syscall.SIGKILL, 30*time.Second)
		waitRings(t, nodes[:1], ringOf(initial, map[string]string{nodes[2].name: "UNHEALTHY"}))
	})
	run("node-2 restarted", func() {
		startClusterNodes(t, nodes[2])
		waitRings(t, initial, ringOf(initial, nil))
	})
	acked := w.stop()
	require.NotEmpty(t, acked)

	// The live nodes agree on the membership: the same names in the same states.
	views := make([]string, len(initial))
	for i, n := range initial {
		v, err := ringView(context.Background(), n.httpURL)
		require.NoError(t, err, n.name)
		views[i] = v
	}
	for i := range views {
		require.Equal(t, views[0], views[i], "rings of %s and %s", initial[0].name, initial[i].name)
	}
	require.Equal(t, ringOf(initial, nil), views[0])

	stopClusterNodes(t, initial...)
	stored := make([]map[string][]sample, len(nodes))
	for i, n := range nodes {
		stored[i] = readTSDB(t, filepath.Join(n.dataDir, w.tenant))
	}
	onNodes := make([]int, len(nodes)+1)
	for _, a := range acked {
		for j := range w.seriesPerRequest {
			ls := w.labels(a.worker, j).String()
			smp := sample{t: a.ts, v: float64(a.ts)}
			holders := 0
			for _, s := range stored {
				if holdsSample(s[ls], smp) {
					holders++
				}
			}
			require.GreaterOrEqual(t, holders, clusterQuorum, "acknowledged sample %s @%d is on %d nodes", ls, a.ts, holders)
			onNodes[holders]++
		}
	}
	perNode := make([]string, len(nodes))
	for i, s := range stored {
		n := 0
		for _, ss := range s {
			n += len(ss)
		}
		perNode[i] = fmt.Sprintf("%s=%d", nodes[i].name, n)
	}
	total, notAcked := w.counts()
	t.Logf("%d requests acknowledged, %d not (%s); %d acknowledged samples: %d on 4 nodes, %d on 3, %d on 2; samples stored per node: %s",
		total, notAcked, w.failureSummary(), len(acked)*w.seriesPerRequest, onNodes[4], onNodes[3], onNodes[2], strings.Join(perNode, " "))
	t.Logf("test body took %s", time.Since(begin).Round(time.Millisecond))
}

// clusterNode is one `strata receive` of a gossip cluster. Its ports, name and
// data directory are fixed when it is created, so that a killed node restarts as
// the same node.
type clusterNode struct {
	*strata // the current run; nil before the first start

	name    string
	rf      int
	dataDir string
	// The listen addresses, the same in every run.
	rwAddr, httpAddr, grpcAddr, gossipAddr string
	// join lists the gossip addresses the node joins.
	join []string
	runs int
}

// newClusterNodes creates n nodes, node-0 to node-<n-1>, on distinct loopback
// ports, with replication factor rf. It starts none of them.
func newClusterNodes(t *testing.T, n, rf int) []*clusterNode {
	t.Helper()
	addrs := distinctFreeAddrs(t, 4*n)
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		a := addrs[4*i : 4*i+4]
		nodes[i] = &clusterNode{
			name:       fmt.Sprintf("node-%d", i),
			rf:         rf,
			rwAddr:     a[0],
			httpAddr:   a[1],
			grpcAddr:   a[2],
			gossipAddr: a[3],
			dataDir:    t.TempDir(),
		}
	}
	return nodes
}

// distinctFreeAddrs returns n distinct loopback addresses, each free a moment ago.
func distinctFreeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		if a := freeAddr(t); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// joinEachOther makes every node join the gossip of all the others.
func joinEachOther(nodes ...*clusterNode) {
	for _, n := range nodes {
		n.join = nil
		for _, p := range nodes {
			if p != n {
				n.join = append(n.join, p.gossipAddr)
			}
		}
	}
}

func gossipAddrs(nodes ...*clusterNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.gossipAddr
	}
	return out
}

// startClusterNodes starts the nodes together, then waits until each is ready.
func startClusterNodes(t *testing.T, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		n.runs++
		args := []string{
			"receive",
			"--remote-write.address=" + n.rwAddr,
			"--http-address=" + n.httpAddr,
			"--grpc-address=" + n.grpcAddr,
			"--tsdb.path=" + n.dataDir,
			"--cluster.node-name=" + n.name,
			"--cluster.address=" + n.gossipAddr,
			fmt.Sprintf("--receive.replication-factor=%d", n.rf),
			"--cluster.probe-interval=300ms",
			"--log.level=debug",
		}
		for _, j := range n.join {
			args = append(args, "--cluster.join="+j)
		}
		n.strata = &strata{
			process: startProcess(t, fmt.Sprintf("strata %s (run %d)", n.name, n.runs), strataBin, args...),
			rwURL:   "http://" + n.rwAddr + "/api/v1/receive",
			httpURL: "http://" + n.httpAddr,
			dataDir: n.dataDir,
		}
	}
	for _, n := range nodes {
		waitHTTP(t, n.process, n.httpURL+"/-/ready", time.Minute)
	}
}

// stopClusterNodes stops the nodes with SIGTERM, one after the other: each
// leaves the ring and flushes its heads into blocks. (Stopped all at once, every
// node but the first waits out its leave timeout: no peer is left to take its
// leave broadcast.)
func stopClusterNodes(t *testing.T, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, n.stop(t, syscall.SIGTERM, time.Minute), "%s exits cleanly on SIGTERM", n.name)
	}
}

// ringOf is the ring view (see ringView) in which nodes are the members, ACTIVE
// unless states says otherwise, with the nodes' replication factor.
func ringOf(nodes []*clusterNode, states map[string]string) string {
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		st := "ACTIVE"
		if s, ok := states[n.name]; ok {
			st = s
		}
		parts[i] = n.name + "=" + st
	}
	sort.Strings(parts)
	return fmt.Sprintf("rf=%d %s", nodes[0].rf, strings.Join(parts, ","))
}

// ringView returns the gossip ring that GET /api/v1/ring of the node at httpURL
// shows, as its replication factor and its members' sorted name=STATE pairs:
// "rf=3 node-0=ACTIVE,node-1=UNHEALTHY,node-2=ACTIVE". A ring that reports an
// error (too few members for the replication factor, say) is an error.
func ringView(ctx context.Context, httpURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL+"/api/v1/ring", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /api/v1/ring: status %d", resp.StatusCode)
	}
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Rings []struct {
				Name              string `json:"name"`
				ReplicationFactor int    `json:"replication_factor"`
				Members           []struct {
					Name  string `json:"name"`
					State string `json:"state"`
				} `json:"members"`
				Error string `json:"error"`
			} `json:"rings"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("decode /api/v1/ring: %w", err)
	}
	if body.Status != "success" || len(body.Data.Rings) != 1 || body.Data.Rings[0].Name != "gossip" {
		return "", fmt.Errorf("unexpected /api/v1/ring answer: %+v", body)
	}
	r := body.Data.Rings[0]
	parts := make([]string, len(r.Members))
	for i, m := range r.Members {
		parts[i] = m.Name + "=" + m.State
	}
	sort.Strings(parts)
	view := fmt.Sprintf("rf=%d %s", r.ReplicationFactor, strings.Join(parts, ","))
	if r.Error != "" {
		return view, fmt.Errorf("ring %s reports: %s", view, r.Error)
	}
	return view, nil
}

// waitRings polls until the ring of every node in nodes is want.
func waitRings(t *testing.T, nodes []*clusterNode, want string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, n := range nodes {
			got, err := ringView(context.Background(), n.httpURL)
			if assert.NoError(c, err, "ring of %s", n.name) {
				assert.Equal(c, want, got, "ring of %s", n.name)
			}
		}
	}, 30*time.Second, 50*time.Millisecond)
}

// holdsSample reports whether ss, sorted by time as readTSDB returns it, holds
// want: same timestamp and same value, NaNs compared by kind.
func holdsSample(ss []sample, want sample) bool {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].t >= want.t })
	if i == len(ss) || ss[i].t != want.t {
		return false
	}
	got := ss[i].v
	if math.IsNaN(got) || math.IsNaN(want.v) {
		return math.IsNaN(got) && math.IsNaN(want.v) && value.IsStaleNaN(got) == value.IsStaleNaN(want.v)
	}
	return got == want.v
}

// remoteWritingPrometheus is a real Prometheus that scrapes itself every second
// and remote-writes to one URL, retrying quickly.
type remoteWritingPrometheus struct {
	*process
	url     string
	addr    string
	rwURL   string
	cfgFile string
}

func startRemoteWritingPrometheus(t *testing.T, bin, rwURL string) *remoteWritingPrometheus {
	t.Helper()
	p := &remoteWritingPrometheus{addr: freeAddr(t), rwURL: rwURL, cfgFile: filepath.Join(t.TempDir(), "prometheus.yml")}
	p.url = "http://" + p.addr
	p.writeConfig(t, true)
	p.process = startProcess(t, "prometheus", bin,
		"--config.file="+p.cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+p.addr,
		"--web.enable-lifecycle",
	)
	waitHTTP(t, p.process, p.url+"/-/ready", time.Minute)
	return p
}

func (p *remoteWritingPrometheus) writeConfig(t *testing.T, scrape bool) {
	t.Helper()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 300, min_backoff: 50ms, max_backoff: 500ms}
    metadata_config: {send: true, send_interval: 1s}
`, p.rwURL)
	if scrape {
		cfg += fmt.Sprintf("scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: [%q]}]\n", p.addr)
	}
	require.NoError(t, os.WriteFile(p.cfgFile, []byte(cfg), 0o644))
}

// stopScraping reloads the configuration without scrape jobs: once it returns,
// Prometheus appends no more scraped samples.
func (p *remoteWritingPrometheus) stopScraping(t *testing.T) {
	t.Helper()
	p.writeConfig(t, false)
	resp, err := http.Post(p.url+"/-/reload", "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// waitDrained polls until everything read into the remote-write queue was
// sent, the same at two polls in a row. Prometheus 2.42 counts every attempt of
// a batch in samples_total, retries in retried_total as well.
func (p *remoteWritingPrometheus) waitDrained(t *testing.T) {
	t.Helper()
	var last float64
	require.Eventually(t, func() bool {
		in := p.metric(t, "prometheus_remote_storage_samples_in_total")
		out := p.metric(t, "prometheus_remote_storage_samples_total") - p.metric(t, "prometheus_remote_storage_samples_retried_total")
		drained := in > 0 && in == out && in == last
		last = in
		if in != out {
			last = -1
		}
		return drained
	}, time.Minute, 250*time.Millisecond, "the remote-write queue drains")
}

func (p *remoteWritingPrometheus) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, _, err := metricValue(context.Background(), p.url+"/metrics", name)
	require.NoError(t, err)
	return v
}

// requireNoFailedSamples fails unless Prometheus has dropped no sample: neither
// rejected for good by strata (4xx) nor dropped from its queue.
func requireNoFailedSamples(t *testing.T, p *remoteWritingPrometheus) {
	t.Helper()
	require.Zero(t, p.metric(t, "prometheus_remote_storage_samples_failed_total"), "samples rejected by strata")
	require.Zero(t, p.metric(t, "prometheus_remote_storage_samples_dropped_total"), "samples dropped by Prometheus")
}

// clusterWriter streams Remote Write 1.0 requests from several workers, each
// request one sample for each of seriesPerRequest series of its worker, at
// increasing timestamps (the value is the timestamp). It records the requests
// acknowledged with a 2xx. A 4xx fails the test; other answers (503 while a
// quorum is missing) and transport errors leave a request unacknowledged.
type clusterWriter struct {
	tenant           string
	seriesPerRequest int

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mtx      sync.Mutex
	acked    []writeAck
	notAcked int
	failures map[string]int // by status code or transport error, for the log
}

// writeAck is one acknowledged request: worker's samples at ts.
type writeAck struct {
	worker int
	ts     int64
}

func startClusterWriter(t *testing.T, url, tenant string, workers, seriesPerRequest int) *clusterWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &clusterWriter{tenant: tenant, seriesPerRequest: seriesPerRequest, cancel: cancel, failures: map[string]int{}}
	client := &http.Client{Timeout: 10 * time.Second}
	// Timestamps 10ms apart from ten minutes ago stay well within the TSDB's
	// appendable window and short of the future limit for 60000 requests a worker.
	start := time.Now().Add(-10 * time.Minute).UnixMilli()
	for worker := range workers {
		w.wg.Go(func() {
			for i := int64(0); ctx.Err() == nil; i++ {
				ts := start + i*10
				series := make([]prompb.TimeSeries, seriesPerRequest)
				for j := range series {
					series[j] = prompb.TimeSeries{
						Labels:  prompb.FromLabels(w.labels(worker, j), nil),
						Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts)}},
					}
				}
				code, body, err := pushRW1(ctx, client, url, tenant, series)
				switch {
				case err != nil && ctx.Err() != nil:
					return // stopped mid-request: neither acknowledged nor a failure
				case err == nil && code/100 == 2:
					w.mtx.Lock()
					w.acked = append(w.acked, writeAck{worker, ts})
					w.mtx.Unlock()
					continue
				case err == nil && code/100 == 4:
					t.Errorf("worker %d @%d: %d %s", worker, ts, code, body)
				}
				reason := fmt.Sprint(code)
				if err != nil {
					reason = "transport error"
				}
				w.mtx.Lock()
				w.notAcked++
				w.failures[reason]++
				w.mtx.Unlock()
			}
		})
	}
	return w
}

// labels are the labels of series j of worker.
func (w *clusterWriter) labels(worker, j int) labels.Labels {
	return labels.FromStrings("__name__", "cluster_test", "series", fmt.Sprint(j), "worker", fmt.Sprint(worker))
}

// counts returns the acknowledged and the other requests so far.
func (w *clusterWriter) counts() (acked, notAcked int) {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return len(w.acked), w.notAcked
}

func (w *clusterWriter) failureSummary() string {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	if len(w.failures) == 0 {
		return "no failures"
	}
	var parts []string
	for r, n := range w.failures {
		parts = append(parts, fmt.Sprintf("%s: %d", r, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// stop stops the workers, waits for them and returns the acknowledged requests.
func (w *clusterWriter) stop() []writeAck {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return slices.Clone(w.acked)
}
