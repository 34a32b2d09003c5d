// Package storeapitest holds the acceptance suite of the Store API contract
// (docs/storeapi.md), which every implementation runs: the TSDB store, the
// receiver's multi-tenant store, the store gateway and the querier's proxy.
package storeapitest

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// Sample is one sample of a fixture series: a float, or an integer or float
// histogram when H or FH is set.
type Sample struct {
	T  int64
	F  float64
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// Series is one series of the fixture: its labels as written, without external
// labels, and its samples in time order, all of one kind.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// AppendAll appends every sample of data to app in one transaction, without
// committing it. The fixture's samples are appendable to an empty TSDB in that
// order.
func AppendAll(app storage.AppenderV2, data []Series) error {
	for _, s := range data {
		for _, smp := range s.Samples {
			if _, err := app.Append(0, s.Labels, 0, smp.T, smp.F, smp.H, smp.FH, storage.AOptions{}); err != nil {
				return fmt.Errorf("append %s at %d: %w", s.Labels, smp.T, err)
			}
		}
	}
	return nil
}

// Serve serves store and info over real gRPC on a loopback port and returns
// clients for them. Everything is stopped when the test ends.
func Serve(t testing.TB, store storepb.StoreServer, info infopb.InfoServer) (storepb.StoreClient, infopb.InfoClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	storepb.RegisterStoreServer(srv, store)
	infopb.RegisterInfoServer(srv, info)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, conn.Close())
		srv.Stop()
		require.NoError(t, <-served)
	})
	return storepb.NewStoreClient(conn), infopb.NewInfoClient(conn)
}

// Fixture times: one hour of data from t0, aligned to a 2h block boundary.
const (
	t0     = int64(1_699_999_200_000)
	minute = int64(time.Minute / time.Millisecond)
	tEnd   = t0 + 60*minute // exclusive
)

// externalLabels are the external labels the suite gives its store. a_replica
// sorts before every series label, region overrides a series' own region label,
// and tenant_id is the tenant of a receiver's store.
// SplitAt returns the samples of data before ts and from ts on, as two
// fixtures: the data of two blocks or stores split in time.
func SplitAt(data []Series, ts int64) (before, after []Series) {
	for _, s := range data {
		var b, a []Sample
		for _, smp := range s.Samples {
			if smp.T < ts {
				b = append(b, smp)
			} else {
				a = append(a, smp)
			}
		}
		if len(b) > 0 {
			before = append(before, Series{Labels: s.Labels, Samples: b})
		}
		if len(a) > 0 {
			after = append(after, Series{Labels: s.Labels, Samples: a})
		}
	}
	return before, after
}

func externalLabels() labels.Labels {
	return labels.FromStrings("a_replica", "r1", "region", "eu", "tenant_id", "team-a")
}

func floats(from, to, step int64) []Sample {
	var out []Sample
	for ts := from; ts < to; ts += step {
		out = append(out, Sample{T: ts, F: float64(ts-t0) / 1000})
	}
	return out
}

func histograms(from, to, step int64, float bool) []Sample {
	var out []Sample
	for i, ts := 0, from; ts < to; i, ts = i+1, ts+step {
		if float {
			out = append(out, Sample{T: ts, FH: tsdbutil.GenerateTestFloatHistogram(int64(i))})
		} else {
			out = append(out, Sample{T: ts, H: tsdbutil.GenerateTestHistogram(int64(i))})
		}
	}
	return out
}

// fixture returns the suite's data: several chunks per float series, series
// that exist only early or late in the hour, native histograms, and series whose
// order changes once the external labels are attached.
func fixture() []Series {
	const step = 10 * 1000 // 10s: 360 samples, three chunks, per hour
	return []Series{
		{labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "a:1"), floats(t0, tEnd, step)},
		{labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "b:1"), floats(t0, tEnd, step)},
		{labels.FromStrings("__name__", "http_requests_total", "job", "web", "instance", "a:1"), floats(t0, tEnd, step)},
		// TSDB order puts {job} before {job, kind}; with region (between kind and
		// tenant_id) attached, {job, kind, region} sorts before {job, region}.
		{labels.FromStrings("__name__", "up", "job", "api"), floats(t0, tEnd, step)},
		{labels.FromStrings("__name__", "up", "job", "api", "kind", "x"), floats(t0, tEnd, step)},
		// region is overridden by the external label.
		{labels.FromStrings("__name__", "up", "job", "edge", "region", "local"), floats(t0, tEnd, step)},
		{labels.FromStrings("__name__", "old_metric", "job", "batch"), floats(t0, t0+20*minute, step)},
		{labels.FromStrings("__name__", "new_metric", "job", "batch"), floats(t0+40*minute, tEnd, step)},
		{labels.FromStrings("__name__", "latency_seconds", "job", "api"), histograms(t0, tEnd, 30*1000, false)},
		{labels.FromStrings("__name__", "latency_float_seconds", "job", "api"), histograms(t0, tEnd, 30*1000, true)},
	}
}

