package receive

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/tsdbshard"
)

// node is one in-process receiver: real TSDBs, a real gRPC server on loopback,
// and a routing handler.
type node struct {
	name    string
	zone    string
	addr    string
	mgr     *tsdbshard.Manager
	srv     *grpc.Server
	handler *Handler
	stopped bool
}

// staticRinger serves one ring to every tenant.
type staticRinger struct{ ring hashring.Ring }

func (s staticRinger) Ring(string) (hashring.Ring, error) { return s.ring, nil }

// startCluster starts len(zones) nodes (zones may be empty strings) in one ring.
func startCluster(t testing.TB, rf int, zones ...string) []*node {
	t.Helper()
	return startClusterWith(t, rf, func(n *node) { n.handler.RegisterReplication(n.srv) }, zones...)
}

// startClusterWithOptions is startCluster with mod changing each node's options.
func startClusterWithOptions(t testing.TB, rf int, mod func(*Options), zones ...string) []*node {
	t.Helper()
	return startClusterOf(t, rf, mod, func(n *node) { n.handler.RegisterReplication(n.srv) }, zones...)
}

// startClusterWith is startCluster with register registering each node's
// replication service.
func startClusterWith(t testing.TB, rf int, register func(*node), zones ...string) []*node {
	t.Helper()
	return startClusterOf(t, rf, nil, register, zones...)
}

func startClusterOf(t testing.TB, rf int, mod func(*Options), register func(*node), zones ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(zones))
	eps := make([]hashring.Endpoint, len(zones))
	lis := make([]net.Listener, len(zones))
	for i, z := range zones {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lis[i] = l
		nodes[i] = &node{name: fmt.Sprintf("node-%d", i), zone: z, addr: l.Addr().String()}
		eps[i] = hashring.Endpoint{Name: nodes[i].name, Address: nodes[i].addr, Zone: z}
	}
	ring, err := hashring.New(hashring.AlgorithmKetama, eps, rf)
	require.NoError(t, err)
	for i, n := range nodes {
		mgr, err := tsdbshard.NewManager(tsdbshard.Options{
			Dir:            t.TempDir(),
			ExternalLabels: labels.FromStrings("receive_replica", n.name),
		}, nil, nil)
		require.NoError(t, err)
		require.NoError(t, mgr.Open(context.Background()))
		n.mgr = mgr
		opts := Options{Route: &RouteOptions{
			Ringer:            staticRinger{ring},
			LocalEndpoint:     n.name,
			ForwardTimeout:    10 * time.Second,
			ForwardMaxBackoff: 200 * time.Millisecond,
		}}
		if mod != nil {
			mod(&opts)
		}
		n.handler = NewHandler(opts, mgr, nil, nil)
		n.srv = grpc.NewServer()
		register(n)
		go func() { _ = n.srv.Serve(lis[i]) }()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
			require.NoError(t, n.handler.Close())
		}
	})
	return nodes
}

// stop takes the node down as a crash would look to its peers.
func (n *node) stop(t testing.TB) {
	if n.stopped {
		return
	}
	n.stopped = true
	n.srv.Stop()
	require.NoError(t, n.mgr.Close(context.Background()))
}

// seriesSet returns the series of the default tenant stored on the node.
func (n *node) seriesSet(t *testing.T) map[string]int {
	t.Helper()
	q, err := n.mgr.Querier(DefaultTenant, math.MinInt64, math.MaxInt64)
	if err != nil {
		return map[string]int{}
	}
	defer func() { require.NoError(t, q.Close()) }()
	out := map[string]int{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			out[set.At().Labels().String()]++
		}
	}
	require.NoError(t, set.Err())
	return out
}

func clusterSeries(n int, ts int64, value float64) []prompb.TimeSeries {
	series := make([]prompb.TimeSeries, n)
	for i := range series {
		series[i] = prompb.TimeSeries{
			Labels:  lbls("__name__", "cluster_test", "instance", fmt.Sprintf("host-%04d", i), "job", "node"),
			Samples: []prompb.Sample{{Value: value, Timestamp: ts}},
		}
	}
	return series
}

