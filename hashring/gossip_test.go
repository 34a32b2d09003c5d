package hashring

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// gossipConvergeTimeout bounds every wait for the cluster to converge. The
// test clusters probe every 200ms, so joins and leaves take well under a
// second and failure detection one to three; the bound leaves room for slow,
// race-instrumented runs.
const gossipConvergeTimeout = 15 * time.Second

// gossipTestConfig returns the configuration of an ingestor named name in zone
// on a free loopback port, with fast failure detection.
func gossipTestConfig(name, zone string, join ...string) GossipConfig {
	return GossipConfig{
		NodeName:       name,
		BindAddress:    "127.0.0.1:0",
		Join:           join,
		Zone:           zone,
		GRPCAddress:    name + ".grpc:10901",
		Ingestor:       true,
		ProbeInterval:  200 * time.Millisecond,
		GossipInterval: 50 * time.Millisecond,
	}
}

// gossipEndpoint is the ring member that gossipTestConfig(name, zone) yields.
func gossipEndpoint(name, zone string, state State) Endpoint {
	return Endpoint{Name: name, Address: name + ".grpc:10901", Zone: zone, State: state}
}

// startGossip starts a node with Join running, and stops both at the end of
// the test.
func startGossip(t *testing.T, cfg GossipConfig) *Gossip {
	t.Helper()
	return startGossipWith(t, cfg, prometheus.NewRegistry(), nil)
}

func startGossipWith(t *testing.T, cfg GossipConfig, reg prometheus.Registerer, logger *slog.Logger) *Gossip {
	t.Helper()
	g, err := NewGossip(cfg, reg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Shutdown()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Join(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return g
}

// waitMembers waits until every node's Members equal want and returns how long
// that took. It wakes on Changes rather than polling.
func waitMembers(t *testing.T, want []Endpoint, nodes ...*Gossip) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(gossipConvergeTimeout)
	defer deadline.Stop()
	for _, g := range nodes {
		for {
			changed := g.Changes()
			got := g.Members()
			if slices.Equal(got, want) {
				break
			}
			select {
			case <-changed:
			case <-deadline.C:
				require.Equal(t, want, g.Members(), "members seen by %s after %v", g.cfg.NodeName, gossipConvergeTimeout)
				return 0
			}
		}
	}
	return time.Since(start)
}

// waitFor polls cond every 10ms until it holds, failing the test after
// gossipConvergeTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(gossipConvergeTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, gossipConvergeTimeout)
		}
		<-tick.C
	}
}

func TestGossipJoinRouterLeave(t *testing.T) {
	t.Parallel()
	start := time.Now()
	reg := prometheus.NewRegistry()
	a := startGossipWith(t, gossipTestConfig("a", "z1"), reg, nil)
	b := startGossip(t, gossipTestConfig("b", "z2", a.LocalAddr()))
	c := startGossip(t, gossipTestConfig("c", "z3", a.LocalAddr()))
	all := []Endpoint{
		gossipEndpoint("a", "z1", StateActive),
		gossipEndpoint("b", "z2", StateActive),
		gossipEndpoint("c", "z3", StateActive),
	}
	d := waitMembers(t, all, a, b, c)
	t.Logf("3 nodes converged %v after the last start (%v after the first)", d, time.Since(start))
	require.Equal(t, 3.0, testutil.ToFloat64(a.metrics.members.WithLabelValues(string(StateActive))))
	require.Equal(t, 0.0, testutil.ToFloat64(a.metrics.members.WithLabelValues(string(StateUnhealthy))))
	n, err := testutil.GatherAndCount(reg, "strata_cluster_members", "strata_cluster_health_score", "strata_cluster_ring_rebuilds_total")
	require.NoError(t, err)
	require.Equal(t, 4, n, "two member states, health score, rebuilds")

	// A router gossips with everyone but owns no series.
	routerCfg := gossipTestConfig("router", "z1", b.LocalAddr())
	routerCfg.Ingestor = false
	routerCfg.GRPCAddress = ""
	router := startGossip(t, routerCfg)
	for _, g := range []*Gossip{a, b, c, router} {
		waitFor(t, "router in the memberlist of "+g.cfg.NodeName, func() bool { return g.ml.NumMembers() == 4 })
	}
	waitMembers(t, all, a, b, c, router)

	// A graceful leave removes the node from every ring.
	leaveStart := time.Now()
	require.NoError(t, c.Leave(time.Second))
	leaveTook := time.Since(leaveStart)
	require.NoError(t, c.Leave(time.Second), "a second leave changes nothing")
	require.NoError(t, c.Shutdown())
	d = waitMembers(t, all[:2], a, b, router)
	t.Logf("Leave returned after %v, peers had dropped the node %v later", leaveTook, d)
	require.Error(t, c.Leave(time.Second), "leave after shutdown")
}

