package receive

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/hashring"
)

func testRing(t *testing.T, eps ...hashring.Endpoint) hashring.Ring {
	t.Helper()
	ring, err := hashring.New(hashring.AlgorithmKetama, eps, 1)
	require.NoError(t, err)
	return ring
}

func TestPeersObserve(t *testing.T) {
	p := &peers{opts: RouteOptions{}.withDefaults(), m: map[string]*peer{}}
	defer func() { require.NoError(t, p.close()) }()
	a := hashring.Endpoint{Name: "a", Address: "127.0.0.1:1", State: hashring.StateActive}
	b := hashring.Endpoint{Name: "b", Address: "127.0.0.1:2", State: hashring.StateActive}
	for _, ep := range []hashring.Endpoint{a, b} {
		_, err := p.get(ep.Address) // connections are lazy: nothing is dialled
		require.NoError(t, err)
	}
	p.observe(testRing(t, a, b))

	// A peer that failed is backed off until membership shows it back.
	pb := p.m[b.Address]
	pb.failures, pb.downUntil = 3, time.Now().Add(time.Hour)
	unhealthy := b
	unhealthy.State = hashring.StateUnhealthy
	p.observe(testRing(t, a, unhealthy))
	require.Equal(t, 3, pb.failures, "an unhealthy peer stays backed off")
	p.observe(testRing(t, a, b))
	require.Zero(t, pb.failures, "a peer ACTIVE again is tried at once")
	require.True(t, pb.downUntil.IsZero())

	// A peer that left the ring is closed once idle, not while recently used.
	p.observe(testRing(t, a))
	require.Contains(t, p.m, b.Address, "recently used")
	pb.lastUsed = time.Now().Add(-2 * idlePeerTimeout)
	p.observe(testRing(t, a))
	require.NotContains(t, p.m, b.Address, "idle and outside the ring")
	require.Contains(t, p.m, a.Address)
}
