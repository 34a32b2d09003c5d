package receive

import (
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
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

func TestForwardRequestFrames(t *testing.T) {
	for _, enc := range []forwardEncoding{forwardV2, forwardSnappy1, forwardSnappy2} {
		frame := appendForwardRequest(nil, "team-a", []byte("payload"), enc)
		tenant, payload, gotEnc, err := parseForwardRequest(frame)
		require.NoError(t, err)
		require.Equal(t, "team-a", tenant)
		require.Equal(t, "payload", string(payload))
		require.Equal(t, enc, gotEnc)
	}
	_, _, _, err := parseForwardRequest([]byte{0x18, 0xff})
	require.Error(t, err, "a truncated encoding field")

	h := NewHandler(Options{MaxDecompressedBytes: 64}, nil, nil, nil)
	b := newBatch()
	require.ErrorContains(t, h.decodeForwarded(b, snappy.Encode(nil, make([]byte, 100)), forwardSnappy1), "exceeds the limit of 64 bytes")
	require.ErrorContains(t, h.decodeForwarded(b, []byte{0x05, 0xff, 0xff}, forwardSnappy2), "decode snappy")
	require.ErrorContains(t, h.decodeForwarded(b, nil, 7), "unknown payload encoding 7")
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "x"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}}})
	require.NoError(t, h.decodeForwarded(b, body, forwardSnappy1))
	require.Len(t, b.req.series, 1)
}
