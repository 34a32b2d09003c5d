package querier_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// base is the start of the tests' data, in milliseconds.
const base = int64(1_700_000_000_000)

const sec = int64(1000)

func series(name string, kv []string, samples []storeapitest.Sample) storeapitest.Series {
	return storeapitest.Series{Labels: labels.FromStrings(append([]string{"__name__", name}, kv...)...), Samples: samples}
}

func TestSelectMergesStoresSorted(t *testing.T) {
	a := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "a"}, floats(base, base+60*sec, 10*sec, secondsValue)),
		series("up", []string{"job", "c"}, floats(base, base+60*sec, 10*sec, secondsValue)),
		series("interleaved", []string{"job", "x"}, floats(base, base+80*sec, 20*sec, secondsValue)),
	}, labels.EmptyLabels())
	b := startTSDBStore(t, []storeapitest.Series{
		// Overlaps store a's up{job="a"} at 50s with the same sample.
		series("up", []string{"job", "a"}, floats(base+50*sec, base+120*sec, 10*sec, secondsValue)),
		series("up", []string{"job", "b"}, floats(base, base+60*sec, 10*sec, secondsValue)),
		series("interleaved", []string{"job", "x"}, floats(base+10*sec, base+80*sec, 20*sec, secondsValue)),
	}, labels.EmptyLabels())
	c := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "a"}, floats(base, base+30*sec, 10*sec, secondsValue)),
	}, labels.FromStrings("region", "eu"))

	q := querier.NewQueryable(newEndpointSet(t, a.addr, b.addr, c.addr), querier.Options{}, nil, nil)
	got, warns, err := selectAll(t, context.Background(), q, base, base+200*sec, re("__name__", ".+"))
	require.NoError(t, err)
	require.Empty(t, warns)

	want := []gotSeries{
		{`{__name__="interleaved", job="x"}`, smps(floats(base, base+80*sec, 10*sec, secondsValue))},
		{`{__name__="up", job="a"}`, smps(floats(base, base+120*sec, 10*sec, secondsValue))},
		{`{__name__="up", job="a", region="eu"}`, smps(floats(base, base+30*sec, 10*sec, secondsValue))},
		{`{__name__="up", job="b"}`, smps(floats(base, base+60*sec, 10*sec, secondsValue))},
		{`{__name__="up", job="c"}`, smps(floats(base, base+60*sec, 10*sec, secondsValue))},
	}
	require.Equal(t, want, got)

	t.Run("one endpoint at a time", func(t *testing.T) {
		q := querier.NewQueryable(newEndpointSet(t, a.addr, b.addr, c.addr), querier.Options{MaxConcurrency: 1}, nil, nil)
		got, _, err := selectAll(t, context.Background(), q, base, base+200*sec, re("__name__", ".+"))
		require.NoError(t, err)
		require.Equal(t, want, got)
	})

	t.Run("chunk querier", func(t *testing.T) {
		cq, err := q.ChunkQuerier(base, base+200*sec)
		require.NoError(t, err)
		defer func() { require.NoError(t, cq.Close()) }()
		set := cq.Select(context.Background(), true, nil, eq("__name__", "up"), eq("job", "a"))
		var got []string
		for set.Next() {
			var n int
			it := set.At().Iterator(nil)
			for it.Next() {
				n += it.At().Chunk.NumSamples()
			}
			require.NoError(t, it.Err())
			got = append(got, fmt.Sprintf("%s %d", set.At().Labels(), n))
		}
		require.NoError(t, set.Err())
		require.Equal(t, []string{`{__name__="up", job="a"} 12`, `{__name__="up", job="a", region="eu"} 3`}, got)
	})

	t.Run("trimmed to the requested range", func(t *testing.T) {
		got, _, err := selectAll(t, context.Background(), q, base+25*sec, base+55*sec, eq("__name__", "up"), eq("job", "a"))
		require.NoError(t, err)
		require.Equal(t, []gotSeries{
			{`{__name__="up", job="a"}`, smps(floats(base+30*sec, base+60*sec, 10*sec, secondsValue))},
		}, got)
	})
}