// AcceptanceTest runs the Store API contract against an implementation.
// newStore must return clients of a store, reached over real gRPC, that holds
// exactly data (split however it likes, for example across several TSDBs or
// between head and blocks) and attaches exactly the external labels ext to every
// series. ext always holds tenant_id, so a receiver can map it to its tenant.
func AcceptanceTest(t *testing.T, newStore func(t *testing.T, data []Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient)) {
	data, ext := fixture(), externalLabels()
	store, info := newStore(t, data, ext)
	o := oracle{data: data, ext: ext}

	t.Run("Series", func(t *testing.T) { testSeries(t, store, o) })
	t.Run("LabelNames", func(t *testing.T) { testLabelNames(t, store, o) })
	t.Run("LabelValues", func(t *testing.T) { testLabelValues(t, store, o) })
	t.Run("InvalidRequests", func(t *testing.T) { testInvalidRequests(t, store) })
	t.Run("Info", func(t *testing.T) { testInfo(t, info, ext) })
}

func eq(name, value string) *storepb.LabelMatcher {
	return &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: name, Value: value}
}

func neq(name, value string) *storepb.LabelMatcher {
	return &storepb.LabelMatcher{Type: storepb.LabelMatcher_NEQ, Name: name, Value: value}
}

func re(name, value string) *storepb.LabelMatcher {
	return &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: name, Value: value}
}

func nre(name, value string) *storepb.LabelMatcher {
	return &storepb.LabelMatcher{Type: storepb.LabelMatcher_NRE, Name: name, Value: value}
}

var anyName = re("__name__", ".+")

