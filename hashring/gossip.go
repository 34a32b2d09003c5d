package hashring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Gossip membership defaults, suited to a LAN.
const (
	// DefaultGossipProbeInterval is how often a node probes a random peer when
	// GossipConfig.ProbeInterval is zero.
	DefaultGossipProbeInterval = time.Second
	// DefaultGossipInterval is how often a node gossips to a few random
	// peers when GossipConfig.GossipInterval is zero.
	DefaultGossipInterval = 200 * time.Millisecond
)

const (
	// gossipLabel is memberlist's cluster label: packets of other memberlist
	// clusters on the same network (Mimir, Loki and Thanos also default to port
	// 7946) are dropped instead of merging the clusters.
	gossipLabel = "strata"
	// gossipSuspicionMult scales how long a suspect node has to refute before it
	// is declared dead. A dead node keeps its place in the ring (only its state
	// changes), so a false positive costs little and a low value is safe.
	gossipSuspicionMult = 3
	// gossipPushPullInterval is how often a node exchanges its full state with a
	// random peer. This anti-entropy also carries the dead and left members (see
	// gossipState), so it bounds how long two nodes can disagree on them.
	gossipPushPullInterval = 10 * time.Second
	// gossipTombstoneTTL is how long a node remembers that a member left, so that
	// a peer which saw the same member die instead (it missed the leave) learns
	// about the leave in a push/pull and drops the member too.
	gossipTombstoneTTL = 10 * time.Minute
	// defaultLeaveTimeout bounds Leave when it is given no positive timeout.
	defaultLeaveTimeout = 5 * time.Second
	// Join retries back off exponentially between these bounds.
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
	// joinCheckProbes is how many probe intervals Join waits between checks
	// that a joined node still has peers.
	joinCheckProbes = 5
)

// GossipConfig configures a node's gossip membership. All nodes of a cluster
// must use the same DeadNodeReclaimTimeout.
type GossipConfig struct {
	// NodeName identifies the node in the cluster (--cluster.node-name). It must
	// be unique and should be stable across restarts: a failed node that comes
	// back under the same name takes its old place in the ring again.
	NodeName string
	// BindAddress is the host:port the gossip listens on, TCP and UDP
	// (--cluster.address), e.g. 0.0.0.0:7946. The host must be an IP address or
	// empty (all interfaces); port 0 picks a free port (see LocalAddr).
	BindAddress string
	// AdvertiseAddress is the ip:port peers reach this node at
	// (--cluster.advertise-address). When empty, it is the bind IP and the bound
	// port, or a private IP of this host if the bind IP is 0.0.0.0.
	AdvertiseAddress string
	// Join lists peers to join, as host:port (--cluster.join). Host names may
	// resolve to several peers, this node included.
	Join []string
	// Zone is the availability zone of this node (--receive.zone); empty when
	// zones are not used.
	Zone string
	// GRPCAddress is the address other receivers forward writes to. It is
	// required for ingestors.
	GRPCAddress string
	// Ingestor is true when the node stores series and so is a ring member.
	// Router-only nodes gossip but own no series.
	Ingestor bool
	// ProbeInterval is how often the node probes a random peer for failure
	// detection; zero means DefaultGossipProbeInterval. A failed node is
	// declared dead a few probe intervals after it stops answering.
	ProbeInterval time.Duration
	// GossipInterval is how often the node gossips membership changes to a few
	// random peers; zero means DefaultGossipInterval.
	GossipInterval time.Duration
	// DeadNodeReclaimTimeout is how long a failed (dead) member keeps its place
	// in the ring as UNHEALTHY before it is forgotten, as if it had left, and
	// its series move to other members. Zero, the default, keeps it until it
	// comes back, however long that takes, so that an outage moves no series;
	// set it to drop permanently lost nodes, which otherwise keep their share
	// of every write one replica short of the replication factor. The timeout
	// runs from the first time any node saw the member dead.
	DeadNodeReclaimTimeout time.Duration
}