func TestGossipCrashAndRejoin(t *testing.T) {
	t.Parallel()
	a := startGossip(t, gossipTestConfig("a", "z1"))
	b := startGossip(t, gossipTestConfig("b", "z2", a.LocalAddr()))
	c := startGossip(t, gossipTestConfig("c", "z3", a.LocalAddr()))
	active := []Endpoint{
		gossipEndpoint("a", "z1", StateActive),
		gossipEndpoint("b", "z2", StateActive),
		gossipEndpoint("c", "z3", StateActive),
	}
	waitMembers(t, active, a, b, c)

	// Shutdown without Leave is what SIGKILL looks like to the peers: c keeps
	// its place, unhealthy.
	require.NoError(t, c.Shutdown())
	crashed := slices.Clone(active)
	crashed[2].State = StateUnhealthy
	d := waitMembers(t, crashed, a, b)
	t.Logf("crash detected after %v", d)
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.members.WithLabelValues(string(StateUnhealthy))))

	// c comes back under the same name, at another port, and is active again.
	c2 := startGossip(t, gossipTestConfig("c", "z3", b.LocalAddr()))
	require.NotEqual(t, c.LocalAddr(), c2.LocalAddr())
	d = waitMembers(t, active, a, b, c2)
	t.Logf("rejoin converged after %v", d)
}

func TestGossipDeadNodeReclaimTimeout(t *testing.T) {
	t.Parallel()
	start := func(name, zone string, join ...string) *Gossip {
		cfg := gossipTestConfig(name, zone, join...)
		cfg.DeadNodeReclaimTimeout = time.Second
		return startGossip(t, cfg)
	}
	a := start("a", "z1")
	b := start("b", "z2", a.LocalAddr())
	c := start("c", "z3", a.LocalAddr())
	want := []Endpoint{
		gossipEndpoint("a", "z1", StateActive),
		gossipEndpoint("b", "z2", StateActive),
		gossipEndpoint("c", "z3", StateActive),
	}
	waitMembers(t, want, a, b, c)

	require.NoError(t, c.Shutdown())
	want[2].State = StateUnhealthy
	waitMembers(t, want, a, b)
	d := waitMembers(t, want[:2], a, b)
	t.Logf("dead member forgotten %v after it was seen dead (timeout 1s)", d)
}

// A node that joins after a member failed learns about it from its peers'
// state, although memberlist itself does not tell it, and places series as
// they do.
func TestGossipLateJoinerLearnsDeadMembers(t *testing.T) {
	t.Parallel()
	a := startGossip(t, gossipTestConfig("a", "z1"))
	b := startGossip(t, gossipTestConfig("b", "z2", a.LocalAddr()))
	c := startGossip(t, gossipTestConfig("c", "z3", a.LocalAddr()))
	want := []Endpoint{
		gossipEndpoint("a", "z1", StateActive),
		gossipEndpoint("b", "z2", StateActive),
		gossipEndpoint("c", "z3", StateActive),
	}
	waitMembers(t, want, a, b, c)
	require.NoError(t, c.Shutdown())
	want[2].State = StateUnhealthy
	waitMembers(t, want, a, b)

	d := startGossip(t, gossipTestConfig("d", "z1", b.LocalAddr()))
	want = append(want, gossipEndpoint("d", "z1", StateActive))
	took := waitMembers(t, want, a, b, d)
	t.Logf("late joiner converged after %v", took)
}