func TestSelectPrunesEndpoints(t *testing.T) {
	data := []storeapitest.Series{series("up", []string{"job", "a"}, floats(base, base+60*sec, 10*sec, secondsValue))}
	late := []storeapitest.Series{series("up", []string{"job", "a"}, floats(base+10*3600*sec, base+10*3600*sec+60*sec, 10*sec, secondsValue))}
	stores := map[string]*testStore{
		"eu":   startTSDBStore(t, data, labels.FromStrings("region", "eu")),
		"us":   startTSDBStore(t, data, labels.FromStrings("region", "us")),
		"late": startTSDBStore(t, late, labels.FromStrings("region", "ap")),
	}
	q := querier.NewQueryable(newEndpointSet(t, stores["eu"].addr, stores["us"].addr, stores["late"].addr), querier.Options{}, nil, nil)

	early, all := [2]int64{base, base + 3600*sec}, [2]int64{base, base + 11*3600*sec}
	cases := []struct {
		name       string
		rng        [2]int64
		matchers   []*labels.Matcher
		wantCalled []string
		wantSeries int
	}{
		{"external label equal", early, []*labels.Matcher{eq("__name__", "up"), eq("region", "eu")}, []string{"eu"}, 1},
		{"external label regexp", all, []*labels.Matcher{eq("__name__", "up"), re("region", "u.*")}, []string{"us"}, 1},
		{"external label not equal and time", early, []*labels.Matcher{eq("__name__", "up"), labels.MustNewMatcher(labels.MatchNotEqual, "region", "eu")}, []string{"us"}, 1},
		{"time only", early, []*labels.Matcher{eq("__name__", "up")}, []string{"eu", "us"}, 2},
		{"nothing pruned", all, []*labels.Matcher{eq("__name__", "up")}, []string{"eu", "late", "us"}, 3},
		{"no endpoint matches", all, []*labels.Matcher{eq("region", "nowhere")}, nil, 0},
		{"non-external label is not pruned", early, []*labels.Matcher{eq("job", "b")}, []string{"eu", "us"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := map[string]int64{}
			for name, s := range stores {
				before[name] = s.seriesCalls.Load()
			}
			got, warns, err := selectAll(t, context.Background(), q, c.rng[0], c.rng[1], c.matchers...)
			require.NoError(t, err)
			require.Empty(t, warns)
			require.Len(t, got, c.wantSeries)
			var called []string
			for name, s := range stores {
				if s.seriesCalls.Load() > before[name] {
					called = append(called, name)
				}
			}
			slices.Sort(called)
			require.Equal(t, c.wantCalled, called)
		})
	}
}