// Validate reports whether the configuration is usable. It does not touch the
// network.
func (c GossipConfig) Validate() error {
	if c.NodeName == "" {
		return errors.New("validate gossip config: node name is empty")
	}
	bindHost, _, err := splitIPPort(c.BindAddress, true)
	if err != nil {
		return fmt.Errorf("validate gossip config: bind address: %w", err)
	}
	if c.AdvertiseAddress != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddress, false); err != nil {
			return fmt.Errorf("validate gossip config: advertise address: %w", err)
		}
	} else if ip, err := netip.ParseAddr(bindHost); err == nil && ip.Is6() && ip.IsUnspecified() {
		// memberlist derives a private IP only for 0.0.0.0.
		return fmt.Errorf("validate gossip config: bind address %q needs an advertise address", c.BindAddress)
	}
	if c.Ingestor && c.GRPCAddress == "" {
		return errors.New("validate gossip config: an ingestor needs a gRPC address")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"probe interval", c.ProbeInterval},
		{"gossip interval", c.GossipInterval},
		{"dead node reclaim timeout", c.DeadNodeReclaimTimeout},
	} {
		if d.d < 0 {
			return fmt.Errorf("validate gossip config: negative %s %v", d.name, d.d)
		}
	}
	// The largest metadata this node will send.
	m := c.meta(math.MaxInt64)
	m.Leaving = true
	meta, err := m.encode()
	if err != nil {
		return fmt.Errorf("validate gossip config: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("validate gossip config: node metadata is %d bytes, more than the %d memberlist allows; shorten the gRPC address or zone",
			len(meta), memberlist.MetaMaxSize)
	}
	return nil
}

func (c GossipConfig) meta(instance int64) gossipMeta {
	return gossipMeta{
		Version:  gossipMetaVersion,
		Instance: instance,
		GRPC:     c.GRPCAddress,
		Zone:     c.Zone,
		Ingestor: c.Ingestor,
	}
}

// splitIPPort splits host:port where host is an IP address (or, if allowEmpty,
// empty) and port a number.
func splitIPPort(addr string, allowEmpty bool) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port of %q: %w", addr, err)
	}
	if host == "" && allowEmpty {
		return "", int(port), nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", 0, fmt.Errorf("host of %q must be an IP address: %w", addr, err)
	}
	return host, int(port), nil
}

// gossipMetaVersion is the version of gossipMeta. A node ignores the metadata
// of other versions (the node stays out of its ring), so a change that old
// nodes cannot read must bump it; adding a field need not.
const gossipMetaVersion = 1

// gossipMeta is a node's memberlist metadata, encoded as JSON. It must stay
// within memberlist.MetaMaxSize, which Validate checks.
type gossipMeta struct {
	Version int `json:"v"`
	// Instance tells apart the processes that ran under one node name: the
	// start time of the process, in Unix nanoseconds.
	Instance int64  `json:"instance"`
	GRPC     string `json:"grpc,omitempty"`
	Zone     string `json:"zone,omitempty"`
	Ingestor bool   `json:"ingestor,omitempty"`
	// Leaving is set by Leave just before the node leaves. memberlist reports
	// a leave and a failure alike (NotifyLeave, with Node.State never set), so
	// this is how peers tell a leave from a failure.
	Leaving bool `json:"leaving,omitempty"`
}

func (m gossipMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode node metadata: %w", err)
	}
	return b, nil
}

// decodeGossipMeta decodes the metadata of a peer. The bytes come from the
// network and are untrusted.
func decodeGossipMeta(b []byte) (gossipMeta, error) {
	var m gossipMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return gossipMeta{}, fmt.Errorf("decode node metadata: %w", err)
	}
	if m.Version != gossipMetaVersion {
		return gossipMeta{}, fmt.Errorf("decode node metadata: version %d, want %d", m.Version, gossipMetaVersion)
	}
	return m, nil
}

// memberStatus is what a node knows about a ring member.
type memberStatus uint8

const (
	// statusAlive: memberlist sees the member alive or suspect.
	statusAlive memberStatus = iota
	// statusDead: the member failed. It stays in the ring as UNHEALTHY.
	statusDead
	// statusLeft: the member left gracefully. It is not in the ring; the
	// entry is a tombstone that lets peers which saw it die drop it too.
	statusLeft
)

func (s memberStatus) String() string {
	switch s {
	case statusAlive:
		return "alive"
	case statusDead:
		return "dead"
	case statusLeft:
		return "left"
	default:
		return "unknown"
	}
}

// member is an entry of a node's member table.
type member struct {
	Instance int64
	Address  string
	Zone     string
	Status   memberStatus
	// Since is when the member was first seen dead or left; zero while alive.
	Since time.Time
}