func TestGossipJoin(t *testing.T) {
	t.Parallel()
	t.Run("retries until the seed is up", func(t *testing.T) {
		t.Parallel()
		seedAddr := freeLoopbackAddr(t)
		logs := &recordHandler{}
		b := startGossipWith(t, gossipTestConfig("b", "z2", seedAddr), nil, slog.New(logs))
		waitFor(t, "failed join attempt", func() bool { return logs.count("no gossip peer reachable yet, retrying") > 0 })

		cfg := gossipTestConfig("a", "z1")
		cfg.BindAddress = seedAddr
		startGossip(t, cfg)
		took := waitMembers(t, []Endpoint{
			gossipEndpoint("a", "z1", StateActive),
			gossipEndpoint("b", "z2", StateActive),
		}, b)
		t.Logf("joined %v after the seed came up", took)
		waitFor(t, "join logged", func() bool { return logs.count("joined gossip cluster") == 1 })
	})
	t.Run("reaching only itself is not joining", func(t *testing.T) {
		t.Parallel()
		logs := &recordHandler{}
		g, err := NewGossip(gossipTestConfig("lonely", "z1"), nil, slog.New(logs))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, g.Shutdown()) })
		g.cfg.Join = []string{g.LocalAddr()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Join(ctx) }()
		waitFor(t, "second join attempt", func() bool { return logs.count("no gossip peer reachable yet, retrying") >= 2 })
		cancel()
		require.NoError(t, <-done)
		require.Zero(t, logs.count("joined gossip cluster"))
	})
	t.Run("stops at shutdown", func(t *testing.T) {
		t.Parallel()
		for _, join := range [][]string{nil, {freeLoopbackAddr(t)}} {
			g, err := NewGossip(gossipTestConfig("lonely", "z1", join...), nil, nil)
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- g.Join(context.Background()) }()
			require.NoError(t, g.Shutdown())
			require.NoError(t, <-done)
		}
	})
	t.Run("joins again after losing every peer", func(t *testing.T) {
		t.Parallel()
		seedAddr := freeLoopbackAddr(t)
		seedCfg := gossipTestConfig("a", "z1")
		seedCfg.BindAddress = seedAddr
		a := startGossip(t, seedCfg)
		b := startGossip(t, gossipTestConfig("b", "z2", seedAddr))
		both := []Endpoint{
			gossipEndpoint("a", "z1", StateActive),
			gossipEndpoint("b", "z2", StateActive),
		}
		waitMembers(t, both, a, b)

		// The seed crashes and comes back at the same address without peers
		// to join: b must find it again.
		require.NoError(t, a.Shutdown())
		waitFor(t, "b alone", func() bool { return b.ml.NumMembers() == 1 })
		a2 := startGossip(t, seedCfg)
		took := waitMembers(t, both, a2, b)
		t.Logf("rejoined %v after the seed came back", took)
	})
}