func testSeries(t *testing.T, store storepb.StoreClient, o oracle) {
	cases := []struct {
		name       string
		mint, maxt int64
		matchers   []*storepb.LabelMatcher
		without    []string
		skipChunks bool
		limit      int64
		batch      int64
		wantNone   bool // sanity check of the oracle: the case must select nothing
	}{
		{name: "all series, sorted, with external labels", matchers: []*storepb.LabelMatcher{anyName}},
		{name: "whole time range", mint: math.MinInt64, maxt: math.MaxInt64, matchers: []*storepb.LabelMatcher{anyName}},
		{name: "equal", matchers: []*storepb.LabelMatcher{eq("__name__", "up")}},
		{name: "not equal", matchers: []*storepb.LabelMatcher{eq("__name__", "up"), neq("job", "api")}},
		{name: "regexp", matchers: []*storepb.LabelMatcher{re("__name__", "http_.*"), re("instance", "a:.*")}},
		{name: "not regexp", matchers: []*storepb.LabelMatcher{re("__name__", "http_.*"), nre("job", "a.*")}},
		{name: "label nobody has matches empty", matchers: []*storepb.LabelMatcher{eq("__name__", "up"), eq("zone", "")}},
		{name: "label nobody has never matches a value", matchers: []*storepb.LabelMatcher{eq("zone", "z1")}, wantNone: true},
		{name: "external label only", matchers: []*storepb.LabelMatcher{eq("region", "eu")}},
		{name: "external label equal matches", matchers: []*storepb.LabelMatcher{eq("__name__", "up"), eq("tenant_id", "team-a")}},
		{name: "external label equal mismatches", matchers: []*storepb.LabelMatcher{eq("__name__", "up"), eq("region", "us")}, wantNone: true},
		{name: "external label regexp matches", matchers: []*storepb.LabelMatcher{re("tenant_id", "team-.*"), re("__name__", "up|old_metric")}},
		{name: "external label regexp mismatches", matchers: []*storepb.LabelMatcher{re("tenant_id", "other.*"), anyName}, wantNone: true},
		{name: "external label not equal matches", matchers: []*storepb.LabelMatcher{neq("region", "us"), eq("__name__", "old_metric")}},
		{name: "external label not equal mismatches", matchers: []*storepb.LabelMatcher{neq("region", "eu"), anyName}, wantNone: true},
		{name: "external label not regexp mismatches", matchers: []*storepb.LabelMatcher{nre("a_replica", "r.*"), anyName}, wantNone: true},
		{name: "overridden series label is matched against the external value", matchers: []*storepb.LabelMatcher{eq("region", "local")}, wantNone: true},
		{name: "early range excludes late series", mint: t0, maxt: t0 + 10*minute, matchers: []*storepb.LabelMatcher{anyName}},
		{name: "late range excludes early series", mint: t0 + 45*minute, maxt: tEnd, matchers: []*storepb.LabelMatcher{anyName}},
		{name: "middle range excludes early and late series", mint: t0 + 25*minute, maxt: t0 + 35*minute, matchers: []*storepb.LabelMatcher{re("__name__", "old_metric|new_metric")}, wantNone: true},
		{name: "range inside chunks", mint: t0 + 15*minute, maxt: t0 + 16*minute, matchers: []*storepb.LabelMatcher{anyName}},
		{name: "single millisecond", mint: t0 + 30*minute, maxt: t0 + 30*minute, matchers: []*storepb.LabelMatcher{anyName}},
		{name: "range after the data", mint: tEnd + 60*minute, maxt: tEnd + 120*minute, matchers: []*storepb.LabelMatcher{anyName}, wantNone: true},
		{name: "range before the data", mint: t0 - 120*minute, maxt: t0 - 1, matchers: []*storepb.LabelMatcher{anyName}, wantNone: true},
		{name: "skip chunks", matchers: []*storepb.LabelMatcher{anyName}, skipChunks: true},
		{name: "skip chunks with range", mint: t0 + 45*minute, maxt: tEnd, matchers: []*storepb.LabelMatcher{anyName}, skipChunks: true},
		{name: "without replica label", matchers: []*storepb.LabelMatcher{anyName}, without: []string{"a_replica"}},
		{name: "without replica labels sorting first and in the middle", matchers: []*storepb.LabelMatcher{eq("__name__", "up")}, without: []string{"a_replica", "region"}},
		{name: "without a label that is not external keeps it", matchers: []*storepb.LabelMatcher{anyName}, without: []string{"a_replica", "job"}},
		{name: "without replica label, skip chunks", matchers: []*storepb.LabelMatcher{anyName}, without: []string{"a_replica"}, skipChunks: true},
		{name: "limit", matchers: []*storepb.LabelMatcher{anyName}, limit: 3},
		{name: "response batches", matchers: []*storepb.LabelMatcher{anyName}, batch: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.mint == 0 && c.maxt == 0 {
				c.mint, c.maxt = t0, tEnd-1
			}
			req := &storepb.SeriesRequest{
				MinTime:              c.mint,
				MaxTime:              c.maxt,
				Matchers:             c.matchers,
				SkipChunks:           c.skipChunks,
				WithoutReplicaLabels: c.without,
				Limit:                c.limit,
				ResponseBatchSize:    c.batch,
			}
			got, err := readSeries(t, store, req)
			require.NoError(t, err)

			want := o.series(t, c.mint, c.maxt, c.matchers, c.without)
			if c.wantNone {
				require.Empty(t, want, "oracle")
			} else {
				require.NotEmpty(t, want, "oracle")
			}
			if c.limit > 0 {
				want = want[:min(int(c.limit), len(want))]
			}
			gotLabels := make([]labels.Labels, 0, len(got))
			for _, s := range got {
				gotLabels = append(gotLabels, s.lset)
			}
			require.Equal(t, labelStrings(want), labelStrings(gotLabels))

			for _, s := range got {
				if c.skipChunks {
					require.Empty(t, s.chunks, "series %s", s.lset)
					continue
				}
				checkChunks(t, s, o.samples(s.lset, c.without), c.mint, c.maxt)
			}
		})
	}
}