// mergeMember merges what a peer knows about a dead or left member (remote)
// into what this node knows (local, if ok), and returns the result and whether
// it differs from local. Newer instances win. For one instance, left wins over
// dead and keeps the earliest Since, while memberlist's local view of a live
// member wins over a peer's claim that it died: memberlist refutes false
// deaths and would declare a real one here too.
func mergeMember(local member, ok bool, remote member) (member, bool) {
	switch {
	case !ok, remote.Instance > local.Instance:
		return remote, true
	case remote.Instance < local.Instance:
		return local, false
	}
	switch {
	case remote.Status == statusLeft && local.Status != statusLeft,
		remote.Status == statusDead && local.Status == statusDead && remote.Since.Before(local.Since),
		remote.Status == statusLeft && local.Status == statusLeft && remote.Since.Before(local.Since):
		return remote, true
	default:
		return local, false
	}
}

// gossipStateVersion is the version of gossipState; states of other versions
// are ignored.
const gossipStateVersion = 1

// gossipState is what a node sends in memberlist's push/pull exchanges (on join
// and every gossipPushPullInterval): the dead and left members it knows.
// memberlist forgets dead nodes after a while and never tells a node that joins
// later about them, yet every node must keep a dead member in its ring to place
// series the same way; and a node that missed a leave sees the member die
// instead. Live members are memberlist's business and are not sent.
type gossipState struct {
	Version int            `json:"v"`
	Members []gossipRecord `json:"members"`
}

// gossipRecord is one dead or left member in a gossipState.
type gossipRecord struct {
	Name     string `json:"name"`
	Instance int64  `json:"instance"`
	Address  string `json:"address,omitempty"`
	Zone     string `json:"zone,omitempty"`
	Left     bool   `json:"left,omitempty"`
	// Since is in Unix nanoseconds.
	Since int64 `json:"since"`
}

// decodeGossipState decodes the state a peer sent. The bytes come from the
// network and are untrusted.
func decodeGossipState(b []byte) (gossipState, error) {
	var s gossipState
	if err := json.Unmarshal(b, &s); err != nil {
		return gossipState{}, fmt.Errorf("decode gossip state: %w", err)
	}
	if s.Version != gossipStateVersion {
		return gossipState{}, fmt.Errorf("decode gossip state: version %d, want %d", s.Version, gossipStateVersion)
	}
	return s, nil
}

// Gossip is a node's view of the cluster through memberlist gossip: the ring
// members are the ingestor nodes that are alive or suspect (ACTIVE) or failed
// (UNHEALTHY). A member that leaves gracefully is removed; a failed one keeps
// its place until it comes back or DeadNodeReclaimTimeout passes. The methods
// of Gossip are safe for concurrent use.
type Gossip struct {
	cfg    GossipConfig
	logger *slog.Logger
	ml     *memberlist.Memberlist
	// instance is this node's metadata; meta is it encoded, replaced by Leave.
	instance gossipMeta
	meta     atomic.Pointer[[]byte]
	// ttlDead and ttlLeft are how long dead and left members are kept; zero
	// means forever.
	ttlDead, ttlLeft time.Duration

	mu    sync.Mutex
	table map[string]member // by node name; guarded by mu
	// members is the ring membership derived from table, sorted by Name; it
	// is replaced, never modified. Guarded by mu.
	members []Endpoint
	// changed is closed, and replaced, when members changes. Guarded by mu.
	changed chan struct{}
	// metrics is nil until memberlist runs. Guarded by mu.
	metrics *gossipMetrics
	// heard is when each node was last heard from: a successful probe or an
	// alive message. Guarded by mu; entries go with the node's table entry.
	heard map[string]time.Time

	lifeMu   sync.Mutex // serializes Leave and Shutdown
	shutdown bool       // guarded by lifeMu
	left     atomic.Bool
	stop     chan struct{}
	sweeper  sync.WaitGroup
}

type gossipMetrics struct {
	members *prometheus.GaugeVec
	// rebuilds counts the rebuilds of every GossipRinger over this Gossip.
	rebuilds prometheus.Counter
}