// recordHandler is a slog.Handler that keeps the messages it handles.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// freeLoopbackAddr returns a loopback address whose TCP port was free a moment
// ago; nothing listens on it.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestGossipRinger(t *testing.T) {
	t.Parallel()
	const rf = 3
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	var nodes []*Gossip
	var ringers []*GossipRinger
	add := func(name, zone string, join ...string) {
		g := startGossip(t, gossipTestConfig(name, zone, join...))
		r := NewGossipRinger(g, AlgorithmKetama, rf, nil)
		wg.Go(func() { require.NoError(t, r.Run(ctx)) })
		nodes, ringers = append(nodes, g), append(ringers, r)
	}
	// ringsOf reports whether every ringer serves a ring of n endpoints.
	ringsOf := func(n int) func() bool {
		return func() bool {
			for _, r := range ringers {
				ring, err := r.Ring("tenant")
				if err != nil || len(ring.Endpoints()) != n {
					return false
				}
			}
			return true
		}
	}

	add("a", "z1")
	_, err := ringers[0].Ring("tenant")
	require.ErrorIs(t, err, ErrNotEnoughEndpoints)
	require.ErrorContains(t, err, "1 endpoints for replication factor 3")

	add("b", "z2", nodes[0].LocalAddr())
	waitMembers(t, []Endpoint{
		gossipEndpoint("a", "z1", StateActive),
		gossipEndpoint("b", "z2", StateActive),
	}, nodes...)
	for _, r := range ringers {
		_, err := r.Ring("tenant")
		require.ErrorIs(t, err, ErrNotEnoughEndpoints)
	}

	add("c", "z3", nodes[0].LocalAddr())
	waitFor(t, "3-member ring on every node", ringsOf(3))
	three, err := ringers[0].Ring("tenant")
	require.NoError(t, err)
	other, err := ringers[0].Ring("other-tenant")
	require.NoError(t, err)
	require.Same(t, three, other, "one ring for every tenant")

	add("d", "z1", nodes[1].LocalAddr())
	waitFor(t, "4-member ring on every node", ringsOf(4))

	rng := rand.New(rand.NewPCG(1, 2))
	var moved int
	for range 10_000 {
		h := rng.Uint64()
		want, err := ringers[0].Ring("tenant")
		require.NoError(t, err)
		wantOwners := ownerNames(want, h)
		for _, r := range ringers[1:] {
			ring, err := r.Ring("tenant")
			require.NoError(t, err)
			require.Equal(t, wantOwners, ownerNames(ring, h), "owners of hash %d", h)
		}
		if !slices.Equal(wantOwners, ownerNames(three, h)) {
			moved++
		}
	}
	require.Positive(t, moved, "the ring changed when d joined")
	// a saw 1, 2, 3 and 4 members.
	require.GreaterOrEqual(t, testutil.ToFloat64(nodes[0].metrics.rebuilds), 4.0)
}

func ownerNames(r Ring, h uint64) []string {
	var names []string
	for _, i := range r.Owners(h, nil) {
		names = append(names, r.Endpoints()[i].Name)
	}
	return names
}

func TestGossipMergeMember(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t1 := t0.Add(time.Second)
	alive := func(inst int64) member { return member{Instance: inst, Address: "x", Status: statusAlive} }
	dead := func(inst int64, since time.Time) member {
		return member{Instance: inst, Address: "x", Status: statusDead, Since: since}
	}
	left := func(inst int64, since time.Time) member {
		return member{Instance: inst, Address: "x", Status: statusLeft, Since: since}
	}
	for _, tc := range []struct {
		name        string
		local       member
		known       bool
		remote      member
		want        member
		wantChanged bool
	}{
		{"unknown dead member is added", member{}, false, dead(1, t0), dead(1, t0), true},
		{"unknown left member is remembered", member{}, false, left(1, t0), left(1, t0), true},
		{"live member stays alive on a peer's word", alive(1), true, dead(1, t0), alive(1), false},
		{"leave of a live member is final", alive(1), true, left(1, t0), left(1, t0), true},
		{"leave wins over death", dead(1, t0), true, left(1, t1), left(1, t1), true},
		{"death does not undo a leave", left(1, t1), true, dead(1, t0), left(1, t1), false},
		{"earliest death wins", dead(1, t1), true, dead(1, t0), dead(1, t0), true},
		{"later death changes nothing", dead(1, t0), true, dead(1, t1), dead(1, t0), false},
		{"earliest leave wins", left(1, t1), true, left(1, t0), left(1, t0), true},
		{"newer instance wins", alive(1), true, dead(2, t0), dead(2, t0), true},
		{"older instance loses", alive(2), true, left(1, t0), alive(2), false},
		{"older dead instance loses", dead(2, t1), true, dead(1, t0), dead(2, t1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := mergeMember(tc.local, tc.known, tc.remote)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantChanged, changed)
		})
	}
}