type gotSeries struct {
	lset   labels.Labels
	chunks []*storepb.AggrChunk
}

// readSeries reads a whole Series stream. It fails the test if the stream is
// not sorted; consecutive frames of the same series are joined.
func readSeries(t *testing.T, store storepb.StoreClient, req *storepb.SeriesRequest) ([]gotSeries, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := store.Series(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []gotSeries
	add := func(s *storepb.Series) {
		lset := labelsFromProto(t, s.GetLabels())
		if n := len(out); n > 0 {
			c := labels.Compare(out[n-1].lset, lset)
			require.LessOrEqual(t, c, 0, "series out of order: %s after %s", lset, out[n-1].lset)
			if c == 0 {
				out[n-1].chunks = append(out[n-1].chunks, s.GetChunks()...)
				return
			}
		}
		out = append(out, gotSeries{lset: lset, chunks: s.GetChunks()})
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch r := resp.GetResult().(type) {
		case *storepb.SeriesResponse_Series:
			add(r.Series)
		case *storepb.SeriesResponse_Batch:
			if req.GetResponseBatchSize() > 1 {
				require.LessOrEqual(t, int64(len(r.Batch.GetSeries())), req.GetResponseBatchSize(), "batch larger than asked for")
			}
			for _, s := range r.Batch.GetSeries() {
				add(s)
			}
		case *storepb.SeriesResponse_Warning:
			t.Errorf("unexpected warning: %s", r.Warning)
		case *storepb.SeriesResponse_Hints:
		default:
			t.Fatalf("unexpected frame %T", r)
		}
	}
}

// labelsFromProto checks that wire labels are sorted, unique and non-empty.
func labelsFromProto(t *testing.T, ls []*storepb.Label) labels.Labels {
	t.Helper()
	b := labels.NewScratchBuilder(len(ls))
	for i, l := range ls {
		require.NotEmpty(t, l.GetName(), "empty label name")
		require.NotEmpty(t, l.GetValue(), "empty value of label %q", l.GetName())
		if i > 0 {
			require.Less(t, ls[i-1].GetName(), l.GetName(), "labels not sorted or not unique")
		}
		b.Add(l.GetName(), l.GetValue())
	}
	return b.Labels()
}

// checkChunks checks a series' chunks: sorted by min time, raw only, of the
// series' sample kind, with correct hashes and time bounds, and together holding
// every fixture sample in [mint, maxt].
func checkChunks(t *testing.T, s gotSeries, want []Sample, mint, maxt int64) {
	t.Helper()
	require.NotEmpty(t, want, "no fixture samples for %s", s.lset)
	require.NotEmpty(t, s.chunks, "series %s has no chunks", s.lset)
	got := map[int64]Sample{}
	for i, c := range s.chunks {
		if i > 0 {
			require.LessOrEqual(t, s.chunks[i-1].GetMinTime(), c.GetMinTime(), "chunks of %s not sorted by min time", s.lset)
		}
		require.LessOrEqual(t, c.GetMinTime(), c.GetMaxTime())
		require.True(t, c.GetMaxTime() >= mint && c.GetMinTime() <= maxt, "chunk [%d, %d] of %s outside [%d, %d]", c.GetMinTime(), c.GetMaxTime(), s.lset, mint, maxt)
		raw := c.GetRaw()
		require.NotNil(t, raw, "raw chunk of %s", s.lset)
		require.Nil(t, c.GetCount())
		require.Nil(t, c.GetSum())
		require.Nil(t, c.GetMin())
		require.Nil(t, c.GetMax())
		require.Nil(t, c.GetCounter())
		require.Equal(t, xxhash.Sum64(raw.GetData()), raw.GetHash(), "hash of a chunk of %s", s.lset)

		var enc chunkenc.Encoding
		switch raw.GetType() {
		case storepb.Chunk_XOR:
			enc = chunkenc.EncXOR
			require.Nil(t, want[0].H, "float chunk for histogram series %s", s.lset)
			require.Nil(t, want[0].FH, "float chunk for float histogram series %s", s.lset)
		case storepb.Chunk_HISTOGRAM:
			enc = chunkenc.EncHistogram
			require.NotNil(t, want[0].H, "histogram chunk for series %s", s.lset)
		case storepb.Chunk_FLOAT_HISTOGRAM:
			enc = chunkenc.EncFloatHistogram
			require.NotNil(t, want[0].FH, "float histogram chunk for series %s", s.lset)
		default:
			t.Fatalf("unknown chunk type %v", raw.GetType())
		}
		chk, err := chunkenc.FromData(enc, raw.GetData())
		require.NoError(t, err)
		it := chk.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			var smp Sample
			switch vt {
			case chunkenc.ValFloat:
				smp.T, smp.F = it.At()
			case chunkenc.ValHistogram:
				smp.T, smp.H = it.AtHistogram(nil)
			case chunkenc.ValFloatHistogram:
				smp.T, smp.FH = it.AtFloatHistogram(nil)
			}
			require.True(t, smp.T >= c.GetMinTime() && smp.T <= c.GetMaxTime(), "sample at %d outside its chunk [%d, %d]", smp.T, c.GetMinTime(), c.GetMaxTime())
			if smp.T >= mint && smp.T <= maxt {
				got[smp.T] = smp
			}
		}
		require.NoError(t, it.Err())
	}

	var wantIn []Sample
	for _, smp := range want {
		if smp.T >= mint && smp.T <= maxt {
			wantIn = append(wantIn, smp)
		}
	}
	require.Len(t, got, len(wantIn), "samples of %s in [%d, %d]", s.lset, mint, maxt)
	for _, w := range wantIn {
		g, ok := got[w.T]
		require.True(t, ok, "sample at %d of %s missing", w.T, s.lset)
		switch {
		case w.H != nil:
			require.NotNil(t, g.H)
			h := g.H.Copy()
			h.CounterResetHint = w.H.CounterResetHint
			require.True(t, w.H.Equals(h), "histogram at %d of %s: want %s, got %s", w.T, s.lset, w.H, g.H)
		case w.FH != nil:
			require.NotNil(t, g.FH)
			fh := g.FH.Copy()
			fh.CounterResetHint = w.FH.CounterResetHint
			require.True(t, w.FH.Equals(fh), "float histogram at %d of %s: want %s, got %s", w.T, s.lset, w.FH, g.FH)
		default:
			require.Equal(t, w.F, g.F, "sample at %d of %s", w.T, s.lset)
		}
	}
}