func newGossipMetrics(reg prometheus.Registerer, ml *memberlist.Memberlist) *gossipMetrics {
	m := &gossipMetrics{
		members: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_cluster_members",
			Help: "Ring members this node sees, by state: ACTIVE (alive or suspect) or UNHEALTHY (failed, still owning series).",
		}, []string{"state"}),
		rebuilds: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_cluster_ring_rebuilds_total",
			Help: "Rebuilds of the gossip hashring after a membership change, including those that left no usable ring.",
		}),
	}
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_cluster_health_score",
		Help: "Memberlist's awareness health score of this node: 0 is healthy, higher means it is slow to answer probes and may be declared dead by mistake.",
	}, func() float64 { return float64(ml.GetHealthScore()) })
	return m
}

// set sets the member gauges from members.
func (m *gossipMetrics) set(members []Endpoint) {
	var active, unhealthy int
	for _, e := range members {
		switch e.State {
		case StateActive:
			active++
		case StateUnhealthy:
			unhealthy++
		}
	}
	m.members.WithLabelValues(string(StateActive)).Set(float64(active))
	m.members.WithLabelValues(string(StateUnhealthy)).Set(float64(unhealthy))
}

// NewGossip validates cfg and starts the node's memberlist: it listens on the
// bind address and answers peers, but joins no one until Join. Shutdown
// releases it. A nil logger discards logs and a nil reg registers no metrics.
func NewGossip(cfg GossipConfig, reg prometheus.Registerer, logger *slog.Logger) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultGossipProbeInterval
	}
	if cfg.GossipInterval == 0 {
		cfg.GossipInterval = DefaultGossipInterval
	}
	meta := cfg.meta(time.Now().UnixNano())
	encoded, err := meta.encode()
	if err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg:      cfg,
		logger:   logger,
		instance: meta,
		ttlDead:  cfg.DeadNodeReclaimTimeout,
		ttlLeft:  gossipTombstoneTTL,
		table:    make(map[string]member),
		heard:    make(map[string]time.Time),
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
	}
	g.meta.Store(&encoded)
	bindHost, bindPort, _ := splitIPPort(cfg.BindAddress, true)
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = bindHost
	mc.BindPort = bindPort
	mc.AdvertisePort = bindPort
	if cfg.AdvertiseAddress != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitIPPort(cfg.AdvertiseAddress, false)
	}
	mc.Label = gossipLabel
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeInterval / 2
	mc.GossipInterval = cfg.GossipInterval
	mc.SuspicionMult = gossipSuspicionMult
	mc.PushPullInterval = gossipPushPullInterval
	// A failed node that restarts at a new address (a rescheduled pod) may
	// take over its name as soon as the old process is declared dead.
	// memberlist's default refuses until it forgets the dead node.
	mc.DeadNodeReclaimTime = time.Nanosecond
	mc.Delegate = gossipDelegate{g}
	mc.Events = gossipEvents{g}
	mc.Ping = gossipPings{g}
	mc.Logger = log.New(memberlistLogWriter{logger.With("component", "memberlist")}, "", 0)

	// memberlist.Create calls the event delegate for this node before it
	// returns, so g must be ready for events (but not use g.ml) by now.
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddress, err)
	}
	g.ml = ml
	// Metrics are registered only once memberlist runs, so that a failed
	// NewGossip leaves reg as it was.
	g.mu.Lock()
	g.metrics = newGossipMetrics(reg, ml)
	g.metrics.set(g.members)
	g.mu.Unlock()
	g.sweeper.Go(g.sweepLoop)
	return g, nil
}

// LocalAddr returns the address peers reach this node's gossip at: the
// advertise IP and the bound port. Tests that bind port 0 join peers with it.
func (g *Gossip) LocalAddr() string {
	return g.ml.LocalNode().Address()
}