func TestGossipConfigValidate(t *testing.T) {
	valid := gossipTestConfig("a", "z1")
	for _, tc := range []struct {
		name    string
		modify  func(*GossipConfig)
		wantErr string
	}{
		{"valid", func(*GossipConfig) {}, ""},
		{"router without gRPC address", func(c *GossipConfig) { c.Ingestor, c.GRPCAddress = false, "" }, ""},
		{"all interfaces", func(c *GossipConfig) { c.BindAddress = ":7946" }, ""},
		{"advertise", func(c *GossipConfig) { c.BindAddress, c.AdvertiseAddress = "[::]:7946", "10.0.0.1:7946" }, ""},
		{"no name", func(c *GossipConfig) { c.NodeName = "" }, "node name is empty"},
		{"bind without port", func(c *GossipConfig) { c.BindAddress = "127.0.0.1" }, "bind address"},
		{"bind host name", func(c *GossipConfig) { c.BindAddress = "localhost:7946" }, "must be an IP address"},
		{"bad port", func(c *GossipConfig) { c.BindAddress = "127.0.0.1:70000" }, "port"},
		{"advertise host name", func(c *GossipConfig) { c.AdvertiseAddress = "node-1:7946" }, "advertise address"},
		{"IPv6 any without advertise", func(c *GossipConfig) { c.BindAddress = "[::]:7946" }, "needs an advertise address"},
		{"ingestor without gRPC address", func(c *GossipConfig) { c.GRPCAddress = "" }, "needs a gRPC address"},
		{"negative probe interval", func(c *GossipConfig) { c.ProbeInterval = -time.Second }, "negative probe interval"},
		{"negative reclaim timeout", func(c *GossipConfig) { c.DeadNodeReclaimTimeout = -time.Second }, "negative dead node reclaim timeout"},
		{"metadata too large", func(c *GossipConfig) { c.Zone = string(make([]byte, 500)) }, "node metadata is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.modify(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			_, err = NewGossip(cfg, nil, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestGossipNewErrors(t *testing.T) {
	a := startGossip(t, gossipTestConfig("a", "z1"))
	reg := prometheus.NewRegistry()
	cfg := gossipTestConfig("b", "z1")
	cfg.BindAddress = a.LocalAddr()
	_, err := NewGossip(cfg, reg, nil)
	require.ErrorContains(t, err, "start gossip on "+a.LocalAddr())
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Zero(t, n, "a failed start registers no metrics")
}

// bareGossip is a Gossip without memberlist, enough to merge peer state.
func bareGossip(name string, ttlDead time.Duration) *Gossip {
	return &Gossip{
		cfg:     GossipConfig{NodeName: name},
		logger:  slog.New(slog.DiscardHandler),
		ttlDead: ttlDead,
		ttlLeft: gossipTombstoneTTL,
		table:   make(map[string]member),
		changed: make(chan struct{}),
	}
}

func TestGossipMergeState(t *testing.T) {
	now := time.Now()
	state := func(recs ...gossipRecord) []byte {
		b, err := json.Marshal(gossipState{Version: gossipStateVersion, Members: recs})
		require.NoError(t, err)
		return b
	}
	g := bareGossip("self", time.Hour)
	changed := g.Changes()
	g.mergeState(state(
		gossipRecord{Name: "dead", Instance: 1, Address: "dead:1", Zone: "z", Since: now.UnixNano()},
		gossipRecord{Name: "gone", Instance: 1, Address: "gone:1", Left: true, Since: now.UnixNano()},
		gossipRecord{Name: "old", Instance: 1, Address: "old:1", Since: now.Add(-2 * time.Hour).UnixNano()},
		gossipRecord{Name: "self", Instance: 1, Address: "self:1", Since: now.UnixNano()},
	))
	require.Equal(t, []Endpoint{{Name: "dead", Address: "dead:1", Zone: "z", State: StateUnhealthy}}, g.Members())
	select {
	case <-changed:
	default:
		t.Fatal("Changes not signalled")
	}

	// The state goes on to the next peer, tombstone included.
	s, err := decodeGossipState(g.localState())
	require.NoError(t, err)
	slices.SortFunc(s.Members, func(a, b gossipRecord) int { return strings.Compare(a.Name, b.Name) })
	require.Equal(t, []gossipRecord{
		{Name: "dead", Instance: 1, Address: "dead:1", Zone: "z", Since: now.UnixNano()},
		{Name: "gone", Instance: 1, Address: "gone:1", Left: true, Since: now.UnixNano()},
	}, s.Members)

	// A leave heard later removes the member; unchanged state signals nothing.
	g.mergeState(state(gossipRecord{Name: "dead", Instance: 1, Left: true, Since: now.UnixNano()}))
	require.Empty(t, g.Members())
	changed = g.Changes()
	g.mergeState(state(gossipRecord{Name: "dead", Instance: 1, Since: now.UnixNano()}))
	select {
	case <-changed:
		t.Fatal("Changes signalled without a change")
	default:
	}

	// Dead members expire.
	g.mergeState(state(gossipRecord{Name: "dead2", Instance: 1, Since: now.Add(-59 * time.Minute).UnixNano()}))
	require.Len(t, g.Members(), 1)
	g.sweep(now.Add(2 * time.Minute))
	require.Empty(t, g.Members())

	// Garbage and other versions are ignored.
	for _, b := range [][]byte{nil, []byte("{"), []byte(`{"v":2,"members":[{"name":"x","instance":1}]}`)} {
		g.mergeState(b)
	}
	require.Empty(t, g.Members())
}

func TestGossipMeta(t *testing.T) {
	m := gossipTestConfig("a", "z1").meta(42)
	b, err := m.encode()
	require.NoError(t, err)
	got, err := decodeGossipMeta(b)
	require.NoError(t, err)
	require.Equal(t, m, got)

	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"garbage", "x", "decode node metadata"},
		{"empty", "", "decode node metadata"},
		{"no version", `{"instance":1}`, "version 0"},
		{"future version", `{"v":2}`, "version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeGossipMeta([]byte(tc.in))
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func FuzzGossipMeta(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"instance":1,"grpc":"a:1","zone":"z","ingestor":true}`,
		`{"v":1}`, `{"v":2}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGossipMeta(b)
		if err != nil {
			return
		}
		enc, err := m.encode()
		require.NoError(t, err)
		again, err := decodeGossipMeta(enc)
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

func FuzzGossipState(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"members":[{"name":"a","instance":1,"address":"a:1","since":1}]}`,
		`{"v":1,"members":[{"name":"a","instance":2,"left":true,"since":-1},{"name":"","instance":1}]}`,
		`{"v":1,"members":null}`, `{"v":2}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := bareGossip("self", time.Minute)
		g.mergeState(b)
		// Whatever a peer sends, the members stay a valid ring input.
		members := g.Members()
		require.True(t, slices.IsSortedFunc(members, func(a, b Endpoint) int { return strings.Compare(a.Name, b.Name) }))
		for i, m := range members {
			require.NotEmpty(t, m.Name)
			require.NotEqual(t, "self", m.Name)
			require.Equal(t, StateUnhealthy, m.State)
			if i > 0 {
				require.NotEqual(t, members[i-1].Name, m.Name)
			}
		}
		_, err := decodeGossipState(g.localState())
		require.NoError(t, err)
	})
}