func testLabelNames(t *testing.T, store storepb.StoreClient, o oracle) {
	cases := []struct {
		name       string
		start, end int64
		matchers   []*storepb.LabelMatcher
		without    []string
		limit      int64
	}{
		{name: "all"},
		{name: "matchers", matchers: []*storepb.LabelMatcher{eq("__name__", "up")}},
		{name: "matchers selecting the overridden series", matchers: []*storepb.LabelMatcher{eq("job", "edge")}},
		{name: "external label matches", matchers: []*storepb.LabelMatcher{eq("tenant_id", "team-a"), eq("__name__", "http_requests_total")}},
		{name: "external label mismatches", matchers: []*storepb.LabelMatcher{eq("tenant_id", "team-b")}},
		{name: "no series match", matchers: []*storepb.LabelMatcher{eq("__name__", "nonexistent")}},
		{name: "late range", start: t0 + 45*minute, end: tEnd},
		{name: "range after the data", start: tEnd + 60*minute, end: tEnd + 120*minute},
		{name: "without replica label", without: []string{"a_replica"}},
		{name: "limit", limit: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.start == 0 && c.end == 0 {
				c.start, c.end = t0, tEnd-1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := store.LabelNames(ctx, &storepb.LabelNamesRequest{
				Start: c.start, End: c.end, Matchers: c.matchers, WithoutReplicaLabels: c.without, Limit: c.limit,
			})
			require.NoError(t, err)
			require.Empty(t, resp.GetWarnings())
			got := resp.GetNames()
			require.True(t, slices.IsSorted(got), "names not sorted: %v", got)
			require.Equal(t, len(slices.Compact(slices.Clone(got))), len(got), "duplicate names: %v", got)

			// Label APIs may be approximate in time (block and head granularity):
			// every name of a series with samples in the range must be there, and
			// only names of series that match at all may be.
			lower := o.labelNames(t, c.start, c.end, c.matchers, c.without)
			upper := o.labelNames(t, o.clampToData(c.start, c.end), o.clampToData(c.end, c.start), c.matchers, c.without)
			if c.limit > 0 {
				require.Len(t, got, min(int(c.limit), len(upper)))
				require.Subset(t, upper, got)
				return
			}
			require.Subset(t, got, lower)
			require.Subset(t, upper, got)
		})
	}
}

