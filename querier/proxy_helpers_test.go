package querier_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// testStore is a Store API server on a loopback port.
type testStore struct {
	addr string
	// seriesCalls counts the Series calls the server received.
	seriesCalls atomic.Int64
	stop        func()
}

// serveStore serves store and info over real gRPC on a loopback port, counting
// Series calls, until the test ends or stop is called.
func serveStore(t *testing.T, store storepb.StoreServer, info infopb.InfoServer) *testStore {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &testStore{addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if info.FullMethod == storepb.Store_Series_FullMethodName {
				ts.seriesCalls.Add(1)
			}
			return handler(srv, ss)
		}))
	storepb.RegisterStoreServer(srv, store)
	infopb.RegisterInfoServer(srv, info)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		srv.Stop()
		require.NoError(t, <-served)
	}
	t.Cleanup(ts.stop)
	return ts
}

// openTSDB returns a TSDB in a temporary directory holding data, closed when
// the test ends.
func openTSDB(t *testing.T, data []storeapitest.Series) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	if len(data) > 0 {
		app := db.AppenderV2(context.Background())
		require.NoError(t, storeapitest.AppendAll(app, data))
		require.NoError(t, app.Commit())
	}
	return db
}

// startTSDBStore serves a new TSDB holding data, with external labels ext.
func startTSDBStore(t *testing.T, data []storeapitest.Series, ext labels.Labels) *testStore {
	t.Helper()
	s := storeapi.NewTSDBStore(openTSDB(t, data), ext, "receive", nil)
	return serveStore(t, s, s)
}

// newEndpointSet returns a refreshed endpoint set over static addresses,
// closed when the test ends.
func newEndpointSet(t *testing.T, addrs ...string) *querier.EndpointSet {
	t.Helper()
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{Endpoints: addrs, InfoTimeout: 2 * time.Second}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, set.Close()) })
	require.NoError(t, set.Refresh(context.Background()))
	return set
}

// smp is one float sample of a query result.
type smp struct {
	T int64
	F float64
}

// gotSeries is one series of a query result: its labels as a string and its
// float samples.
type gotSeries struct {
	Labels  string
	Samples []smp
}

// selectAll runs one Select over [mint, maxt] and reads every float sample.
func selectAll(t *testing.T, ctx context.Context, q storage.Queryable, mint, maxt int64, ms ...*labels.Matcher) ([]gotSeries, annotations.Annotations, error) {
	t.Helper()
	qr, err := q.Querier(mint, maxt)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	set := qr.Select(ctx, true, &storage.SelectHints{Start: mint, End: maxt}, ms...)
	var out []gotSeries
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		g := gotSeries{Labels: s.Labels().String()}
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			require.Equal(t, chunkenc.ValFloat, vt)
			ts, v := it.At()
			g.Samples = append(g.Samples, smp{ts, v})
		}
		require.NoError(t, it.Err())
		out = append(out, g)
	}
	return out, set.Warnings(), set.Err()
}

// floats returns samples at from, from+step, ... before to, valued by f.
func floats(from, to, step int64, f func(ts int64) float64) []storeapitest.Sample {
	var out []storeapitest.Sample
	for ts := from; ts < to; ts += step {
		out = append(out, storeapitest.Sample{T: ts, F: f(ts)})
	}
	return out
}

func smps(in []storeapitest.Sample) []smp {
	out := make([]smp, 0, len(in))
	for _, s := range in {
		out = append(out, smp{s.T, s.F})
	}
	return out
}

func secondsValue(ts int64) float64 { return float64(ts) / 1000 }

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

func re(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchRegexp, name, value)
}