func postTo(t *testing.T, h *Handler, series []prompb.TimeSeries) *httptest.ResponseRecorder {
	t.Helper()
	return post(h, encodeV1(t, &prompb.WriteRequest{Timeseries: series}), nil)
}

func TestClusterReplicatesToEveryOwner(t *testing.T) {
	nodes := startCluster(t, 3, "", "", "")
	now := time.Now().UnixMilli()
	w := postTo(t, nodes[0].handler, clusterSeries(500, now, 1))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	for _, n := range nodes {
		got := n.seriesSet(t)
		require.Len(t, got, 500, "%s holds every series at RF=3", n.name)
	}
}

// A router that stores part of the series places those by its series cache
// on later writes; every series must still land on exactly its owners.
func TestClusterPlacesCachedSeriesOnTheirOwners(t *testing.T) {
	nodes := startCluster(t, 2, "", "", "", "", "")
	now := time.Now().UnixMilli()
	for round := range 3 {
		w := postTo(t, nodes[0].handler, clusterSeries(500, now+int64(round)*1000, 1))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	}
	slot := nodes[0].mgr.SeriesCacheSlot(DefaultTenant)
	require.NotNil(t, slot)
	cache, _ := slot.Load().(*seriesCache)
	require.NotNil(t, cache)
	local := nodes[0].seriesSet(t)
	require.NotEmpty(t, local)
	require.Less(t, len(local), 500, "node-0 stores only its share at RF=2 on 5 nodes")
	require.Equal(t, len(local), cache.len())

	holders := map[string]int{}
	for _, n := range nodes {
		for series, samples := range n.seriesSet(t) {
			require.Equal(t, 3, samples, "%s on %s", series, n.name)
			holders[series]++
		}
	}
	require.Len(t, holders, 500)
	for series, n := range holders {
		require.Equal(t, 2, n, "%s is held by its two owners only", series)
	}
}

// A peer that predates forwarding bodies as received ignores the payload
// encoding and refuses the body as a 2.0 payload; the router then sends it the
// series encoded for it, and nothing is lost.
func TestClusterForwardsToPeersWithoutBodySupport(t *testing.T) {
	nodes := startClusterWith(t, 3, func(n *node) {
		if n.name != "node-2" {
			n.handler.RegisterReplication(n.srv)
			return
		}
		n.srv.RegisterService(&grpc.ServiceDesc{
			ServiceName: replicationService,
			HandlerType: (*replicationServer)(nil),
			Methods: []grpc.MethodDesc{{
				MethodName: "Write",
				Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
					in := new(wrapperspb.BytesValue)
					if err := dec(in); err != nil {
						return nil, err
					}
					// Field 3 is unknown to such a peer: it reads every payload as 2.0.
					tenant, payload, _, err := parseForwardRequest(in.GetValue())
					if err != nil {
						return nil, err
					}
					return n.handler.forwardedWrite(ctx, &wrapperspb.BytesValue{Value: appendForwardRequest(nil, tenant, payload, forwardV2)})
				},
			}},
		}, n.handler)
	}, "", "", "")
	now := time.Now().UnixMilli()
	for round := range 2 {
		w := postTo(t, nodes[0].handler, clusterSeries(300, now+int64(round)*1000, 1))
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	}
	for _, n := range nodes {
		got := n.seriesSet(t)
		require.Len(t, got, 300, "%s holds every series", n.name)
		for series, samples := range got {
			require.Equal(t, 2, samples, "%s on %s", series, n.name)
		}
	}
}