func testLabelValues(t *testing.T, store storepb.StoreClient, o oracle) {
	cases := []struct {
		name       string
		label      string
		start, end int64
		matchers   []*storepb.LabelMatcher
		without    []string
	}{
		{name: "series label", label: "job"},
		{name: "series label with matchers", label: "instance", matchers: []*storepb.LabelMatcher{eq("job", "api")}},
		{name: "series label with regexp", label: "__name__", matchers: []*storepb.LabelMatcher{re("__name__", "latency.*")}},
		{name: "external label", label: "region"},
		{name: "external label with matchers", label: "tenant_id", matchers: []*storepb.LabelMatcher{eq("__name__", "up")}},
		{name: "external label, no series match", label: "region", matchers: []*storepb.LabelMatcher{eq("__name__", "nonexistent")}},
		{name: "external label matcher mismatches", label: "job", matchers: []*storepb.LabelMatcher{eq("region", "us")}},
		{name: "dropped replica label", label: "a_replica", without: []string{"a_replica"}},
		{name: "late range", label: "__name__", start: t0 + 45*minute, end: tEnd},
		{name: "range after the data", label: "job", start: tEnd + 60*minute, end: tEnd + 120*minute},
		{name: "label nobody has", label: "zone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.start == 0 && c.end == 0 {
				c.start, c.end = t0, tEnd-1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := store.LabelValues(ctx, &storepb.LabelValuesRequest{
				Label: c.label, Start: c.start, End: c.end, Matchers: c.matchers, WithoutReplicaLabels: c.without,
			})
			require.NoError(t, err)
			require.Empty(t, resp.GetWarnings())
			got := resp.GetValues()
			require.True(t, slices.IsSorted(got), "values not sorted: %v", got)
			require.Equal(t, len(slices.Compact(slices.Clone(got))), len(got), "duplicate values: %v", got)

			lower := o.labelValues(t, c.label, c.start, c.end, c.matchers, c.without)
			upper := o.labelValues(t, c.label, o.clampToData(c.start, c.end), o.clampToData(c.end, c.start), c.matchers, c.without)
			require.Subset(t, got, lower)
			require.Subset(t, upper, got)
		})
	}
	t.Run("external value replaces the series value", func(t *testing.T) {
		resp, err := store.LabelValues(context.Background(), &storepb.LabelValuesRequest{
			Label: "region", Start: t0, End: tEnd, Matchers: []*storepb.LabelMatcher{eq("job", "edge")},
		})
		require.NoError(t, err)
		require.Equal(t, []string{"eu"}, resp.GetValues())
	})
}

func testInvalidRequests(t *testing.T, store storepb.StoreClient) {
	bad := []*storepb.LabelMatcher{re("job", "(unclosed")}
	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"series with bad regexp", func(ctx context.Context) error {
			stream, err := store.Series(ctx, &storepb.SeriesRequest{MinTime: t0, MaxTime: tEnd, Matchers: bad})
			if err != nil {
				return err
			}
			for {
				if _, err := stream.Recv(); err != nil {
					if err == io.EOF {
						return nil
					}
					return err
				}
			}
		}},
		{"series with unknown matcher type", func(ctx context.Context) error {
			stream, err := store.Series(ctx, &storepb.SeriesRequest{MinTime: t0, MaxTime: tEnd, Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_Type(42), Name: "job", Value: "api"}}})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
		{"label names with bad regexp", func(ctx context.Context) error {
			_, err := store.LabelNames(ctx, &storepb.LabelNamesRequest{Start: t0, End: tEnd, Matchers: bad})
			return err
		}},
		{"label values with bad regexp", func(ctx context.Context) error {
			_, err := store.LabelValues(ctx, &storepb.LabelValuesRequest{Label: "job", Start: t0, End: tEnd, Matchers: bad})
			return err
		}},
		{"label values without a label", func(ctx context.Context) error {
			_, err := store.LabelValues(ctx, &storepb.LabelValuesRequest{Start: t0, End: tEnd})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.call(ctx)
			require.Error(t, err)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.NotEmpty(t, status.Convert(err).Message())
		})
	}
}