// Join keeps this node in the cluster of its configured peers until ctx is
// done or the Gossip shuts down, and then returns nil: it is meant to run as
// an actor of the process's run group, so that the receiver serves while its
// peers come up. Whenever the node sees no other live node (at start, or after
// losing every peer, say across a partition that memberlist gave up on) it
// contacts the peers again, with backoff from 100ms to 5s; reaching only
// itself (a join list that names this node) does not count. Without
// configured peers Join just waits: other nodes join this one.
func (g *Gossip) Join(ctx context.Context) error {
	if len(g.cfg.Join) == 0 {
		select {
		case <-ctx.Done():
		case <-g.stop:
		}
		return nil
	}
	backoff := joinBackoffMin
	var failures int
	joined := false
	for {
		// While in a cluster, check every few probe intervals that it still is.
		wait := joinCheckProbes * g.cfg.ProbeInterval
		switch {
		case g.left.Load():
			// Joining again would undo the leave.
		case g.ml.NumMembers() > 1:
			if !joined {
				// Another node joined this one.
				g.logger.Info("joined gossip cluster", "members", g.ml.NumMembers(), "failed_attempts", failures)
				joined, failures, backoff = true, 0, joinBackoffMin
			}
		default:
			if joined {
				g.logger.Warn("lost every gossip peer, joining again", "join", g.cfg.Join)
				joined = false
			}
			n, err := g.ml.Join(g.cfg.Join)
			if g.ml.NumMembers() > 1 {
				g.logger.Info("joined gossip cluster", "peers_contacted", n, "members", g.ml.NumMembers(), "failed_attempts", failures)
				joined, failures, backoff = true, 0, joinBackoffMin
				break
			}
			if err == nil {
				err = errors.New("only this node answered")
			}
			failures++
			lvl := slog.LevelDebug
			if failures == 1 {
				lvl = slog.LevelWarn
			}
			g.logger.Log(ctx, lvl, "no gossip peer reachable yet, retrying", "join", g.cfg.Join, "attempt", failures, "retry_in", backoff, "err", err)
			wait = backoff
			// Exponential backoff with jitter, so that nodes started together
			// do not retry in lockstep.
			backoff = min(2*backoff, joinBackoffMax)
			backoff = backoff/2 + rand.N(backoff/2+1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-g.stop:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Members returns the ring members, sorted by Name: ingestor nodes that are
// alive or suspect (StateActive) or failed (StateUnhealthy). The caller owns
// the returned slice.
func (g *Gossip) Members() []Endpoint {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.members)
}

// LastHeard returns, by node name, when each member was last heard from: its
// latest successful probe by this node, or the latest news of it alive. This
// node itself counts as heard now. The caller owns the returned map.
func (g *Gossip) LastHeard() map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]time.Time, len(g.heard)+1)
	for name, t := range g.heard {
		out[name] = t
	}
	out[g.cfg.NodeName] = time.Now()
	return out
}

// Changes returns a channel that is closed at the next change of Members after
// the call. To follow the membership without missing a change, take the
// channel first and then read Members; any number of goroutines may wait.
func (g *Gossip) Changes() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Leave announces that this node leaves the cluster, so that peers remove it
// from their rings instead of marking it failed, and waits up to timeout (5s if
// not positive) for the announcement to go out. Call Shutdown afterwards.
//
// Leaving takes two broadcasts: new metadata that marks the node as leaving,
// then memberlist's leave. Peers that miss the first see a failure instead,
// and learn of the leave in their next push/pull with a peer that saw it.
func (g *Gossip) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultLeaveTimeout
	}
	deadline := time.Now().Add(timeout)
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.shutdown {
		return errors.New("leave gossip cluster: already shut down")
	}
	if g.left.Load() {
		// Updating the metadata again would announce this node alive.
		return nil
	}
	meta := g.instance
	meta.Leaving = true
	encoded, err := meta.encode()
	if err != nil {
		return fmt.Errorf("leave gossip cluster: %w", err)
	}
	g.meta.Store(&encoded)
	g.left.Store(true)
	// Half the time for each broadcast; memberlist has no context to share.
	if err := g.ml.UpdateNode(timeout / 2); err != nil {
		g.logger.Warn("leaving: not every peer may have seen this node as leaving", "err", err)
	}
	if err := g.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("leave gossip cluster: %w", err)
	}
	return nil
}

// Shutdown stops gossiping and closes the listeners, without telling peers:
// they will see this node fail unless it called Leave first. It is safe to
// call more than once.
func (g *Gossip) Shutdown() error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.shutdown {
		return nil
	}
	g.shutdown = true
	close(g.stop)
	err := g.ml.Shutdown()
	g.sweeper.Wait()
	if err != nil {
		return fmt.Errorf("shut down gossip: %w", err)
	}
	return nil
}