func TestClusterSurvivesOneNodeDown(t *testing.T) {
	nodes := startCluster(t, 3, "", "", "")
	now := time.Now().UnixMilli()
	nodes[2].stop(t)

	for i := range 3 {
		w := postTo(t, nodes[0].handler, clusterSeries(300, now+int64(i)*1000, float64(i)))
		require.Equal(t, http.StatusNoContent, w.Code, "write %d with one node of three down: %s", i, w.Body.String())
	}
	for _, n := range nodes[:2] {
		got := n.seriesSet(t)
		require.Len(t, got, 300)
		for s, samples := range got {
			require.Equal(t, 3, samples, "series %s on %s", s, n.name)
		}
	}

	// Two of three down: no series can reach its quorum of two.
	nodes[1].stop(t)
	w := postTo(t, nodes[0].handler, clusterSeries(300, now+10_000, 9))
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "did not reach a quorum of 2 owners")
}

func TestClusterPermanentErrorsOnQuorumAre4xx(t *testing.T) {
	nodes := startCluster(t, 3, "", "", "")
	now := time.Now().UnixMilli()
	require.Equal(t, http.StatusNoContent, postTo(t, nodes[0].handler, clusterSeries(50, now, 1)).Code)

	// Out of order on every owner: a permanent error, never a 5xx.
	series := append(clusterSeries(10, now-60_000, 2), clusterSeries(1, now+1000, 3)[0])
	series[10].Labels = lbls("__name__", "fresh", "job", "node")
	w := postTo(t, nodes[1].handler, series)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "10 of 11 samples rejected (10 series)")
	require.Contains(t, w.Body.String(), "out of order sample")
	for _, n := range nodes {
		require.Equal(t, 1, n.seriesSet(t)[`{__name__="fresh", job="node"}`], "the good series of the request is written on %s", n.name)
	}

	// Still 4xx with one owner down: the two live owners both reject for good.
	nodes[2].stop(t)
	w = postTo(t, nodes[0].handler, clusterSeries(10, now-120_000, 4))
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())

	// Invalid labels are rejected by the router itself.
	bad := []prompb.TimeSeries{{Labels: lbls("job", "x", "__name__", "unsorted"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}
	w = postTo(t, nodes[0].handler, bad)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "labels not sorted")
}

func TestClusterSpreadsReplicasOverZones(t *testing.T) {
	zones := []string{"a", "a", "b", "b", "c", "c"}
	nodes := startCluster(t, 3, zones...)
	now := time.Now().UnixMilli()
	const n = 1000
	w := postTo(t, nodes[0].handler, clusterSeries(n, now, 1))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	zonesOf := map[string]map[string]bool{}
	copies := map[string]int{}
	for _, nd := range nodes {
		for s := range nd.seriesSet(t) {
			if zonesOf[s] == nil {
				zonesOf[s] = map[string]bool{}
			}
			zonesOf[s][nd.zone] = true
			copies[s]++
		}
	}
	require.Len(t, zonesOf, n)
	for s, zs := range zonesOf {
		require.Len(t, zs, 3, "series %s must be in three zones", s)
		require.Equal(t, 3, copies[s], "series %s must have exactly RF copies", s)
	}
}

func TestClusterRW2WrittenHeaders(t *testing.T) {
	nodes := startCluster(t, 3, "", "", "")
	now := time.Now().UnixMilli()
	b := newV2Builder()
	for i := range 20 {
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs("__name__", fmt.Sprintf("s%02d", i), "job", "x"),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now}},
			Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_GAUGE, "help", ""),
		})
	}
	w := post(nodes[0].handler, encodeV2(t, b.build()), v2Headers)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, [3]string{"20", "0", "0"}, written(w))
	for _, n := range nodes {
		require.Len(t, n.seriesSet(t), 20)
	}
}

// A router-only receiver stores nothing and forwards every series to its owners.
func TestClusterRouterOnly(t *testing.T) {
	nodes := startCluster(t, 3, "", "", "")
	router := NewHandler(Options{Route: &RouteOptions{
		Ringer:         nodes[0].handler.router.opts.Ringer,
		ForwardTimeout: 10 * time.Second,
	}}, nil, nil, nil)
	defer func() { require.NoError(t, router.Close()) }()

	w := postTo(t, router, clusterSeries(100, time.Now().UnixMilli(), 1))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	for _, n := range nodes {
		require.Len(t, n.seriesSet(t), 100, n.name)
	}
}