func testInfo(t *testing.T, info infopb.InfoClient, ext labels.Labels) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetComponentType())
	require.NotEmpty(t, resp.GetLabelSets())
	for _, ls := range resp.GetLabelSets() {
		require.Equal(t, ext.String(), labelsFromProto(t, ls.GetLabels()).String())
	}
	store := resp.GetStore()
	require.NotNil(t, store, "the Store API must be advertised")
	require.True(t, store.GetSupportsWithoutReplicaLabels())
	require.LessOrEqual(t, store.GetMinTime(), t0)
	require.GreaterOrEqual(t, store.GetMaxTime(), tEnd-1)
}

// oracle computes the expected answers from the fixture.
type oracle struct {
	data []Series
	ext  labels.Labels
}

// visible returns a fixture series' labels as clients see them before replica
// labels are dropped: the external labels attached, overriding.
func (o oracle) visible(ls labels.Labels) labels.Labels {
	b := labels.NewBuilder(ls)
	o.ext.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	return b.Labels()
}

// drop removes the external labels among without from ls.
func (o oracle) drop(ls labels.Labels, without []string) labels.Labels {
	b := labels.NewBuilder(ls)
	for _, n := range without {
		if o.ext.Has(n) {
			b.Del(n)
		}
	}
	return b.Labels()
}

// selected returns the visible labels of the series that match and have a
// sample in [mint, maxt].
func (o oracle) selected(t *testing.T, mint, maxt int64, pms []*storepb.LabelMatcher) []labels.Labels {
	t.Helper()
	ms := make([]*labels.Matcher, 0, len(pms))
	for _, pm := range pms {
		m, err := labels.NewMatcher(labels.MatchType(pm.GetType()), pm.GetName(), pm.GetValue())
		require.NoError(t, err)
		ms = append(ms, m)
	}
	var out []labels.Labels
	for _, s := range o.data {
		ls := o.visible(s.Labels)
		ok := slices.ContainsFunc(s.Samples, func(smp Sample) bool { return smp.T >= mint && smp.T <= maxt })
		for _, m := range ms {
			ok = ok && m.Matches(ls.Get(m.Name))
		}
		if ok {
			out = append(out, ls)
		}
	}
	return out
}

func (o oracle) series(t *testing.T, mint, maxt int64, ms []*storepb.LabelMatcher, without []string) []labels.Labels {
	var out []labels.Labels
	for _, ls := range o.selected(t, mint, maxt, ms) {
		out = append(out, o.drop(ls, without))
	}
	slices.SortFunc(out, labels.Compare)
	return slices.CompactFunc(out, labels.Equal)
}

// samples returns the fixture samples of the series a client sees as lset.
func (o oracle) samples(lset labels.Labels, without []string) []Sample {
	for _, s := range o.data {
		if labels.Equal(o.drop(o.visible(s.Labels), without), lset) {
			return s.Samples
		}
	}
	return nil
}

func (o oracle) labelNames(t *testing.T, mint, maxt int64, ms []*storepb.LabelMatcher, without []string) []string {
	names := []string{}
	for _, ls := range o.selected(t, mint, maxt, ms) {
		o.drop(ls, without).Range(func(l labels.Label) { names = append(names, l.Name) })
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (o oracle) labelValues(t *testing.T, name string, mint, maxt int64, ms []*storepb.LabelMatcher, without []string) []string {
	values := []string{}
	for _, ls := range o.selected(t, mint, maxt, ms) {
		if v := o.drop(ls, without).Get(name); v != "" {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	return slices.Compact(values)
}

// clampToData widens a time range that overlaps the fixture to all of it; a
// range that misses the fixture stays as it is. It bounds what time-approximate
// label APIs may return.
func (o oracle) clampToData(t, other int64) int64 {
	lo, hi := min(t, other), max(t, other)
	if hi < t0 || lo >= tEnd {
		return t
	}
	if t == lo {
		return math.MinInt64
	}
	return math.MaxInt64
}

func labelStrings(ls []labels.Labels) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.String())
	}
	return out
}