func TestSelectDedupReceiveReplicas(t *testing.T) {
	full := floats(base, base+120*sec, 10*sec, secondsValue)
	without := func(from, to int64) []storeapitest.Sample {
		return slices.DeleteFunc(slices.Clone(full), func(s storeapitest.Sample) bool { return s.T >= from && s.T < to })
	}
	r0 := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "a"}, without(base+80*sec, base+100*sec)),
		series("up", []string{"job", "b"}, full),
	}, labels.FromStrings("receive_replica", "0", "tenant_id", "t1"))
	r1 := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "a"}, without(base+30*sec, base+60*sec)),
		series("up", []string{"job", "b"}, full),
	}, labels.FromStrings("receive_replica", "1", "tenant_id", "t1"))
	q := querier.NewQueryable(newEndpointSet(t, r0.addr, r1.addr), querier.Options{}, nil, nil)

	got, warns, err := selectAll(t, context.Background(), q, base, base+200*sec, eq("__name__", "up"))
	require.NoError(t, err)
	require.Empty(t, warns)
	require.Equal(t, []gotSeries{
		{`{__name__="up", job="a", tenant_id="t1"}`, smps(full)},
		{`{__name__="up", job="b", tenant_id="t1"}`, smps(full)},
	}, got)

	t.Run("dedup off per request", func(t *testing.T) {
		got, _, err := selectAll(t, querier.WithDedup(context.Background(), false), q, base, base+200*sec, eq("__name__", "up"), eq("job", "b"))
		require.NoError(t, err)
		require.Equal(t, []gotSeries{
			{`{__name__="up", job="b", receive_replica="0", tenant_id="t1"}`, smps(full)},
			{`{__name__="up", job="b", receive_replica="1", tenant_id="t1"}`, smps(full)},
		}, got)
	})
	t.Run("dedup off by option, on per request", func(t *testing.T) {
		q := querier.NewQueryable(newEndpointSet(t, r0.addr, r1.addr), querier.Options{DisableDedup: true}, nil, nil)
		got, _, err := selectAll(t, context.Background(), q, base, base+200*sec, eq("job", "b"))
		require.NoError(t, err)
		require.Len(t, got, 2)
		got, _, err = selectAll(t, querier.WithDedup(context.Background(), true), q, base, base+200*sec, eq("job", "b"))
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
}

func TestSelectDedupHAPairFillsGap(t *testing.T) {
	// Replica A scrapes at 0s, 15s, ... and misses 75s-345s; replica B scrapes
	// at 5s, 20s, ... throughout.
	end := base + 600*sec
	var aSamples []storeapitest.Sample
	for _, s := range floats(base, end, 15*sec, secondsValue) {
		if s.T <= base+60*sec || s.T >= base+360*sec {
			aSamples = append(aSamples, s)
		}
	}
	bSamples := floats(base+5*sec, end, 15*sec, secondsValue)
	ra := startTSDBStore(t, []storeapitest.Series{series("up", []string{"job", "a"}, aSamples)}, labels.FromStrings("prometheus_replica", "A"))
	rb := startTSDBStore(t, []storeapitest.Series{series("up", []string{"job", "a"}, bSamples)}, labels.FromStrings("prometheus_replica", "B"))
	q := querier.NewQueryable(newEndpointSet(t, ra.addr, rb.addr), querier.Options{}, nil, nil)

	got, warns, err := selectAll(t, context.Background(), q, base, end, eq("__name__", "up"))
	require.NoError(t, err)
	require.Empty(t, warns)
	require.Len(t, got, 1)
	require.Equal(t, `{__name__="up", job="a"}`, got[0].Labels)

	// A up to 60s, B from one interval after A's last sample until A is back
	// within two intervals, then A again (see querier/dedup's documentation).
	var want []smp
	want = append(want, smps(floats(base, base+61*sec, 15*sec, secondsValue))...)
	want = append(want, smps(floats(base+80*sec, base+336*sec, 15*sec, secondsValue))...)
	want = append(want, smps(floats(base+360*sec, end, 15*sec, secondsValue))...)
	require.Equal(t, want, got[0].Samples)
}

// failingStore answers Info but fails every Series and label call.
type failingStore struct {
	*storeapi.TSDBStore
}

func (failingStore) Series(*storepb.SeriesRequest, storepb.Store_SeriesServer) error {
	return status.Error(codes.Unavailable, "store is broken")
}

func (failingStore) LabelNames(context.Context, *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	return nil, status.Error(codes.Unavailable, "store is broken")
}

// stuckStore answers Info but never answers Series or LabelNames.
type stuckStore struct {
	*storeapi.TSDBStore
}

func (stuckStore) LabelNames(ctx context.Context, _ *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

func (stuckStore) Series(_ *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	<-srv.Context().Done()
	return status.FromContextError(srv.Context().Err()).Err()
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func TestPartialResponse(t *testing.T) {
	data := []storeapitest.Series{series("up", []string{"job", "a"}, floats(base, base+60*sec, 10*sec, secondsValue))}
	good := startTSDBStore(t, data, labels.FromStrings("region", "eu"))
	ts := storeapi.NewTSDBStore(openTSDB(t, data), labels.FromStrings("region", "us"), "receive", nil)
	broken := serveStore(t, failingStore{ts}, ts)
	down := freeAddr(t)
	stuck := serveStore(t, stuckStore{ts}, ts)

	ctxPartial := func(on bool) context.Context { return querier.WithPartialResponse(context.Background(), on) }
	cases := []struct {
		name    string
		bad     string
		opts    querier.Options
		ctx     context.Context
		wantErr bool
	}{
		{"endpoint down, partial by default", down, querier.Options{}, context.Background(), false},
		{"endpoint down, partial disabled per request", down, querier.Options{}, ctxPartial(false), true},
		{"endpoint down, partial disabled by option", down, querier.Options{DisablePartialResponse: true}, context.Background(), true},
		{"endpoint down, partial disabled by option, enabled per request", down, querier.Options{DisablePartialResponse: true}, ctxPartial(true), false},
		{"series fails, partial", broken.addr, querier.Options{}, context.Background(), false},
		{"series fails, partial disabled", broken.addr, querier.Options{}, ctxPartial(false), true},
		{"series times out, partial", stuck.addr, querier.Options{Timeout: 200 * time.Millisecond}, context.Background(), false},
		{"series times out, partial disabled", stuck.addr, querier.Options{Timeout: 200 * time.Millisecond}, ctxPartial(false), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := querier.NewQueryable(newEndpointSet(t, good.addr, c.bad), c.opts, nil, nil)
			got, warns, err := selectAll(t, c.ctx, q, base, base+60*sec, eq("__name__", "up"))
			names, nameWarns, namesErr := labelNames(t, c.ctx, q)
			if c.wantErr {
				require.ErrorIs(t, err, querier.ErrPartialResult)
				require.ErrorContains(t, err, c.bad)
				require.ErrorIs(t, namesErr, querier.ErrPartialResult)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []gotSeries{{`{__name__="up", job="a", region="eu"}`, smps(data[0].Samples)}}, got)
			require.Len(t, warns, 1)
			require.Contains(t, strings.Join(warningStrings(warns.AsErrors()), "\n"), c.bad)

			require.NoError(t, namesErr)
			require.Equal(t, []string{"__name__", "job", "region"}, names)
			require.Len(t, nameWarns, 1)
		})
	}
}

func warningStrings(errs []error) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func labelNames(t *testing.T, ctx context.Context, q storage.Queryable, ms ...*labels.Matcher) ([]string, []error, error) {
	t.Helper()
	qr, err := q.Querier(base, base+3600*sec)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	names, annots, err := qr.LabelNames(ctx, nil, ms...)
	return names, annots.AsErrors(), err
}

func labelValues(t *testing.T, ctx context.Context, q storage.Queryable, name string, ms ...*labels.Matcher) ([]string, error) {
	t.Helper()
	qr, err := q.Querier(base, base+3600*sec)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	values, annots, err := qr.LabelValues(ctx, name, nil, ms...)
	require.Empty(t, annots)
	return values, err
}

func TestLabelNamesAndValues(t *testing.T) {
	r0 := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "a"}, floats(base, base+60*sec, 10*sec, secondsValue)),
		series("build_info", []string{"version", "1"}, floats(base, base+60*sec, 10*sec, secondsValue)),
	}, labels.FromStrings("receive_replica", "0", "region", "eu"))
	r1 := startTSDBStore(t, []storeapitest.Series{
		series("up", []string{"job", "b", "instance", "x"}, floats(base, base+60*sec, 10*sec, secondsValue)),
	}, labels.FromStrings("receive_replica", "1", "region", "us"))
	q := querier.NewQueryable(newEndpointSet(t, r0.addr, r1.addr), querier.Options{}, nil, nil)
	noDedup := querier.WithDedup(context.Background(), false)

	cases := []struct {
		name     string
		ctx      context.Context
		matchers []*labels.Matcher
		want     []string
	}{
		{"dedup drops replica labels", context.Background(), nil, []string{"__name__", "instance", "job", "region", "version"}},
		{"without dedup", noDedup, nil, []string{"__name__", "instance", "job", "receive_replica", "region", "version"}},
		{"matchers", context.Background(), []*labels.Matcher{eq("__name__", "up")}, []string{"__name__", "instance", "job", "region"}},
		{"external matcher prunes", context.Background(), []*labels.Matcher{eq("region", "eu")}, []string{"__name__", "job", "region", "version"}},
	}
	for _, c := range cases {
		t.Run("names/"+c.name, func(t *testing.T) {
			got, warns, err := labelNames(t, c.ctx, q, c.matchers...)
			require.NoError(t, err)
			require.Empty(t, warns)
			require.Equal(t, c.want, got)
		})
	}

	valueCases := []struct {
		name     string
		ctx      context.Context
		label    string
		matchers []*labels.Matcher
		want     []string
	}{
		{"union", context.Background(), "job", nil, []string{"a", "b"}},
		{"external label", context.Background(), "region", nil, []string{"eu", "us"}},
		{"with matcher", context.Background(), "job", []*labels.Matcher{eq("region", "us")}, []string{"b"}},
		{"replica label with dedup", context.Background(), "receive_replica", nil, nil},
		{"replica label without dedup", noDedup, "receive_replica", nil, []string{"0", "1"}},
	}
	for _, c := range valueCases {
		t.Run("values/"+c.name, func(t *testing.T) {
			got, err := labelValues(t, c.ctx, q, c.label, c.matchers...)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestSelectCancelled(t *testing.T) {
	s := startTSDBStore(t, []storeapitest.Series{series("up", nil, floats(base, base+60*sec, 10*sec, secondsValue))}, labels.EmptyLabels())
	q := querier.NewQueryable(newEndpointSet(t, s.addr), querier.Options{}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := selectAll(t, ctx, q, base, base+60*sec, eq("__name__", "up"))
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = labelNames(t, ctx, q)
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}

func TestSelectLimitAndSeriesOnly(t *testing.T) {
	var data []storeapitest.Series
	for i := range 5 {
		data = append(data, series("up", []string{"job", fmt.Sprint(i)}, floats(base, base+60*sec, 10*sec, secondsValue)))
	}
	s := startTSDBStore(t, data, labels.FromStrings("receive_replica", "0"))
	q := querier.NewQueryable(newEndpointSet(t, s.addr), querier.Options{}, nil, nil)
	qr, err := q.Querier(base, base+60*sec)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	set := qr.Select(context.Background(), true, &storage.SelectHints{Start: base, End: base + 60*sec, Func: "series", Limit: 3}, eq("__name__", "up"))
	var got []string
	for set.Next() {
		got = append(got, set.At().Labels().String())
	}
	require.NoError(t, set.Err())
	require.Equal(t, []string{`{__name__="up", job="0"}`, `{__name__="up", job="1"}`, `{__name__="up", job="2"}`}, got)
}