// observeAlive records that memberlist sees node alive (joined, came back, or
// changed its metadata). memberlist is the authority on live nodes.
func (g *Gossip) observeAlive(node *memberlist.Node) {
	meta, err := decodeGossipMeta(node.Meta)
	if err != nil {
		g.logger.Warn("ignoring gossip node with unreadable metadata", "node", node.Name, "addr", node.Address(), "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.table[node.Name]
	if !meta.Ingestor {
		// A router-only node; if it was an ingestor before a restart, it
		// leaves the ring as if it had left.
		if ok && old.Status != statusLeft {
			g.table[node.Name] = member{Instance: old.Instance, Status: statusLeft, Since: time.Now()}
			g.publishLocked()
		}
		return
	}
	g.table[node.Name] = member{Instance: meta.Instance, Address: meta.GRPC, Zone: meta.Zone, Status: statusAlive}
	g.heard[node.Name] = time.Now()
	if !ok || old.Status != statusAlive {
		g.logger.Info("gossip member active", "node", node.Name, "endpoint", meta.GRPC, "zone", meta.Zone)
	}
	g.publishLocked()
}

// observeGone records that memberlist saw node leave gracefully (its metadata
// says it is leaving) or fail.
func (g *Gossip) observeGone(node *memberlist.Node) {
	meta, err := decodeGossipMeta(node.Meta)
	if err != nil || !meta.Ingestor {
		return
	}
	status := statusDead
	if meta.Leaving || node.State == memberlist.StateLeft {
		// memberlist v0.7.0 never sets node.State; see gossipMeta.Leaving.
		status = statusLeft
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	local, ok := g.table[node.Name]
	if ok && local.Instance > meta.Instance {
		return // an older process of the node, already replaced
	}
	next := member{Instance: meta.Instance, Address: meta.GRPC, Zone: meta.Zone, Status: status, Since: time.Now()}
	if ok && local.Instance == meta.Instance && local.Status != statusAlive {
		// Already dead or left, for instance through a peer's state.
		var changed bool
		if next, changed = mergeMember(local, ok, next); !changed {
			return
		}
	}
	g.table[node.Name] = next
	if status == statusLeft {
		g.logger.Info("gossip member left", "node", node.Name, "endpoint", meta.GRPC)
	} else {
		g.logger.Warn("gossip member failed, keeping it in the ring as unhealthy", "node", node.Name, "endpoint", meta.GRPC)
	}
	g.publishLocked()
}

// localState encodes the dead and left members for a push/pull exchange.
func (g *Gossip) localState() []byte {
	g.mu.Lock()
	s := gossipState{Version: gossipStateVersion}
	for name, m := range g.table {
		if m.Status == statusAlive {
			continue
		}
		s.Members = append(s.Members, gossipRecord{
			Name:     name,
			Instance: m.Instance,
			Address:  m.Address,
			Zone:     m.Zone,
			Left:     m.Status == statusLeft,
			Since:    m.Since.UnixNano(),
		})
	}
	g.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		g.logger.Error("encode gossip state", "err", err)
		return nil
	}
	return b
}

// mergeState merges the dead and left members a peer sent.
func (g *Gossip) mergeState(buf []byte) {
	s, err := decodeGossipState(buf)
	if err != nil {
		g.logger.Warn("ignoring gossip state from peer", "err", err)
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var changed bool
	for _, r := range s.Members {
		if r.Name == "" || r.Name == g.cfg.NodeName {
			// Only this node's memberlist speaks for this node.
			continue
		}
		remote := member{Instance: r.Instance, Address: r.Address, Zone: r.Zone, Status: statusDead, Since: time.Unix(0, r.Since)}
		if r.Left {
			remote.Status = statusLeft
		}
		if g.expired(remote, now) {
			continue
		}
		local, ok := g.table[r.Name]
		if next, ch := mergeMember(local, ok, remote); ch {
			g.table[r.Name] = next
			changed = true
			g.logger.Info("gossip member state from a peer", "node", r.Name, "endpoint", next.Address, "status", next.Status)
		}
	}
	if changed {
		g.publishLocked()
	}
}

// expired reports whether m should be forgotten at now.
func (g *Gossip) expired(m member, now time.Time) bool {
	var ttl time.Duration
	switch m.Status {
	case statusDead:
		ttl = g.ttlDead
	case statusLeft:
		ttl = g.ttlLeft
	}
	return ttl > 0 && now.Sub(m.Since) > ttl
}

// sweepLoop forgets dead members after DeadNodeReclaimTimeout and tombstones
// after gossipTombstoneTTL, until Shutdown.
func (g *Gossip) sweepLoop() {
	interval := time.Second
	if g.ttlDead > 0 {
		interval = max(min(interval, g.ttlDead/4), 10*time.Millisecond)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.sweep(now)
		}
	}
}

func (g *Gossip) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var changed bool
	for name, m := range g.table {
		if g.expired(m, now) {
			delete(g.table, name)
			delete(g.heard, name)
			changed = true
			if m.Status == statusDead {
				g.logger.Info("forgetting dead gossip member", "node", name, "endpoint", m.Address, "dead_since", m.Since)
			}
		}
	}
	if changed {
		g.publishLocked()
	}
}

// publishLocked recomputes members from table and, if they changed, updates
// the metrics and wakes the waiters of Changes. g.mu must be held.
func (g *Gossip) publishLocked() {
	members := make([]Endpoint, 0, len(g.table))
	for name, m := range g.table {
		var state State
		switch m.Status {
		case statusAlive:
			state = StateActive
		case statusDead:
			state = StateUnhealthy
		default:
			continue
		}
		members = append(members, Endpoint{Name: name, Address: m.Address, Zone: m.Zone, State: state})
	}
	slices.SortFunc(members, func(a, b Endpoint) int { return strings.Compare(a.Name, b.Name) })
	if slices.Equal(members, g.members) {
		return
	}
	g.members = members
	if g.metrics != nil {
		g.metrics.set(members)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// gossipDelegate is the memberlist.Delegate of a Gossip: it serves the node's
// metadata and exchanges dead and left members in push/pulls. memberlist calls
// it concurrently; it holds Gossip.mu only briefly and never calls back into
// memberlist.
type gossipDelegate struct{ g *Gossip }

// NodeMeta implements memberlist.Delegate. Validate checked that the metadata
// fits the limit.
func (d gossipDelegate) NodeMeta(limit int) []byte { return *d.g.meta.Load() }

// NotifyMsg implements memberlist.Delegate; Gossip sends no user messages.
func (gossipDelegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; Gossip sends no user messages.
func (gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (d gossipDelegate) LocalState(join bool) []byte { return d.g.localState() }

// MergeRemoteState implements memberlist.Delegate.
func (d gossipDelegate) MergeRemoteState(buf []byte, join bool) { d.g.mergeState(buf) }

// gossipEvents is the memberlist.EventDelegate of a Gossip. memberlist calls it
// one event at a time, with its node lock held, so it must not call back into
// memberlist.
type gossipEvents struct{ g *Gossip }

// NotifyJoin implements memberlist.EventDelegate.
func (e gossipEvents) NotifyJoin(n *memberlist.Node) { e.g.observeAlive(n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (e gossipEvents) NotifyUpdate(n *memberlist.Node) { e.g.observeAlive(n) }

// NotifyLeave implements memberlist.EventDelegate. memberlist calls it both
// when a node leaves and when it fails; the Leaving flag of the node's
// metadata tells which.
func (e gossipEvents) NotifyLeave(n *memberlist.Node) { e.g.observeGone(n) }

// gossipPings is the memberlist.PingDelegate of a Gossip: a successful probe
// of a node is a heartbeat of it.
type gossipPings struct{ g *Gossip }

// AckPayload implements memberlist.PingDelegate; acks carry nothing.
func (p gossipPings) AckPayload() []byte { return nil }

// NotifyPingComplete implements memberlist.PingDelegate.
func (p gossipPings) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	p.g.mu.Lock()
	defer p.g.mu.Unlock()
	if _, ok := p.g.table[other.Name]; ok {
		p.g.heard[other.Name] = time.Now()
	}
}

// memberlistLogWriter turns memberlist's log lines, "[LEVEL] memberlist: msg",
// into slog records.
type memberlistLogWriter struct{ logger *slog.Logger }

func (w memberlistLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	lvl := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug,
		"[INFO]":  slog.LevelInfo,
		"[WARN]":  slog.LevelWarn,
		"[ERR]":   slog.LevelError,
		"[ERROR]": slog.LevelError,
	} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			lvl, msg = l, strings.TrimSpace(rest)
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.logger.Log(context.Background(), lvl, msg)
	return len(p), nil
}
