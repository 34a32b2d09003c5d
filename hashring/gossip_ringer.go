package hashring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var _ Ringer = (*GossipRinger)(nil)

// GossipRinger serves one ring, for every tenant, over the members of a Gossip,
// and rebuilds it when they change. It is safe for concurrent use; Run must be
// called at most once.
type GossipRinger struct {
	g        *Gossip
	alg      Algorithm
	rf       int
	logger   *slog.Logger
	rebuilds prometheus.Counter

	// current is swapped whole on every rebuild, so readers never lock.
	current atomic.Pointer[gossipRing]
}

// gossipRing is the outcome of one rebuild: a ring, or why there is none.
type gossipRing struct {
	members []Endpoint // the ring was built from these
	ring    Ring
	err     error
}

// NewGossipRinger returns a GossipRinger that places series with algorithm alg
// and replication factor rf over the members of g. It builds the first ring at
// once; Run keeps it up to date. Rebuilds are counted in g's metrics
// (strata_cluster_ring_rebuilds_total). A nil logger discards logs.
func NewGossipRinger(g *Gossip, alg Algorithm, rf int, logger *slog.Logger) *GossipRinger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &GossipRinger{
		g:        g,
		alg:      alg,
		rf:       rf,
		logger:   logger,
		rebuilds: g.metrics.rebuilds,
	}
	r.rebuild(g.Members())
	return r
}

// Ring implements Ringer: every tenant gets the ring of the current members.
// While there are fewer members than the replication factor, or the ring
// cannot be built, it returns the error of the last rebuild, which wraps
// ErrNotEnoughEndpoints in the first case.
func (r *GossipRinger) Ring(string) (Ring, error) {
	c := r.current.Load()
	return c.ring, c.err
}

// Run rebuilds the ring whenever the members change, until ctx is done or the
// Gossip is shut down; then it returns nil.
func (r *GossipRinger) Run(ctx context.Context) error {
	for {
		// Take the channel before reading the members, so that no change
		// falls between the two.
		changed := r.g.Changes()
		r.rebuild(r.g.Members())
		select {
		case <-ctx.Done():
			return nil
		case <-r.g.stop:
			return nil
		case <-changed:
		}
	}
}

// rebuild builds a ring over members and swaps it in, unless members are those
// of the current ring (the constructor already built it).
func (r *GossipRinger) rebuild(members []Endpoint) {
	if c := r.current.Load(); c != nil && slices.Equal(c.members, members) {
		return
	}
	r.rebuilds.Inc()
	ring, err := New(r.alg, members, r.rf)
	if err != nil {
		err = fmt.Errorf("gossip hashring: %w", err)
		if errors.Is(err, ErrNotEnoughEndpoints) {
			// Expected while a cluster forms; writes get 503 until enough members join.
			r.logger.Info("waiting for more gossip members to build the hashring", "members", len(members), "replication_factor", r.rf)
		} else {
			r.logger.Warn("no usable hashring for the gossip members", "members", len(members), "replication_factor", r.rf, "err", err)
		}
		r.current.Store(&gossipRing{members: members, err: err})
		return
	}
	r.logger.Info("gossip hashring rebuilt", "members", len(members), "unhealthy", countState(members, StateUnhealthy), "replication_factor", r.rf)
	r.current.Store(&gossipRing{members: members, ring: ring})
}

func countState(eps []Endpoint, s State) int {
	var n int
	for _, e := range eps {
		if e.State == s {
			n++
		}
	}
	return n
}