func TestGossipLogWriter(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	w := memberlistLogWriter{logger: logger}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
		"[WARN] memberlist: Refuting a suspect message (from: b)\n",
		"[ERR] memberlist: Failed to send ping\n",
		"no level\n",
	} {
		n, err := w.Write([]byte(line))
		require.NoError(t, err)
		require.Equal(t, len(line), n)
	}
	require.Equal(t, `level=DEBUG msg="Stream connection from=127.0.0.1:1"
level=WARN msg="Refuting a suspect message (from: b)"
level=ERROR msg="Failed to send ping"
level=INFO msg="no level"
`, buf.String())
}

func TestGossipLastHeard(t *testing.T) {
	t.Parallel()
	a := startGossip(t, gossipTestConfig("a", "z1"))
	b := startGossip(t, gossipTestConfig("b", "z1", a.LocalAddr()))
	waitMembers(t, []Endpoint{gossipEndpoint("a", "z1", StateActive), gossipEndpoint("b", "z1", StateActive)}, a, b)
	// Probes keep refreshing the time a peer was heard from.
	first := a.LastHeard()["b"]
	require.False(t, first.IsZero())
	waitFor(t, "a newer heartbeat of b", func() bool { return a.LastHeard()["b"].After(first) })
	require.WithinDuration(t, time.Now(), a.LastHeard()["a"], time.Minute, "a node hears itself now")
}
